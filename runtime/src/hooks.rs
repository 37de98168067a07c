//! OCI hooks (config.md "POSIX-platform Hooks"): each hook gets the container state JSON on stdin,
//! its own args and env, and is killed when its timeout expires.
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {source}")]
    Spawn { kind: &'static str, path: String, #[source] source: std::io::Error },
    /// runc's wording ("error running hook ...: signal: bad system call"), which callers match.
    #[error("{kind}: error running hook {path}: {status}, stderr: {stderr}")]
    Failed { kind: &'static str, path: String, status: String, stderr: String },
    #[error("{kind} hook {path} timed out after {secs}s and was killed")]
    Timeout { kind: &'static str, path: String, secs: i64 },
}

/// Which hook list (the name appears in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    /// Every hook kind, in lifecycle order (also what `features` reports).
    pub const ALL: [Kind; 6] = [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer, Kind::StartContainer, Kind::Poststart, Kind::Poststop];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`.
    pub fn select(self, hooks: &oci_spec::runtime::Hooks) -> &[Hook] {
        #[allow(deprecated)]
        let list = match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Run every hook of `kind` in order, stopping at the first failure (the spec's rule for all but
/// poststart/poststop, whose callers only log the error).
pub fn run_all(kind: Kind, hooks: Option<&oci_spec::runtime::Hooks>, state_json: &[u8]) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    for h in kind.select(hooks) {
        run(kind, h, state_json)?;
    }
    Ok(())
}

/// Run one hook. Called from the runtime (prestart, createRuntime, poststart, poststop) or from the
/// container's init (createContainer, startContainer); both are places where spawning a child is
/// safe (a CLI process, a blocking thread of the shim that uses `Command`, or a single-threaded init).
pub fn run(kind: Kind, hook: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    // config.md: path is absolute (spec validation refuses anything else, naming the field).
    // Command::new would search the runtime's PATH for a bare name, which runc never does.
    if !hook.path().is_absolute() {
        return Err(HookError::Spawn { kind: kind.name(), path, source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "hook path is not absolute") });
    }
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    // args[0] is argv[0] (config.md: "args ... same semantics as IEEE Std 1003.1-2008 execv's argv").
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let spawn_err = |source| HookError::Spawn { kind: kind.name(), path: path.clone(), source };
    let (mut child, _own) = crate::sys::spawn_own(&mut cmd).map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the write: EPIPE is fine.
        let _ = stdin.write_all(state_json);
    }
    let status = match hook.timeout() {
        Some(secs) if secs > 0 => wait_timeout(&mut child, Duration::from_secs(secs as u64)).map_err(spawn_err)?,
        _ => Some(child.wait().map_err(spawn_err)?),
    };
    // Read only what is already there: a daemon the hook left behind may hold the pipe open.
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = nix::fcntl::fcntl(&e, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let mut buf = vec![0u8; 64 * 1024];
        if let Ok(n) = e.read(&mut buf) {
            stderr = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    match status {
        None => Err(HookError::Timeout { kind: kind.name(), path, secs: hook.timeout().unwrap_or(0) }),
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(HookError::Failed { kind: kind.name(), path, status: go_status(s), stderr: stderr.trim().to_string() }),
    }
}

/// An exit status as Go's os.ProcessState prints it ("exit status 3", "signal: killed"), so hook
/// errors read like runc's.
fn go_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = s.code() {
        return format!("exit status {code}");
    }
    let Some(sig) = s.signal() else { return s.to_string() };
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGSYS => "bad system call",
        _ => return format!("signal: {sig}"),
    };
    format!("signal: {name}")
}

/// Wait up to `limit`; on expiry SIGKILL and reap the hook and return None. Uses the child's pidfd
/// with poll(2) so no thread or signal handler is needed.
fn wait_timeout(child: &mut std::process::Child, limit: Duration) -> std::io::Result<Option<std::process::ExitStatus>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let pidfd = crate::sys::pidfd_open(child.id() as i32)?;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => return child.wait().map(Some),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default().path("/bin/sh").args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).env(vec!["FOO=bar".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().expect("hook")
    }

    #[test]
    fn hook_gets_state_env_and_argv0() {
        let dir = std::env::temp_dir().join(format!("brisk-hook-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("out");
        let script = format!("read s; echo \"$0 $FOO $s\" > {}", out.display());
        run(Kind::Prestart, &hook(&["myhook", "-c", &script], None), b"{\"id\":\"x\"}").expect("runs");
        let got = std::fs::read_to_string(&out).expect("output");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(got.trim(), "myhook bar {\"id\":\"x\"}");
    }

    #[test]
    fn failure_carries_status_and_stderr() {
        let e = run(Kind::CreateRuntime, &hook(&["sh", "-c", "echo nope >&2; exit 3"], None), b"{}").expect_err("fails");
        let s = e.to_string();
        assert!(s.contains("createRuntime: error running hook") && s.contains("nope") && s.contains("exit status 3"), "{s}");
    }

    #[test]
    fn killed_by_signal_reads_like_go() {
        let e = run(Kind::StartContainer, &hook(&["sh", "-c", "kill -SYS $$"], None), b"{}").expect_err("fails");
        assert!(e.to_string().contains("signal: bad system call"), "{e}");
    }

    #[test]
    fn timeout_kills() {
        let e = run(Kind::Poststart, &hook(&["sh", "-c", "sleep 30"], Some(1)), b"{}").expect_err("times out");
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
    }
}
