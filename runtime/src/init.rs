//! The container side of the spawn protocol (see [`crate::process`] for the runtime side).
//!
//! A binary using brisk calls [`run_if_init`] first thing in `main`. When the runtime re-executes
//! it as an init helper, that call never returns: the helper (stage 0) joins namespaces, clones the
//! container process (stage 1) with CLONE_PARENT so the runtime becomes its parent, reports the pid
//! and pidfd, and exits. Stage 1 sets the container up and execs the user's program. Both stages are
//! single-threaded (docs/ARCHITECTURE.md, design rule 1), so everything they change is their own state.
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::hooks::{self, Kind};
use crate::process::{Bootstrap, FromInit, Mode, ToInit, INIT_ENV};
use crate::rootfs::{self, RootfsConfig};
use crate::sys::{self, Channel, Forked};

/// A failure inside the init, reported to the runtime as (step, message).
#[derive(Debug)]
struct Fail {
    step: String,
    message: String,
}

fn at<E: std::fmt::Display>(step: &str) -> impl FnOnce(E) -> Fail + '_ {
    move |e| Fail { step: step.to_string(), message: e.to_string() }
}

fn fail(step: &str, message: impl Into<String>) -> Fail {
    Fail { step: step.to_string(), message: message.into() }
}

/// If this process was started as a brisk init helper, run it and never return.
pub fn run_if_init() {
    let Some(fd) = std::env::var_os(INIT_ENV) else { return };
    // The helper is single-threaded here (nothing has run before main's first statement), which is
    // what makes remove_var and the clone below sound.
    std::env::remove_var(INIT_ENV);
    let Some(fd) = fd.to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
        eprintln!("brisk-init: malformed {INIT_ENV}");
        std::process::exit(2);
    };
    reset_signals();
    // SAFETY: the runtime passed exactly this inherited fd for us to own (process::spawn_init).
    let ch = Channel::from_fd(unsafe { OwnedFd::from_raw_fd(fd) });
    let code = match stage0(&ch) {
        Ok(()) => 0,
        Err(f) => {
            let _ = ch.send(&FromInit::Error { step: f.step, message: f.message }, &[]);
            1
        }
    };
    std::process::exit(code);
}

/// Start from a clean signal state: the runtime's mask is inherited across exec, and Rust's own
/// start-up sets SIGPIPE to SIG_IGN, which would otherwise survive into the container's program.
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: restoring the default disposition installs no handler; invalid numbers only fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&nix::sys::signal::SigSet::empty()), None);
}

/// Received fds, sorted by role.
struct Fds {
    exec_fifo: Option<OwnedFd>,
    console: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    preserve: Vec<OwnedFd>,
    /// O_PATH fds of bind-mount sources, by index in `mounts` (see [`open_bind_sources`]).
    mounts: Vec<(usize, OwnedFd)>,
}

/// Move `fd` to a number >= `min`, close-on-exec, so the dup2s that lay out fds 3.. for the
/// container never clobber a runtime fd.
fn relocate(fd: OwnedFd, min: RawFd) -> Result<OwnedFd, Fail> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC duplicates a valid fd we own; the result is a new fd only we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(at("relocate fd")(std::io::Error::last_os_error()));
    }
    // SAFETY: n is the fresh fd from fcntl above.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn stage0(ch: &Channel) -> Result<(), Fail> {
    let (msg, fds) = ch.recv::<ToInit>().map_err(at("receive bootstrap"))?.ok_or_else(|| fail("receive bootstrap", "runtime closed the channel"))?;
    let ToInit::Bootstrap(boot) = msg else { return Err(fail("receive bootstrap", "unexpected message")) };
    let boot = *boot;
    let min = 3 + boot.fds.preserve as RawFd + 8;
    let ch = Channel::from_fd(relocate(dup_owned(ch.as_fd())?, min)?);
    let mut it = fds.into_iter();
    let mut take = |want: bool| -> Result<Option<OwnedFd>, Fail> {
        if !want {
            return Ok(None);
        }
        let fd = it.next().ok_or_else(|| fail("receive bootstrap", "missing fd"))?;
        relocate(fd, min).map(Some)
    };
    let exec_fifo = take(boot.fds.exec_fifo)?;
    let console = take(boot.fds.console)?;
    let pidfd = take(boot.fds.pidfd)?;
    let mut preserve = Vec::new();
    for _ in 0..boot.fds.preserve {
        preserve.extend(take(true)?);
    }
    let mut fds = Fds { exec_fifo, console, pidfd, preserve, mounts: Vec::new() };

    // Before joining anything, as runc's nsexec does: once in the container's mount namespace,
    // /proc is the container's procfs, where this helper (outside its pid namespace) has no
    // /proc/self (`exec -p` with Docker's oomScoreAdj failed with ENOENT), and a joined user
    // namespace would drop the CAP_SYS_RESOURCE a negative value needs. Children inherit it.
    if let Some(adj) = boot.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            let hint = if adj < 0 { " (a negative value needs CAP_SYS_RESOURCE, which this host's bounding set may lack)" } else { "" };
            fail("set oomScoreAdj", format!("{adj}: {e}{hint}"))
        })?;
    }
    // Join namespaces. Open every path first: joining the mount namespace changes how later paths
    // resolve. The list is already in join order (user first, mnt last).
    let mut joins = Vec::new();
    for (name, path) in &boot.join {
        let f = fs::File::open(path).map_err(|e| fail("join namespace", format!("{name} {}: {e}", path.display())))?;
        joins.push((name, path, f));
    }
    for (name, path, f) in &joins {
        nix::sched::setns(f.as_fd(), CloneFlags::empty()).map_err(|e| fail("join namespace", format!("{name} {}: {e}", path.display())))?;
    }
    if let Some(pidfd) = &fds.pidfd {
        let flags = CloneFlags::from_bits_retain(boot.join_pidfd_flags as libc::c_int);
        if !flags.is_empty() {
            nix::sched::setns(pidfd.as_fd(), flags).map_err(at("join the container's namespaces"))?;
        }
    }
    let process = boot.spec.process().clone().ok_or_else(|| fail("bootstrap", "no process"))?;
    let mut clone_flags = boot.clone_flags;
    if clone_flags & libc::CLONE_NEWTIME as u64 != 0 {
        // Offsets can only be written before any process enters the namespace, so unshare (which
        // applies to our children only) and write them before cloning (time_namespaces(7)).
        nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).map_err(at("unshare time namespace"))?;
        if !boot.time_offsets.is_empty() {
            fs::write("/proc/self/timens_offsets", &boot.time_offsets).map_err(at("write timens_offsets"))?;
        }
        clone_flags &= !(libc::CLONE_NEWTIME as u64);
    }
    // Bind sources for an init in a new user namespace (see send_bind_sources).
    let new_userns_and_mntns = clone_flags & (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64 == (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
    // Only host root gains anything from it, and only host root may join the mount namespace
    // (setns needs CAP_SYS_ADMIN in our own user namespace): a rootless init sees the host as the
    // user does already.
    let host_root = nix::unistd::geteuid().is_root();
    let mount_ch = if host_root && new_userns_and_mntns && boot.mode == Mode::Create && !rootfs::bind_sources(&boot.spec).is_empty() {
        Some(Channel::pair().map_err(at("socketpair for mount fds"))?)
    } else {
        None
    };
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(at("pipe"))?;
    // SAFETY: this process is single-threaded (a fresh exec; no thread was started), the condition
    // clone3_fork requires.
    let forked = unsafe { sys::clone3_fork(clone_flags | libc::CLONE_PARENT as u64) }.map_err(at("clone3"))?;
    match forked {
        Forked::Child => {
            drop(go_w);
            let mut b = [0u8; 1];
            if fs::File::from(go_r).read(&mut b).unwrap_or(0) != 1 {
                std::process::exit(1);
            }
            let r = (|| {
                if let Some((_, theirs)) = &mount_ch {
                    fds.mounts = recv_bind_sources(theirs, min)?;
                }
                match boot.mode {
                    Mode::Create => container_init(&ch, &boot, process, fds),
                    Mode::Exec => exec_init(&ch, &boot, process, fds),
                }
            })();
            let f = match r {
                Err(f) => f,
                Ok(never) => match never {},
            };
            let _ = ch.send(&FromInit::Error { step: f.step, message: f.message }, &[]);
            std::process::exit(1);
        }
        Forked::Parent { pid, pidfd } => {
            drop(go_r);
            let res = (|| {
                if clone_flags & libc::CLONE_NEWUSER as u64 != 0 && !nix::unistd::geteuid().is_root() {
                    // Not host root: only our own id directly, the rest through newuidmap/newgidmap.
                    crate::rootless::write_id_maps(pid, &boot.uid_map, &boot.gid_map).map_err(at("set up the user namespace"))?;
                } else if clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
                    fs::write(format!("/proc/{pid}/uid_map"), &boot.uid_map).map_err(at("write uid_map"))?;
                    fs::write(format!("/proc/{pid}/gid_map"), &boot.gid_map).map_err(at("write gid_map"))?;
                }
                if let Some((ours, _)) = &mount_ch {
                    send_bind_sources(ours, &boot.spec, pid)?;
                }
                // Spawned goes first: once released, the child talks on the same channel.
                ch.send(&FromInit::Spawned { pid }, &[pidfd.as_fd()]).map_err(at("report pid"))?;
                nix::unistd::write(&go_w, b"g").map_err(at("release init"))?;
                Ok(())
            })();
            if res.is_err() {
                let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            }
            res
        }
    }
}

/// runc's mount fds (_LIBCONTAINER_MOUNT_FDS): in a new user namespace the init is no longer host
/// root and may be unable to reach a bind source (a 0700 directory of host root's: userns.bats
/// "inaccessible mounts"). So this helper, still host root, joins the init's new mount namespace
/// (a bind source must be a mount of the caller's namespace: EINVAL otherwise) and opens each
/// source O_PATH there, relative ones against the bundle (our cwd), and sends the fds; the init
/// mounts through /proc/self/fd/N, which does not walk the path again. A source that cannot be
/// opened is not sent: the mount step then reports it as before. This helper exits right after.
fn send_bind_sources(ch: &Channel, spec: &Spec, pid: i32) -> Result<(), Fail> {
    use std::os::unix::fs::OpenOptionsExt;
    let cwd = std::env::current_dir().map_err(at("getcwd"))?;
    let mnt = fs::File::open(format!("/proc/{pid}/ns/mnt")).map_err(at("open the init's mount namespace"))?;
    nix::sched::setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(at("join the init's mount namespace"))?;
    for (i, source) in rootfs::bind_sources(spec) {
        if let Ok(f) = fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_CLOEXEC).open(cwd.join(&source)) {
            ch.send(&Some(i), &[f.as_fd()]).map_err(at("send mount fd"))?;
        }
    }
    ch.send(&None::<usize>, &[]).map_err(at("send mount fds"))
}

/// The init's side of [`send_bind_sources`]: (index in `mounts`, fd) pairs until the end marker.
fn recv_bind_sources(ch: &Channel, min: RawFd) -> Result<Vec<(usize, OwnedFd)>, Fail> {
    let mut out = Vec::new();
    loop {
        match ch.recv::<Option<usize>>().map_err(at("receive mount fds"))? {
            Some((Some(i), mut fds)) => {
                let fd = fds.pop().ok_or_else(|| fail("receive mount fds", "message without an fd"))?;
                out.push((i, relocate(fd, min)?));
            }
            Some((None, _)) => return Ok(out),
            None => return Err(fail("receive mount fds", "helper closed the channel")),
        }
    }
}

/// The spec with each bind source that has an fd in `fds` replaced by /proc/self/fd/N.
fn with_fd_sources(spec: &Spec, fds: &[(usize, OwnedFd)]) -> Spec {
    let mut spec = spec.clone();
    if let Some(mut mounts) = spec.mounts().clone() {
        for (i, fd) in fds {
            if let Some(m) = mounts.get_mut(*i) {
                m.set_source(Some(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))));
            }
        }
        spec.set_mounts(Some(mounts));
    }
    spec
}

fn dup_owned(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, Fail> {
    fd.try_clone_to_owned().map_err(at("dup"))
}

enum Never {}

fn in_userns(boot: &Bootstrap) -> bool {
    boot.clone_flags & libc::CLONE_NEWUSER as u64 != 0
        || boot.join.iter().any(|(n, _)| n == "user")
        || boot.join_pidfd_flags & libc::CLONE_NEWUSER as u64 != 0
}

/// Become root of a user namespace we just entered (maps are written by stage 0 before release).
fn become_ns_root() -> Result<(), Fail> {
    let root = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root).map_err(at("setresgid(0) in user namespace (is container uid/gid 0 mapped?)"))?;
    let root = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root).map_err(at("setresuid(0) in user namespace (is container uid/gid 0 mapped?)"))?;
    Ok(())
}

fn set_dumpable(on: bool) -> Result<(), Fail> {
    // SAFETY: PR_SET_DUMPABLE takes an integer flag and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(at("prctl(PR_SET_DUMPABLE)")(std::io::Error::last_os_error()));
    }
    Ok(())
}

fn container_init(ch: &Channel, boot: &Bootstrap, process: Process, fds: Fds) -> Result<Never, Fail> {
    let spec = &boot.spec;
    let userns = in_userns(boot);
    if userns {
        become_ns_root()?;
    }
    nix::unistd::setsid().map_err(at("setsid"))?;
    // While our binary runs inside the container, no container process may open /proc/<pid>/exe
    // or ptrace us (CVE-2019-5736); execve resets this.
    set_dumpable(false)?;

    let cgroup_mounts = boot.cgroup_mounts.clone();
    let fd_spec = (!fds.mounts.is_empty()).then(|| with_fd_sources(spec, &fds.mounts));
    let cfg = RootfsConfig {
        spec: fd_spec.as_ref().unwrap_or(spec),
        rootfs: &boot.rootfs,
        no_pivot: boot.no_pivot,
        in_userns: userns,
        cgroupns: crate::process::creates(spec, LinuxNamespaceType::Cgroup),
        cgroup_mounts: &cgroup_mounts,
    };
    rootfs::prepare(&cfg).map_err(at("prepare rootfs"))?;
    // runc sets the hostname in the uts namespace the config names, new or joined by path (spec
    // validation made sure there is one).
    if has_ns(spec, LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).map_err(at("sethostname"))?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
            // SAFETY: setdomainname reads exactly len bytes from the pointer, which d provides.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
                return Err(at("setdomainname")(std::io::Error::last_os_error()));
            }
        }
    }

    ch.send(&FromInit::CreateRuntimeHooks, &[]).map_err(at("request createRuntime hooks"))?;
    let state = match ch.recv::<ToInit>().map_err(at("wait for createRuntime hooks"))? {
        Some((ToInit::Continue { state }, _)) => state,
        _ => std::process::exit(1),
    };
    // config.md "createContainer Hooks": in the container's namespaces, before pivot_root, so
    // their path still resolves in the runtime namespace.
    hooks::run_all(Kind::CreateContainer, spec.hooks().as_ref(), state.as_bytes()).map_err(at("createContainer hooks"))?;

    // runc 1.1.5 (rootfs_linux.go prepareRootfs, standard_init_linux.go): without a mount
    // namespace in the config the same mounts are made, then the root is entered with chroot
    // instead of pivot_root (--no-pivot still moves it), and finalizeRootfs (readonly root,
    // masked/readonly paths, /dev remount) is skipped. As with runc, the init then shares the
    // caller's mount namespace (config-linux.md: an absent namespace is inherited; runtime-tools
    // linux_ns_itype.t checks it), so these mounts are made there and outlive the container.
    let own_mntns = has_ns(spec, LinuxNamespaceType::Mount);
    if own_mntns || boot.no_pivot {
        rootfs::pivot(&cfg).map_err(at("pivot_root"))?;
    } else {
        rootfs::chroot(&cfg).map_err(at("chroot"))?;
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            fs::write(&path, v).map_err(|e| fail("sysctl", format!("{k}={v}: {e}")))?;
        }
    }
    if let Some(console) = &fds.console {
        setup_pty(console.as_fd(), &process, true)?;
    }
    if own_mntns {
        rootfs::finalize(&cfg).map_err(at("finalize rootfs"))?;
    }
    reopen_dev_null()?;
    if !boot.no_new_keyring {
        join_session_keyring(&boot.id)?;
    }
    let exec = prepare_exec(ch, spec, &process, boot.seccomp.as_ref(), fds.preserve)?;

    ch.send(&FromInit::Ready, &[]).map_err(at("report ready"))?;
    // The fifo stays open (close-on-exec) until execve: `start` waits for the last reader to go
    // away, which must be the exec, not the end of this read.
    let mut fifo = fs::File::from(fds.exec_fifo.ok_or_else(|| fail("wait for start", "no exec fifo"))?);
    let mut b = [0u8; 1];
    match fifo.read(&mut b) {
        Ok(1) => {}
        // The runtime went away without starting us (delete of a created container).
        _ => std::process::exit(1),
    }
    // config.md: startContainer hooks see the container as "created" (start was called, the
    // user process has not started yet).
    let state = match serde_json::from_str::<serde_json::Value>(&state) {
        Ok(mut v) => {
            v["status"] = "created".into();
            v.to_string()
        }
        Err(_) => state,
    };
    if let Err(e) = hooks::run_all(Kind::StartContainer, spec.hooks().as_ref(), state.as_bytes()) {
        // Nobody is listening on the channel any more: the runtime's stderr is ours.
        eprintln!("brisk: startContainer hooks: {e}");
        std::process::exit(1);
    }
    let r = exec.run();
    drop(fifo);
    r
}

fn exec_init(ch: &Channel, boot: &Bootstrap, process: Process, fds: Fds) -> Result<Never, Fail> {
    if in_userns(boot) {
        become_ns_root()?;
    }
    nix::unistd::setsid().map_err(at("setsid"))?;
    set_dumpable(false)?;
    if let Some(console) = &fds.console {
        setup_pty(console.as_fd(), &process, false)?;
    }
    let exec = prepare_exec(ch, &boot.spec, &process, boot.seccomp.as_ref(), fds.preserve)?;
    ch.send(&FromInit::Ready, &[]).map_err(at("report ready"))?;
    exec.run()
}

/// A pty whose master goes to the console socket and whose slave becomes the process's stdio
/// and controlling terminal (runc's --console-socket protocol).
fn setup_pty(console: std::os::fd::BorrowedFd<'_>, process: &Process, bind_console: bool) -> Result<(), Fail> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(at("open /dev/ptmx"))?;
    grantpt(&master).map_err(at("grantpt"))?;
    unlockpt(&master).map_err(at("unlockpt"))?;
    let slave_name = ptsname_r(&master).map_err(at("ptsname"))?;
    if let Some(size) = process.console_size() {
        let ws = libc::winsize { ws_row: size.height() as u16, ws_col: size.width() as u16, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points at a local.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave = fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC).open(&slave_name).map_err(|e| fail("open pty slave", format!("{slave_name}: {e}")))?;
    if bind_console {
        rootfs::setup_console(Path::new(&slave_name)).map_err(at("bind /dev/console"))?;
    }
    // SAFETY: master is a valid fd for the duration of the call.
    sys::send_fd(console, "/dev/ptmx", unsafe { std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()) }).map_err(at("send pty master to console socket"))?;
    drop(master);
    for target in 0..3 {
        dup2(slave.as_raw_fd(), target).map_err(at("dup2 pty slave"))?;
    }
    // SAFETY: TIOCSCTTY on our stdin (now the slave) with arg 0; we are a session leader (setsid).
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY as _, 0) } < 0 {
        return Err(at("TIOCSCTTY")(std::io::Error::last_os_error()));
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

fn join_session_keyring(id: &str) -> Result<(), Fail> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let name = CString::new(format!("_ses.{id}")).map_err(at("keyring name"))?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads the NUL-terminated name only.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // runc tolerates kernels without keyrings (ENOSYS); anything else is an error.
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(at("join session keyring (use --no-new-keyring to skip)")(e));
        }
    }
    Ok(())
}

/// Everything needed to execve, resolved while errors can still be reported to the runtime.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Exec {
    fn run(self) -> Result<Never, Fail> {
        let e = nix::unistd::execve(&self.path, &self.argv, &self.envp).err();
        let msg = format!("exec {:?}: {}", self.path, e.map(|e| e.to_string()).unwrap_or_default());
        eprintln!("brisk: {msg}");
        Err(fail("exec", msg))
    }
}

/// The steps shared by a container's init and an exec'd process, after the filesystem is final:
/// process attributes, cwd, fds, credentials and seccomp (last), and the program lookup.
fn prepare_exec(ch: &Channel, spec: &Spec, process: &Process, seccomp: Option<&crate::security::SeccompProgram>, preserve: Vec<OwnedFd>) -> Result<Exec, Fail> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let res = rlimit_resource(r.typ());
        // SAFETY: setrlimit reads one rlimit struct from a local.
        let rc = unsafe { libc::setrlimit(res, &libc::rlimit { rlim_cur: r.soft(), rlim_max: r.hard() }) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) { " (raising a hard limit needs CAP_SYS_RESOURCE, which this host's bounding set may lack)" } else { "" };
            return Err(fail("setrlimit", format!("{:?} soft {} hard {}: {e}{hint}", r.typ(), r.soft(), r.hard())));
        }
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        use oci_spec::runtime::LinuxPersonalityDomain as D;
        let persona = if p.domain() == D::PerLinux32 { 0x0008 } else { 0 };
        // SAFETY: personality(2) takes an integer and returns the previous persona.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(at("personality")(std::io::Error::last_os_error()));
        }
    }
    if let Some(s) = process.scheduler() {
        set_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        use oci_spec::runtime::IOPriorityClass as C;
        let class = match io.class() {
            C::IoprioClassRt => 1,
            C::IoprioClassBe => 2,
            C::IoprioClassIdle => 3,
        };
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS=1, 0 = self, prio) takes only integers.
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | io.priority()) } < 0 {
            return Err(at("ioprio_set")(std::io::Error::last_os_error()));
        }
    }
    if let Some(profile) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        fs::write("/proc/self/attr/apparmor/exec", format!("exec {profile}"))
            .or_else(|_| fs::write("/proc/self/attr/exec", format!("exec {profile}")))
            .map_err(|e| fail("apply AppArmor profile", format!("{profile}: {e}")))?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|p| !p.is_empty()) {
        fs::write("/proc/self/attr/exec", label).map_err(|e| fail("apply SELinux label", format!("{label}: {e}")))?;
    }
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask as libc::mode_t));

    let cwd = process.cwd();
    nix::unistd::chdir(cwd).map_err(|e| fail("chdir", format!("{}: {e}", cwd.display())))?;
    // CVE-2024-21626: a cwd reached through a leaked fd (/proc/self/fd/N) lies outside the
    // container's root; getcwd then reports "(unreachable)" or a path that does not match.
    match nix::unistd::getcwd() {
        Ok(p) if !p.to_string_lossy().starts_with("(unreachable)") => {}
        Ok(p) => return Err(fail("chdir", format!("{} resolves outside the container root ({})", cwd.display(), p.display()))),
        Err(e) => return Err(fail("chdir", format!("{}: getcwd: {e}", cwd.display()))),
    }

    let args = process.args().as_deref().unwrap_or_default();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        // runc sets HOME from the container's /etc/passwd when the config does not.
        env.push(format!("HOME={}", home_of(process.user().uid()).unwrap_or_else(|| "/".into())));
    }
    let path = lookup(&args[0], &env).map_err(|m| fail("exec", m))?;
    let cstr = |s: &str| CString::new(s).map_err(|_| fail("exec", format!("{s:?} contains a NUL byte")));
    let exec = Exec {
        path: cstr(&path)?,
        argv: args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        envp: env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
    };

    // Lay out preserved fds as 3, 4, ... and make sure nothing else survives execve (CVE-2024-21626).
    let n = preserve.len() as RawFd;
    for (i, fd) in preserve.iter().enumerate() {
        dup2(fd.as_raw_fd(), 3 + i as RawFd).map_err(at("dup2 preserved fd"))?;
    }
    drop(preserve);
    sys::cloexec_from(3 + n as u32).map_err(at("close_range"))?;

    fix_stdio_owner(process.user().uid())?;
    if let Some(notify) = crate::security::finalize_process_with(process, seccomp).map_err(at("apply credentials and seccomp"))? {
        ch.send(&FromInit::SeccompNotify, &[notify.as_fd()]).map_err(at("send seccomp notify fd"))?;
    }
    Ok(exec)
}

/// runc's reOpenDevNull (libcontainer/rootfs_linux.go): stdio that is the host's /dev/null is
/// replaced by the container's own /dev/null. Besides not keeping a host file open in the
/// container, CRIU can only dump files it can reach from the container's mounts: a host /dev/null
/// on fd 0 makes every checkpoint fail ("Can't lookup mount ... path=/dev/null").
fn reopen_dev_null() -> Result<(), Fail> {
    let null = fs::OpenOptions::new().read(true).write(true).open("/dev/null").map_err(at("open /dev/null"))?;
    let null_rdev = fstat(null.as_raw_fd()).map_err(at("fstat /dev/null"))?.st_rdev;
    for fd in 0..3 {
        let st = match fstat(fd) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => continue,
            Err(e) => return Err(fail("fstat stdio", format!("fd {fd}: {e}"))),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null_rdev {
            dup2(null.as_raw_fd(), fd).map_err(|e| fail("reopen /dev/null", format!("fd {fd}: {e}")))?;
        }
    }
    Ok(())
}

fn fstat(fd: RawFd) -> std::io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes one stat struct through the pointer, which is valid for it.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it initialised the struct.
    Ok(unsafe { st.assume_init() })
}

/// runc's fixStdioPermissions (libcontainer/init_linux.go): stdio other than /dev/null is chowned
/// to the process's uid, keeping its gid (the devpts mount's gid= chose it), so that a non-root
/// process can use the terminal it was given. Done while still root, before the credential
/// switch. Like runc, EINVAL (gid not mapped), EPERM (owner not mapped) and EROFS (read-only /dev)
/// leave the fd as it is; a closed stdio fd is skipped.
fn fix_stdio_owner(uid: u32) -> Result<(), Fail> {
    let stat = |fd: RawFd| -> std::io::Result<libc::stat> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes one stat struct through the pointer, which is valid for it.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so it initialised the struct.
        Ok(unsafe { st.assume_init() })
    };
    let null = fs::File::open("/dev/null").map_err(at("open /dev/null"))?;
    let null_rdev = stat(null.as_raw_fd()).map_err(at("fstat /dev/null"))?.st_rdev;
    for fd in 0..3 {
        let st = match stat(fd) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => continue,
            Err(e) => return Err(fail("fstat stdio", format!("fd {fd}: {e}"))),
        };
        if st.st_uid == uid || st.st_rdev == null_rdev {
            continue;
        }
        // SAFETY: fchown on one of our stdio fds; it takes only integers.
        if unsafe { libc::fchown(fd, uid, st.st_gid) } < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EPERM | libc::EROFS)) {
                return Err(fail("chown stdio", format!("fd {fd} to uid {uid}: {e}")));
            }
        }
    }
    Ok(())
}

/// dup2(2) onto a fixed fd number (0-2 or a preserved-fd slot). The target is deliberately not
/// owned by anything in this process: it is handed to the program we exec.
fn dup2(from: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: `from` is a valid open fd; `to` is a slot the caller lays out for the exec'd program
    // and nothing in this process holds an owning handle to it (runtime fds were relocated above).
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> libc::__rlimit_resource_t {
    use oci_spec::runtime::PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_scheduler(s: &oci_spec::runtime::Scheduler) -> Result<(), Fail> {
    use oci_spec::runtime::LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => libc::SCHED_OTHER,
        P::SchedFifo => libc::SCHED_FIFO,
        P::SchedRr => libc::SCHED_RR,
        P::SchedBatch => libc::SCHED_BATCH,
        P::SchedIso => 4,
        P::SchedIdle => libc::SCHED_IDLE,
        P::SchedDeadline => 6,
    };
    let param = libc::sched_param { sched_priority: s.priority().unwrap_or(0) };
    // SAFETY: sched_setscheduler(0 = self) reads one sched_param from a local.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } < 0 {
        return Err(at("sched_setscheduler")(std::io::Error::last_os_error()));
    }
    if let Some(nice) = s.nice() {
        // SAFETY: setpriority takes integers only.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, *nice) } < 0 {
            return Err(at("setpriority")(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn home_of(uid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Is `t` in the config's namespace list (new or joined by path)?
fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|n| n.typ() == t))
}

/// runc's create-time program check (standard_init_linux.go): Go's exec.LookPath in the
/// container, then faccessat2(X_OK, AT_EACCESS), which also catches a noexec mount. A name with a
/// slash is used as is; otherwise each $PATH entry of the process's environment (runc's default
/// PATH when unset). The messages carry runc's wording ("no such file or directory", "permission
/// denied", "executable file not found in $PATH"), which podman and containerd map to exit codes
/// 127 and 126.
fn lookup(name: &str, env: &[String]) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    // exec.findExecutable: stat, then not a directory and some execute bit.
    let find = |p: &Path| -> Result<(), std::io::Error> {
        let m = fs::metadata(p)?;
        if m.is_dir() || m.permissions().mode() & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    let found = if name.contains('/') {
        find(Path::new(name)).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!("{name:?}: permission denied"),
            _ => format!("{name:?}: stat {name}: {}", go_errno(&e)),
        })?;
        name.to_string()
    } else {
        let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let mut hit = None;
        for d in path.split(':') {
            let p = Path::new(if d.is_empty() { "." } else { d }).join(name);
            if find(&p).is_ok() {
                hit = Some(p.to_string_lossy().into_owned());
                break;
            }
        }
        hit.ok_or_else(|| format!("{name:?}: executable file not found in $PATH"))?
    };
    let c = CString::new(found.as_str()).map_err(|_| format!("{found:?} contains a NUL byte"))?;
    // SAFETY: faccessat2 reads the NUL-terminated path only.
    let rc = unsafe { libc::syscall(libc::SYS_faccessat2, libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels before 5.8 lack faccessat2; runc then skips the check too (for root).
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
            return Err(format!("{found:?}: {}", go_errno(&e)));
        }
    }
    Ok(found)
}

/// An errno as Go prints it ("no such file or directory"): lower case, no "(os error N)".
fn go_errno(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    s.to_lowercase()
}
