//! CVE-2024-21626 and fd leaks: only stdio and explicitly preserved fds reach the container's
//! processes, and a working directory reached through a leaked fd (`/proc/self/fd/N`) never puts a
//! process outside the container's root.
//!
//! Results (recorded from runs on this host; Debian's runc 1.1.5+ds1-1+deb12u1 carries the
//! CVE-2024-21626 fix):
//! * `attack_21626_init_cwd_proc_self_fd` — runc 1.1.5: blocked (create fails: "mkdir
//!   /proc/self/fd/N: not a directory / no such file"), brisk: blocked (create fails: ENOENT /
//!   ENOTDIR creating or entering the cwd)
//! * `attack_21626_exec_cwd_proc_self_fd` — runc 1.1.5: blocked (exec fails: chdir ENOTDIR/ENOENT),
//!   brisk: blocked (exec fails: chdir ENOENT/ENOTDIR)
//! * `init_sees_only_stdio_fds` — runc 1.1.5: blocked (no leak), brisk: blocked
//! * `init_sees_exactly_preserved_fds` — runc 1.1.5: blocked, brisk: blocked
//! * `exec_sees_only_stdio_fds` — runc 1.1.5: blocked, brisk: blocked
//! * `exec_sees_exactly_preserved_fds` — runc 1.1.5: blocked, brisk: blocked

use std::os::fd::OwnedFd;
use std::process::Stdio;

use brisk_integration::attack;
use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{path_str, RuntimeUnderTest};
use brisk_integration::runtime_tests;

runtime_tests!(
    attack_21626_init_cwd_proc_self_fd,
    attack_21626_exec_cwd_proc_self_fd,
    init_sees_only_stdio_fds,
    init_sees_exactly_preserved_fds,
    exec_sees_only_stdio_fds,
    exec_sees_exactly_preserved_fds,
);

/// From the process's cwd: show `..`, then climb with physical `cd ..` as far as it goes and list
/// where that ends. Inside the container that is the container's root (no `usr`: the test rootfs
/// has only busybox dirs); a cwd outside the root climbs to the host's `/`, which has `usr`.
const CLIMB: &str = r#"echo "cwd=$(pwd -P 2>&1)"; echo "dotdot: $(ls -a .. 2>&1 | tr '\n' ' ')"; i=0; while [ $i -lt 40 ]; do cd -P .. 2>/dev/null || break; i=$((i+1)); done; echo "top: $(ls -a . 2>&1 | tr '\n' ' ')""#;

/// True when the climb's output shows host directories the container rootfs does not have.
fn escaped(out: &str) -> bool {
    out.lines().filter(|l| l.starts_with("top:") || l.starts_with("dotdot:")).any(|l| {
        let names: Vec<&str> = l.split_whitespace().skip(1).collect();
        ["usr", "work", "boot", "lib", "var"].iter().any(|h| names.contains(h))
    })
}

/// A running container with a bound control dir; init sleeps.
fn running(rt: &RuntimeUnderTest, prefix: &str) -> (Bundle, String) {
    let b = Bundle::new().sh("echo started; exec sleep 1000");
    let id = rt.new_id(prefix);
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    (b, id)
}

// runc 1.1.5 (Debian deb12u1, patched): blocked (refused), brisk: blocked (refused).
fn attack_21626_init_cwd_proc_self_fd(rt: &RuntimeUnderTest) {
    let mut refused = 0;
    for n in 3..=10 {
        let b = Bundle::new().cwd(&format!("/proc/self/fd/{n}")).sh(CLIMB);
        let id = rt.new_id("cve21626-init");
        let r = rt.run(&id, &b);
        eprintln!("RESULT {:?} cwd=/proc/self/fd/{n}: status {} stdout {:?} stderr {:?}", rt.kind(), r.status, r.stdout, r.stderr);
        assert!(!escaped(&r.stdout), "CVE-2024-21626: init with cwd /proc/self/fd/{n} reached the host:\n{}", r.stdout);
        if !r.status.success() {
            refused += 1;
        }
        let _ = rt.delete_force(&id);
    }
    // Both runtimes refuse every one of them (the fds are runtime-internal or closed).
    assert_eq!(refused, 8, "a cwd of /proc/self/fd/N (N = 3..10) must be refused");
}

// runc 1.1.5 (Debian deb12u1, patched): blocked (refused), brisk: blocked (refused).
fn attack_21626_exec_cwd_proc_self_fd(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "cve21626-exec");
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let r = rt.cmd(&["exec", "--cwd", &cwd, &id, "sh", "-c", CLIMB]);
        eprintln!("RESULT {:?} exec --cwd {cwd}: status {} stdout {:?} stderr {:?}", rt.kind(), r.status, r.stdout, r.stderr);
        assert!(!escaped(&r.stdout), "CVE-2024-21626: exec with cwd {cwd} reached the host:\n{}", r.stdout);
        assert!(!r.status.success(), "exec with cwd {cwd} must be refused:\n{}", r.stdout);
    }
    rt.delete_force(&id).ok();
}

// runc 1.1.5: blocked, brisk: blocked.
fn init_sees_only_stdio_fds(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "fds-init");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    assert_eq!(attack::open_fds(pid), vec![0, 1, 2], "the container's init holds fds beyond stdio");
    // The same from inside, through an exec'd shell looking at pid 1.
    let r = rt.exec(&id, &["ls", "/proc/1/fd"]).ok();
    assert_eq!(r.lines(), vec!["0", "1", "2"], "/proc/1/fd inside the container");
    rt.delete_force(&id).ok();
}

/// Two preserved fds at 3 and 4, and two more (5, 6) that the runtime inherits but must not pass on.
fn preserved_and_stray() -> Vec<(OwnedFd, i32)> {
    vec![
        (attack::temp_file_fd("preserved-3"), 3),
        (attack::temp_file_fd("preserved-4"), 4),
        (attack::temp_file_fd("stray-5"), 5),
        (attack::temp_file_fd("stray-6"), 6),
    ]
}

// runc 1.1.5: blocked, brisk: blocked.
fn init_sees_exactly_preserved_fds(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("echo started; cat <&3; echo; cat <&4; echo; exec sleep 1000");
    let id = rt.new_id("fds-preserve");
    rt.track(&id);
    b.write_config();
    let out = std::fs::File::create(b.scratch("out")).expect("out file");
    let mut cmd = rt.command();
    cmd.args(["run", "-d", "--preserve-fds", "2", "--bundle", path_str(b.path()), &id])
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    let keep = attack::with_fds(&mut cmd, preserved_and_stray());
    let st = cmd.status().expect("spawn run -d");
    drop(keep);
    assert!(st.success(), "run -d --preserve-fds 2 failed: {st}: {}", std::fs::read_to_string(b.scratch("out")).unwrap_or_default());
    let mut text = String::new();
    attack::wait_for("the init to print its preserved files", || {
        text = std::fs::read_to_string(b.scratch("out")).unwrap_or_default();
        text.contains("preserved-4")
    });
    assert!(text.contains("preserved-3"), "fd 3 is not the first preserved fd:\n{text}");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    assert_eq!(attack::open_fds(pid), vec![0, 1, 2, 3, 4], "with --preserve-fds 2 the init must hold exactly 0-4");
    let r = rt.exec(&id, &["ls", "/proc/1/fd"]).ok();
    assert_eq!(r.lines(), vec!["0", "1", "2", "3", "4"], "/proc/1/fd inside the container");
    rt.delete_force(&id).ok();
}

/// The exec'd shell lists its own fds (`$$`, not `self`, which would show ls's directory fd); the
/// trailing `:` keeps the shell from exec'ing ls in its place.
const LIST_OWN_FDS: &str = "ls /proc/$$/fd; :";

// runc 1.1.5: blocked, brisk: blocked.
fn exec_sees_only_stdio_fds(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "fds-exec");
    let r = rt.exec(&id, &["sh", "-c", LIST_OWN_FDS]).ok();
    assert_eq!(r.lines(), vec!["0", "1", "2"], "an exec'd process holds fds beyond stdio");
    // A detached exec, inspected from the host.
    let pidfile = _b.scratch("exec.pid");
    rt.cmd_to_files(&["exec", "-d", "--pid-file", path_str(&pidfile), &id, "sleep", "1000"], &_b, "exec-d").ok();
    let pid: i32 = std::fs::read_to_string(&pidfile).expect("pid file").trim().parse().expect("pid");
    assert_eq!(attack::open_fds(pid), vec![0, 1, 2], "a detached exec'd process holds fds beyond stdio");
    rt.delete_force(&id).ok();
}

// runc 1.1.5: blocked, brisk: blocked.
fn exec_sees_exactly_preserved_fds(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "fds-exec-preserve");
    let script = format!("{LIST_OWN_FDS}; cat <&3; echo; cat <&4");
    let mut cmd = rt.command();
    cmd.args(["exec", "--preserve-fds", "2", &id, "sh", "-c", &script]).stdin(Stdio::null());
    let keep = attack::with_fds(&mut cmd, preserved_and_stray());
    let out = cmd.output().expect("spawn exec");
    drop(keep);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "exec --preserve-fds 2 failed: {}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..5], ["0", "1", "2", "3", "4"], "with --preserve-fds 2 an exec'd process must hold exactly 0-4:\n{text}");
    assert_eq!(lines[5..], ["preserved-3", "preserved-4"], "preserved fds in the wrong order:\n{text}");
    rt.delete_force(&id).ok();
}
