//! Reaping. The shim is a child subreaper and the parent of every container process (the runtime
//! spawns them with CLONE_PARENT), so it must wait for them, without stealing an exit status:
//! tracked processes (inits and execs) are reaped only through their pidfd and their exit is
//! attributed to them (docs/ARCHITECTURE.md, design rule 2); anything else is an orphan (a reparented grandchild,
//! a logging binary, a runtime helper) and is reaped by pid after a WNOWAIT peek.
use std::sync::Arc;

use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::service::Shared;

pub fn set_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// One pass over everything that may have exited.
pub fn reap_pass(shared: &Shared) {
    shared.collect_tracked_exits();
    loop {
        let peek = waitid(
            Id::All,
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        );
        let pid = match peek {
            Ok(st) => match st.pid() {
                Some(pid) => pid,
                None => return,
            },
            Err(_) => return,
        };
        if shared.reap_tracked_pid(pid.as_raw()) {
            continue;
        }
        if shared.spawns_in_flight() {
            // This may be a container process whose pidfd is not registered yet; leave it for the
            // pass that runs when the spawn completes.
            return;
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return,
            Ok(st) => log::debug!("reaped orphan {pid}: {st:?}"),
            Err(_) => return,
        }
    }
}

/// Run forever: a pass on every SIGCHLD and on every kick (a spawn finished). The SIGCHLD stream is
/// created by the caller before any child can exist.
pub async fn run(shared: Arc<Shared>, mut sigchld: Signal) {
    loop {
        reap_pass(&shared);
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = shared.reap_kick.notified() => {}
        }
    }
}

pub fn sigchld() -> std::io::Result<Signal> {
    signal(SignalKind::child())
}
