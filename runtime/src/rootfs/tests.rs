//! Planning tests: the operations each step performs for a given spec, through the recording fake.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use super::fake::{FakeSys, Node};
use super::sys::Kind;
use super::*;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}

fn cfg<'a>(spec: &'a Spec, cg: &'a [(String, String, PathBuf)]) -> RootfsConfig<'a> {
    RootfsConfig { spec, rootfs: Path::new("/run/c/rootfs"), no_pivot: false, in_userns: false, cgroupns: false, cgroup_mounts: cg }
}

fn base_fake() -> FakeSys {
    let mut f = FakeSys::with_dirs(&["/dev", "/proc", "/sys", "/etc", "/tmp"]);
    f.host.insert(PathBuf::from("/proc/kcore"), Kind::File);
    f
}

/// The ops of the mount entries only (after "root ..."), without the device setup.
fn mount_ops(f: &FakeSys) -> Vec<String> {
    let start = f.ops.iter().position(|o| o.starts_with("root ")).unwrap() + 1;
    f.ops[start..].iter().take_while(|o| !o.starts_with("umask") && !o.starts_with("mknod")).cloned().collect()
}

const NO_DEV_SETUP: &str = r#"{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}"#;

fn with_mounts(mounts: &str) -> Spec {
    spec(&format!(r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "mounts": [{mounts}]}}"#))
}

#[test]
fn prepare_order_for_a_typical_spec() {
    let s = spec(
        r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    ]}"#,
    );
    let mut f = base_fake();
    f.mountinfo = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                   30 22 0:5 / /run rw shared:5 - tmpfs tmpfs rw\n"
        .into();
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    let want = [
        "mount - host:/ - rec|slave -",
        "mount - host:/run - private -",
        "mount /run/c/rootfs host:/run/c/rootfs bind bind|rec -",
        "root /run/c/rootfs",
        "mount proc /proc proc 0 -",
        "mount tmpfs /dev tmpfs nosuid|strictatime mode=755,size=65536k",
        "mkdir /dev/pts 755",
        "mount devpts /dev/pts devpts nosuid|noexec newinstance,ptmxmode=0666,mode=0620,gid=5",
        "mount sysfs /sys sysfs ro|nosuid|nodev|noexec -",
        "umask 0",
        "mknod /dev/null c 1:3 666 umask=0",
        "chown /dev/null 0:0",
        "mknod /dev/zero c 1:5 666 umask=0",
        "chown /dev/zero 0:0",
        "mknod /dev/full c 1:7 666 umask=0",
        "chown /dev/full 0:0",
        "mknod /dev/random c 1:8 666 umask=0",
        "chown /dev/random 0:0",
        "mknod /dev/urandom c 1:9 666 umask=0",
        "chown /dev/urandom 0:0",
        "mknod /dev/tty c 5:0 666 umask=0",
        "chown /dev/tty 0:0",
        "umask 22",
        "symlink /dev/ptmx -> pts/ptmx",
        "symlink /dev/fd -> /proc/self/fd",
        "symlink /dev/stdin -> /proc/self/fd/0",
        "symlink /dev/stdout -> /proc/self/fd/1",
        "symlink /dev/stderr -> /proc/self/fd/2",
        "symlink /dev/core -> /proc/kcore",
    ];
    assert_eq!(f.ops, want);
}

#[test]
fn bind_mount_is_remounted_for_flags_then_propagation_then_recursive_attrs() {
    let s = with_mounts(&format!(
        r#"{NO_DEV_SETUP}, {{"destination": "/data", "type": "none", "source": "/host/data", "options": ["rbind", "ro", "nosuid", "rprivate", "rnodev"]}},
        {{"destination": "/etc/hosts", "source": "/host/hosts", "options": ["bind", "rw"]}}"#
    ));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.host.insert(PathBuf::from("/host/data"), Kind::Dir);
    f.host.insert(PathBuf::from("/host/hosts"), Kind::File);
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f),
        [
            "mount /dev /dev - bind|rec -",
            "mkdir /data 755",
            "mount /host/data /data - bind|rec -",
            "mount - /data - rec|private -",
            "mount - /data - ro|nosuid|remount|bind -",
            "setattr /data set=0x4 clr=0x0",
            // A file source gets a file mount point; "rw" alone needs no remount.
            "create /etc/hosts 755 umask=22",
            "mount /host/hosts /etc/hosts - bind -",
        ]
    );
    // /dev is a bind mount: no devices are created (runc's needsSetupDev).
    assert!(!f.ops.iter().any(|o| o.starts_with("mknod") || o.starts_with("symlink")), "{:?}", f.ops);
}

#[test]
fn symlink_destination_pointing_outside_stays_inside() {
    // CVE-2021-30465: /etc/evil -> /tmp/../../../../outside must land on <rootfs>/outside.
    let s = with_mounts(&format!(
        r#"{NO_DEV_SETUP}, {{"destination": "/etc/evil/sub", "type": "tmpfs", "source": "tmpfs"}},
        {{"destination": "/etc/rel", "type": "tmpfs", "source": "tmpfs"}}"#
    ));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.add("/etc/evil", Node::Link(PathBuf::from("/tmp/../../../../outside")));
    f.add("/etc/rel", Node::Link(PathBuf::from("../../../../tmp/x")));
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f)[1..],
        [
            "mkdir /outside 755",
            "mkdir /outside/sub 755",
            "mount tmpfs /outside/sub tmpfs 0 -",
            "mkdir /tmp/x 755",
            "mount tmpfs /tmp/x tmpfs 0 -",
        ]
    );
}

#[test]
fn proc_and_sys_over_a_symlink_are_refused() {
    for (typ, dest) in [("proc", "/proc"), ("sysfs", "/sys")] {
        let s = with_mounts(&format!(r#"{{"destination": "{dest}", "type": "{typ}", "source": "{typ}"}}"#));
        let mut f = FakeSys::with_dirs(&["/dev", "/etc"]);
        f.add(dest, Node::Link(PathBuf::from("/etc")));
        let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err();
        assert!(matches!(err, RootfsError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains(dest) && err.to_string().contains("symlink"), "{err}");
        assert!(!f.ops.iter().any(|o| o.contains(&format!(" {typ} "))), "{:?}", f.ops);
        // A regular file in the way is refused too.
        let mut f = FakeSys::with_dirs(&["/dev"]);
        f.add(dest, Node::File);
        let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err();
        assert!(err.to_string().contains("must be mounted on ordinary directory"), "{err}");
    }
}

#[test]
fn bind_mounts_into_proc_are_checked() {
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/host/file"), Kind::File);
    f.host.insert(PathBuf::from("/proc"), Kind::Dir);
    f.host_procfs.push(PathBuf::from("/proc"));
    let bad = with_mounts(r#"{"destination": "/proc/sys/kernel/core_pattern", "source": "/host/file", "options": ["bind"]}"#);
    let err = prepare_with(&mut f, &cfg(&bad, &[])).unwrap_err();
    assert!(err.to_string().contains("/proc/sys/kernel/core_pattern"), "{err}");
    let notproc = with_mounts(r#"{"destination": "/proc", "source": "/host/file", "options": ["bind"]}"#);
    let err = prepare_with(&mut base_fake(), &cfg(&notproc, &[])).unwrap_err();
    assert!(err.to_string().contains("not of type proc"), "{err}");
    // lxcfs-style files and a procfs source on /proc are fine.
    let ok = with_mounts(
        r#"{"destination": "/proc/meminfo", "source": "/host/file", "options": ["bind"]},
           {"destination": "/proc", "source": "/proc", "options": ["rbind"]}"#,
    );
    prepare_with(&mut f, &cfg(&ok, &[])).unwrap();
}

#[test]
fn tmpfs_ro_is_remounted_but_dev_ro_waits_for_finalize() {
    let s = with_mounts(
        r#"{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "mode=755"]},
           {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nodev", "size=1m"]},
           {"destination": "/mnt", "type": "ext4", "source": "/dev/sdb1", "options": ["ro", "noatime", "sync", "dirsync", "mand", "lazytime", "nodiratime"]}"#,
    );
    let mut f = base_fake();
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f),
        [
            "mount tmpfs /dev tmpfs 0 mode=755",
            "mkdir /run 755",
            "mount tmpfs /run tmpfs nodev size=1m",
            "mount - /run - ro|nodev|remount -",
            "mkdir /mnt 755",
            "mount /dev/sdb1 /mnt ext4 ro|sync|mand|dirsync|noatime|nodiratime|lazytime -",
        ]
    );
    let mut f = base_fake();
    finalize_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(f.ops, ["root /", "mount - /dev - ro|remount -"]);
}

#[test]
fn devices_from_the_spec_override_defaults_and_restore_umask() {
    let s = spec(
        r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"devices": [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 1000, "gid": 1001},
        {"path": "/dev/disk/sda", "type": "b", "major": 8, "minor": 0},
        {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0}
    ]}}"#,
    );
    let mut f = base_fake();
    f.add("/dev/zero", Node::File);
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    let devs: Vec<&str> = f.ops.iter().map(String::as_str).skip_while(|o| !o.starts_with("umask")).take_while(|o| !o.starts_with("symlink")).collect();
    assert_eq!(
        devs,
        [
            "umask 0",
            // /dev/zero already exists in the image: left alone, like runc.
            "mknod /dev/full c 1:7 666 umask=0",
            "chown /dev/full 0:0",
            "mknod /dev/random c 1:8 666 umask=0",
            "chown /dev/random 0:0",
            "mknod /dev/urandom c 1:9 666 umask=0",
            "chown /dev/urandom 0:0",
            "mknod /dev/tty c 5:0 666 umask=0",
            "chown /dev/tty 0:0",
            "mknod /dev/null c 1:3 666 umask=0",
            "chown /dev/null 0:0",
            "mknod /dev/fuse c 10:229 660 umask=0",
            "chown /dev/fuse 1000:1001",
            "mkdir /dev/disk 755",
            "mknod /dev/disk/sda b 8:0 666 umask=0",
            "chown /dev/disk/sda 0:0",
            "mknod /dev/fifo p 0:0 666 umask=0",
            "chown /dev/fifo 0:0",
            "umask 22",
        ]
    );
}

#[test]
fn devices_in_a_user_namespace_are_bind_mounted() {
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"devices": [{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]}}"#);
    let mut f = base_fake();
    let mut c = cfg(&s, &[]);
    c.in_userns = true;
    prepare_with(&mut f, &c).unwrap();
    assert!(!f.ops.iter().any(|o| o.starts_with("mknod") || o.starts_with("chown")), "{:?}", f.ops);
    let i = f.ops.iter().position(|o| o == "create /dev/kvm 666 umask=0").unwrap();
    assert_eq!(f.ops[i + 1], "mount /dev/kvm /dev/kvm - bind -");
    assert!(f.ops.contains(&"mount /dev/null /dev/null - bind -".to_string()));
}

#[test]
fn bad_devices_are_refused_with_their_path() {
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"devices": [{"path": "/dev/x", "type": "c", "major": -1, "minor": 0}]}}"#);
    let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("/dev/x"), "{err}");
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"devices": [{"path": "/dev/y", "type": "a"}]}}"#);
    let mut f = base_fake();
    let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("/dev/y"), "{err}");
    // The umask is restored even when device creation fails.
    assert_eq!(f.ops.iter().rfind(|o| o.starts_with("umask")).unwrap(), "umask 22");
}

#[test]
fn mount_errors_name_the_filesystem_and_path() {
    let s = with_mounts(&format!(r#"{NO_DEV_SETUP}, {{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["size=bogus"]}}"#));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.fail.push(("mount shm /dev/shm".into(), Errno::EINVAL));
    let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().starts_with("rootfs: mount tmpfs on /dev/shm: EINVAL"), "{err}");
}

#[test]
fn remount_retries_with_locked_flags_on_eperm() {
    let s = with_mounts(&format!(r#"{NO_DEV_SETUP}, {{"destination": "/data", "source": "/host/data", "options": ["bind", "ro"]}}"#));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.host.insert(PathBuf::from("/host/data"), Kind::Dir);
    f.add("/data", Node::Dir);
    f.mount_flags.insert(PathBuf::from("/data"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME | MsFlags::MS_SYNCHRONOUS);
    f.fail.push(("mount - /data - ro|remount|bind".into(), Errno::EPERM));
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f)[1..],
        [
            "mount /host/data /data - bind -",
            "mount - /data - ro|remount|bind - => EPERM",
            "mount - /data - ro|nosuid|nodev|remount|bind|relatime -",
        ]
    );
}

#[test]
fn cgroup_v1_is_a_tmpfs_with_binds_and_comount_symlinks() {
    let s = with_mounts(&format!(
        r#"{NO_DEV_SETUP}, {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}}"#
    ));
    let cg = vec![
        ("memory".to_string(), "cgroup".to_string(), PathBuf::from("/sys/fs/cgroup/memory/c1")),
        ("cpu,cpuacct".to_string(), "cgroup".to_string(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")),
        ("unified".to_string(), "cgroup2".to_string(), PathBuf::from("/sys/fs/cgroup/unified/c1")),
    ];
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    for (_, _, h) in &cg {
        f.host.insert(h.clone(), Kind::Dir);
    }
    prepare_with(&mut f, &cfg(&s, &cg)).unwrap();
    assert_eq!(
        mount_ops(&f)[1..],
        [
            "mkdir /sys/fs 755",
            "mkdir /sys/fs/cgroup 755",
            "mount tmpfs /sys/fs/cgroup tmpfs nosuid|nodev|noexec mode=755",
            "mkdir /sys/fs/cgroup/memory 755",
            "mount /sys/fs/cgroup/memory/c1 /sys/fs/cgroup/memory - bind|rec -",
            "mount - /sys/fs/cgroup/memory - ro|nosuid|nodev|noexec|remount|bind|relatime -",
            "mkdir /sys/fs/cgroup/cpu,cpuacct 755",
            "mount /sys/fs/cgroup/cpu,cpuacct/c1 /sys/fs/cgroup/cpu,cpuacct - bind|rec -",
            "mount - /sys/fs/cgroup/cpu,cpuacct - ro|nosuid|nodev|noexec|remount|bind|relatime -",
            "mkdir /sys/fs/cgroup/unified 755",
            "mount /sys/fs/cgroup/unified/c1 /sys/fs/cgroup/unified - bind|rec -",
            "mount - /sys/fs/cgroup/unified - ro|nosuid|nodev|noexec|remount|bind|relatime -",
            "symlink /sys/fs/cgroup/cpu -> cpu,cpuacct",
            "symlink /sys/fs/cgroup/cpuacct -> cpu,cpuacct",
            "mount - /sys/fs/cgroup - ro|nosuid|nodev|noexec|remount -",
        ]
    );
}

#[test]
fn cgroup_v1_with_cgroupns_mounts_hierarchies() {
    let s = with_mounts(&format!(r#"{NO_DEV_SETUP}, {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}}"#));
    let cg = vec![
        ("systemd".to_string(), "cgroup".to_string(), PathBuf::from("/sys/fs/cgroup/systemd/c1")),
        ("cpu,cpuacct".to_string(), "cgroup".to_string(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")),
        ("unified".to_string(), "cgroup2".to_string(), PathBuf::from("/sys/fs/cgroup/unified/c1")),
    ];
    let mut f = FakeSys::with_dirs(&["/sys/fs/cgroup"]);
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    let mut c = cfg(&s, &cg);
    c.cgroupns = true;
    prepare_with(&mut f, &c).unwrap();
    assert_eq!(
        mount_ops(&f)[2..],
        [
            "mount tmpfs /sys/fs/cgroup tmpfs nosuid|nodev|noexec mode=755",
            "mkdir /sys/fs/cgroup/systemd 755",
            "mount systemd /sys/fs/cgroup/systemd cgroup ro|nosuid|nodev|noexec name=systemd",
            "mkdir /sys/fs/cgroup/cpu,cpuacct 755",
            "mount cgroup /sys/fs/cgroup/cpu,cpuacct cgroup ro|nosuid|nodev|noexec cpu,cpuacct",
            "mkdir /sys/fs/cgroup/unified 755",
            "mount cgroup2 /sys/fs/cgroup/unified cgroup2 ro|nosuid|nodev|noexec -",
            "symlink /sys/fs/cgroup/cpu -> cpu,cpuacct",
            "symlink /sys/fs/cgroup/cpuacct -> cpu,cpuacct",
            "mount - /sys/fs/cgroup - ro|nosuid|nodev|noexec|remount -",
        ]
    );
}

#[test]
fn cgroup_v2_mounts_cgroup2_and_falls_back_to_a_bind() {
    let s = with_mounts(&format!(r#"{NO_DEV_SETUP}, {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "ro"]}}"#));
    let cg = vec![("".to_string(), "cgroup2".to_string(), PathBuf::from("/sys/fs/cgroup/c1"))];
    let mut f = FakeSys::with_dirs(&["/sys/fs/cgroup"]);
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.cgroup2_only = true;
    prepare_with(&mut f, &cfg(&s, &cg)).unwrap();
    assert_eq!(mount_ops(&f)[2..], ["mount cgroup2 /sys/fs/cgroup cgroup2 ro|nosuid -"]);

    let mut f = FakeSys::with_dirs(&["/sys/fs/cgroup"]);
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.host.insert(PathBuf::from("/sys/fs/cgroup/c1"), Kind::Dir);
    f.cgroup2_only = true;
    f.fail.push(("mount cgroup2".into(), Errno::EPERM));
    prepare_with(&mut f, &cfg(&s, &cg)).unwrap();
    assert_eq!(
        mount_ops(&f)[2..],
        [
            "mount cgroup2 /sys/fs/cgroup cgroup2 ro|nosuid - => EPERM",
            "mount /sys/fs/cgroup/c1 /sys/fs/cgroup - bind|rec -",
            "mount - /sys/fs/cgroup - ro|nosuid|remount|bind -",
        ]
    );
}

#[test]
fn finalize_order_masked_readonly_root_propagation() {
    let s = spec(
        r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true},
        "process": {"cwd": "/work/dir", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "linux": {"rootfsPropagation": "rshared",
          "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing", "/proc/link"],
          "readonlyPaths": ["/proc/sys", "/proc/nope"]}}"#,
    );
    let mut f = FakeSys::with_dirs(&["/proc/acpi", "/proc/sys", "/dev", "/work"]);
    f.add("/proc/kcore", Node::File);
    f.add("/proc/link", Node::Link(PathBuf::from("/proc/kcore")));
    f.mount_flags.insert(PathBuf::from("/"), MsFlags::MS_NODEV | MsFlags::MS_RELATIME);
    finalize_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        f.ops,
        [
            "root /",
            "mkdir /work/dir 755",
            "mount - / - ro|nodev|remount|bind|relatime -",
            "mount /proc/sys /proc/sys - bind|rec -",
            "mount - /proc/sys - ro|nosuid|nodev|noexec|remount|bind -",
            "mount /dev/null /proc/kcore - bind -",
            "mount tmpfs /proc/acpi tmpfs ro -",
            "mount /dev/null /proc/kcore - bind -",
            "mount - host:/ - rec|shared -",
        ]
    );
}

#[test]
fn rootfs_propagation_is_used_before_pivot_and_bad_values_refused() {
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"rootfsPropagation": "private"}}"#);
    let mut f = base_fake();
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(f.ops[0], "mount - host:/ - private -");
    let s = spec(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"rootfsPropagation": "sideways"}}"#);
    let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("sideways"), "{err}");
}

#[test]
fn pivot_or_move_and_console() {
    let s = with_mounts("");
    let mut f = base_fake();
    pivot_with(&mut f, &cfg(&s, &[])).unwrap();
    let mut c = cfg(&s, &[]);
    c.no_pivot = true;
    pivot_with(&mut f, &c).unwrap();
    assert_eq!(f.ops, ["pivot_root /run/c/rootfs", "move_root /run/c/rootfs"]);
    f.fail.push(("pivot_root".into(), Errno::EINVAL));
    let err = pivot_with(&mut f, &cfg(&s, &[])).unwrap_err();
    assert_eq!(err.to_string(), "rootfs: pivot_root /run/c/rootfs: EINVAL: Invalid argument");

    let mut f = base_fake();
    setup_console_with(&mut f, Path::new("/dev/pts/3")).unwrap();
    assert_eq!(f.ops, ["root /", "umask 0", "create /dev/console 666 umask=0", "umask 22", "mount /dev/pts/3 /dev/console - bind -"]);
}

#[test]
fn mounting_over_the_root_or_without_type_is_refused() {
    let s = with_mounts(r#"{"destination": "/", "type": "tmpfs", "source": "tmpfs"}"#);
    let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("container's root"), "{err}");
    let mut f = base_fake();
    f.add("/etc/up", Node::Link(PathBuf::from("../../..")));
    let s = with_mounts(r#"{"destination": "/etc/up", "type": "tmpfs", "source": "tmpfs"}"#);
    assert!(prepare_with(&mut f, &cfg(&s, &[])).is_err());
    let s = with_mounts(r#"{"destination": "/x", "source": "tmpfs"}"#);
    let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("/x"), "{err}");
}

#[test]
fn mountinfo_parsing() {
    let info = "1 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
                2 1 0:5 / /run\\040dir rw master:3 - tmpfs tmpfs rw\n\
                3 1 0:6 / /run rw shared:9 master:2 - tmpfs tmpfs rw\n";
    assert_eq!(containing_mount(info, Path::new("/run/x")), Some((PathBuf::from("/run"), true)));
    assert_eq!(containing_mount(info, Path::new("/run dir/r")), Some((PathBuf::from("/run dir"), false)));
    assert_eq!(containing_mount(info, Path::new("/srv")), Some((PathBuf::from("/"), true)));
}

#[test]
fn unsupported_extensions_are_refused_by_name() {
    for (opts, word) in [(r#"["bind", "idmap"]"#, "idmap"), (r#"["rbind", "ridmap"]"#, "ridmap")] {
        let s = with_mounts(&format!(r#"{{"destination": "/m", "type": "tmpfs", "source": "/src", "options": {opts}}}"#));
        let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
        assert!(err.to_string().contains("/m") && err.to_string().contains(word), "{err}");
    }
    let s = with_mounts(
        r#"{"destination": "/m", "source": "/src", "options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}"#,
    );
    let err = prepare_with(&mut base_fake(), &cfg(&s, &[])).unwrap_err();
    assert!(err.to_string().contains("id-mapped"), "{err}");
}

#[test]
fn tmpfs_over_an_existing_dir_keeps_its_mode_unless_mode_is_given() {
    let s = with_mounts(&format!(
        r#"{NO_DEV_SETUP}, {{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}},
        {{"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]}}"#
    ));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f)[1..],
        [
            "mount tmpfs /tmp tmpfs 0 -",
            "chmod /tmp 750",
            "mount - /tmp - ro|remount -",
            "mount tmpfs /etc tmpfs 0 mode=700",
        ]
    );
}

/// runc's tmpcopyup: the image's directory is opened before the tmpfs covers it, copied into the
/// tmpfs, then the directory's mode is restored and a read-only tmpfs goes read-only only after the
/// copy. The destination is resolved inside the rootfs first (a symlink to /etc copies /etc).
#[test]
fn tmpcopyup_copies_the_image_dir_into_the_tmpfs_before_going_read_only() {
    let s = with_mounts(&format!(
        r#"{NO_DEV_SETUP},
        {{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup", "ro"]}},
        {{"destination": "/link", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=1m"]}},
        {{"destination": "/new", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}},
        {{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["tmpcopyup"]}}"#
    ));
    let mut f = base_fake();
    f.host.insert(PathBuf::from("/dev"), Kind::Dir);
    f.add("/link", Node::Link(PathBuf::from("/etc")));
    prepare_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(
        mount_ops(&f)[1..],
        [
            "mount tmpfs /tmp tmpfs nosuid|nodev -",
            "copyup /tmp -> /tmp",
            "chmod /tmp 750",
            "mount - /tmp - rec|private -",
            "mount - /tmp - ro|nosuid|nodev|remount -",
            "mount tmpfs /etc tmpfs 0 size=1m",
            "copyup /etc -> /etc",
            "chmod /etc 750",
            "mkdir /new 755",
            "mount tmpfs /new tmpfs 0 -",
            "copyup /new -> /new",
            // Not a tmpfs: the extension is ignored (runc), and never passed as data.
            "mount sysfs /sys sysfs 0 -",
        ]
    );
}

#[test]
fn tmpcopyup_failure_names_the_mount_and_the_step() {
    let s = with_mounts(r#"{"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}"#);
    let mut f = base_fake();
    f.fail.push(("copyup".into(), Errno::ENOSPC));
    let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err().to_string();
    assert!(err.contains("tmpcopyup /etc") && err.contains("No space left"), "{err}");
    // A destination that is a file cannot be copied up.
    let s = with_mounts(r#"{"destination": "/f", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}"#);
    let mut f = base_fake();
    f.add("/f", Node::File);
    let err = prepare_with(&mut f, &cfg(&s, &[])).unwrap_err().to_string();
    assert!(err.contains("tmpcopyup: open /f"), "{err}");
}

#[test]
fn no_pivot_hides_the_hosts_full_proc_and_sysfs_mounts() {
    let s = with_mounts("");
    let mut f = base_fake();
    f.mountinfo = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
                   2 1 0:4 / /proc rw shared:2 - proc proc rw\n\
                   3 1 0:5 / /sys rw - sysfs sysfs rw\n\
                   4 2 0:4 /sys /proc/sys ro - proc proc rw\n\
                   5 1 0:6 / /run/c/rootfs/proc rw - proc proc rw\n\
                   6 1 0:7 / /host/proc rw - proc proc rw\n"
        .into();
    f.fail.push(("umount /sys".into(), Errno::EPERM));
    f.fail.push(("mount - host:/host/proc".into(), Errno::ENOENT));
    let mut c = cfg(&s, &[]);
    c.no_pivot = true;
    pivot_with(&mut f, &c).unwrap();
    assert_eq!(
        f.ops,
        [
            "mount - host:/proc - rec|slave -",
            "umount /proc",
            "mount - host:/sys - rec|slave -",
            "umount /sys => EPERM",
            "mount tmpfs host:/sys tmpfs 0 -",
            "mount - host:/host/proc - rec|slave - => ENOENT",
            "move_root /run/c/rootfs",
        ]
    );
    // pivot_root needs none of this: the old root is detached whole.
    let mut f = base_fake();
    pivot_with(&mut f, &cfg(&s, &[])).unwrap();
    assert_eq!(f.ops, ["pivot_root /run/c/rootfs"]);
}

#[test]
fn bind_sources_are_the_bind_mounts_by_index() {
    // init's mount fds (userns) are keyed by these indices; a non-bind mount must not shift them.
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/a", "source": "src/a", "options": ["rbind", "ro"]},
            {"destination": "/b", "type": "bind", "source": "/host/b"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]
    }))
    .expect("spec");
    assert_eq!(bind_sources(&spec), vec![(1, PathBuf::from("src/a")), (2, PathBuf::from("/host/b"))]);
}
