//! The shim's own life and the end of a container's, side by side with the runc shim:
//! * the shim's socket is gone once `ctr task delete` returns (containerd's
//!   `TestShimDoesNotLeakSockets` looks right after the delete), and a new container with the
//!   same id never lands on the shim that is shutting down;
//! * a container without its own pid namespace: the init's exit reaches containerd only once
//!   the processes it left behind are killed (containerd's `TestContainerKillInitPidHost`).

use std::process::Stdio;
use std::time::Duration;

use brisk_integration::containerd::{ChildGuard, Containerd, Pidfd, Version};
use brisk_integration::ctr_matrix;
use brisk_integration::events::Events;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// After `ctr task delete` (the shim's Delete and Shutdown) and `ctr containers delete`, no
/// socket of that shim is left in the socket directory.
fn socket_gone_after_delete(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("sock");
    let sock = cd.shim_socket(&id);
    let mut args = cd.run_args(runtime, &["-d"], &image, &id);
    args.extend(["sh", "-c", "exit 0"]);
    cd.ctr_ok(&args)
        .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    assert!(sock.exists(), "shim socket {} while the task exists", sock.display());
    cd.wait_task_status(&id, "STOPPED").expect("task stopped");
    cd.ctr_ok(&["task", "delete", &id]).expect("task delete");
    let after_task_delete = sock.exists();
    cd.ctr_ok(&["containers", "delete", &id])
        .expect("container delete");
    assert!(
        !after_task_delete && !sock.exists(),
        "shim socket {} left after delete (present right after task delete: {after_task_delete})",
        sock.display()
    );
}

/// run → delete → run with the same id, back to back: each run gets a live shim of its own.
fn rerun_same_id(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("again");
    for round in 0..20 {
        let n = round.to_string();
        let mut args = cd.run_args(runtime, &["--rm"], &image, &id);
        args.extend(["sh", "-c", "echo round-$0", &n]);
        let out = cd.ctr(&args);
        assert!(
            out.status.success() && text(&out.stdout).contains(&format!("round-{round}")),
            "round {round}: ctr run --rm: {}\nstdout: {}\nstderr: {}\ncontainerd log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            cd.log_tail(30)
        );
    }
    assert!(!cd.shim_socket(&id).exists(), "shim socket left after the last round");
}

/// Background children that keep the init's stdout open: in a pid namespace that is not the
/// container's own they outlive the init unless the shim kills them.
const LEAVE_CHILDREN: &str = "i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done; \
     (while :; do echo tick; sleep 0.01; done) & \
     echo ready; wait";

/// Whether process `pid` (held by `fd`) has been SIGKILLed: gone, exiting (PF_EXITING in
/// /proc/PID/stat), or with SIGKILL pending (SigPnd/ShdPnd in /proc/PID/status). Checked in the
/// order a killed process goes through those stages, so one that moves on between two reads is
/// caught by the next; a process nobody signalled stays in none of them.
fn sigkilled(pid: u32, fd: &Pidfd) -> bool {
    const PF_EXITING: u64 = 0x4;
    const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);
    if !fd.is_alive() {
        return true;
    }
    let pending = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & SIGKILL_BIT != 0);
    // Field 9 (`flags`) is the 7th after the parenthesised command name.
    let exiting = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_EXITING != 0);
    pending || exiting || !fd.is_alive()
}

/// Rounds of the leftover scenario per test.
const ROUNDS: usize = 4;

/// Pids in the cgroup of container `id` (each hierarchy that has it).
fn container_pids(cd: &Containerd, id: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cd
        .cgroup_dirs()
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join(id).join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// One round of [`shared_pidns_exit_after_leftovers`].
fn leftovers_round(cd: &Containerd, ev: &mut Events, runtime: &str, image: &str, ns: &str) {
    let id = cd.new_id("shared");
    let mut args = cd.run_args(runtime, &["--with-ns", ns], image, &id);
    args.extend(["sh", "-c", LEAVE_CHILDREN]);
    let out_path = cd.dir.join(format!("{id}.out"));
    let err_path = cd.dir.join(format!("{id}.err"));
    let out_file = std::fs::File::create(&out_path).expect("create output file");
    let err_file = std::fs::File::create(&err_path).expect("create error file");
    let mut run = ChildGuard(
        cd.ctr_command(&args)
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .spawn()
            .expect("spawn ctr run"),
    );
    let ready = brisk_integration::containerd::wait_for(
        "the container's children and output",
        Duration::from_secs(60),
        || {
            Ok(std::fs::read_to_string(&out_path)
                .unwrap_or_default()
                .contains("tick")
                && container_pids(cd, &id).len() >= 202)
        },
    );
    assert!(
        ready.is_ok(),
        "output {:?}, ctr stderr {:?}, container pids {:?}",
        std::fs::read_to_string(&out_path),
        std::fs::read_to_string(&err_path),
        container_pids(cd, &id)
    );
    let init = cd.task(&id).expect("task ls").expect("task listed").1;
    let children: Vec<(u32, Pidfd)> = container_pids(cd, &id)
        .into_iter()
        .filter(|&p| p != init)
        .filter_map(|p| Pidfd::open(p).ok().map(|f| (p, f)))
        .collect();
    assert!(children.len() >= 201, "children: {}", children.len());

    // Only the init: the children are left to the shim.
    cd.ctr_ok(&["task", "kill", "-s", "SIGKILL", &id])
        .expect("kill init");
    let barrier = format!("\"container_id\":\"{id}\"");
    assert!(
        ev.wait_for(Duration::from_secs(60), |l| l.contains("/tasks/exit")
            && l.contains(&barrier)),
        "no /tasks/exit: {:#?}",
        ev.lines
    );
    // runc's shim sends SIGKILL to every leftover before it publishes the exit; they may still be
    // on their way out. Not killed yet is the failure.
    let spared: Vec<u32> = children
        .iter()
        .filter(|(p, f)| !sigkilled(*p, f))
        .map(|(p, _)| *p)
        .collect();
    assert!(
        spared.is_empty(),
        "processes of the container not killed when its exit was published: {spared:?}"
    );
    let status = run.wait_timeout(Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(137),
        "ctr run: stderr {stderr}"
    );
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        output.contains("ready\n") && output.contains("tick\n"),
        "output: {output:?}"
    );
    let log = std::fs::read_to_string(&cd.log).unwrap_or_default();
    assert!(
        !log.contains("file already closed"),
        "containerd log:\n{}",
        cd.log_tail(40)
    );
    assert!(
        container_pids(cd, &id).is_empty(),
        "left: {:?}",
        container_pids(cd, &id)
    );
}

/// A container that shares another's pid namespace (as CRI containers share their pod's) and
/// whose init is SIGKILLed while children it started hold its stdout: by the time containerd
/// hears of the exit they have been killed, and `ctr run` returns with what they wrote.
fn shared_pidns_exit_after_leftovers(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let mut ev = Events::subscribe(&cd);
    let holder = cd.new_id("pidns");
    let mut args = cd.run_args(runtime, &["-d"], &image, &holder);
    args.extend(["sleep", "1000"]);
    cd.ctr_ok(&args)
        .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    cd.wait_task_status(&holder, "RUNNING").expect("holder running");
    let holder_pid = cd.task(&holder).expect("task ls").expect("holder listed").1;
    let ns = format!("pid:/proc/{holder_pid}/ns/pid");

    // The kill and the exit race in a shim that publishes first: a few rounds show it.
    for _ in 0..ROUNDS {
        leftovers_round(&cd, &mut ev, runtime, &image, &ns);
    }
    // The holder is untouched: only the container's own processes were killed.
    assert_eq!(cd.task_status(&holder).expect("ls").as_deref(), Some("RUNNING"));
}

ctr_matrix!(
    socket_gone_after_delete,
    rerun_same_id,
    shared_pidns_exit_after_leftovers
);
