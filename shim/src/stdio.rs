//! A process's stdio as containerd describes it (three strings and a terminal flag), turned into
//! the fds the runtime gives the process and the copy tasks the shim runs.
//!
//! * fifo paths (no scheme, or `fifo://`): the container writes into pipes the shim owns; the shim
//!   copies them into containerd's fifos. The shim opens each output fifo read-write, so it always
//!   has a reader: if containerd restarts, output waits in the fifo instead of killing the writer
//!   with EPIPE, and the new containerd reopens the same fifo.
//! * `binary://path?k=v` / `binary-v2://...`: a logging binary gets the read ends of the stdout and
//!   stderr pipes as fds 3 and 4 and a ready pipe as fd 5, env CONTAINER_ID / CONTAINER_NAMESPACE
//!   (containerd's NewBinaryCmd contract, used by nerdctl); the shim waits for fd 5 to be closed.
//! * `file:///path`: stdout and stderr append to the file.
//! * terminal: the runtime sends the pty master over a socketpair; the shim copies master ↔ fifos
//!   with a read/write loop (splice and std::io::copy do not work on ttys).
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use crate::errors::{Result, ShimError};

const BUF: usize = 8192;

/// Where output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// No output configured.
    Null,
    /// containerd fifos (either may be empty).
    Fifo { stdout: String, stderr: String },
    /// A logging binary and its arguments (from the query string, key then value).
    Binary { path: PathBuf, args: Vec<String> },
    /// Append to this file.
    File(PathBuf),
}

/// The parsed stdio request of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioSpec {
    pub stdin: String,
    pub output: Output,
    pub terminal: bool,
}

pub fn parse(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Result<StdioSpec> {
    let bad = |reason: String| ShimError::InvalidArgument {
        field: "stdout",
        reason,
    };
    let output = if stdout.is_empty() && stderr.is_empty() {
        Output::Null
    } else {
        match stdout.split_once("://") {
            None => Output::Fifo {
                stdout: stdout.to_string(),
                stderr: stderr.to_string(),
            },
            Some(("fifo", path)) => Output::Fifo {
                stdout: path.to_string(),
                stderr: strip_scheme(stderr).to_string(),
            },
            Some(("binary", rest)) | Some(("binary-v2", rest)) => {
                let (path, query) = split_url(rest);
                if path.is_empty() {
                    return Err(bad(format!("{stdout:?}: binary URI has no path")));
                }
                let mut args = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    args.push(percent_decode(k).map_err(|e| bad(format!("{stdout:?}: {e}")))?);
                    if !v.is_empty() {
                        args.push(percent_decode(v).map_err(|e| bad(format!("{stdout:?}: {e}")))?);
                    }
                }
                Output::Binary {
                    path: PathBuf::from(
                        percent_decode(&path).map_err(|e| bad(format!("{stdout:?}: {e}")))?,
                    ),
                    args,
                }
            }
            Some(("file", rest)) => {
                let (path, _) = split_url(rest);
                if path.is_empty() {
                    return Err(bad(format!("{stdout:?}: file URI has no path")));
                }
                Output::File(PathBuf::from(
                    percent_decode(&path).map_err(|e| bad(format!("{stdout:?}: {e}")))?,
                ))
            }
            Some((scheme, _)) => {
                return Err(bad(format!("{stdout:?}: unknown stdio scheme {scheme:?}")))
            }
        }
    };
    if terminal && matches!(output, Output::Binary { .. } | Output::File(_)) {
        return Err(ShimError::InvalidArgument {
            field: "terminal",
            reason: "a terminal needs fifo stdio, not a logging binary or file".into(),
        });
    }
    Ok(StdioSpec {
        stdin: strip_scheme(stdin).to_string(),
        output,
        terminal,
    })
}

fn strip_scheme(s: &str) -> &str {
    s.strip_prefix("fifo://").unwrap_or(s)
}

/// `host/path?query` or `/path?query` after `scheme://`: (path, query); the host is ignored as
/// containerd ignores it.
fn split_url(rest: &str) -> (String, String) {
    let (before, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if before.starts_with('/') {
        before
    } else {
        before.find('/').map(|i| &before[i..]).unwrap_or("")
    };
    (path.to_string(), query.to_string())
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.ok_or_else(|| format!("bad percent escape in {s:?}"))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 after decoding"))
}

/// Fds prepared before the runtime spawns the process, and what to do after.
#[derive(Debug, Default)]
pub struct Prepared {
    /// For the runtime's `Stdio`.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The runtime's end of the console socketpair.
    pub console_peer: Option<OwnedFd>,
    /// Our ends.
    console_ours: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
    stdout_r: Option<OwnedFd>,
    stderr_r: Option<OwnedFd>,
    /// Write-only opens of the stdout / stderr fifos, made once containerd's reader exists.
    stdout_guard: Option<OwnedFd>,
    stderr_guard: Option<OwnedFd>,
    spec: Option<StdioSpec>,
}

/// How long to wait for containerd to open the read side of an output fifo before copying
/// anyway. containerd opens it before it asks for the process to start, so this is only a bound
/// for a containerd that went away meanwhile.
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open `path` write-only once a reader exists, returning that fd; `None` if no reader showed up
/// within [`READER_WAIT`].
///
/// Why: containerd's fifo package opens its read side with a *blocking* open in a goroutine. The
/// shim's own read-write open never waits, so a fast process (an `exec` of `readlink`) could have
/// its output written and the fifo closed before that goroutine's open ran — which then waits
/// forever for a writer, and ExecSync never returns. A blocked reader already counts as a reader,
/// so an O_WRONLY|O_NONBLOCK open succeeds exactly when containerd's open is under way, and holding
/// this fd until the copy ends means the reader always sees the writer and then EOF.
fn wait_for_reader(path: &str) -> Option<OwnedFd> {
    let deadline = std::time::Instant::now() + READER_WAIT;
    loop {
        match nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
            Ok(fd) => return Some(fd),
            Err(nix::errno::Errno::ENXIO) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) => {
                log::warn!("output fifo {path}: no reader ({e}); copying without waiting for one");
                return None;
            }
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::io("create pipe", "")(e.into()))
}

fn chown_io(fd: &OwnedFd, uid: u32, gid: u32) -> Result<()> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    // The container's user must be able to reopen /proc/self/fd/{0,1,2} (runc's IoUid/IoGid).
    nix::unistd::fchown(fd.as_fd(), Some(uid.into()), Some(gid.into()))
        .map_err(|e| ShimError::io("chown stdio pipe", "")(e.into()))
}

/// Create the pipes / files / logging binary / console socketpair. Blocking (waits for a logging
/// binary's ready signal): run it on a blocking thread.
pub fn prepare(
    spec: &StdioSpec,
    id: &str,
    namespace: &str,
    uid: u32,
    gid: u32,
) -> Result<Prepared> {
    let mut p = Prepared {
        spec: Some(spec.clone()),
        ..Default::default()
    };
    if spec.terminal {
        let (ours, peer) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| ShimError::io("console socketpair", "")(e.into()))?;
        p.console_ours = Some(ours);
        p.console_peer = Some(peer);
        if let Output::Fifo { stdout, .. } = &spec.output {
            if !stdout.is_empty() {
                p.stdout_guard = wait_for_reader(stdout);
            }
        }
        return Ok(p);
    }
    if !spec.stdin.is_empty() {
        let (r, w) = pipe()?;
        chown_io(&r, uid, gid)?;
        p.stdin = Some(r);
        p.stdin_w = Some(w);
    }
    match &spec.output {
        Output::Null => {}
        Output::Fifo { stdout, stderr } => {
            if !stdout.is_empty() {
                let (r, w) = pipe()?;
                chown_io(&w, uid, gid)?;
                p.stdout = Some(w);
                p.stdout_r = Some(r);
                p.stdout_guard = wait_for_reader(stdout);
            }
            if !stderr.is_empty() {
                let (r, w) = pipe()?;
                chown_io(&w, uid, gid)?;
                p.stderr = Some(w);
                p.stderr_r = Some(r);
                p.stderr_guard = wait_for_reader(stderr);
            }
        }
        Output::File(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(ShimError::io("create log dir", dir.display()))?;
            }
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(path)
                .map_err(ShimError::io("open log file", path.display()))?;
            let fd = OwnedFd::from(f);
            let dup = fd
                .try_clone()
                .map_err(ShimError::io("dup log file", path.display()))?;
            p.stdout = Some(fd);
            p.stderr = Some(dup);
        }
        Output::Binary { path, args } => {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (ready_r, ready_w) = pipe()?;
            chown_io(&out_w, uid, gid)?;
            chown_io(&err_w, uid, gid)?;
            spawn_logger(path, args, id, namespace, [&out_r, &err_r, &ready_w])?;
            drop((out_r, err_r, ready_w));
            wait_ready(ready_r, path)?;
            p.stdout = Some(out_w);
            p.stderr = Some(err_w);
        }
    }
    Ok(p)
}

fn spawn_logger(
    path: &Path,
    args: &[String],
    id: &str,
    ns: &str,
    fds: [&OwnedFd; 3],
) -> Result<()> {
    let raw: [RawFd; 3] = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
    let mut cmd = std::process::Command::new(path);
    cmd.args(args)
        .env_clear()
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", ns)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl/dup2, which
    // are async-signal-safe; `raw` is a copy of fd numbers that stay open in the child.
    unsafe {
        cmd.pre_exec(move || {
            // Move the sources above 10 first so dup2 onto 3..5 cannot clobber a source.
            let mut high = [0; 3];
            for (i, fd) in raw.iter().enumerate() {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high[i] = h;
            }
            for (i, h) in high.iter().enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The logging binary is reaped by the shim's reaper as an orphan; nothing waits on it here.
    let child = cmd
        .spawn()
        .map_err(ShimError::io("start logging binary", path.display()))?;
    log::info!(
        "logging binary {} started as pid {}",
        path.display(),
        child.id()
    );
    std::mem::forget(child);
    Ok(())
}

fn wait_ready(ready: OwnedFd, path: &Path) -> Result<()> {
    let mut pfd = [nix::poll::PollFd::new(
        ready.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(
        &mut pfd,
        nix::poll::PollTimeout::try_from(Duration::from_secs(10))
            .unwrap_or(nix::poll::PollTimeout::MAX),
    )
    .map_err(|e| ShimError::io("wait for logging binary", path.display())(e.into()))?;
    if n == 0 {
        return Err(ShimError::Internal(format!(
            "logging binary {} did not signal ready on fd 5 within 10s",
            path.display()
        )));
    }
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(&ready, &mut b);
    Ok(())
}

impl Prepared {
    /// After the runtime spawned the process: receive the pty master if there is a terminal.
    /// Blocking; run it right after create/exec on the same blocking thread.
    pub fn receive_console(&mut self) -> Result<Option<OwnedFd>> {
        self.console_peer = None;
        let Some(sock) = self.console_ours.take() else {
            return Ok(None);
        };
        recv_fd(&sock).map(Some)
    }

    /// Start the copy tasks. Must run inside the tokio runtime.
    pub fn start(mut self, master: Option<OwnedFd>) -> Result<ProcIo> {
        let spec = self.spec.take().unwrap_or(StdioSpec {
            stdin: String::new(),
            output: Output::Null,
            terminal: false,
        });
        let mut io = ProcIo::default();
        let out_fifo = match &spec.output {
            Output::Fifo { stdout, stderr } => Some((stdout.clone(), stderr.clone())),
            _ => None,
        };
        if let Some(master) = master {
            nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| ShimError::io("console nonblock", "")(e.into()))?;
            // SAFETY: the AsyncFd owns `master`, so the fd stays open and unchanged for its lifetime.
            let master = unsafe { AsyncFd::register(master) }
                .map_err(|e| ShimError::io("register console", "")(e.into()))?;
            let master = Arc::new(master);
            if let Some((stdout, _)) = out_fifo.filter(|(s, _)| !s.is_empty()) {
                let w = open_out_fifo(&stdout)?;
                let guard = self.stdout_guard.take();
                let m = master.clone();
                io.tasks.push(tokio::spawn(async move {
                    console_out(m, w).await;
                    drop(guard);
                }));
            }
            if !spec.stdin.is_empty() {
                let r = open_in_fifo(&spec.stdin)?;
                io.stdin_task = Some(tokio::spawn(console_in(r, master.clone())));
            }
            io.console = Some(master);
            return Ok(io);
        }
        if let (Some(w), false) = (self.stdin_w.take(), spec.stdin.is_empty()) {
            let r = open_in_fifo(&spec.stdin)?;
            let w =
                pipe::Sender::from_owned_fd(w).map_err(ShimError::io("stdin pipe", &spec.stdin))?;
            io.stdin_task = Some(tokio::spawn(pump(r, w)));
        }
        if let Some((stdout, stderr)) = out_fifo {
            for (r, path, guard) in [
                (self.stdout_r.take(), stdout, self.stdout_guard.take()),
                (self.stderr_r.take(), stderr, self.stderr_guard.take()),
            ] {
                if let Some(r) = r {
                    let r = pipe::Receiver::from_owned_fd(r)
                        .map_err(ShimError::io("output pipe", &path))?;
                    let w = open_out_fifo(&path)?;
                    // The write-only guard closes with the copy, so the reader gets its EOF then.
                    io.tasks.push(tokio::spawn(async move {
                        pump(r, w).await;
                        drop(guard);
                    }));
                }
            }
        }
        Ok(io)
    }
}

fn open_out_fifo(path: &str) -> Result<pipe::Sender> {
    // Read-write: never blocks on open and never sees EPIPE while containerd is away.
    pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .map_err(ShimError::io("open stdout fifo", path))
}

fn open_in_fifo(path: &str) -> Result<pipe::Receiver> {
    // Read-only non-blocking: on Linux a fifo opened this way reports no readiness until a writer
    // has connected, so containerd opening its end late is not mistaken for EOF.
    pipe::OpenOptions::new()
        .open_receiver(path)
        .map_err(ShimError::io("open stdin fifo", path))
}

async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(mut r: R, mut w: W) {
    let mut buf = vec![0u8; BUF];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

async fn console_out(master: Arc<AsyncFd<OwnedFd>>, mut w: pipe::Sender) {
    let mut buf = vec![0u8; BUF];
    loop {
        let Ok(mut guard) = master.readable().await else {
            break;
        };
        match guard
            .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from))
        {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            // EIO: every slave fd is closed, the session is over.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(_)) => break,
            Err(_would_block) => continue,
        }
    }
}

async fn console_in(mut r: pipe::Receiver, master: Arc<AsyncFd<OwnedFd>>) {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            let Ok(mut guard) = master.writable().await else {
                return;
            };
            match guard.try_io(|fd| {
                nix::unistd::write(fd.get_ref(), &buf[off..n]).map_err(std::io::Error::from)
            }) {
                Ok(Ok(k)) => off += k,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => return,
                Err(_would_block) => {}
            }
        }
    }
}

fn recv_fd(sock: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut data = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ShimError::io("receive pty master", "console socket")(e.into()))?;
    for c in msg
        .cmsgs()
        .map_err(|e| ShimError::io("receive pty master", "console socket")(e.into()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut it = fds.into_iter();
            if let Some(first) = it.next() {
                for extra in it {
                    // SAFETY: the kernel just installed `extra` in our table; we own and close it.
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above, `first` is a fresh fd we now own.
                return Ok(unsafe { OwnedFd::from_raw_fd(first) });
            }
        }
    }
    Err(ShimError::Internal(
        "console socket closed without sending the pty master".into(),
    ))
}

/// The live I/O of a process.
#[derive(Debug, Default)]
pub struct ProcIo {
    pub console: Option<Arc<AsyncFd<OwnedFd>>>,
    stdin_task: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ProcIo {
    /// The output copies, for the caller to await: the init's exit is published once they have
    /// reached EOF (see `service::settle_init_exit`). The process's other I/O stays here.
    pub fn take_output_tasks(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.tasks)
    }

    /// CloseIO: stop copying stdin; dropping the pipe's write end gives the process EOF.
    pub fn close_stdin(&mut self) {
        if let Some(t) = self.stdin_task.take() {
            t.abort();
        }
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(c) = &self.console else {
            return Err(ShimError::FailedPrecondition(
                "process has no terminal to resize".into(),
            ));
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer; the fd is our open pty master.
        let rc = unsafe { libc::ioctl(c.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc < 0 {
            return Err(ShimError::io("TIOCSWINSZ", "pty master")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl Drop for ProcIo {
    fn drop(&mut self) {
        if let Some(t) = self.stdin_task.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_paths() {
        let s = parse("/run/c/stdin", "/run/c/stdout", "/run/c/stderr", false).unwrap();
        assert_eq!(s.stdin, "/run/c/stdin");
        assert_eq!(
            s.output,
            Output::Fifo {
                stdout: "/run/c/stdout".into(),
                stderr: "/run/c/stderr".into()
            }
        );
        let s = parse("", "fifo:///run/c/o", "fifo:///run/c/e", true).unwrap();
        assert_eq!(
            s.output,
            Output::Fifo {
                stdout: "/run/c/o".into(),
                stderr: "/run/c/e".into()
            }
        );
        assert!(s.terminal);
        assert_eq!(parse("", "", "", false).unwrap().output, Output::Null);
    }

    #[test]
    fn binary_uri_with_args() {
        let s = parse(
            "",
            "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING=%2Fvar%2Flib%2Fnerdctl&x",
            "",
            false,
        )
        .unwrap();
        assert_eq!(
            s.output,
            Output::Binary {
                path: "/usr/local/bin/nerdctl".into(),
                args: vec![
                    "_NERDCTL_INTERNAL_LOGGING".into(),
                    "/var/lib/nerdctl".into(),
                    "x".into()
                ]
            }
        );
        let s = parse("", "binary-v2:///opt/log", "", false).unwrap();
        assert_eq!(
            s.output,
            Output::Binary {
                path: "/opt/log".into(),
                args: vec![]
            }
        );
        assert!(parse("", "binary://", "", false).is_err());
    }

    #[test]
    fn file_uri() {
        let s = parse("", "file:///var/log/c.log", "file:///var/log/c.log", false).unwrap();
        assert_eq!(s.output, Output::File("/var/log/c.log".into()));
        let s = parse("", "file://host/var/log/x%20y.log", "", false).unwrap();
        assert_eq!(s.output, Output::File("/var/log/x y.log".into()));
    }

    #[test]
    fn bad_uris_are_named() {
        let e = parse("", "ftp://x/y", "", false).unwrap_err();
        assert!(
            e.to_string().contains("unknown stdio scheme \"ftp\""),
            "{e}"
        );
        let e = parse("", "file:///x%zz", "", false).unwrap_err();
        assert!(e.to_string().contains("percent escape"), "{e}");
        let e = parse("", "file:///x", "", true).unwrap_err();
        assert!(e.to_string().contains("terminal"), "{e}");
    }
}
