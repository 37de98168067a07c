//! The runtime side of spawning: create, start, exec, kill, delete.
//!
//! Process model (docs/ARCHITECTURE.md "Spawning"): the caller — the `brisk` CLI or a blocking
//! thread of the shim — never forks. It re-executes its own binary as an *init helper* (fork+exec
//! through `std::process::Command`, which is safe in a multi-threaded process), from a file no
//! container process can write through (CVE-2019-5736, [`crate::selfexe`]). The helper is
//! single-threaded from its first instruction and stays in the caller's mount namespace; it joins
//! namespaces given by path, then `clone3(CLONE_PARENT | CLONE_PIDFD | CLONE_NEW*)`s the
//! container's init, so the caller becomes the init's parent (and reaper) and receives its pidfd
//! over SCM_RIGHTS. The helper then exits. The init and the caller talk over a SOCK_SEQPACKET
//! socketpair with typed JSON messages ([`ToInit`], [`FromInit`]).
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};

use crate::container::{ConsoleSocket, Container, CreateOpts, ExecExtras, ExecOpts, Spawned, Stdio};
use crate::error::Error;
use crate::hooks::{self, Kind};
use crate::state::{State, Status, EXEC_FIFO};
use crate::sys::{self, Channel, ChannelError};
use crate::{cgroups, namespaces, spec};

/// The environment variable that tells a re-executed binary it is an init helper, and on which fd
/// its channel is.
pub(crate) const INIT_ENV: &str = "_BRISK_INIT_FD";

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{step}: {source}")]
    Io { step: &'static str, #[source] source: std::io::Error },
    #[error("{step}: {source}")]
    Sys { step: &'static str, #[source] source: nix::Error },
    #[error("talking to the container init ({step}): {source}")]
    Channel { step: &'static str, #[source] source: ChannelError },
    #[error("the container init exited before {step}")]
    InitDied { step: &'static str },
    #[error("the container init was OOM-killed before {step}: the memory limit ({limit}, linux.resources.memory.limit) is too low for the container to start (peak usage: {peak})")]
    OomKilled { step: &'static str, limit: String, peak: String },
    #[error("unexpected message from the container init during {step}")]
    Protocol { step: &'static str },
}

fn chan(step: &'static str) -> impl FnOnce(ChannelError) -> Error {
    move |source| SpawnError::Channel { step, source }.into()
}

fn sys_err(step: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |source| SpawnError::Sys { step, source }.into()
}

/// What the init helper is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    Create,
    Exec,
}

/// Everything the init needs, sent once by the runtime. Fds travel alongside in the order of
/// [`FdLayout`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bootstrap {
    pub mode: Mode,
    pub id: String,
    /// For exec: the container's spec with `process` replaced by the exec'd process.
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// CLONE_NEW* flags of the namespaces the init creates.
    pub clone_flags: u64,
    /// Namespaces to join by path (create), in join order: (oci name, path).
    pub join: Vec<(String, PathBuf)>,
    /// Exec: CLONE_NEW* flags to join from the container init's pidfd with setns(2).
    pub join_pidfd_flags: u64,
    /// Contents for /proc/<pid>/uid_map and gid_map ("" when no user namespace is created).
    pub uid_map: String,
    pub gid_map: String,
    /// Contents for /proc/self/timens_offsets ("" when no time namespace is created).
    pub time_offsets: String,
    pub cgroup_mounts: Vec<(String, String, PathBuf)>,
    /// The compiled seccomp filter (from the cache under the state root when possible), so the
    /// init neither compiles it nor needs to reach the cache after pivot_root.
    pub seccomp: Option<crate::security::SeccompProgram>,
    pub fds: FdLayout,
}

/// Which fds accompany the bootstrap message, in this order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FdLayout {
    pub exec_fifo: bool,
    pub console: bool,
    pub pidfd: bool,
    pub preserve: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToInit {
    Bootstrap(Box<Bootstrap>),
    /// The runtime ran prestart/createRuntime hooks; `state` is the state JSON for the init's own hooks.
    Continue { state: String },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromInit {
    /// From the helper: the init's pid (the pidfd comes with it).
    Spawned { pid: i32 },
    /// The init's mounts are set up: time for prestart/createRuntime hooks.
    CreateRuntimeHooks,
    /// The seccomp notify fd comes with this message.
    SeccompNotify,
    /// Create: the init waits on the exec fifo. Exec: about to execve.
    Ready,
    Error { step: String, message: String },
}

/// Container ids as runc accepts them (`^[\w+-\.]+$`), never "." or "..", so an id is always one
/// safe path component under the state root.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let bad = |reason| Err(Error::InvalidId { id: id.to_string(), reason });
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("\".\" and \"..\" are not ids");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.')) {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// Undo a half-done create: kill the init (if any), remove cgroups and the state dir.
struct CreateGuard<'a> {
    dir: &'a Path,
    placement: Option<cgroups::Placement>,
    pidfd: Option<OwnedFd>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = &self.pidfd {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            // We are its parent (CLONE_PARENT): reap it, unless our caller's reaper already did.
            let _ = sys::pidfd_wait(fd.as_fd(), false);
        }
        if let Some(p) = &self.placement {
            let _ = cgroups::remove(p);
        }
        let _ = fs::remove_dir_all(self.dir);
    }
}

pub(crate) fn create(root: &Path, id: &str, opts: CreateOpts) -> Result<Container, Error> {
    validate_id(id)?;
    let bundle = spec::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().ok_or_else(|| Error::Init { step: "validate".into(), message: "linux missing".into() })?;

    let dir = State::dir(root, id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::AlreadyExists { id: id.to_string() }),
        Err(source) => return Err(Error::Io { step: "create state dir", path: dir, source }),
    }
    let mut guard = CreateGuard { dir: &dir, placement: None, pidfd: None, armed: true };

    let cgroups_path = linux.cgroups_path().as_deref();
    cgroups::check_driver(cgroups_path, id, opts.systemd_cgroup)
        .map_err(|reason| spec::SpecError::Invalid { path: bundle.dir.join("config.json"), field: "linux.cgroupsPath".into(), reason })?;
    let mut placement = if opts.rootless {
        cgroups::rootless::create(cgroups_path, id, linux.resources().as_ref(), opts.systemd_cgroup)?
    } else {
        cgroups::create(cgroups_path, id, linux.resources().as_ref(), linux.devices().as_deref().unwrap_or_default(), opts.systemd_cgroup)?
    };
    guard.placement = Some(placement.clone());
    check_cgroup_reusable(&placement)?;

    let nss = linux.namespaces().clone().unwrap_or_default();
    let mut clone_flags = 0u64;
    let mut join = Vec::new();
    for (t, name, flag, _) in namespaces::NAMESPACES {
        if let Some(ns) = nss.iter().find(|n| n.typ() == *t) {
            match ns.path() {
                Some(p) => join.push((name.to_string(), p.clone())),
                None => clone_flags |= flag,
            }
        }
    }
    let map = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.as_deref().unwrap_or_default().iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect::<String>()
    };
    let time_offsets = linux
        .time_offsets()
        .as_ref()
        .map(|o| o.iter().map(|(k, v)| format!("{k} {} {}\n", v.secs().unwrap_or(0), v.nanosecs().unwrap_or(0))).collect())
        .unwrap_or_default();

    // The exec fifo is the create/start wait point that any later process can reach through the
    // state dir (runc's exec.fifo). The init holds it O_RDWR so its read blocks until `start`
    // writes, and `start` can tell a dead init (no reader: ENXIO) from a waiting one.
    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(sys_err("mkfifo exec.fifo"))?;
    let fifo = fs::OpenOptions::new().read(true).write(true).open(&fifo_path).map_err(|source| Error::Io { step: "open", path: fifo_path.clone(), source })?;

    let console = connect_console(opts.console_socket)?;
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && console.is_none() {
        return Err(spec::SpecError::Invalid { path: bundle.dir.join("config.json"), field: "process.terminal".into(), reason: "needs --console-socket (or set terminal to false)".into() }.into());
    }
    let boot = Bootstrap {
        mode: Mode::Create,
        id: id.to_string(),
        spec: spec.clone(),
        rootfs: bundle.rootfs.clone(),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        clone_flags,
        join,
        join_pidfd_flags: 0,
        uid_map: map(linux.uid_mappings()),
        gid_map: map(linux.gid_mappings()),
        time_offsets,
        cgroup_mounts: cgroups::mounts_for_rootfs(&placement),
        seccomp: prepare_seccomp(root, spec)?,
        fds: FdLayout { exec_fifo: true, console: terminal && console.is_some(), pidfd: false, preserve: opts.preserve_fds.len() },
    };
    let mut fds: Vec<BorrowedFd<'_>> = vec![fifo.as_fd()];
    if boot.fds.console {
        fds.extend(console.as_ref().map(|c| c.as_fd()));
    }
    fds.extend(opts.preserve_fds.iter().map(|f| f.as_fd()));

    // runc resolves relative mount sources against the bundle: the init starts there.
    // The systemd driver creates the unit with the helper in it and only then applies the limits
    // (cgroups::enter); for cgroupfs this just moves the helper in.
    let enter = |pid| cgroups::enter(&mut placement, pid, linux.resources().as_ref(), linux.devices().as_deref().unwrap_or_default());
    let spawned = spawn_init(root, boot, &fds, opts.stdio, enter, Some(&bundle.dir));
    // What enter created (v1 directories next to a systemd unit) must be removed on failure too.
    guard.placement = Some(placement.clone());
    let limit = linux.resources().as_ref().and_then(|r| r.memory().as_ref()).and_then(|m| m.limit());
    let (ch, pid, pidfd) = spawned.map_err(|e| explain_init_death(&placement, limit, e))?;
    drop(fifo);
    let (_, pid_start) = sys::proc_stat(pid).ok_or_else(|| explain_init_death(&placement, limit, SpawnError::InitDied { step: "recording its start time" }.into()))?;
    guard.pidfd = Some(pidfd);

    let mut state = State {
        id: id.to_string(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid,
        pid_start,
        status: Status::Creating,
        created: now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        cgroup: placement,
        namespaces: nss.iter().map(|n| (namespaces::name(n.typ()).to_string(), n.path().clone())).collect(),
        owner: owner_name(),
        hooks: spec.hooks().clone(),
    };
    state.save(root)?;

    // Drive the init through its create-time steps.
    loop {
        match ch.recv::<FromInit>().map_err(chan("create")).map_err(|e| explain_init_death(&state.cgroup, limit, e))? {
            None => return Err(explain_init_death(&state.cgroup, limit, SpawnError::InitDied { step: "reporting ready" }.into())),
            Some((FromInit::CreateRuntimeHooks, _)) => {
                let sj = serde_json::to_vec(&state.oci_json(Status::Creating)).unwrap_or_default();
                // config.md "Lifecycle" step 6-7: prestart (deprecated) and createRuntime hooks run
                // in the runtime namespace; a failure stops the create.
                hooks::run_all(Kind::Prestart, spec.hooks().as_ref(), &sj)?;
                hooks::run_all(Kind::CreateRuntime, spec.hooks().as_ref(), &sj)?;
                ch.send(&ToInit::Continue { state: String::from_utf8_lossy(&sj).into_owned() }, &[]).map_err(chan("continue"))?;
            }
            Some((FromInit::SeccompNotify, mut fds)) => {
                let fd = fds.pop().ok_or(SpawnError::Protocol { step: "seccomp notify without fd" })?;
                forward_seccomp_fd(spec, &state, fd, pid, Status::Creating)?;
            }
            Some((FromInit::Ready, _)) => break,
            Some((FromInit::Error { step, message }, _)) => return Err(Error::Init { step, message }),
            Some((FromInit::Spawned { .. }, _)) => return Err(SpawnError::Protocol { step: "create" }.into()),
        }
    }
    state.status = Status::Created;
    state.save(root)?;
    guard.armed = false;
    let init_pidfd = guard.pidfd.take();
    Ok(Container { root: root.to_path_buf(), state, init_pidfd })
}

/// An init (or its helper) that dies during create in a cgroup whose OOM killer ran was killed for
/// memory: say so, naming the limit, instead of "exited". runc 1.1.5 refuses the same config with
/// "unable to set memory limit to N (current usage: ...)" because it writes the limits after its
/// init joined the cgroup (the v1 write fails with EBUSY below the usage); brisk writes them into
/// the still empty cgroup, so a too-low limit shows up as this kill.
fn explain_init_death(p: &cgroups::Placement, limit: Option<i64>, e: Error) -> Error {
    let step = match &e {
        Error::Spawn(SpawnError::InitDied { step } | SpawnError::Channel { step, .. }) => *step,
        _ => return e,
    };
    let counter = match (p.v1_dir("memory"), p.unified_dir()) {
        (Some(d), _) => d.join("memory.oom_control"),
        (None, Some(d)) if p.is_unified() => d.join("memory.events"),
        _ => return e,
    };
    if cgroups::oom::oom_kills(&counter).unwrap_or(0) == 0 {
        return e;
    }
    let peak = [p.v1_dir("memory").map(|d| d.join("memory.max_usage_in_bytes")), p.unified_dir().map(|d| d.join("memory.peak"))]
        .into_iter()
        .flatten()
        .find_map(|f| fs::read_to_string(f).ok())
        .map_or_else(|| "unknown".to_string(), |v| format!("{} bytes", v.trim()));
    let limit = limit.map_or_else(|| "not set".to_string(), |l| format!("{l} bytes"));
    SpawnError::OomKilled { step, limit, peak }.into()
}

/// Compile (or fetch from the cache) the spec's seccomp filter. crun measured filter compilation
/// as the largest part of its start-up; the cache key is a hash of the seccomp section.
fn prepare_seccomp(root: &Path, spec: &Spec) -> Result<Option<crate::security::SeccompProgram>, Error> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    let cache = root.join(SECCOMP_CACHE);
    Ok(Some(crate::security::SeccompProgram::prepare(seccomp, Some(&cache))?))
}

/// Directory under the state root holding compiled seccomp filters.
pub const SECCOMP_CACHE: &str = ".seccomp-cache";

fn connect_console(c: Option<ConsoleSocket>) -> Result<Option<OwnedFd>, Error> {
    match c {
        None => Ok(None),
        Some(ConsoleSocket::Connected(fd)) => Ok(Some(fd)),
        Some(ConsoleSocket::Path(p)) => {
            let s = std::os::unix::net::UnixStream::connect(&p).map_err(|source| Error::Io { step: "connect console socket", path: p, source })?;
            Ok(Some(s.into()))
        }
    }
}

/// Hand a seccomp notify fd to the agent at listenerPath (config-linux.md "seccomp"): the
/// container state as of now plus the pid of the process the filter belongs to — the init during
/// create, the exec'd process for an exec (runc sends the same).
fn forward_seccomp_fd(spec: &Spec, state: &State, fd: OwnedFd, pid: i32, status: Status) -> Result<(), Error> {
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(listener) = seccomp.and_then(|s| s.listener_path().as_ref()) else {
        return Err(SpawnError::Protocol { step: "seccomp notify fd without listenerPath" }.into());
    };
    let msg = crate::security::ContainerProcessState {
        oci_version: crate::spec::OCI_VERSION.to_string(),
        fds: vec![crate::security::SECCOMP_FD_NAME.to_string()],
        pid,
        metadata: seccomp.and_then(|s| s.listener_metadata().clone()).filter(|m| !m.is_empty()),
        state: state.oci_json(status),
    };
    crate::security::send_process_state(listener, fd.as_fd(), &msg)?;
    Ok(())
}

/// Start the helper, send it `boot` with `fds`, and return the channel, the new process's pid and
/// pidfd.
/// `enter` puts the helper (by pid) into the container's cgroups before it clones.
/// `root` is the state root (see [`crate::selfexe::helper_exe`]).
fn spawn_init(root: &Path, boot: Bootstrap, fds: &[BorrowedFd<'_>], stdio: Stdio, enter: impl FnOnce(i32) -> Result<(), cgroups::CgroupError>, cwd: Option<&Path>) -> Result<(Channel, i32, OwnedFd), Error> {
    let (ours, theirs) = Channel::pair().map_err(sys_err("socketpair"))?;
    let child_fd = theirs.as_fd().as_raw_fd();
    // The helper gets no mount namespace of its own: the container's new one must be a copy of
    // the caller's, with the host's peer groups intact (rshared mounts, Kubernetes' Bidirectional
    // propagation). The exec'd file itself is what keeps the binary safe.
    let (exe, _) = crate::selfexe::helper_exe(root)?;
    let mut cmd = std::process::Command::new(crate::selfexe::exec_path(exe));
    cmd.arg0("brisk-init").env(INIT_ENV, child_fd.to_string());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(f) = stdio.stdin {
        cmd.stdin(f);
    }
    if let Some(f) = stdio.stdout {
        cmd.stdout(f);
    }
    if let Some(f) = stdio.stderr {
        cmd.stderr(f);
    }
    // SAFETY: the closure runs between fork and exec in the child and only calls fcntl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(child_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (mut helper, _own) = sys::spawn_own(&mut cmd).map_err(|source| SpawnError::Io { step: "spawn init helper", source })?;
    drop(theirs);
    drop(cmd);
    let res = (|| {
        // Into the cgroups before it clones, so the init and everything it forks are accounted
        // (and a cgroup namespace is rooted at the container's cgroup).
        enter(helper.id() as i32)?;
        ours.send(&ToInit::Bootstrap(Box::new(boot)), fds).map_err(chan("bootstrap"))?;
        match ours.recv::<FromInit>().map_err(chan("spawn"))? {
            Some((FromInit::Spawned { pid }, mut fds)) => {
                let pidfd = fds.pop().ok_or(SpawnError::Protocol { step: "spawned without pidfd" })?;
                Ok((pid, pidfd))
            }
            Some((FromInit::Error { step, message }, _)) => Err(Error::Init { step, message }),
            Some(_) => Err(SpawnError::Protocol { step: "spawn" }.into()),
            None => Err(SpawnError::InitDied { step: "spawning" }.into()),
        }
    })();
    if res.is_err() {
        let _ = helper.kill();
    }
    // The helper exits right after reporting; a caller's reaper may have raced us to it, which is
    // fine: its status carries nothing the channel did not.
    let _ = helper.wait();
    let (pid, pidfd) = res?;
    Ok((ours, pid, pidfd))
}

pub(crate) fn start(c: &mut Container) -> Result<(), Error> {
    let status = c.status();
    if status != Status::Created {
        return Err(Error::WrongStatus { id: c.id().into(), status: status.to_string(), op: "start" });
    }
    let fifo = State::dir(&c.root, c.id()).join(EXEC_FIFO);
    let f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| if e.raw_os_error() == Some(libc::ENXIO) { Error::ProcessGone { id: c.id().into(), pid: c.pid() } } else { Error::Io { step: "open", path: fifo.clone(), source: e } })?;
    use std::io::Write;
    (&f).write_all(b"0").map_err(|source| Error::Io { step: "write", path: fifo.clone(), source })?;
    // Like runc, return only once the init has exec'd (or died): its close-on-exec fifo fd was the
    // last reader, and a fifo's writer sees POLLERR when no reader is left. This orders poststart
    // hooks after the user process started (config.md "Lifecycle" step 9-11).
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("poll exec fifo")(e)),
            Ok(_) => break,
        }
    }
    drop(f);
    fs::remove_file(&fifo).map_err(|source| Error::Io { step: "remove", path: fifo, source })?;
    c.state.status = Status::Running;
    c.state.save(&c.root)?;
    // config.md "Lifecycle" step 11: a poststart failure is logged, the container keeps running.
    // The state the hooks see is the one start produced ("running", with the pid), even if the
    // process has already exited by the time they run.
    let sj = serde_json::to_vec(&c.state.oci_json(Status::Running)).unwrap_or_default();
    if let Err(e) = hooks::run_all(Kind::Poststart, c.state.hooks.as_ref(), &sj) {
        log::warn!("{e}");
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// `signal` None is signal 0: only the checks (runc's `kill ID 0`).
pub(crate) fn kill(c: &Container, signal: Option<crate::signal::Sig>, all: bool) -> Result<(), Error> {
    let status = c.status();
    if status == Status::Stopped && !all {
        return Err(Error::ProcessGone { id: c.id().into(), pid: c.pid() });
    }
    if all {
        // runc freezes the cgroup first so no process can fork away from the signal.
        let freeze = signal == Some(crate::signal::Sig::KILL) && cgroups::set_frozen(&c.state.cgroup, true).is_ok();
        let n = signal.map_or(0, crate::signal::Sig::number);
        for pid in c.pids()? {
            // SAFETY: kill(2) with a pid from the container's cgroup and a checked signal number
            // (nix's Signal cannot hold real-time signals); a pid that vanished meanwhile is fine.
            let _ = unsafe { libc::kill(pid, n) };
        }
        if freeze {
            cgroups::set_frozen(&c.state.cgroup, false)?;
        }
        return Ok(());
    }
    let fd = sys::pidfd_verified(c.pid(), c.state.pid_start).map_err(|_| Error::ProcessGone { id: c.id().into(), pid: c.pid() })?;
    sys::pidfd_send_signal(fd.as_fd(), signal.map_or(0, crate::signal::Sig::number)).map_err(|e| if e == nix::errno::Errno::ESRCH { Error::ProcessGone { id: c.id().into(), pid: c.pid() } } else { sys_err("pidfd_send_signal")(e) })
}

pub(crate) fn delete(c: Container, force: bool) -> Result<(), Error> {
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused | Status::Creating if force => {}
        _ => return Err(Error::WrongStatus { id: c.id().into(), status: status.to_string(), op: "delete (use --force)" }),
    }
    if status != Status::Stopped {
        if let Ok(fd) = sys::pidfd_verified(c.pid(), c.state.pid_start) {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            if status == Status::Paused {
                let _ = cgroups::set_frozen(&c.state.cgroup, false);
            }
            // Wait until it is gone (a zombie counts as gone: its parent reaps it).
            for _ in 0..2000 {
                if !sys::process_alive(c.pid(), c.state.pid_start) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    // Everything else in the cgroup dies with it (a non-pid-namespace container can leave some).
    for pid in c.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    let sj = serde_json::to_vec(&c.state.oci_json(Status::Stopped)).unwrap_or_default();
    // config.md "Lifecycle" step 13: poststop failures are logged, deletion goes on.
    if let Err(e) = hooks::run_all(Kind::Poststop, c.state.hooks.as_ref(), &sj) {
        log::warn!("{e}");
    }
    cgroups::remove(&c.state.cgroup)?;
    let dir = State::dir(&c.root, c.id());
    fs::remove_dir_all(&dir).map_err(|source| Error::Io { step: "remove state dir", path: dir, source })
}

/// runc's checks on a cgroup that may have existed before create (libcontainer/factory_linux.go): a
/// frozen one would freeze the init at its first step, so create would hang: refuse it. One that
/// already has processes is only warned about, as runc 1.1 does (it deprecates sharing a cgroup).
/// The create guard removes only the directories brisk made, so a refused cgroup stays as it was.
fn check_cgroup_reusable(p: &cgroups::Placement) -> Result<(), Error> {
    if cgroups::is_frozen(p) {
        return Err(cgroups::CgroupError::Invalid { reason: format!("container's cgroup unexpectedly frozen ({})", p.dirs.first().map(|(_, d)| d.display().to_string()).unwrap_or_default()) }.into());
    }
    // A read error means there is nothing to read yet; the cgroup is then ours and empty.
    if let Ok(pids) = cgroups::pids(p) {
        if !pids.is_empty() {
            log::warn!("container's cgroup is not empty: {} process(es) found", pids.len());
        }
    }
    Ok(())
}

/// The container's placement moved down to the sub-cgroups of `exec --cgroup` (runc's
/// process_linux.go addIntoCgroupV1): each must stay below the container's cgroup and exist.
pub(crate) fn sub_placement(p: &cgroups::Placement, subs: &std::collections::BTreeMap<String, String>) -> Result<cgroups::Placement, Error> {
    let invalid = |reason: String| Error::from(cgroups::CgroupError::Invalid { reason });
    for ctrl in subs.keys().filter(|k| !k.is_empty()) {
        if !p.dirs.iter().any(|(h, _)| h.controllers.iter().any(|c| c == ctrl)) {
            return Err(invalid(format!("unknown controller {ctrl}")));
        }
    }
    let mut out = p.clone();
    for (h, dir) in out.dirs.iter_mut() {
        let sub = subs.get("").or_else(|| h.controllers.iter().find_map(|c| subs.get(c)));
        let Some(sub) = sub else { continue };
        // Lexically, like Go's path.Join: ".." may not climb above the container's cgroup.
        let mut rel = PathBuf::new();
        for comp in Path::new(sub).components() {
            match comp {
                std::path::Component::Normal(n) => rel.push(n),
                std::path::Component::ParentDir if rel.pop() => {}
                std::path::Component::ParentDir => return Err(invalid(format!("{sub} is not a sub cgroup path"))),
                _ => {}
            }
        }
        let target = dir.join(&rel);
        let procs = target.join("cgroup.procs");
        if !procs.exists() {
            return Err(invalid(format!("adding pid to cgroups: {}: no such file or directory", procs.display())));
        }
        *dir = target;
    }
    Ok(out)
}

pub(crate) fn exec(c: &Container, process: &Process, opts: ExecOpts, extras: &ExecExtras) -> Result<Spawned, Error> {
    let status = c.status();
    if !(matches!(status, Status::Running | Status::Created) || extras.ignore_paused && status == Status::Paused) {
        return Err(Error::WrongStatus { id: c.id().into(), status: status.to_string(), op: "exec" });
    }
    let placement = if extras.sub_cgroups.is_empty() { c.state.cgroup.clone() } else { sub_placement(&c.state.cgroup, &extras.sub_cgroups)? };
    let config = c.bundle().join("config.json");
    spec::validate_process(process, &config, "process")?;
    let bundle = spec::load(c.bundle())?;
    let mut spec = bundle.spec.clone();
    let mut exec_process = process.clone();
    // runc 1.1.5 gives an exec'd process the container's oomScoreAdj (bootstrapData of the
    // container config), whatever the exec's process.json says (Docker always sets it).
    exec_process.set_oom_score_adj(bundle.spec.process().as_ref().and_then(|p| p.oom_score_adj()));
    spec.set_process(Some(exec_process));
    let init_pidfd = sys::pidfd_verified(c.pid(), c.state.pid_start).map_err(|_| Error::ProcessGone { id: c.id().into(), pid: c.pid() })?;
    // Join every namespace in which the init differs from us (setns of one we are already in is
    // EINVAL for user namespaces, and pointless for the rest).
    let mut flags = 0u64;
    for (_, _, flag, proc_name) in namespaces::NAMESPACES {
        let theirs = fs::metadata(format!("/proc/{}/ns/{proc_name}", c.pid()));
        let ours = fs::metadata(format!("/proc/self/ns/{proc_name}"));
        use std::os::unix::fs::MetadataExt;
        if let (Ok(t), Ok(o)) = (theirs, ours) {
            if (t.dev(), t.ino()) != (o.dev(), o.ino()) {
                flags |= flag;
            }
        }
    }
    let terminal = process.terminal().unwrap_or(false);
    let console = connect_console(opts.console_socket)?;
    if terminal && console.is_none() {
        return Err(spec::SpecError::Invalid { path: config, field: "process.terminal".into(), reason: "needs --console-socket (or set terminal to false)".into() }.into());
    }
    let boot = Bootstrap {
        mode: Mode::Exec,
        id: c.id().to_string(),
        spec,
        rootfs: bundle.rootfs.clone(),
        no_pivot: false,
        no_new_keyring: true,
        clone_flags: 0,
        join: Vec::new(),
        join_pidfd_flags: flags,
        uid_map: String::new(),
        gid_map: String::new(),
        time_offsets: String::new(),
        cgroup_mounts: Vec::new(),
        seccomp: prepare_seccomp(&c.root, &bundle.spec)?,
        fds: FdLayout { exec_fifo: false, console: terminal, pidfd: true, preserve: opts.preserve_fds.len() },
    };
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    if terminal {
        fds.extend(console.as_ref().map(|c| c.as_fd()));
    }
    fds.push(init_pidfd.as_fd());
    fds.extend(opts.preserve_fds.iter().map(|f| f.as_fd()));
    let (ch, pid, pidfd) = spawn_init(&c.root, boot, &fds, opts.stdio, |pid| cgroups::add(&placement, pid), None)?;
    // The channel is close-on-exec in the process: EOF without an error means execve succeeded.
    loop {
        match ch.recv::<FromInit>() {
            Ok(None) | Ok(Some((FromInit::Ready, _))) => {}
            Ok(Some((FromInit::SeccompNotify, mut fds))) => {
                if let Some(fd) = fds.pop() {
                    forward_seccomp_fd(&bundle.spec, &c.state, fd, pid, status)?;
                }
                continue;
            }
            Ok(Some((FromInit::Error { step, message }, _))) => {
                let _ = sys::pidfd_wait(pidfd.as_fd(), false);
                return Err(Error::Init { step, message });
            }
            Ok(Some(_)) => return Err(SpawnError::Protocol { step: "exec" }.into()),
            Err(e) => return Err(chan("exec")(e)),
        }
        // After Ready, wait for EOF (execve closed the channel) or a late error.
        match ch.recv::<FromInit>() {
            Ok(Some((FromInit::Error { step, message }, _))) => {
                let _ = sys::pidfd_wait(pidfd.as_fd(), false);
                return Err(Error::Init { step, message });
            }
            _ => break,
        }
    }
    Ok(Spawned { pid, pidfd })
}

pub(crate) fn set_frozen(c: &mut Container, frozen: bool) -> Result<(), Error> {
    let status = c.status();
    let ok = if frozen { status == Status::Running } else { status == Status::Paused };
    if !ok {
        return Err(Error::WrongStatus { id: c.id().into(), status: status.to_string(), op: if frozen { "pause" } else { "resume" } });
    }
    cgroups::set_frozen(&c.state.cgroup, frozen)?;
    c.state.status = if frozen { Status::Paused } else { Status::Running };
    c.state.save(&c.root)?;
    Ok(())
}

pub(crate) fn owner_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string())
}

/// RFC 3339 UTC timestamp with nanoseconds, as runc's `state` prints.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one format.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Is `t` a namespace the container creates (not joins)?
pub(crate) fn creates(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|n| n.typ() == t && n.path().is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "A"] {
            validate_id(ok).expect(ok);
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "ü"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exec_sub_cgroups_stay_below_and_must_exist() {
        let tmp = tempfile::tempdir().expect("tmpdir");
        let h = |name: &str, ctrls: &[&str]| cgroups::Hierarchy { mount: tmp.path().join(name), fstype: "cgroup".into(), controllers: ctrls.iter().map(|c| c.to_string()).collect(), root: "/".into() };
        let base_mem = tmp.path().join("memory/ct");
        let base_cpu = tmp.path().join("cpu,cpuacct/ct");
        for d in [base_mem.join("sub"), base_cpu.clone()] {
            fs::create_dir_all(&d).expect("mkdir");
            fs::write(d.join("cgroup.procs"), "").expect("procs");
        }
        fs::write(base_mem.join("cgroup.procs"), "").expect("procs");
        let p = cgroups::Placement { dirs: vec![(h("memory", &["memory"]), base_mem.clone()), (h("cpu,cpuacct", &["cpu", "cpuacct"]), base_cpu.clone())], created: Vec::new(), systemd: None };
        let subs = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>();

        let moved = sub_placement(&p, &subs(&[("memory", "sub")])).expect("memory:sub");
        assert_eq!(moved.dirs[0].1, base_mem.join("sub"));
        assert_eq!(moved.dirs[1].1, base_cpu, "other controllers stay");
        let same = sub_placement(&p, &subs(&[("", "/")])).expect("/ is the container's own cgroup");
        assert_eq!(same.dirs[0].1, base_mem);
        let e = sub_placement(&p, &subs(&[("", "..")])).expect_err("escapes").to_string();
        assert!(e.contains(".. is not a sub cgroup path"), "{e}");
        let e = sub_placement(&p, &subs(&[("memory", "sub/../../x")])).expect_err("escapes").to_string();
        assert!(e.contains("is not a sub cgroup path"), "{e}");
        let e = sub_placement(&p, &subs(&[("cpu", "nope")])).expect_err("missing").to_string();
        assert!(e.contains("nope/cgroup.procs: no such file"), "{e}");
        let e = sub_placement(&p, &subs(&[("whaaat", "/")])).expect_err("unknown").to_string();
        assert!(e.contains("unknown controller whaaat"), "{e}");
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951782400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1795305600, 0), "2026-11-22T00:00:00.000000000Z");
    }
}
