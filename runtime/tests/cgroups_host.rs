//! The cgroup module against the host's real cgroup filesystem (root needed). Runs on v1/hybrid
//! hosts and on the pure v2 guest of `make test-v2`. Every test creates its own cgroups under a
//! unique name and removes them (and kills its processes) through Drop guards.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use brisk_runtime::cgroups::{self, devices, OomEvent, OomWatch, Placement};
use oci_spec::runtime::LinuxResources;

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Kills its child and removes the placement's cgroups on drop.
struct Guard {
    placement: Option<Placement>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(p) = &self.placement {
            let _ = cgroups::set_frozen(p, false);
            let _ = cgroups::remove(p);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// `sh -c script` with a stdin pipe: the script should `read` first so it can be moved into the
/// cgroup before it does anything.
fn spawn_waiting(script: &str) -> Child {
    Command::new("/bin/busybox").args(["sh", "-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn go(c: &mut Child) {
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
}

#[test]
fn create_update_stats_freeze_remove() {
    let name = unique("/brisk-rt-cg");
    let p = cgroups::create(Some(Path::new(&name)), "x", Some(&res(r#"{"pids":{"limit":10},"memory":{"limit":67108864}}"#)), &[], false).unwrap();
    let mut g = Guard { placement: Some(p.clone()), child: None, dir: None };
    assert!(!p.created.is_empty());
    let mut child = spawn_waiting("read x; echo in; exec sleep 1000");
    cgroups::add(&p, child.id() as i32).unwrap();
    go(&mut child);
    // Wait until it runs inside (memory charged after the move counts).
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line, "in\n");
    g.child = Some(child);
    let s = cgroups::stats::read(&p).unwrap();
    assert_eq!(s.version, p.version());
    assert_eq!(s.pids.limit, 10);
    assert!(s.pids.current >= 1);
    assert_eq!(s.memory.limit, 67108864);
    cgroups::update(&p, &res(r#"{"pids":{"limit":20},"memory":{"limit":100663296}}"#)).unwrap();
    let s = cgroups::stats::read(&p).unwrap();
    assert_eq!(s.pids.limit, 20);
    assert_eq!(s.memory.limit, 100663296);
    assert!(s.memory.usage > 0);
    assert_eq!(cgroups::pids(&p).unwrap(), vec![g.child.as_ref().unwrap().id() as i32]);
    cgroups::set_frozen(&p, true).unwrap();
    assert!(cgroups::is_frozen(&p));
    cgroups::set_frozen(&p, false).unwrap();
    assert!(!cgroups::is_frozen(&p));
    if let Some(mut c) = g.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    cgroups::remove(&p).unwrap();
    for (_, d) in &p.dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn field_errors_leave_nothing_behind() {
    let name = unique("/brisk-rt-bad");
    let bad = if cgroups::is_unified(&cgroups::host_hierarchies().unwrap()) { r#"{"memory":{"swappiness":5}}"# } else { r#"{"unified":{"memory.high":"1"}}"# };
    let e = cgroups::create(Some(Path::new(&name)), "x", Some(&res(bad)), &[], false).unwrap_err();
    assert!(e.to_string().starts_with("linux.resources."), "{e}");
    for h in cgroups::host_hierarchies().unwrap() {
        let d = h.mount.join(name.trim_start_matches('/'));
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn oom_watch_reports_a_kill() {
    let name = unique("/brisk-rt-oom");
    let p = cgroups::create(Some(Path::new(&name)), "x", Some(&res(r#"{"memory":{"limit":16777216,"swap":16777216}}"#)), &[], false).unwrap();
    let mut g = Guard { placement: Some(p.clone()), child: None, dir: None };
    let mut w = OomWatch::new(&p).unwrap();
    assert_eq!(w.read().unwrap(), None);
    let mut child = spawn_waiting("read x; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1");
    cgroups::add(&p, child.id() as i32).unwrap();
    go(&mut child);
    let status = child.wait().unwrap();
    g.child = Some(child);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "dd was not OOM-killed: {status:?}");
    let mut fds = [nix::poll::PollFd::new(w.as_fd(), nix::poll::PollFlags::POLLIN)];
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(n, 1, "OOM fd not readable");
    match w.read().unwrap() {
        Some(OomEvent::Oom { kills }) => assert!(kills >= 1),
        other => panic!("expected an OOM event, got {other:?}"),
    }
    let s = cgroups::stats::read(&p).unwrap();
    assert!(s.memory.events.get("oom_kill").copied().unwrap_or(0) >= 1, "{:?}", s.memory.events);
}

/// The eBPF device filter, on the cgroup2 hierarchy (the only one on v2; `unified` on hybrid).
#[test]
fn bpf_device_filter_decides_open() {
    let hs = cgroups::host_hierarchies().unwrap();
    let Some(h) = hs.iter().find(|h| h.fstype == "cgroup2") else {
        panic!("no cgroup2 hierarchy mounted: cannot test the v2 device filter");
    };
    let dir = h.mount.join(unique("brisk-rt-bpf"));
    std::fs::create_dir(&dir).unwrap();
    let mut g = Guard { placement: None, child: None, dir: Some(dir.clone()) };
    let mut rules = vec![devices::Rule { allow: false, typ: 'a', major: None, minor: None, access: "rwm".into() }];
    rules.push(devices::Rule::parse_allow("c 1:3 rwm").unwrap());
    let (default_allow, ex) = devices::reduce(&rules);
    devices::attach_filter(&dir, &devices::program(default_allow, &ex)).unwrap();
    let run = |g: &mut Guard| -> String {
        let procs = dir.join("cgroup.procs");
        let mut c = spawn_waiting(&format!(
            "read x; echo $$ > {}; if (exec 3</dev/null); then echo NULL_OK; fi; if (exec 3</dev/zero); then echo ZERO_OK; else echo ZERO_DENIED; fi",
            procs.display()
        ));
        go(&mut c);
        let out = c.wait_with_output().unwrap();
        g.child = None;
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&mut g);
    assert!(out.contains("NULL_OK") && out.contains("ZERO_DENIED"), "{out}");
    // Replacing the program (update) takes effect and leaves one program attached.
    let (default_allow, ex) = devices::reduce(&[devices::Rule { allow: true, typ: 'a', major: None, minor: None, access: "rwm".into() }]);
    devices::attach_filter(&dir, &devices::program(default_allow, &ex)).unwrap();
    let out = run(&mut g);
    assert!(out.contains("NULL_OK") && out.contains("ZERO_OK"), "{out}");
}
