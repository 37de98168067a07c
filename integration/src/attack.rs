//! Shared pieces of the container-escape regression tests (`tests/cli_security_*.rs`): copies of
//! the runtime binary an attack may target, pipes that hold a process still, fd layouts for
//! `--preserve-fds`, a seccomp notify agent, and readers of host-side /proc.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::runtime_cli::{Kind, RuntimeUnderTest, RUNC_DEFAULT};

/// A private copy of a runtime binary. CVE-2019-5736 tests point the runtime under test at the
/// copy, so an attack that works overwrites the copy and never the real build.
#[derive(Debug)]
pub struct BinaryCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    original_hash: String,
}

impl BinaryCopy {
    /// Copy `src` into a fresh temp dir (mode 0755) and remember its hash.
    pub fn new(src: &Path) -> BinaryCopy {
        let dir = tempfile::Builder::new().prefix("brisk-bincopy-").tempdir().expect("temp dir for binary copy");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod binary copy dir");
        let name = src.file_name().expect("binary has a file name");
        let path = dir.path().join(name);
        fs::copy(src, &path).unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod binary copy");
        let original_hash = sha256_file(&path);
        BinaryCopy { _dir: dir, path, original_hash }
    }

    /// The copy.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The copy's current SHA-256 (hex).
    pub fn hash(&self) -> String {
        sha256_file(&self.path)
    }

    /// The hash taken right after copying.
    pub fn original_hash(&self) -> &str {
        &self.original_hash
    }

    /// Whether the host could open the copy for writing now (it cannot while any process executes
    /// it: ETXTBSY). Opens without truncating and writes nothing.
    pub fn host_can_open_for_write(&self) -> Result<(), std::io::Error> {
        fs::OpenOptions::new().write(true).open(&self.path).map(drop)
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary the default instance of `kind` would run.
pub fn default_bin(kind: Kind) -> PathBuf {
    match kind {
        Kind::Runc => std::env::var_os("RUNC_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(RUNC_DEFAULT)),
        Kind::Brisk => std::env::var_os("BRISK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/brisk")),
    }
}

/// A runtime instance of `kind` whose binary is a private copy of the usual one.
///
/// [`RuntimeUnderTest`] takes its binary from `RUNC_BIN`/`BRISK_BIN`, so the variable is pointed at
/// the copy for the duration of the constructor under a lock. Only test binaries whose every
/// runtime is built through this function may use it (the variable is process-wide).
pub fn runtime_with_copy(kind: Kind) -> (RuntimeUnderTest, BinaryCopy) {
    static ENV: Mutex<()> = Mutex::new(());
    let src = default_bin(kind);
    assert!(src.is_file(), "{} not found (build brisk / install runc, or set BRISK_BIN/RUNC_BIN)", src.display());
    let copy = BinaryCopy::new(&src);
    let var = match kind {
        Kind::Runc => "RUNC_BIN",
        Kind::Brisk => "BRISK_BIN",
    };
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let old = std::env::var_os(var);
    std::env::set_var(var, copy.path());
    let rt = match kind {
        Kind::Runc => RuntimeUnderTest::runc(),
        Kind::Brisk => RuntimeUnderTest::brisk(),
    };
    match old {
        Some(v) => std::env::set_var(var, v),
        None => std::env::remove_var(var),
    }
    assert_eq!(rt.bin(), copy.path(), "runtime did not pick up the binary copy");
    (rt, copy)
}

/// A pipe whose buffer is already full: any blocking write to the write end waits until the read
/// end is drained. A process given the write end as stdout/stderr stops at its first write, which
/// keeps it alive, deterministically, while a test inspects it.
pub fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    set_nonblock(&w, true);
    let chunk = [b'.'; 4096];
    loop {
        match nix::unistd::write(&w, &chunk) {
            Ok(_) => continue,
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("filling pipe: {e}"),
        }
    }
    // O_NONBLOCK belongs to the open file description the process will share: clear it so the
    // process's write blocks instead of failing with EAGAIN.
    set_nonblock(&w, false);
    (r, w)
}

fn set_nonblock(fd: &OwnedFd, on: bool) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).expect("F_GETFL"));
    let flags = if on { flags | OFlag::O_NONBLOCK } else { flags & !OFlag::O_NONBLOCK };
    fcntl(fd, FcntlArg::F_SETFL(flags)).expect("F_SETFL");
}

/// A spawned runtime command that is killed and reaped if the test fails before waiting for it.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Read `r` to EOF in a background thread.
pub fn drain(r: OwnedFd) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut f = File::from(r);
        let mut out = Vec::new();
        let _ = f.read_to_end(&mut out);
        out
    })
}

/// Arrange for the spawned process to have `fds[i].0` open (not close-on-exec) at fd number
/// `fds[i].1`. Sources are first moved above every target so the dup2s cannot clobber each other.
/// Keep the returned fds until the command has been spawned.
#[must_use = "the fds must stay open until the command is spawned"]
pub fn with_fds(cmd: &mut Command, fds: Vec<(OwnedFd, RawFd)>) -> Vec<OwnedFd> {
    let max_target = fds.iter().map(|f| f.1).max().unwrap_or(0);
    let moved: Vec<(OwnedFd, RawFd)> = fds
        .into_iter()
        .map(|(fd, target)| {
            // SAFETY: F_DUPFD_CLOEXEC duplicates a valid fd we own into a new fd only we own.
            let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, max_target + 100) };
            assert!(n >= 0, "F_DUPFD_CLOEXEC: {}", std::io::Error::last_os_error());
            // SAFETY: n is the fresh fd from fcntl above.
            (unsafe { OwnedFd::from_raw_fd(n) }, target)
        })
        .collect();
    let plan: Vec<(RawFd, RawFd)> = moved.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    // SAFETY: the closure runs between fork and exec and only calls dup2, which is
    // async-signal-safe; `plan` was allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for &(from, to) in &plan {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    moved.into_iter().map(|(fd, _)| fd).collect()
}

/// An unlinked temp file holding `content`, positioned at its start.
pub fn temp_file_fd(content: &str) -> OwnedFd {
    use std::io::Seek;
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(content.as_bytes()).expect("write tempfile");
    f.rewind().expect("rewind tempfile");
    f.into()
}

/// Host-side: the pid of a process as seen in its innermost pid namespace (`NSpid` last field).
pub fn inner_pid(host_pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Host-side: a process's argv.
pub fn cmdline(host_pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{host_pid}/cmdline"))
        .map(|b| b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        .unwrap_or_default()
}

/// Host-side: pids of every process whose argv contains `needle` as one argument.
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if cmdline(pid).iter().any(|a| a == needle) {
            found.push(pid);
        }
    }
    found
}

/// Host-side: the open fd numbers of a process, sorted.
pub fn open_fds(host_pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{host_pid}/fd"))
        .unwrap_or_else(|e| panic!("reading /proc/{host_pid}/fd: {e}"))
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    fds.sort_unstable();
    fds
}

/// A capability mask field (`CapBnd`, `CapEff`, ...) from /proc/<pid>/status text.
pub fn cap_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status:\n{status}"));
    let hex = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("malformed {line:?}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Capability numbers (capability.h).
pub mod cap {
    /// CAP_KILL
    pub const KILL: u32 = 5;
    /// CAP_NET_BIND_SERVICE
    pub const NET_BIND_SERVICE: u32 = 10;
    /// CAP_SYS_PTRACE
    pub const SYS_PTRACE: u32 = 19;
    /// CAP_SYS_ADMIN
    pub const SYS_ADMIN: u32 = 21;
    /// CAP_MKNOD
    pub const MKNOD: u32 = 27;
    /// CAP_AUDIT_WRITE
    pub const AUDIT_WRITE: u32 = 29;
}

/// What a seccomp notify agent received and decided.
#[derive(Debug)]
pub struct AgentReport {
    /// The JSON the runtime sent with the fd (runc's `ContainerProcessState`).
    pub state: serde_json::Value,
    /// Syscall numbers of the notifications answered, in order.
    pub syscalls: Vec<i32>,
}

/// How the agent answers one notification.
#[derive(Debug)]
pub enum Decision {
    /// Fail the syscall with this errno.
    Errno(i32),
    /// Let the kernel run the syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Report the notifying process's pid on `notified`, keep the syscall suspended until
    /// `release` receives (or its sender is dropped), then continue it. Holds a process at a
    /// chosen syscall, deterministically, while a test inspects it.
    Hold { notified: std::sync::mpsc::Sender<u32>, release: std::sync::mpsc::Receiver<()> },
}

/// A seccomp notify agent on a unix socket (`linux.seccomp.listenerPath`). For each entry of
/// `sessions`, in order, it accepts one runtime connection (one per process that loads the filter:
/// the init, then each exec), receives the container state and the notify fd, and answers
/// notifications with that session's decisions until they run out or the filter is gone.
#[derive(Debug)]
pub struct NotifyAgent {
    handle: Option<JoinHandle<Result<Vec<AgentReport>, String>>>,
}

impl NotifyAgent {
    /// Bind `path` and serve `decisions` for a single connection in a background thread.
    pub fn listen(path: &Path, decisions: Vec<Decision>) -> NotifyAgent {
        Self::listen_sessions(path, vec![decisions])
    }

    /// Bind `path` and serve one connection per entry of `sessions`.
    pub fn listen_sessions(path: &Path, sessions: Vec<Vec<Decision>>) -> NotifyAgent {
        let listener = UnixListener::bind(path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        let handle = std::thread::spawn(move || sessions.into_iter().map(|d| serve(&listener, d)).collect());
        NotifyAgent { handle: Some(handle) }
    }

    /// Wait for the agent to finish and return the single session's report.
    pub fn report(self) -> AgentReport {
        let mut all = self.reports();
        assert_eq!(all.len(), 1, "report() is for single-session agents");
        all.remove(0)
    }

    /// Wait for the agent to finish every session.
    pub fn reports(mut self) -> Vec<AgentReport> {
        let h = self.handle.take().expect("reports() called once");
        h.join().expect("agent thread panicked").unwrap_or_else(|e| panic!("seccomp agent: {e}"))
    }
}

fn serve(listener: &UnixListener, decisions: Vec<Decision>) -> Result<AgentReport, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).map_err(|e| format!("recvmsg: {e}"))?;
    let mut notify: Option<OwnedFd> = None;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in our table via SCM_RIGHTS.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                notify.get_or_insert(owned);
            }
        }
    }
    let n = msg.bytes;
    let state: serde_json::Value = serde_json::from_slice(&buf[..n]).map_err(|e| format!("state is not JSON ({e}): {:?}", String::from_utf8_lossy(&buf[..n])))?;
    let notify = notify.ok_or_else(|| format!("no fd came with the state {state}"))?;
    let mut syscalls = Vec::new();
    let mut decisions = decisions.into_iter();
    let mut current = decisions.next();
    while let Some(d) = current.as_ref() {
        // RECV blocks even once every process using the filter is gone; the fd then polls as
        // POLLHUP (seccomp_unotify(2)), which is how the agent knows to stop.
        let mut fds = [nix::poll::PollFd::new(notify.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll of the notify fd: {e}")),
        }
        let revents = fds[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if !revents.contains(nix::poll::PollFlags::POLLIN) {
            break;
        }
        // SAFETY: seccomp_notif is plain old data; the kernel requires it zeroed before RECV.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `req`, which is that size.
        let rc = unsafe { libc::ioctl(notify.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if rc < 0 {
            // EINTR: our own wait was interrupted. ENOENT: the notification vanished between the
            // poll and the RECV because the target's syscall was interrupted by a signal (Go
            // runtimes such as runc's init get SIGURG for preemption); the restarted syscall
            // comes back as a new notification, which this same decision answers.
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR | libc::ENOENT) => continue,
                _ => return Err(format!("NOTIF_RECV: {}", std::io::Error::last_os_error())),
            }
        }
        syscalls.push(req.data.nr);
        // SAFETY: plain old data, filled in below.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        match d {
            Decision::Errno(e) => resp.error = -e,
            Decision::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Decision::Hold { notified, release } => {
                let _ = notified.send(req.pid);
                let _ = release.recv();
                resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            }
        }
        // SAFETY: SEND reads one seccomp_notif_resp from `resp`.
        let rc = unsafe { libc::ioctl(notify.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            // ENOENT: the syscall was interrupted by a signal while it waited (Go runtimes such as
            // runc's init get SIGURG for preemption) and will be restarted as a new notification,
            // which this same decision answers.
            if e.raw_os_error() == Some(libc::ENOENT) {
                continue;
            }
            return Err(format!("NOTIF_SEND: {e}"));
        }
        current = decisions.next();
    }
    Ok(AgentReport { state, syscalls })
}

/// Poll `cond` until it holds (a hang guard of [`crate::runtime_cli::WAIT_LIMIT`], not a timing
/// assertion).
#[track_caller]
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < crate::runtime_cli::WAIT_LIMIT, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A world-writable scratch dir inside `bundle`, for bind-mounting as a control channel.
pub fn ctl_dir(bundle: &crate::bundle::Bundle, name: &str) -> PathBuf {
    let p = bundle.scratch(name);
    fs::create_dir(&p).expect("ctl dir");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).expect("chmod ctl dir");
    p
}

/// Write an executable file (mode 0755).
pub fn write_exec(path: &Path, content: &str) {
    fs::write(path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// The CVE-2019-5736 attacker, run inside a container that shares the target's pid namespace:
/// `sh /attack.sh <pid in the shared pid ns> <tag>`, with a writable /ctl bound from the host.
///   1. tries to open `/proc/<pid>/exe` read-write (and for append) while the target lives;
///   2. holds it open read-only on fd 3 (the original exploit's trick);
///   3. once /ctl/<tag>.go exists — the test creates it after every process executing the binary
///      is gone, so ETXTBSY no longer protects the file — reopens the held fd read-write through
///      `/proc/self/fd/3` and writes to it.
///
/// Steps 1-2 are reported in /ctl/<tag>.grab, step 3 in /ctl/<tag>.result (see [`read_grab`],
/// [`finish`]); each report appears atomically (renamed into place).
pub const ATTACK_SH: &str = r#"
t=$1; tag=$2; out=/ctl/$tag
try() { if err=$( (eval "$1") 2>&1 ); then echo "$2 ok"; else echo "$2 failed: $err"; fi; }
{
  echo "target $t: $(tr '\0' ' ' < /proc/$t/cmdline)"
  echo "exe -> $(readlink /proc/$t/exe 2>&1)"
  try "exec 5<>/proc/$t/exe" live-open-rw
  try "exec 5>>/proc/$t/exe" live-open-append
  if (exec 5</proc/$t/exe) 2>/dev/null; then exec 3</proc/$t/exe; echo "grab ok"; else echo "grab failed: $( (exec 5</proc/$t/exe) 2>&1 )"; fi
} > $out.grab.tmp 2>&1
mv $out.grab.tmp $out.grab
while [ ! -e /ctl/$tag.go ]; do usleep 20000; done
{
  if [ -e /proc/self/fd/3 ]; then
    echo "held -> $(readlink /proc/self/fd/3)"
    if (exec 5<>/proc/self/fd/3) 2>/dev/null; then
      echo "reopen-rw ok"
      exec 4<>/proc/self/fd/3
      if echo PWNED-BY-CVE-2019-5736 >&4; then echo "write ok"; else echo "write failed"; fi
    else
      echo "reopen-rw failed: $( (exec 5<>/proc/self/fd/3) 2>&1 )"
    fi
  else
    echo "nothing held"
  fi
} > $out.result.tmp 2>&1
mv $out.result.tmp $out.result
"#;

/// Capabilities the attacker adds to the defaults so that the target's `PR_SET_DUMPABLE 0` does not
/// hide it and the defence underneath (ETXTBSY, the read-only mount) is what gets tested.
pub const ATTACKER_CAPS: &[&str] = &["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"];

/// Wait for the attacker's steps 1-2 report in `ctl` and return it.
pub fn read_grab(ctl: &Path, tag: &str) -> String {
    let f = ctl.join(format!("{tag}.grab"));
    wait_for(&format!("the attacker to grab {tag}"), || f.exists());
    fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()))
}

/// Let the attacker try step 3 and return its report.
pub fn finish(ctl: &Path, tag: &str) -> String {
    let go = ctl.join(format!("{tag}.go"));
    fs::write(&go, "").unwrap_or_else(|e| panic!("writing {}: {e}", go.display()));
    let f = ctl.join(format!("{tag}.result"));
    wait_for(&format!("the attacker's result for {tag}"), || f.exists());
    fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()))
}

/// The common verdict: the binary copy is unchanged, nothing was opened for writing while the
/// target ran, and the held fd could not be written through. `brisk` adds brisk's own defence:
/// its helper runs from its binary opened in a detached read-only overlayfs, so even with
/// CAP_SYS_PTRACE the held exe cannot be reopened for writing (runc's memfd copy can be, but is
/// sealed).
pub fn assert_blocked(label: &str, brisk: bool, copy: &BinaryCopy, grab: &str, result: &str) {
    eprintln!("RESULT {label}:\n--- grab\n{grab}--- result\n{result}");
    assert_eq!(copy.hash(), copy.original_hash(), "CVE-2019-5736: the runtime binary copy was modified!\n{grab}\n{result}");
    assert!(!result.contains("write ok"), "CVE-2019-5736: a container process wrote through /proc/<pid>/exe:\n{grab}\n{result}");
    assert!(grab.contains("live-open-rw failed") && grab.contains("live-open-append failed"), "the live runtime binary was opened for writing:\n{grab}");
    if brisk {
        assert!(
            grab.contains("grab failed") || result.contains("reopen-rw failed"),
            "brisk: the runtime binary was reopened for writing through a held /proc/<pid>/exe:\n{grab}\n{result}"
        );
    }
}

/// After every process executing the copy is gone the copy itself is writable from the host, so
/// ETXTBSY is not what stops step 3.
pub fn assert_not_busy(copy: &BinaryCopy) {
    wait_for("the runtime binary to stop being executed (ETXTBSY)", || copy.host_can_open_for_write().is_ok());
}

/// `linux.seccomp` sending execve and execveat to the agent at `listener`: the agent can hold the
/// runtime's final execve — the last moment the runtime binary runs inside the container.
pub fn execve_notify_seccomp(listener: &Path) -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener.to_str().expect("utf-8 listener path"),
        "syscalls": [{"names": ["execve", "execveat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// A [`Decision::Hold`] with the receiver of the held pid and the sender whose send (or drop)
/// releases it.
pub fn hold() -> (Decision, std::sync::mpsc::Receiver<u32>, std::sync::mpsc::Sender<()>) {
    let (ntx, nrx) = std::sync::mpsc::channel();
    let (rtx, rrx) = std::sync::mpsc::channel();
    (Decision::Hold { notified: ntx, release: rrx }, nrx, rtx)
}

/// Host-side proof that process `host_pid` executes `copy`: its `/proc/<pid>/exe` is the same
/// inode (a bind mount of the copy, as runc's bindfd uses), the copy seen through an overlayfs
/// (same inode number on the overlay's own device, as brisk's helper and runc 1.2's exeseal use)
/// or has the same content (runc's memfd clone). Says which, or why not.
pub fn exe_is_copy(host_pid: i32, copy: &BinaryCopy) -> Result<&'static str, String> {
    use std::os::unix::fs::MetadataExt;
    let exe = format!("/proc/{host_pid}/exe");
    let got = fs::metadata(&exe).map_err(|e| format!("stat {exe}: {e}"))?;
    let want = fs::metadata(copy.path()).map_err(|e| format!("stat {}: {e}", copy.path().display()))?;
    if (got.dev(), got.ino()) == (want.dev(), want.ino()) {
        return Ok("the copy's inode");
    }
    let overlay = nix::sys::statfs::statfs(exe.as_str()).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    if overlay && got.ino() == want.ino() && got.len() == want.len() {
        return Ok("the copy through an overlayfs");
    }
    let data = fs::read(&exe).map_err(|e| format!("reading {exe}: {e}"))?;
    let hash: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    if hash == copy.original_hash() {
        return Ok("a clone of the copy's content");
    }
    Err(format!("{exe} ({} -> {:?}) is neither the copy {} nor a clone of it", got.ino(), fs::read_link(&exe).ok(), copy.path().display()))
}
