//! OOM notifications for TaskOOM.
//!
//! cgroup v1: an eventfd registered on `memory.oom_control` through `cgroup.event_control` fires on
//! every OOM in the container's memory cgroup (and once more when the cgroup is removed). cgroup v2
//! has no eventfd interface; there the `oom_kill` counter of `memory.events` is checked when the
//! init exits. The counter check also runs on v1 at the init's exit: an OOM kill makes the init's
//! SIGCHLD and the eventfd ready at the same time, and TaskOOM must still precede its TaskExit.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use brisk_runtime::cgroups::Placement;

/// The OOM counter of one container.
#[derive(Debug, Clone)]
pub struct OomWatch {
    /// memory.oom_control (v1) or memory.events (v2).
    counter_file: PathBuf,
    /// v1 only: the cgroup directory (for event_control).
    v1_dir: Option<PathBuf>,
    pub seen: u64,
}

/// The `oom_kill N` value of memory.oom_control / memory.events text.
pub fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

impl OomWatch {
    pub fn for_placement(p: &Placement) -> Option<OomWatch> {
        if let Some((_, dir)) = p
            .dirs
            .iter()
            .find(|(h, _)| h.fstype == "cgroup" && h.controllers.iter().any(|c| c == "memory"))
        {
            let mut w = OomWatch {
                counter_file: dir.join("memory.oom_control"),
                v1_dir: Some(dir.clone()),
                seen: 0,
            };
            w.seen = w.count().unwrap_or(0);
            return Some(w);
        }
        let (_, dir) = p
            .dirs
            .iter()
            .find(|(h, _)| h.fstype == "cgroup2" && dir_has(&h.mount, "memory"))?;
        let mut w = OomWatch {
            counter_file: dir.join("memory.events"),
            v1_dir: None,
            seen: 0,
        };
        w.seen = w.count().unwrap_or(0);
        Some(w)
    }

    pub fn count(&self) -> Option<u64> {
        parse_oom_kill(&std::fs::read_to_string(&self.counter_file).ok()?)
    }

    /// True (and remembered) when the counter moved since the last call.
    pub fn new_oom(&mut self) -> bool {
        match self.count() {
            Some(n) if n > self.seen => {
                self.seen = n;
                true
            }
            _ => false,
        }
    }

    /// v1: an eventfd that becomes readable on OOM (and on cgroup removal).
    pub fn eventfd(&self) -> Option<OwnedFd> {
        let dir = self.v1_dir.as_ref()?;
        let control = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
        // SAFETY: eventfd(0, flags) takes no pointers and returns a new fd or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return None;
        }
        // SAFETY: a fresh fd we own.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
        Some(efd)
    }

    pub fn cgroup_gone(&self) -> bool {
        self.v1_dir
            .as_ref()
            .is_some_and(|d| !d.join("cgroup.event_control").exists())
    }
}

fn dir_has(cgroup2_mount: &Path, controller: &str) -> bool {
    std::fs::read_to_string(cgroup2_mount.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counter() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kill(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_oom_kill(v2), Some(1));
        assert_eq!(parse_oom_kill("under_oom 0\n"), None);
    }
}
