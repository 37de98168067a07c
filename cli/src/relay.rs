//! Foreground `run`/`exec`: wait for the process through its pidfd, forward signals to it (as runc
//! does), and relay a pty when brisk created one itself (no --console-socket).
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// The pty master the init sent over the console socket pair, if it sent one. Called once the
/// create/exec returned: the init sends the master before it reports ready, so a message that is
/// not there now never comes (the process has no terminal).
pub fn recv_master(sock: &UnixStream) -> std::io::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT) {
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        r => r?,
    };
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this fd in our table; we are its only owner.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(*fd) }));
            }
        }
    }
    if msg.bytes == 0 {
        // The runtime closed its end without sending: no terminal.
        return Ok(None);
    }
    Err(std::io::Error::other("console socket message carried no fd"))
}

/// Signals relayed to the container; SIGCHLD is ours and SIGWINCH resizes the pty.
const FORWARD: &[Signal] = &[
    Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2,
    Signal::SIGALRM, Signal::SIGCONT, Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU, Signal::SIGWINCH,
];

/// Wait for the process behind `pidfd`, forwarding signals and relaying `master` ↔ stdio; returns
/// its exit code (128 + signal when killed, the shell convention runc follows).
pub fn wait_forwarding(pidfd: BorrowedFd<'_>, master: Option<BorrowedFd<'_>>) -> std::io::Result<i32> {
    let mut mask = SigSet::empty();
    for s in FORWARD {
        mask.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?;
    let stdin = std::io::stdin();
    let _raw = master.and_then(|_| RawMode::enter(stdin.as_fd()));
    if let Some(m) = master {
        resize(stdin.as_fd(), m);
    }
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(pidfd, PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master {
            fds.push(PollFd::new(m, PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        if ready[1] {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                match (sig, master) {
                    (libc::SIGWINCH, Some(m)) => resize(stdin.as_fd(), m),
                    _ => {
                        let _ = brisk_runtime::sys::pidfd_send_signal(pidfd, sig);
                    }
                }
            }
        }
        if let Some(m) = master {
            if ready.get(2) == Some(&true) && !copy(m, std::io::stdout().as_fd(), &mut buf) {
                // EIO on the master: every slave is closed; the exit follows.
            }
            if stdin_open && ready.get(3) == Some(&true) && !copy(stdin.as_fd(), m, &mut buf) {
                stdin_open = false;
            }
        }
        if ready[0] {
            if let Some(m) = master {
                while copy_nonblocking(m, std::io::stdout().as_fd(), &mut buf) {}
            }
            return match brisk_runtime::sys::pidfd_wait(pidfd, false) {
                Ok(Some(code)) => Ok(code),
                Ok(None) => Ok(0),
                Err(e) => Err(e.into()),
            };
        }
    }
}

/// One read/write round; false on EOF or error. A manual loop, not io::copy: splice does not work
/// on ttys.
fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn copy_nonblocking(from: BorrowedFd<'_>, to: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let mut fds = [PollFd::new(from, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => copy(from, to, buf),
        _ => false,
    }
}

fn write_all(to: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn resize(tty: BorrowedFd<'_>, master: BorrowedFd<'_>) {
    // SAFETY: winsize is plain data; TIOCGWINSZ/TIOCSWINSZ read or write exactly one of them.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Our terminal in raw mode while relaying, restored on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: nix::sys::termios::Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Option<RawMode<'a>> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}
