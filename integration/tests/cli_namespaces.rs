//! Namespaces and mounts as seen from inside the container.

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;

runtime_tests!(
    user_namespace_several_ranges,
    time_namespace_offsets,
    namespaces_are_new,
    join_existing_namespace_by_path,
    mounts_and_options,
);

fn user_namespace_several_ranges(rt: &RuntimeUnderTest) {
    let b = Bundle::new()
        .user_namespace(&[(0, 100000, 1000), (1000, 201000, 10)], &[(0, 100000, 1000), (1000, 301000, 5)])
        .sh("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; readlink /proc/self/ns/user");
    let r = rt.run(&rt.new_id("userns"), &b).ok();
    let norm = |s: &str| {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let parts: Vec<&str> = r.stdout.split("--\n").collect();
    assert_eq!(parts.len(), 3, "output:\n{}", r.stdout);
    assert_eq!(norm(parts[0]), ["0 100000 1000", "1000 201000 10"]);
    assert_eq!(norm(parts[1]), ["0 100000 1000", "1000 301000 5"]);
    let rest = norm(parts[2]);
    assert_eq!(rest[0], "0");
    let host_ns = std::fs::read_link("/proc/self/ns/user").expect("host user ns");
    assert_ne!(rest[1], host_ns.to_string_lossy());
}

fn host_uptime() -> f64 {
    let s = std::fs::read_to_string("/proc/uptime").expect("reading /proc/uptime");
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("parsing /proc/uptime")
}

// INTENDED_DIFFERENCES: runc 1.1.5 has no time namespace support (added in runc 1.2); it rejects the
// config with `namespace {"time" ""} does not exist`. The runc variant asserts that rejection (and
// that nothing is left behind); brisk must apply the offsets.
fn time_namespace_offsets(rt: &RuntimeUnderTest) {
    const MONO: i64 = 1000;
    const BOOT: i64 = 1_000_000;
    let b = Bundle::new()
        .time_namespace(MONO, BOOT)
        .sh("cat /proc/self/timens_offsets; echo --; cat /proc/uptime");
    let id = rt.new_id("timens");
    let before = host_uptime();
    let r = rt.run(&id, &b);
    let after = host_uptime();
    if rt.is_runc() {
        let r = r.failed();
        assert!(r.stderr.contains("time"), "stderr: {}", r.stderr);
        rt.assert_nothing_left(&id);
        return;
    }
    let r = r.ok();
    let (offsets, uptime) = r
        .stdout
        .split_once("--\n")
        .unwrap_or_else(|| panic!("output:\n{}", r.stdout));
    let offsets: Vec<String> = offsets
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        offsets.contains(&format!("monotonic {MONO} 0")),
        "timens_offsets: {offsets:?}"
    );
    assert!(
        offsets.contains(&format!("boottime {BOOT} 0")),
        "timens_offsets: {offsets:?}"
    );
    // /proc/uptime follows CLOCK_BOOTTIME, so inside it reads the host's uptime plus the offset.
    let inside: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("uptime");
    assert!(
        inside >= before + BOOT as f64 && inside <= after + BOOT as f64 + 1.0,
        "container uptime {inside}, host {before}..{after}, offset {BOOT}"
    );
}

fn namespaces_are_new(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh(
        "for n in pid net ipc uts mnt cgroup user; do echo $n $(readlink /proc/self/ns/$n); done",
    );
    let r = rt.run(&rt.new_id("ns"), &b).ok();
    for l in r.lines() {
        let (name, link) = l.split_once(' ').expect("name link");
        let host = std::fs::read_link(format!("/proc/self/ns/{name}")).expect("host ns link");
        let host = host.to_string_lossy();
        match name {
            // Not in the default namespace list: shared with the host.
            "cgroup" | "user" => assert_eq!(link, host, "{name} namespace should be the host's"),
            _ => assert_ne!(link, host, "{name} namespace should be new"),
        }
    }
}

/// A network namespace created for this test and removed on drop (a bind-mounted nsfs file).
struct NetNs {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    holder: std::process::Child,
}

impl NetNs {
    fn new() -> NetNs {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("net");
        std::fs::write(&path, b"").expect("ns file");
        // A helper process in a new netns (via busybox unshare); bind its ns file so the path stays
        // valid, then the helper can go.
        let mut holder = std::process::Command::new("/bin/busybox")
            .args(["unshare", "-n", "/bin/busybox", "sleep", "1000"])
            .spawn()
            .expect("spawning unshare");
        let pid = holder.id();
        let src = format!("/proc/{pid}/ns/net");
        let start = std::time::Instant::now();
        // Wait until the child has actually unshared (its net ns differs from ours).
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own net ns");
        while std::fs::read_link(&src).map(|l| l == ours).unwrap_or(true) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "unshare never happened"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        nix::mount::mount(
            Some(src.as_str()),
            &path,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind-mounting netns");
        let _ = holder.kill();
        let _ = holder.wait();
        NetNs { dir, path, holder }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        let _ = &self.dir;
    }
}

fn join_existing_namespace_by_path(rt: &RuntimeUnderTest) {
    use std::os::unix::fs::MetadataExt;
    let ns = NetNs::new();
    // A bind-mounted nsfs file's inode is the namespace id shown in `net:[ino]` links.
    let ino = std::fs::metadata(&ns.path).expect("stat ns file").ino();
    let b = Bundle::new()
        .namespace("network", Some(ns.path.to_str().expect("utf-8")))
        .sh("readlink /proc/self/ns/net");
    let r = rt.run(&rt.new_id("joinns"), &b).ok();
    assert_eq!(r.stdout.trim(), format!("net:[{ino}]"));
}

fn field(line: &str, n: usize) -> &str {
    line.split_whitespace().nth(n).unwrap_or("")
}

/// The mountinfo line whose mount point (field 5) is `dest`.
fn mountinfo_line<'a>(mountinfo: &'a str, dest: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| field(l, 4) == dest)
        .unwrap_or_else(|| panic!("{dest} not in mountinfo:\n{mountinfo}"))
}

/// Per-mount options (field 6) and super options (last field) of a mountinfo line.
fn options(line: &str) -> (Vec<&str>, Vec<&str>) {
    let per = field(line, 5).split(',').collect();
    let sup = line.rsplit(' ').next().unwrap_or("").split(',').collect();
    (per, sup)
}

fn mounts_and_options(rt: &RuntimeUnderTest) {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("hello"), "from host\n").expect("write");
    let b = Bundle::new();
    let b = b
        .bind(data.path(), "/data", &["ro", "nosuid", "nodev"])
        .mount("/scratch", "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec", "size=1m", "mode=750"])
        .sh(concat!(
            "cat /proc/self/mountinfo; echo ==; cat /data/hello; ",
            "touch /data/x 2>/dev/null && echo data-writable || echo data-ro; ",
            "stat -c %a /scratch; echo hi > /scratch/f && cat /scratch/f; ",
            "printf '#!/bin/sh\\necho ran\\n' > /scratch/s; chmod +x /scratch/s; /scratch/s 2>/dev/null || echo noexec-ok",
        ));
    let r = rt.run(&rt.new_id("mounts"), &b).ok();
    let (mountinfo, rest) = r.stdout.split_once("==\n").expect("separator");
    let rest: Vec<&str> = rest.lines().collect();
    assert_eq!(rest, ["from host", "data-ro", "750", "hi", "noexec-ok"]);

    let (per, _) = options(mountinfo_line(mountinfo, "/data"));
    for o in ["ro", "nosuid", "nodev"] {
        assert!(per.contains(&o), "/data per-mount options {per:?} lack {o}");
    }
    let line = mountinfo_line(mountinfo, "/scratch");
    assert!(line.contains(" - tmpfs "), "{line}");
    let (per, sup) = options(line);
    for o in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(
            per.contains(&o),
            "/scratch per-mount options {per:?} lack {o}"
        );
    }
    assert!(
        sup.contains(&"size=1024k"),
        "/scratch super options {sup:?}"
    );
    assert!(sup.contains(&"mode=750"), "/scratch super options {sup:?}");

    // The default mounts from the runc-spec-shaped config.
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let line = mountinfo_line(mountinfo, dest);
        assert!(line.contains(&format!(" - {fstype} ")), "{dest}: {line}");
    }
    let (per, _) = options(mountinfo_line(mountinfo, "/sys"));
    assert!(per.contains(&"ro"), "/sys should be read-only: {per:?}");
}
