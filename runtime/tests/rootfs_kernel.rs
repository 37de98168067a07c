//! Real-kernel tests of brisk_runtime::rootfs (run as root).
//!
//! The test re-executes its own binary under `unshare --mount --propagation private`, so every
//! mount, the pivot_root and the chroot happen in a throwaway mount namespace that dies with the
//! child. The child builds nothing itself: the parent prepares a tiny busybox rootfs and a spec in a
//! temp dir (removed by a guard), the child runs prepare → pivot → setup_console → finalize and
//! prints what it sees as `BRISK|...` lines, and the parent asserts on them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use brisk_runtime::rootfs::{self, RootfsConfig};
use oci_spec::runtime::Spec;

const CHILD_ENV: &str = "BRISK_ROOTFS_TEST_DIR";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("brisk-rootfs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The container's own cgroup dirs for a v1 hierarchy and the v2 one, bound read-only in the
/// child's private namespace only (nothing is written to any cgroup).
fn own_cgroups() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for line in fs::read_to_string("/proc/self/cgroup").unwrap_or_default().lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let rel = path.trim_start_matches('/');
        if ctrl == "memory" && Path::new("/sys/fs/cgroup/memory").join(rel).is_dir() {
            out.push(("memory".into(), "cgroup".into(), Path::new("/sys/fs/cgroup/memory").join(rel)));
        }
        if ctrl.is_empty() && Path::new("/sys/fs/cgroup/unified").join(rel).is_dir() {
            out.push(("unified".into(), "cgroup2".into(), Path::new("/sys/fs/cgroup/unified").join(rel)));
        }
    }
    out
}

/// Parent side: build the bundle.
fn build(dir: &Path, readonly_root: bool, propagation: &str) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc/dir_masked", "etc/ro_dir", "tmp", "data", "rdata"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::create_dir(rootfs.join("run")).unwrap();
    fs::set_permissions(rootfs.join("run"), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    fs::write(rootfs.join("etc/file_masked"), "secret").unwrap();
    fs::write(rootfs.join("etc/dir_masked/inside"), "secret").unwrap();
    // CVE-2021-30465 shape: the image holds a symlink to an absolute host path.
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, rootfs.join("etc/evil")).unwrap();
    let hostdata = dir.join("hostdata");
    fs::create_dir_all(&hostdata).unwrap();
    fs::write(hostdata.join("f"), "data").unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": readonly_root},
        "process": {"cwd": "/work", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1770", "size=1m"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/etc/evil/sub", "type": "tmpfs", "source": "evil", "options": ["size=1m"]},
            {"destination": "/data", "type": "bind", "source": hostdata, "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/rdata", "type": "none", "source": hostdata, "options": ["rbind", "rro", "rnoexec"]},
            {"destination": "/etc/hostfile", "type": "none", "source": hostdata.join("f"), "options": ["bind", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nodev", "noatime", "size=1m"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "rootfsPropagation": propagation,
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 12, "gid": 34}],
            "maskedPaths": ["/etc/file_masked", "/etc/dir_masked", "/etc/missing"],
            "readonlyPaths": ["/etc/ro_dir", "/etc/also_missing"]
        }
    });
    fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    rootfs
}

fn out(key: &str, val: impl std::fmt::Display) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "BRISK|{key}|{val}").unwrap();
}

fn write_result(path: &str) -> String {
    match fs::write(path, "x") {
        Ok(()) => "ok".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Child side: runs in the private mount namespace.
fn child(dir: &Path) {
    // libtest has printed "test name ... " without a newline.
    println!();
    let spec: Spec = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    let rootfs = fs::canonicalize(dir.join("rootfs")).unwrap();
    let cg = own_cgroups();
    let no_pivot = std::env::var("BRISK_ROOTFS_NO_PIVOT").is_ok();
    // Device binds (what a user-namespaced init does) and cgroupns mounts are exercised as root.
    let in_userns = std::env::var("BRISK_ROOTFS_BIND_DEVICES").is_ok() || std::env::var("BRISK_ROOTFS_USERNS").is_ok();
    let cgroupns = std::env::var("BRISK_ROOTFS_CGROUPNS").is_ok();
    let cfg = RootfsConfig { spec: &spec, rootfs: &rootfs, no_pivot, in_userns, cgroupns, cgroup_mounts: &cg };
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    rootfs::prepare(&cfg).unwrap();
    let umask_after = nix::sys::stat::umask(old_umask);
    out("umask_after_prepare", format!("{:o}", umask_after.bits()));
    for l in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        out("pre", l);
    }
    rootfs::pivot(&cfg).unwrap();
    out("cwd", std::env::current_dir().unwrap().display());
    // The lead's init opens the pty in the new root and hands us the slave.
    let master = nix::pty::posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let slave = nix::pty::ptsname_r(&master).unwrap();
    out("slave", &slave);
    rootfs::setup_console(Path::new(&slave)).unwrap();
    rootfs::finalize(&cfg).unwrap();
    for l in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        out("post", l);
    }
    out("masked_file", format!("{:?}", fs::read_to_string("/etc/file_masked").unwrap()));
    out("masked_dir_entries", fs::read_dir("/etc/dir_masked").unwrap().count());
    out("masked_dir_write", write_result("/etc/dir_masked/new"));
    out("ro_dir_write", write_result("/etc/ro_dir/new"));
    out("data_write", write_result("/data/new"));
    out("rdata_write", write_result("/rdata/new"));
    out("hostfile_write", write_result("/etc/hostfile"));
    out("run_write", write_result("/run/new"));
    out("shm_write", write_result("/dev/shm/new"));
    out("root_write", write_result("/rootfile"));
    out("cwd_exists", Path::new("/work").is_dir());
    out("run_mode", format!("{:o}", fs::metadata("/run").unwrap().mode() & 0o7777));
    out("evil_is_tmpfs_inside", Path::new(&dir.join("outside/sub").strip_prefix("/").map(|p| Path::new("/").join(p)).unwrap()).is_dir());
    for d in ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/fuse"] {
        match fs::symlink_metadata(d) {
            Ok(m) => out(
                "dev",
                format!(
                    "{d} {} {}:{} {:o} {}:{}",
                    if m.file_type().is_char_device() { "c" } else { "?" },
                    nix::sys::stat::major(m.rdev()),
                    nix::sys::stat::minor(m.rdev()),
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            ),
            Err(e) => out("dev", format!("{d} {e}")),
        }
    }
    for l in ["/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/core"] {
        out("link", format!("{l} {}", fs::read_link(l).map(|p| p.display().to_string()).unwrap_or_else(|e| e.to_string())));
    }
    out("console_is_char", fs::metadata("/dev/console").map(|m| m.file_type().is_char_device()).unwrap_or(false));
    let cgdirs: Vec<String> = fs::read_dir("/sys/fs/cgroup")
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    out("cgroup_entries", cgdirs.join(","));
    out("cgroup_write", write_result("/sys/fs/cgroup/memory/cgroup.procs"));
    let bb = Command::new("/bin/sh").args(["-c", "echo hello from busybox; cat /data/f"]).output().unwrap();
    out("busybox", String::from_utf8_lossy(&bb.stdout).replace('\n', " "));
}

struct Run {
    pre: Vec<String>,
    post: Vec<String>,
    kv: BTreeMap<String, Vec<String>>,
}

impl Run {
    fn one(&self, k: &str) -> &str {
        let v = self.kv.get(k).unwrap_or_else(|| panic!("child printed no {k}"));
        &v[0]
    }
    /// (mount point, per-mount options, fstype, super options) of the last mount at `mp`.
    fn mount(lines: &[String], mp: &str) -> Option<(String, String, String, String)> {
        lines.iter().rev().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(4)? == &mp).then(|| (f[4].to_string(), f[5].to_string(), f[sep + 1].to_string(), f[sep + 3].to_string()))
        })
    }
    fn post_mount(&self, mp: &str) -> (String, String, String, String) {
        Run::mount(&self.post, mp).unwrap_or_else(|| panic!("no mount at {mp} after finalize:\n{}", self.post.join("\n")))
    }
}

fn run_child(dir: &Path, test: &str, extra_env: &[(&str, &str)]) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    if extra_env.iter().any(|(k, _)| *k == "BRISK_ROOTFS_CGROUPNS") {
        cmd.arg("--cgroup");
    }
    if extra_env.iter().any(|(k, _)| *k == "BRISK_ROOTFS_USERNS") {
        // A user namespace owning new pid and net namespaces, so that proc and sysfs may be mounted.
        cmd.args(["--user", "--map-root-user", "--pid", "--fork", "--net"]);
    }
    cmd.args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "child failed: {}\nstdout:\n{stdout}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    if std::env::var_os("BRISK_ROOTFS_TEST_DEBUG").is_some() {
        eprintln!("child stdout:\n{stdout}\nchild stderr:\n{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut run = Run { pre: vec![], post: vec![], kv: BTreeMap::new() };
    for l in stdout.lines() {
        let Some(rest) = l.strip_prefix("BRISK|") else { continue };
        let (k, v) = rest.split_once('|').unwrap();
        match k {
            "pre" => run.pre.push(v.to_string()),
            "post" => run.post.push(v.to_string()),
            _ => run.kv.entry(k.to_string()).or_default().push(v.to_string()),
        }
    }
    run
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

#[test]
fn rootfs_prepare_pivot_finalize() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = TempDir::new("pivot");
    let rootfs = build(&tmp.0, false, "");
    let run = run_child(&tmp.0, "rootfs_prepare_pivot_finalize", &[]);

    // The symlink destination was resolved inside the rootfs, never on the host path.
    let outside_sub = tmp.0.join("outside/sub");
    let inside = rootfs.join(outside_sub.strip_prefix("/").unwrap());
    assert!(Run::mount(&run.pre, inside.to_str().unwrap()).is_some(), "no mount at {}:\n{}", inside.display(), run.pre.join("\n"));
    for l in &run.pre {
        assert!(!l.contains(&format!(" {} ", tmp.0.join("outside").display())), "mounted outside the rootfs: {l}");
        assert!(!l.contains(&format!(" {} ", outside_sub.display())), "mounted outside the rootfs: {l}");
    }
    assert_eq!(run.one("evil_is_tmpfs_inside"), "true");
    assert_eq!(run.one("umask_after_prepare"), "27", "prepare must restore the caller's umask");
    assert_eq!(run.one("cwd"), "/");

    // Options reached the kernel.
    let (_, opts, fs, sup) = run.post_mount("/dev/shm");
    assert_eq!(fs, "tmpfs");
    for o in ["nosuid", "nodev", "noexec", "rw"] {
        assert!(has_opt(&opts, o), "/dev/shm lacks {o}: {opts}");
    }
    assert!(has_opt(&sup, "size=1024k") && has_opt(&sup, "mode=1770"), "/dev/shm data: {sup}");
    let (_, opts, _, sup) = run.post_mount("/dev");
    assert!(has_opt(&opts, "nosuid") && has_opt(&sup, "size=65536k") && has_opt(&sup, "mode=755"), "/dev: {opts} {sup}");
    let (_, opts, fs, _) = run.post_mount("/sys");
    assert!(fs == "sysfs" && has_opt(&opts, "ro") && has_opt(&opts, "nosuid"), "/sys: {fs} {opts}");
    let (_, opts, fs, _) = run.post_mount("/proc");
    assert_eq!(fs, "proc", "{opts}");
    let (_, opts, _, _) = run.post_mount("/data");
    for o in ["ro", "nosuid", "nodev"] {
        assert!(has_opt(&opts, o), "/data lacks {o}: {opts}");
    }
    assert_eq!(run.one("data_write"), "ReadOnlyFilesystem");
    let (_, opts, _, _) = run.post_mount("/rdata");
    assert!(has_opt(&opts, "ro") && has_opt(&opts, "noexec"), "/rdata (rro,rnoexec): {opts}");
    assert_eq!(run.one("rdata_write"), "ReadOnlyFilesystem");
    assert!(has_opt(&run.post_mount("/etc/hostfile").1, "ro"));
    assert_eq!(run.one("hostfile_write"), "ReadOnlyFilesystem");
    let (_, opts, _, _) = run.post_mount("/run");
    assert!(has_opt(&opts, "ro") && has_opt(&opts, "nodev") && has_opt(&opts, "noatime"), "/run: {opts}");
    assert_eq!(run.one("run_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("run_mode"), "711", "tmpfs over an existing dir keeps its mode");
    assert_eq!(run.one("shm_write"), "ok");
    assert_eq!(run.one("root_write"), "ok");
    assert_eq!(run.one("cwd_exists"), "true");

    // Masked and read-only paths.
    assert_eq!(run.one("masked_file"), "\"\"");
    assert_eq!(run.one("masked_dir_entries"), "0");
    assert_eq!(run.one("masked_dir_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("ro_dir_write"), "ReadOnlyFilesystem");
    let (_, opts, _, _) = run.post_mount("/etc/ro_dir");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has_opt(&opts, o), "/etc/ro_dir lacks {o}: {opts}");
    }

    // Devices and /dev links.
    let devs = &run.kv["dev"];
    for want in [
        "/dev/null c 1:3 666 0:0",
        "/dev/zero c 1:5 666 0:0",
        "/dev/full c 1:7 666 0:0",
        "/dev/random c 1:8 666 0:0",
        "/dev/urandom c 1:9 666 0:0",
        "/dev/tty c 5:0 666 0:0",
        "/dev/fuse c 10:229 640 12:34",
    ] {
        assert!(devs.iter().any(|d| d == want), "missing {want} in {devs:?}");
    }
    let links = &run.kv["link"];
    for want in [
        "/dev/ptmx pts/ptmx",
        "/dev/fd /proc/self/fd",
        "/dev/stdin /proc/self/fd/0",
        "/dev/stdout /proc/self/fd/1",
        "/dev/stderr /proc/self/fd/2",
    ] {
        assert!(links.iter().any(|d| d == want), "missing {want} in {links:?}");
    }
    if Path::new("/proc/kcore").exists() {
        assert!(links.iter().any(|d| d == "/dev/core /proc/kcore"), "{links:?}");
    }
    assert!(run.one("slave").starts_with("/dev/pts/"));
    assert_eq!(run.one("console_is_char"), "true");
    assert!(Run::mount(&run.post, "/dev/console").is_some(), "no /dev/console mount");

    // cgroup (hybrid host here: tmpfs with read-only binds of our own cgroup).
    let (_, opts, fs, _) = run.post_mount("/sys/fs/cgroup");
    assert!(
        (fs == "tmpfs" || fs == "cgroup2") && has_opt(&opts, "ro"),
        "/sys/fs/cgroup: {fs} {opts}"
    );
    if fs == "tmpfs" && !own_cgroups().is_empty() {
        assert!(run.one("cgroup_entries").contains("memory"), "{}", run.one("cgroup_entries"));
        assert!(has_opt(&run.post_mount("/sys/fs/cgroup/memory").1, "ro"));
        assert_ne!(run.one("cgroup_write"), "ok");
    }

    // The old root is gone: nothing of the host's tree is mounted after pivot.
    let expected = [
        "/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/data", "/rdata", "/etc/hostfile", "/run",
        "/dev/console", "/etc/ro_dir", "/etc/file_masked", "/etc/dir_masked",
    ];
    let evil = outside_sub.display().to_string();
    for l in &run.post {
        let mp = l.split(' ').nth(4).unwrap();
        assert!(
            expected.contains(&mp) || mp == evil || mp == "/sys/fs/cgroup" || mp.starts_with("/sys/fs/cgroup/"),
            "unexpected mount after pivot (old root not detached?): {l}"
        );
    }
    assert_eq!(run.one("busybox").trim(), "hello from busybox data");

    drop(tmp);
}

#[test]
fn rootfs_no_pivot_and_readonly_root() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = TempDir::new("nopivot");
    build(&tmp.0, true, "");
    let run = run_child(
        &tmp.0,
        "rootfs_no_pivot_and_readonly_root",
        &[("BRISK_ROOTFS_NO_PIVOT", "1"), ("BRISK_ROOTFS_BIND_DEVICES", "1"), ("BRISK_ROOTFS_CGROUPNS", "1")],
    );
    // Devices are bind mounts of the host's nodes, not mknod'ed.
    for d in ["/dev/null", "/dev/zero", "/dev/tty", "/dev/fuse"] {
        assert!(Run::mount(&run.post, d).is_some(), "{d} is not a bind mount");
    }
    assert!(run.kv["dev"].iter().any(|d| d.starts_with("/dev/null c 1:3 ")), "{:?}", run.kv["dev"]);
    // With a cgroup namespace the hierarchies are mounted, not bound from the host path.
    if !own_cgroups().is_empty() {
        let (_, opts, fs, sup) = run.post_mount("/sys/fs/cgroup/memory");
        assert!(fs == "cgroup" && has_opt(&sup, "memory") && has_opt(&opts, "ro"), "{fs} {opts} {sup}");
        let mline = run.post.iter().find(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup/memory")).unwrap();
        assert_eq!(mline.split(' ').nth(3), Some("/"), "cgroupns root expected: {mline}");
    }
    assert_eq!(run.one("root_write"), "ReadOnlyFilesystem");
    assert!(has_opt(&run.post_mount("/").1, "ro"), "/ is not read-only");
    // Mounts on top of the read-only root stay writable.
    assert_eq!(run.one("shm_write"), "ok");
    assert_eq!(run.one("masked_file"), "\"\"");
    assert_eq!(run.one("ro_dir_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("cwd_exists"), "true");
    assert_eq!(run.one("busybox").trim(), "hello from busybox data");
}

#[test]
fn rootfs_shared_propagation() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = TempDir::new("shared");
    build(&tmp.0, false, "rshared");
    let run = run_child(&tmp.0, "rootfs_shared_propagation", &[]);
    let root = run.post.iter().find(|l| l.split(' ').nth(4) == Some("/")).unwrap();
    assert!(root.contains(" shared:"), "/ is not shared: {root}");
    assert_eq!(run.one("busybox").trim(), "hello from busybox data");
}

#[test]
fn rootfs_in_a_user_namespace() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = TempDir::new("userns");
    build(&tmp.0, true, "");
    let run = run_child(&tmp.0, "rootfs_in_a_user_namespace", &[("BRISK_ROOTFS_USERNS", "1")]);
    // Devices are bind mounts (mknod is refused in a user namespace).
    assert!(Run::mount(&run.post, "/dev/null").is_some(), "/dev/null is not a bind mount");
    // Bind remounts keep the locked flags of the host mount (here: its atime mode).
    let (_, opts, _, _) = run.post_mount("/data");
    assert!(has_opt(&opts, "ro") && has_opt(&opts, "nosuid") && has_opt(&opts, "nodev"), "/data: {opts}");
    assert_eq!(run.one("data_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("masked_file"), "\"\"");
    assert_eq!(run.one("ro_dir_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("root_write"), "ReadOnlyFilesystem");
    assert_eq!(run.one("busybox").trim(), "hello from busybox data");
}
