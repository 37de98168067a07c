//! Drive a runc-compatible CLI (runc itself, or brisk) the way a user would.
//!
//! Every test is written once against [`RuntimeUnderTest`] and instantiated twice by
//! [`runtime_tests!`](crate::runtime_tests): `<name>::runc` against `/usr/sbin/runc` (1.1.5) to prove the
//! test checks real behaviour, and `<name>::brisk` against `BRISK_BIN` (default
//! `target/release/brisk`). Each instance gets a private `--root` temp dir; dropping it force-deletes
//! every container it created or finds in that root, so a failing test leaves no process, cgroup or
//! state dir behind.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::{unique_name, Bundle};

/// The runc the suite compares against.
pub const RUNC_DEFAULT: &str = "/usr/sbin/runc";

/// Upper bound for anything the tests wait on. Only a hang guard: no test asserts on durations.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Which implementation a test instance drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// runc 1.1.5 from Debian (the reference).
    Runc,
    /// The brisk CLI under test.
    Brisk,
}

/// Result of one CLI invocation: exit status plus what it printed.
#[derive(Debug)]
pub struct CmdResult {
    /// The runtime's exit status.
    pub status: ExitStatus,
    /// Everything written to stdout (by the runtime and, for foreground runs, by the container).
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// The command line, for failure messages.
    pub cmdline: String,
}

impl CmdResult {
    fn from_output(out: Output, cmdline: String) -> Self {
        CmdResult {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            cmdline,
        }
    }

    /// Panic (with everything printed) unless the command exited 0. Returns self for chaining.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "`{}` failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panic unless the command exited non-zero. Returns self for chaining.
    #[track_caller]
    pub fn failed(self) -> Self {
        assert!(
            !self.status.success(),
            "`{}` unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The exit code (panics if the runtime was killed by a signal).
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("`{}` died by signal: {}", self.cmdline, self.status))
    }

    /// stdout lines, trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_owned()).collect()
    }
}

/// One runtime binary with a private state root. Dropping it deletes every container it knows of.
#[derive(Debug)]
pub struct RuntimeUnderTest {
    kind: Kind,
    bin: PathBuf,
    // Keeps `root`'s parent alive; `root` is `<dir>/state` so an escaping id like `../x` is observable
    // as `<dir>/x` without touching anything shared.
    dir: tempfile::TempDir,
    root: PathBuf,
    created: Mutex<Vec<String>>,
}

impl RuntimeUnderTest {
    /// runc (`RUNC_BIN`, default `/usr/sbin/runc`).
    pub fn runc() -> Self {
        let bin = std::env::var_os("RUNC_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(RUNC_DEFAULT));
        assert!(
            bin.is_file(),
            "runc not found at {}: install Debian's runc or set RUNC_BIN",
            bin.display()
        );
        Self::with(Kind::Runc, bin)
    }

    /// brisk (`BRISK_BIN`, default `<workspace>/target/release/brisk`). Fails, never skips, when the
    /// binary is missing: a brisk variant that silently passed without brisk would prove nothing.
    pub fn brisk() -> Self {
        let bin = std::env::var_os("BRISK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/brisk")
            });
        assert!(
            bin.is_file(),
            "brisk binary not found at {}: run `make build` (or set BRISK_BIN)",
            bin.display()
        );
        Self::with(Kind::Brisk, bin)
    }

    fn with(kind: Kind, bin: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("brisk-rt-")
            .tempdir()
            .expect("creating runtime temp dir");
        let root = dir.path().join("state");
        fs::create_dir(&root).expect("creating --root dir");
        RuntimeUnderTest {
            kind,
            bin,
            dir,
            root,
            created: Mutex::new(Vec::new()),
        }
    }

    /// Which implementation this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// True for the runc reference instance.
    pub fn is_runc(&self) -> bool {
        self.kind == Kind::Runc
    }

    /// The binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The private `--root` dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The parent of [`Self::root`], private to this instance (for escape checks).
    pub fn root_parent(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh container id, remembered for cleanup.
    pub fn new_id(&self, prefix: &str) -> String {
        let id = unique_name(prefix);
        self.track(&id);
        id
    }

    /// Remember `id` for cleanup (for ids not made by [`Self::new_id`]).
    pub fn track(&self, id: &str) {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.to_owned());
    }

    /// `<bin> --root R` ready for more args.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }

    fn cmdline(&self, args: &[&str]) -> String {
        format!(
            "{} --root {} {}",
            self.bin.display(),
            self.root.display(),
            args.join(" ")
        )
    }

    /// Run `<bin> --root R args...` to completion with stdin from /dev/null and stdout/stderr
    /// captured. Only for commands that leave no container process holding the pipes.
    pub fn cmd(&self, args: &[&str]) -> CmdResult {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.bin.display()));
        CmdResult::from_output(out, self.cmdline(args))
    }

    /// Run with stdout/stderr going to files, for commands that leave a container process behind
    /// holding them (`create`, `run -d`, `exec -d`). The files are `<bundle>/<tag>.out|.err`; the
    /// result holds what was in them when the runtime exited.
    pub fn cmd_to_files(&self, args: &[&str], bundle: &Bundle, tag: &str) -> CmdResult {
        let out_path = bundle.scratch(&format!("{tag}.out"));
        let err_path = bundle.scratch(&format!("{tag}.err"));
        let out = File::create(&out_path).expect("creating stdout file");
        let err = File::create(&err_path).expect("creating stderr file");
        let status = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.bin.display()));
        CmdResult {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            cmdline: self.cmdline(args),
        }
    }

    /// `run --bundle B id` in the foreground; the container's output is captured.
    pub fn run(&self, id: &str, bundle: &Bundle) -> CmdResult {
        self.track(id);
        bundle.write_config();
        self.cmd(&["run", "--bundle", path_str(bundle.path()), id])
    }

    /// `run -d --bundle B id`; the container's stdout/stderr go to `<bundle>/<id>.out|.err`.
    pub fn run_detached(&self, id: &str, bundle: &Bundle) -> CmdResult {
        self.track(id);
        bundle.write_config();
        self.cmd_to_files(
            &["run", "-d", "--bundle", path_str(bundle.path()), id],
            bundle,
            id,
        )
    }

    /// `create --bundle B [extra...] id`; the container's stdout/stderr go to `<bundle>/<id>.out|.err`.
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> CmdResult {
        self.track(id);
        bundle.write_config();
        let mut args = vec!["create", "--bundle", path_str(bundle.path())];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd_to_files(&args, bundle, id)
    }

    /// `create --bundle B id`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> CmdResult {
        self.create_with(id, bundle, &[])
    }

    /// What the container printed so far (after `create`/`run -d`).
    pub fn container_stdout(&self, id: &str, bundle: &Bundle) -> String {
        fs::read_to_string(bundle.scratch(&format!("{id}.out"))).unwrap_or_default()
    }

    /// `start id`.
    pub fn start(&self, id: &str) -> CmdResult {
        self.cmd(&["start", id])
    }

    /// `state id`, parsed. Panics if the command fails or prints invalid JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let r = self.cmd(&["state", id]).ok();
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("`state {id}` printed invalid JSON ({e}):\n{}", r.stdout))
    }

    /// `state id` → `.status`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `kill id [signal]`.
    pub fn kill(&self, id: &str, signal: Option<&str>) -> CmdResult {
        match signal {
            Some(s) => self.cmd(&["kill", id, s]),
            None => self.cmd(&["kill", id]),
        }
    }

    /// `delete id`.
    pub fn delete(&self, id: &str) -> CmdResult {
        self.cmd(&["delete", id])
    }

    /// `delete -f id`.
    pub fn delete_force(&self, id: &str) -> CmdResult {
        self.cmd(&["delete", "-f", id])
    }

    /// `exec id args...` in the foreground.
    pub fn exec(&self, id: &str, args: &[&str]) -> CmdResult {
        let mut a = vec!["exec", id];
        a.extend_from_slice(args);
        self.cmd(&a)
    }

    /// `list --format json`, parsed (runc prints `null` for no containers; that becomes `[]`).
    #[track_caller]
    pub fn list_json(&self) -> Vec<Value> {
        let r = self.cmd(&["list", "--format", "json"]).ok();
        match serde_json::from_str::<Value>(r.stdout.trim()) {
            Ok(Value::Array(v)) => v,
            Ok(Value::Null) => Vec::new(),
            other => panic!("`list --format json` printed {other:?}:\n{}", r.stdout),
        }
    }

    /// Poll `cond` until it holds; panics after [`WAIT_LIMIT`] (a hang guard, not an assertion on time).
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < WAIT_LIMIT, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until `state id` reports `status`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        self.wait_until(&format!("{id} to be {status}"), || {
            self.status(id) == status
        });
    }

    /// Wait until the container's stdout file contains `needle`; returns the whole output.
    #[track_caller]
    pub fn wait_output(&self, id: &str, bundle: &Bundle, needle: &str) -> String {
        let mut out = String::new();
        self.wait_until(&format!("{id} to print {needle:?}"), || {
            out = self.container_stdout(id, bundle);
            out.contains(needle)
        });
        out
    }

    /// Names of entries in the state root mentioning `id` (should be none after a delete or a
    /// failed create).
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let base = id.rsplit('/').next().unwrap_or(id);
        let mut found = Vec::new();
        for dir in [self.root.as_path(), self.dir.path()] {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name != "state" && name.contains(base) {
                        found.push(e.path().display().to_string());
                    }
                }
            }
        }
        found
    }

    /// Assert that no state for `id` remains and that `list` does not show it.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let l = self.leftovers(id);
        assert!(l.is_empty(), "state left behind for {id}: {l:?}");
        let listed: Vec<Value> = self
            .list_json()
            .into_iter()
            .filter(|c| c["id"] == id)
            .collect();
        assert!(listed.is_empty(), "`list` still shows {id}: {listed:?}");
    }
}

impl Drop for RuntimeUnderTest {
    fn drop(&mut self) {
        let mut ids = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        // Anything the runtime recorded that the test did not track (e.g. an id the test didn't
        // expect to be created) is cleaned too.
        if let Ok(rd) = fs::read_dir(&self.root) {
            ids.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        ids.sort();
        ids.dedup();
        for id in ids {
            let _ = self
                .command()
                .args(["delete", "-f", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // TempDir's own drop removes root and its parent.
    }
}

/// A path as &str (test paths are always UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A unix socket that accepts one connection and receives one fd over SCM_RIGHTS, as runc's
/// `--console-socket` protocol sends the pty master.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    handle: Option<JoinHandle<Result<OwnedFd, String>>>,
}

impl ConsoleSocket {
    /// Listen at `path` and accept in a background thread.
    pub fn listen(path: PathBuf) -> Self {
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        let handle = std::thread::spawn(move || -> Result<OwnedFd, String> {
            let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
            recv_fd(stream.as_raw_fd())
        });
        ConsoleSocket {
            path,
            handle: Some(handle),
        }
    }

    /// The socket path to pass as `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The received pty master.
    pub fn master(mut self) -> OwnedFd {
        let h = self.handle.take().expect("master() called once");
        h.join()
            .expect("console socket thread panicked")
            .unwrap_or_else(|e| panic!("console socket: {e}"))
    }
}

fn recv_fd(sock: RawFd) -> Result<OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("recvmsg: {e}"))?;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in our table via SCM_RIGHTS; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("no SCM_RIGHTS fd in the console socket message".into())
}

/// Read a pty master until the slave side is closed everywhere (EIO) or EOF.
pub fn read_pty(master: OwnedFd) -> String {
    let mut f = File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: every slave fd is closed
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Define each listed test function (`fn name(rt: &RuntimeUnderTest)`) twice, as `name::runc` and
/// `name::brisk`. Filter with `cargo test -- runc` or `-- brisk`.
#[macro_export]
macro_rules! runtime_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn runc() {
                    super::$name(&$crate::runtime_cli::RuntimeUnderTest::runc())
                }
                #[test]
                fn brisk() {
                    super::$name(&$crate::runtime_cli::RuntimeUnderTest::brisk())
                }
            }
        )*
    };
}
