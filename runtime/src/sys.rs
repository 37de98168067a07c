//! Thin wrappers over the syscalls the lifecycle code needs that nix does not cover (clone3, pidfds,
//! close_range, the new mount API's fsopen/fsconfig/fsmount) plus the typed message channel between
//! the runtime and its init processes.
//!
//! Each wrapper is a single syscall with its error mapped to `nix::Error`, so the callers' logic can
//! be read (and reviewed) without the FFI noise.
use std::ffi::CStr;
use std::fs;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest message (one JSON document) exchanged with an init. A spec with a large seccomp
/// profile is the biggest thing we send; 4 MiB leaves a wide margin.
const MAX_MSG: usize = 4 << 20;
/// SCM_RIGHTS carries at most 253 fds per message (SCM_MAX_FD).
const MAX_FDS: usize = 253;

/// Liveness of the process `pid` that was started at `start` (field 22 of /proc/<pid>/stat): false if
/// it is gone, a zombie, or the pid now belongs to another process.
pub fn process_alive(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        Some((state, st)) => !matches!(state, 'Z' | 'X') && (start == 0 || st == start),
        None => false,
    }
}

/// (state char, start time) from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let data = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: the fields start after the last ')'.
    let rest = &data[data.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // state is field 3; starttime is field 22, i.e. 19 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// A /proc/<pid>/mountinfo path field with its octal escapes (`\040` for a space, ...) decoded.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A pidfd for `pid` that is known to be the process started at `start`: the check after opening
/// closes the window in which the pid could have been reused (docs/ARCHITECTURE.md, design rule 2).
pub fn pidfd_verified(pid: i32, start: u64) -> nix::Result<OwnedFd> {
    let fd = pidfd_open(pid)?;
    if !process_alive(pid, start) {
        return Err(Errno::ESRCH);
    }
    Ok(fd)
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> nix::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills it as for kill(2)); flags must be 0.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Wait for the process behind `pidfd` to exit and reap it; returns the wait status encoded like
/// a shell does (exit code, or 128 + signal). `ECHILD` means someone else reaped it.
pub fn pidfd_wait(pidfd: BorrowedFd<'_>, nohang: bool) -> nix::Result<Option<i32>> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid initial value that waitid overwrites.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: P_PIDFD with a valid pidfd and a pointer to a local siginfo_t.
        let r = unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, flags) };
        if r < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        break;
    }
    // SAFETY: waitid filled `info` for a child event (or left si_pid 0 with WNOHANG).
    let (pid, status, code) = unsafe { (info.si_pid(), info.si_status(), info.si_code) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if code == libc::CLD_EXITED { status } else { 128 + status }))
}

/// Raw clone3(2) arguments (linux/sched.h `struct clone_args`, version 2 = 88 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What [`clone3_fork`] returns in each process.
#[derive(Debug)]
pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// Fork-like clone3 with CLONE_PIDFD and extra `flags` (namespaces, CLONE_PARENT).
///
/// # Safety
/// The caller must be single-threaded: the child continues with a copy of the whole address space
/// but only the calling thread, exactly as after fork(2). brisk calls this only from its init
/// helper, a freshly exec'd single-threaded process (docs/ARCHITECTURE.md, design rule 1).
pub unsafe fn clone3_fork(flags: u64) -> nix::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the kernel takes the exit signal from the caller (our own SIGCHLD) and
        // rejects an explicit one (kernel/fork.c clone3_args_valid).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args of the size we pass; stack 0 means fork semantics (the child
    // runs on a copy of our stack); the caller guarantees single-threadedness.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match r {
        x if x < 0 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd that only we own.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Mark every fd from `first` up close-on-exec (CVE-2024-21626: no runtime fd may reach the
/// container's process).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes fd flags; CLOSE_RANGE_CLOEXEC never closes anything.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Errors of the message channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{step}: {source}")]
    Sys { step: &'static str, #[source] source: nix::Error },
    #[error("{step}: peer closed the channel")]
    Closed { step: &'static str },
    #[error("{step}: malformed message: {source}")]
    Decode { step: &'static str, #[source] source: serde_json::Error },
    #[error("message of {len} bytes exceeds the {MAX_MSG}-byte limit")]
    TooLarge { len: usize },
}

/// One end of a SOCK_SEQPACKET socketpair carrying JSON messages plus fds (SCM_RIGHTS). SEQPACKET
/// keeps message boundaries, so no framing is needed.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    pub fn send<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let data = serde_json::to_vec(msg).map_err(|source| ChannelError::Decode { step: "encode", source })?;
        if data.len() > MAX_MSG {
            return Err(ChannelError::TooLarge { len: data.len() });
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &[IoSlice::new(&data)], cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(ChannelError::Closed { step: "send" }),
                Err(source) => return Err(ChannelError::Sys { step: "send", source }),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receive one message and the fds that came with it; `Ok(None)` on orderly EOF.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<(T, Vec<OwnedFd>)>, ChannelError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg_buf = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (len, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg_buf), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => return Ok(None),
                Err(source) => return Err(ChannelError::Sys { step: "recv", source }),
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs().map_err(|source| ChannelError::Sys { step: "recv cmsg", source })? {
                        if let ControlMessageOwned::ScmRights(list) = c {
                            // SAFETY: SCM_RIGHTS just installed these fds in our table; we are their only owner.
                            fds.extend(list.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                    break (m.bytes, fds);
                }
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len]).map_err(|source| ChannelError::Decode { step: "decode", source })?;
        Ok(Some((msg, fds)))
    }
}

/// Send `fd` over the unix socket `sock` with SCM_RIGHTS, as runc does for `--console-socket` (the
/// payload is the name of the pty master, which tools such as `recvtty` print).
pub fn send_fd(sock: BorrowedFd<'_>, name: &str, fd: BorrowedFd<'_>) -> nix::Result<()> {
    let raw = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(name.as_bytes())], &cmsg, MsgFlags::empty(), None).map(|_| ())
}

/// fsopen(2): a new, close-on-exec filesystem context for `fstype` (the new mount API, Linux 5.2).
pub fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    // SAFETY: fsopen reads a NUL-terminated string that outlives the call and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// fsconfig(2) with FSCONFIG_SET_STRING: set `key` to `value` on a filesystem context.
pub fn fsconfig_set_string(ctx: BorrowedFd<'_>, key: &CStr, value: &CStr) -> nix::Result<()> {
    // SAFETY: both strings are NUL-terminated and outlive the call; aux must be 0 for this command.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), libc::FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr(), 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// fsconfig(2) with FSCONFIG_SET_FD: set `key` to the file `fd` (overlayfs takes layers this way
/// since Linux 6.13).
pub fn fsconfig_set_fd(ctx: BorrowedFd<'_>, key: &CStr, fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: the key is NUL-terminated and outlives the call; value must be NULL for this command
    // and aux is an fd we hold open for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), libc::FSCONFIG_SET_FD, key.as_ptr(), std::ptr::null::<libc::c_char>(), fd.as_raw_fd()) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// fsconfig(2) with FSCONFIG_CMD_CREATE: create the superblock from the context's parameters.
pub fn fsconfig_create(ctx: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: key and value must be NULL and aux 0 for this command; no memory is shared.
    let r = unsafe {
        libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), libc::FSCONFIG_CMD_CREATE, std::ptr::null::<libc::c_char>(), std::ptr::null::<libc::c_char>(), 0)
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// fsmount(2): a close-on-exec fd of a new *detached* mount of the context's superblock, with the
/// `MOUNT_ATTR_*` flags in `attrs`. The mount belongs to no mount namespace; it lives as long as an
/// fd (or a file opened beneath it) refers to it.
pub fn fsmount(ctx: BorrowedFd<'_>, attrs: u64) -> nix::Result<OwnedFd> {
    // SAFETY: fsmount takes an fd and two flag words and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), libc::FSMOUNT_CLOEXEC, attrs) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn proc_stat_parses_self() {
        let (state, start) = proc_stat(std::process::id() as i32).expect("own stat");
        assert!(matches!(state, 'R' | 'S'));
        assert!(start > 0);
        assert!(process_alive(std::process::id() as i32, start));
        assert!(!process_alive(std::process::id() as i32, start + 1));
    }

    #[test]
    fn channel_round_trip_with_fds() {
        let (a, b) = Channel::pair().expect("pair");
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        use std::os::fd::AsFd;
        a.send(&serde_json::json!({"hello": 1}), &[r.as_fd()]).expect("send");
        let (msg, fds): (serde_json::Value, _) = b.recv().expect("recv").expect("message");
        assert_eq!(msg["hello"], 1);
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(b.recv::<serde_json::Value>().expect("eof").is_none());
    }
}

/// Pids of short-lived children the runtime is waiting for itself (spawn helpers, hooks). A caller
/// that reaps unknown children (the shim, a child subreaper) must leave these alone, or the
/// runtime's own wait would fail with ECHILD.
static OWN_CHILDREN: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// True while the runtime itself will reap `pid`.
pub fn is_runtime_child(pid: i32) -> bool {
    OWN_CHILDREN.lock().map(|v| v.contains(&pid)).unwrap_or(false)
}

/// Registers a pid in [`is_runtime_child`] for as long as it lives.
#[derive(Debug)]
pub struct OwnChild(i32);

/// Spawn `cmd` and register the child in one step: the lock is held across the spawn, so a reaper
/// asking [`is_runtime_child`] waits until the pid is registered instead of reaping it.
pub fn spawn_own(cmd: &mut std::process::Command) -> std::io::Result<(std::process::Child, OwnChild)> {
    let mut guard = OWN_CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let child = cmd.spawn()?;
    guard.push(child.id() as i32);
    let own = OwnChild(child.id() as i32);
    Ok((child, own))
}

impl Drop for OwnChild {
    fn drop(&mut self) {
        if let Ok(mut v) = OWN_CHILDREN.lock() {
            v.retain(|p| *p != self.0);
        }
    }
}
