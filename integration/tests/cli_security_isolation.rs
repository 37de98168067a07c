//! Privilege boundaries seen from inside a container: device creation against the devices cgroup,
//! capabilities that were dropped, seccomp errno rules, and a seccomp notify agent.
//!
//! Results (recorded from runs on this host):
//! * `attack_mknod_block_device_denied` — runc 1.1.5: node created (its default rules allow `m`
//!   on every block device), opening it refused (EPERM); brisk: mknod refused (EPERM), so there is
//!   no node to open
//! * `mknod_block_device_allowed_when_listed` — runc 1.1.5: allowed, brisk: allowed (control)
//! * `attack_regain_dropped_capability` — runc 1.1.5: blocked, brisk: blocked
//! * `attack_seccomp_denied_syscalls_return_errno_ret` — runc 1.1.5: blocked with the configured
//!   errno, brisk: blocked with the configured errno
//! * `attack_seccomp_default_errno_ret` — runc 1.1.5: blocked with defaultErrnoRet, brisk: blocked
//!   with defaultErrnoRet
//! * `seccomp_notify_agent_decides` — runc 1.1.5: agent's decisions applied, brisk: applied
//! * `seccomp_notify_agent_decides_for_exec` — runc 1.1.5: applied, brisk: applied; both send the
//!   exec'd process's own pid and status "running" in the state the agent receives

use serde_json::json;

use brisk_integration::attack::{self, cap, Decision, NotifyAgent};
use brisk_integration::bundle::{Bundle, DEFAULT_CAPS};
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;

runtime_tests!(
    attack_mknod_block_device_denied,
    mknod_block_device_allowed_when_listed,
    attack_regain_dropped_capability,
    attack_seccomp_denied_syscalls_return_errno_ret,
    attack_seccomp_default_errno_ret,
    seccomp_notify_agent_decides,
    seccomp_notify_agent_decides_for_exec,
);

/// A block device number from the "local/experimental" range (250:250) that no driver claims: even
/// where access is allowed, opening it reaches no disk (ENXIO).
const MKNOD: &str = "mknod /tmp/blk b 250 250 2>&1 && echo created; ls -l /tmp/blk 2>&1 | head -c 1; echo; head -c 1 /tmp/blk 2>&1 >/dev/null; echo opened-rc=$?";

fn with_mknod_cap(b: Bundle) -> Bundle {
    let mut caps = DEFAULT_CAPS.to_vec();
    caps.push("CAP_MKNOD");
    b.capabilities(&caps)
}

// runc 1.1.5: half blocked (node created, open EPERM); brisk: blocked (mknod EPERM).
//
// runc's default device rules include `b *:* m` (libcontainer's AllowedDevices): creating any block
// node is allowed, using it is not. brisk leaves that rule out (runtime/src/cgroups/devices.rs
// DEFAULT_ALLOWED), so the mknod itself fails unless the config allows the device.
fn attack_mknod_block_device_denied(rt: &RuntimeUnderTest) {
    // CAP_MKNOD is granted: only the devices cgroup (default deny-all) stands in the way.
    let b = with_mknod_cap(Bundle::new()).sh(MKNOD);
    let id = rt.new_id("mknod-deny");
    let r = rt.run(&id, &b).ok();
    eprintln!("RESULT {:?}: {:?}", rt.kind(), r.stdout);
    assert!(r.stdout.contains("Operation not permitted"), "a block device the config does not allow was opened (or failed for another reason than EPERM):\n{}", r.stdout);
    assert!(!r.stdout.contains("opened-rc=0"), "a denied block device was read:\n{}", r.stdout);
    if rt.is_runc() {
        assert!(r.stdout.starts_with("created"), "runc 1.1.5 is expected to allow the mknod:\n{}", r.stdout);
    } else {
        assert!(r.stdout.starts_with("mknod: /tmp/blk: Operation not permitted"), "mknod of a block device the config does not allow succeeded:\n{}", r.stdout);
        assert!(!r.stdout.contains("created"), "a block device node was created:\n{}", r.stdout);
    }
    rt.delete_force(&id).ok();
}

// runc 1.1.5: allowed, brisk: allowed (the control for the test above).
fn mknod_block_device_allowed_when_listed(rt: &RuntimeUnderTest) {
    let b = with_mknod_cap(Bundle::new())
        .set(
            "/linux/resources/devices",
            json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 250, "minor": 250, "access": "rwm"}]),
        )
        .sh(MKNOD);
    let id = rt.new_id("mknod-allow");
    let r = rt.run(&id, &b).ok();
    eprintln!("RESULT {:?}: {:?}", rt.kind(), r.stdout);
    assert!(r.stdout.contains("created"), "mknod of an allowed block device failed:\n{}", r.stdout);
    assert_eq!(r.lines()[1], "b", "the node is not a block device:\n{}", r.stdout);
    // Allowed: the open reaches the (absent) driver instead of being refused by the cgroup.
    assert!(!r.stdout.contains("Operation not permitted"), "an allowed block device was refused:\n{}", r.stdout);
    assert!(r.stdout.contains("No such device"), "opening the allowed device did not reach the block layer:\n{}", r.stdout);
    rt.delete_force(&id).ok();
}

/// Each attempt prints `<name> ok` or `<name> failed`.
const REGAIN: &str = r#"try() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "$n ok"; else echo "$n failed"; fi; }
grep Cap /proc/self/status
try mount-tmpfs mount -t tmpfs none /mnt
try sethostname hostname evil
try setpriv-inh setpriv --inh-caps +sys_admin true
try setpriv-ambient setpriv --inh-caps +sys_admin --ambient-caps +sys_admin true
try userns-sethostname unshare -U -r hostname evil2
try userns-mount-host-ns unshare -U -r mount -t tmpfs none /mnt
try mknod-char mknod /tmp/null c 1 3
echo "hostname-now $(hostname)""#;

// runc 1.1.5: blocked, brisk: blocked.
fn attack_regain_dropped_capability(rt: &RuntimeUnderTest) {
    let b = Bundle::new().hostname("capbox").sh(REGAIN);
    let id = rt.new_id("caps");
    let r = rt.run(&id, &b).ok();
    eprintln!("RESULT {:?}:\n{}", rt.kind(), r.stdout);
    let want = [cap::AUDIT_WRITE, cap::KILL, cap::NET_BIND_SERVICE].iter().fold(0u64, |m, c| m | 1 << c);
    for field in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(attack::cap_mask(&r.stdout, field), want, "{field} is not exactly the configured set:\n{}", r.stdout);
    }
    for field in ["CapInh", "CapAmb"] {
        let m = attack::cap_mask(&r.stdout, field);
        assert_eq!(m & !want, 0, "{field} holds capabilities outside the configured set:\n{}", r.stdout);
    }
    for c in [cap::SYS_ADMIN, cap::MKNOD, cap::SYS_PTRACE] {
        assert_eq!(attack::cap_mask(&r.stdout, "CapBnd") & (1 << c), 0, "capability {c} is in the bounding set");
    }
    for attempt in ["mount-tmpfs", "sethostname", "setpriv-inh", "setpriv-ambient", "userns-sethostname", "userns-mount-host-ns", "mknod-char"] {
        assert!(r.stdout.contains(&format!("{attempt} failed")), "a dropped capability was regained ({attempt}):\n{}", r.stdout);
    }
    assert!(r.stdout.contains("hostname-now capbox"), "the hostname changed:\n{}", r.stdout);
    rt.delete_force(&id).ok();
}

// runc 1.1.5: blocked with errnoRet, brisk: blocked with errnoRet.
fn attack_seccomp_denied_syscalls_return_errno_ret(rt: &RuntimeUnderTest) {
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            // EXDEV (18): an errno mkdir can never produce on its own here.
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            // No errnoRet: EPERM.
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"},
            // Argument operator: only uname-style sethostname with a 4-byte name is refused (ENOSYS 38).
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 1, "value": 4, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    let mut caps = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let b = Bundle::new()
        .capabilities(&caps)
        .set("/linux/seccomp", seccomp)
        .sh("mkdir /tmp/d 2>&1; chmod 777 /tmp 2>&1; hostname evil 2>&1; hostname good5 2>&1 && echo renamed $(hostname); touch /tmp/f && echo touched");
    let id = rt.new_id("seccomp-errno");
    let r = rt.run(&id, &b).ok();
    eprintln!("RESULT {:?}:\n{}", rt.kind(), r.stdout);
    let l = r.lines();
    assert!(l[0].contains("Invalid cross-device link"), "mkdir did not fail with errnoRet EXDEV:\n{}", r.stdout);
    assert!(l[1].contains("Operation not permitted"), "chmod did not fail with the default EPERM:\n{}", r.stdout);
    assert!(l[2].contains("not implemented"), "sethostname(len 4) did not fail with errnoRet ENOSYS:\n{}", r.stdout);
    assert_eq!(l[3], "renamed good5", "sethostname with another length should pass the argument filter:\n{}", r.stdout);
    assert_eq!(l[4], "touched", "an unlisted syscall was affected:\n{}", r.stdout);
    rt.delete_force(&id).ok();
}

// runc 1.1.5: blocked with defaultErrnoRet, brisk: blocked with defaultErrnoRet.
//
// The profile brisk ships (config/seccomp/default.json, containerd's allow list) with its default
// action's errno changed: a syscall the list does not name fails with that errno, not EPERM.
fn attack_seccomp_default_errno_ret(rt: &RuntimeUnderTest) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/seccomp/default.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut profile: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{path}: the default profile is not deny-by-default");
    // EXDEV (18): neither swapoff nor syslog returns it on their own.
    profile["defaultErrnoRet"] = json!(18);
    let b = Bundle::new().set("/linux/seccomp", profile).sh("swapoff /nonexistent 2>&1; dmesg 2>&1 | head -n 1; touch /tmp/f && echo touched");
    let id = rt.new_id("seccomp-deferrno");
    let r = rt.run(&id, &b).ok();
    eprintln!("RESULT {:?}:\n{}", rt.kind(), r.stdout);
    let l = r.lines();
    assert!(l[0].contains("Invalid cross-device link"), "swapoff (not in the allow list) did not fail with defaultErrnoRet EXDEV:\n{}", r.stdout);
    assert!(l[1].contains("Invalid cross-device link"), "syslog (dmesg; not allowed without CAP_SYSLOG) did not fail with defaultErrnoRet EXDEV:\n{}", r.stdout);
    assert_eq!(l[2], "touched", "an allowed syscall was affected:\n{}", r.stdout);
    rt.delete_force(&id).ok();
}

// runc 1.1.5: agent's decisions applied, brisk: agent's decisions applied.
fn seccomp_notify_agent_decides(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let sock = b.scratch("agent.sock");
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock.to_str().expect("utf-8"),
        "listenerMetadata": "brisk-test-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // First mkdir: the agent says EACCES; second: the agent lets it run.
    let agent = NotifyAgent::listen(&sock, vec![Decision::Errno(libc::EACCES), Decision::Continue]);
    let b = b.set("/linux/seccomp", seccomp).sh("mkdir /tmp/denied 2>&1; mkdir /tmp/allowed && echo made; ls /tmp");
    let id = rt.new_id("seccomp-notify");
    let r = rt.run(&id, &b).ok();
    let report = agent.report();
    eprintln!("RESULT {:?}: stdout {:?}\nstate {}\nsyscalls {:?}", rt.kind(), r.stdout, report.state, report.syscalls);
    let l = r.lines();
    assert!(l[0].contains("Permission denied"), "the agent's EACCES did not reach the container:\n{}", r.stdout);
    assert_eq!(l[1], "made", "the agent's CONTINUE did not let mkdir run:\n{}", r.stdout);
    assert_eq!(l[2..], ["allowed"], "the container's /tmp:\n{}", r.stdout);
    assert_eq!(report.syscalls.len(), 2, "the agent answered {:?}", report.syscalls);
    assert!(report.syscalls.iter().all(|&nr| nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32), "notified syscalls {:?}", report.syscalls);
    // The state runc sends (specs.ContainerProcessState).
    let s = &report.state;
    assert_eq!(s["fds"], json!(["seccompFd"]), "state: {s}");
    assert_eq!(s["metadata"], "brisk-test-metadata", "state: {s}");
    assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "state: {s}");
    assert_eq!(s["state"]["id"], id.as_str(), "state: {s}");
    assert_eq!(s["state"]["pid"], s["pid"], "state: {s}");
    assert!(s["ociVersion"].is_string(), "state: {s}");
    assert_eq!(s["state"]["bundle"], b.path().to_str().expect("utf-8"), "state: {s}");
    rt.delete_force(&id).ok();
}

// runc 1.1.5: agent's decision applied to the exec'd process, brisk: applied.
fn seccomp_notify_agent_decides_for_exec(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let sock = b.scratch("agent.sock");
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_str().expect("utf-8"),
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // Session 1: the init's filter (the init never calls mkdir). Session 2: the exec'd process's.
    let agent = NotifyAgent::listen_sessions(&sock, vec![vec![], vec![Decision::Errno(libc::EROFS)]]);
    let b = b.set("/linux/seccomp", seccomp).sh("echo started; exec sleep 1000");
    let id = rt.new_id("seccomp-notify-exec");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    let r = rt.exec(&id, &["sh", "-c", "mkdir /tmp/x 2>&1; ls /tmp"]).ok();
    rt.delete_force(&id).ok();
    let reports = agent.reports();
    eprintln!("RESULT {:?}: stdout {:?}\nstates {:?}", rt.kind(), r.stdout, reports.iter().map(|r| &r.state).collect::<Vec<_>>());
    assert!(r.stdout.contains("Read-only file system"), "the agent's EROFS did not reach the exec'd process:\n{}", r.stdout);
    assert_eq!(r.lines().len(), 1, "mkdir went through:\n{}", r.stdout);
    assert_eq!(reports[1].syscalls.len(), 1, "the agent answered {:?}", reports[1].syscalls);
    for rep in &reports {
        assert_eq!(rep.state["state"]["id"], id.as_str(), "state: {}", rep.state);
        assert_eq!(rep.state["fds"], json!(["seccompFd"]), "state: {}", rep.state);
    }
    // runc sends the exec'd process's own pid at the top level (the agent reads its memory through
    // it) and the container state as it is now.
    assert_ne!(reports[1].state["pid"], reports[1].state["state"]["pid"], "the agent got the init's pid for the exec'd process: {}", reports[1].state);
    assert_eq!(reports[1].state["state"]["status"], "running", "state: {}", reports[1].state);
}
