//! OOM notification for a container's memory cgroup, as a pollable fd.
//!
//! v1 (and hybrid): an eventfd registered for memory.oom_control through cgroup.event_control
//! (kernel Documentation/admin-guide/cgroup-v1/memory.rst §9). v2: an inotify watch on
//! memory.events, whose `oom_kill` counter is compared with the last value seen
//! (cgroup-v2.rst "memory.events": modifications generate a file modified event).
//!
//! Use (the shim's TaskOOM): `let mut w = container.oom_watch()?;` poll `w.as_fd()` for POLLIN
//! (non-blocking, edge- or level-triggered both work), then call [`OomWatch::read`]:
//! `Some(OomEvent::Oom { kills })` → publish TaskOOM (before that container's TaskExit: call
//! [`OomWatch::check`] after the init's exit, before publishing the exit); `Some(OomEvent::Gone)` →
//! the cgroup was removed, stop watching; `None` → nothing new. The fd is close-on-exec and owned
//! by the watch; dropping it unregisters. A v1 notification without a kill (the OOM killer
//! disabled, the cgroup under OOM) moves no counter and is not reported.
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{io_err, write, CgroupError, Placement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// The OOM killer ran in the container `kills` times since the last report.
    Oom { kills: u64 },
    /// The cgroup is gone (container deleted); the watch will report nothing more.
    Gone,
}

/// A container's OOM counter plus an fd that wakes its poller when the counter may have moved.
///
/// Both hierarchies are read the same way — the `oom_kill` counter (v1 memory.oom_control, v2
/// memory.events) compared with the last value seen — so a kill is reported exactly once whether
/// the poller woke first or the init's exit was handled first. The fd is only a wake-up: v1 an
/// eventfd registered on memory.oom_control, v2 an inotify watch on memory.events.
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    counter: PathBuf,
    last: u64,
    /// v1 OOMs already reported from a notification whose kill the counter has not shown yet.
    ahead: u64,
    /// v1: memory.oom_control stays open while the eventfd is registered on it.
    _control: Option<File>,
}

fn sys<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    io_err(step, path)
}

impl OomWatch {
    /// Start watching the container's memory cgroup.
    pub fn new(p: &Placement) -> Result<OomWatch, CgroupError> {
        if let Some(d) = p.v1_dir("memory") {
            return Self::v1(d);
        }
        if p.is_unified() {
            if let Some(d) = p.unified_dir() {
                return Self::v2(d);
            }
        }
        Err(CgroupError::Invalid { reason: "no memory cgroup to watch for OOM".into() })
    }

    /// v1: eventfd + memory.oom_control registered in `dir`/cgroup.event_control.
    pub fn v1(dir: &Path) -> Result<OomWatch, CgroupError> {
        let oom_control = dir.join("memory.oom_control");
        let control = File::open(&oom_control).map_err(sys("open", &oom_control))?;
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(sys("eventfd for", &oom_control)(std::io::Error::last_os_error()));
        }
        // SAFETY: `efd` is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(efd) };
        write(&dir.join("cgroup.event_control"), &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()))?;
        let last = oom_kills(&oom_control).unwrap_or(0);
        Ok(OomWatch { fd, counter: oom_control, last, ahead: 0, _control: Some(control) })
    }

    /// v2: inotify on `dir`/memory.events.
    pub fn v2(dir: &Path) -> Result<OomWatch, CgroupError> {
        let events = dir.join("memory.events");
        // SAFETY: inotify_init1 takes no pointers; the result is checked before use.
        let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if ifd < 0 {
            return Err(sys("inotify_init1 for", &events)(std::io::Error::last_os_error()));
        }
        // SAFETY: `ifd` is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
        let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).map_err(|_| CgroupError::Invalid { reason: format!("{}: NUL in path", events.display()) })?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call; `fd` is our inotify fd.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(sys("inotify_add_watch", &events)(std::io::Error::last_os_error()));
        }
        let last = oom_kills(&events).unwrap_or(0);
        Ok(OomWatch { fd, counter: events, last, ahead: 0, _control: None })
    }

    /// Drain the wake-up fd, then [`OomWatch::check`]. Never blocks.
    ///
    /// v1 signals the eventfd when the cgroup goes under OOM, which is before the victim is killed
    /// and the counter moves: a notification with no counter change yet is reported at once, and
    /// the kill the counter shows later is not reported again.
    pub fn read(&mut self) -> Result<Option<OomEvent>, CgroupError> {
        let mut buf = [0u8; 4096];
        let mut f = File::from(self.fd.try_clone().map_err(|e| CgroupError::Invalid { reason: format!("dup OOM fd: {e}") })?);
        let mut notified = false;
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            notified = true;
        }
        match self.check() {
            None if notified && self._control.is_some() => {
                self.ahead += 1;
                Ok(Some(OomEvent::Oom { kills: 1 }))
            }
            other => Ok(other),
        }
    }

    /// Compare the `oom_kill` counter with the last value seen; safe to call at any time (the
    /// shim calls it when the init exits, so TaskOOM precedes TaskExit even if the wake-up has
    /// not been handled yet).
    pub fn check(&mut self) -> Option<OomEvent> {
        let Some(now) = oom_kills(&self.counter) else { return Some(OomEvent::Gone) };
        let delta = now.saturating_sub(self.last);
        self.last = now;
        let absorbed = delta.min(self.ahead);
        self.ahead -= absorbed;
        let kills = delta - absorbed;
        (kills > 0).then_some(OomEvent::Oom { kills })
    }
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `oom_kill` of memory.events (v2) or memory.oom_control (v1); None if it cannot be read (the
/// cgroup was removed).
pub fn oom_kills(events: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(events).ok()?;
    Some(super::stats::flat_keyed(&text).get("oom_kill").copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testutil::dir;
    use super::*;

    #[test]
    fn v2_reports_the_oom_kill_delta() {
        let d = dir(&[("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")]);
        let mut w = OomWatch::v2(d.path()).unwrap();
        assert_eq!(w.read().unwrap(), None);
        std::fs::write(d.path().join("memory.events"), "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n").unwrap();
        assert_eq!(w.read().unwrap(), Some(OomEvent::Oom { kills: 2 }));
        assert_eq!(w.read().unwrap(), None);
        std::fs::remove_file(d.path().join("memory.events")).unwrap();
        assert_eq!(w.read().unwrap(), Some(OomEvent::Gone));
    }
}
