//! A private containerd per test: its own root, state, sockets, config and
//! namespace, so tests run side by side with each other and with any system
//! containerd, and leave nothing behind.
//!
//! What a run creates outside its temp dir, and how [`Drop`] finds it again:
//! * shim processes: their command line carries our private `-address`;
//! * container processes: they sit in the cgroups `/<namespace>/<id>` that
//!   `ctr run` asks for, and our namespace name is unique to the instance;
//! * shim sockets: containerd (1.6 to 2.x) and the Rust shim crate hard-code
//!   `/run/containerd/s/<sha256(address/namespace/id)>`, so each container id
//!   the test used (see [`Containerd::new_id`]) names its socket;
//! * runtime state: `/run/containerd/runc/<namespace>` (runc shim default
//!   root) and `/run/containerd/brisk/<namespace>` (brisk shim default root).
//!
//! What each release hands a shim's `start` (observed with the runc shim):
//! * 1.6.20: args `-namespace N -address A -publish-binary B -id ID start`,
//!   env TTRPC_ADDRESS only; the reply is the plain socket address
//!   `unix:///run/containerd/s/<hash>`.
//! * 1.7.24: same args; env adds GRPC_ADDRESS, NAMESPACE, MAX_SHIM_VERSION=2;
//!   the runc shim still replies with the plain address.
//! * 2.1.9: same args and env; the runc shim replies with JSON bootstrap
//!   params `{"version":3,"address":"unix:///run/containerd/s/<hash>","protocol":"ttrpc"}`.
//!
//! `ctr task delete` exits 0 on all three and reports a non-zero exit status
//! only as a warning on stderr ("exit with non-zero exit code N").

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::image::{self, OciImage};

/// The runc shim shipped with each containerd release.
pub const RUNC: &str = "io.containerd.runc.v2";
/// The brisk shim (`containerd-shim-brisk-v2` on PATH).
pub const BRISK: &str = "io.containerd.brisk.v2";
/// Every runtime the ctr tests run against.
pub const RUNTIMES: [&str; 2] = [RUNC, BRISK];

const SHIM_SOCKET_DIR: &str = "/run/containerd/s";
const RUNC_ROOT: &str = "/run/containerd/runc";
/// The brisk shim's default state root (`/run/containerd/brisk/<namespace>`).
const BRISK_ROOT: &str = "/run/containerd/brisk";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Upper bound on one ctr call; a hung shim must fail the test, not hang it.
const CTR_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The containerd releases under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Debian bookworm's containerd, installed at /usr/bin.
    V1_6,
    /// Debian trixie's, unpacked by scripts/fetch-containerd.sh.
    V1_7,
    /// Debian sid's, unpacked by scripts/fetch-containerd.sh.
    V2_1,
}

impl Version {
    pub const ALL: [Version; 3] = [Version::V1_6, Version::V1_7, Version::V2_1];

    /// The exact release (`containerd --version` is checked against it).
    pub fn release(self) -> &'static str {
        match self {
            Version::V1_6 => "1.6.20",
            Version::V1_7 => "1.7.24",
            Version::V2_1 => "2.1.9",
        }
    }

    /// Directory holding `containerd`, `ctr` and `containerd-shim-runc-v2`.
    pub fn bin_dir(self) -> PathBuf {
        match self {
            Version::V1_6 => std::env::var_os("BRISK_CONTAINERD_1_6_BIN")
                .map_or_else(|| PathBuf::from("/usr/bin"), PathBuf::from),
            v => build_dir()
                .join(format!("containerd-{}", v.release()))
                .join("bin"),
        }
    }

    pub fn containerd(self) -> PathBuf {
        self.bin_dir().join("containerd")
    }

    pub fn ctr(self) -> PathBuf {
        self.bin_dir().join("ctr")
    }

    pub fn runc_shim(self) -> PathBuf {
        self.bin_dir().join("containerd-shim-runc-v2")
    }

    /// Config schema: containerd 2.x reads version 3 (plugins were renamed,
    /// e.g. CRI split into io.containerd.cri.v1.*); 1.6 and 1.7 read version 2.
    pub fn config_version(self) -> u32 {
        match self {
            Version::V1_6 | Version::V1_7 => 2,
            Version::V2_1 => 3,
        }
    }

    /// Plugins that would touch host paths or networks outside our dirs, or
    /// that only log errors on this host. CRI stays off unless asked for.
    fn disabled_plugins(self, cri: bool) -> Vec<&'static str> {
        let mut v = vec![
            "io.containerd.nri.v1.nri",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.internal.v1.tracing",
            "io.containerd.tracing.processor.v1.otlp",
        ];
        match self {
            Version::V1_6 | Version::V1_7 => {
                if !cri {
                    v.push("io.containerd.grpc.v1.cri");
                }
            }
            Version::V2_1 => {
                v.push("io.containerd.snapshotter.v1.blockfile");
                v.push("io.containerd.snapshotter.v1.erofs");
                if !cri {
                    v.extend([
                        "io.containerd.grpc.v1.cri",
                        "io.containerd.cri.v1.runtime",
                        "io.containerd.cri.v1.images",
                        "io.containerd.podsandbox.controller.v1.podsandbox",
                    ]);
                }
            }
        }
        v
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.release())
    }
}

/// The workspace root (parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// Where scripts/fetch-containerd.sh unpacks releases (`BRISK_BUILD_DIR` overrides).
pub fn build_dir() -> PathBuf {
    std::env::var_os("BRISK_BUILD_DIR")
        .map_or_else(|| workspace_dir().join(".build"), PathBuf::from)
}

/// The brisk shim binary: `$SHIM_BIN` (the binary or its directory), else
/// `target/release/containerd-shim-brisk-v2`.
pub fn brisk_shim_binary() -> PathBuf {
    const NAME: &str = "containerd-shim-brisk-v2";
    match std::env::var_os("SHIM_BIN").map(PathBuf::from) {
        Some(p) if p.is_dir() => p.join(NAME),
        Some(p) => p,
        None => workspace_dir().join("target/release").join(NAME),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("containerd {version} binary {path} missing (run `make containerd-fetch`)")]
    Missing { version: Version, path: PathBuf },
    #[error("{step} at {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("spawning {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error(
        "containerd {version} at {address} not ready: {detail}\n--- containerd log tail ---\n{log}"
    )]
    NotReady {
        version: Version,
        address: PathBuf,
        detail: String,
        log: String,
    },
    #[error("ctr {args:?} failed: {status}\nstdout: {stdout}\nstderr: {stderr}")]
    Ctr {
        args: Vec<String>,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    #[error("building the busybox image: {0}")]
    Image(#[from] image::ImageError),
    #[error("imported image {reference} not listed by `ctr images ls -q`: {listed:?}")]
    ImageMissing {
        reference: String,
        listed: Vec<String>,
    },
    #[error("no shim process of container {id} (address {address})")]
    NoShim { id: String, address: PathBuf },
    #[error("{what} did not happen within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContainerdError {
    let path = path.to_path_buf();
    move |source| ContainerdError::Io { step, path, source }
}

/// How to start an instance.
#[derive(Debug, Clone)]
pub struct Options {
    pub version: Version,
    /// Leave the CRI plugin enabled.
    pub cri: bool,
    /// `overlayfs` (default) or `native`.
    pub snapshotter: &'static str,
    /// TOML appended to the generated config (e.g. a runtime registration).
    pub extra_config: String,
    /// Files for the config's top-level `imports` (e.g. config/containerd/*.toml).
    pub imports: Vec<PathBuf>,
    /// The `containerd-shim-brisk-v2` put on containerd's PATH instead of [`brisk_shim_binary`]
    /// (CVE-2019-5736 tests point it at a private copy an attack may damage).
    pub brisk_shim: Option<PathBuf>,
    /// A `runc` put first on containerd's PATH, where the runc shim looks for it; unset, the
    /// system's runc is used.
    pub runc_binary: Option<PathBuf>,
}

impl Options {
    pub fn new(version: Version) -> Self {
        Options {
            version,
            cri: false,
            snapshotter: "overlayfs",
            extra_config: String::new(),
            imports: Vec::new(),
            brisk_shim: None,
            runc_binary: None,
        }
    }
}

/// A process-wide count so the last instance can remove the shared
/// /run/containerd directories if it was the one that created them.
static LIVE: Mutex<u32> = Mutex::new(0);
static CREATED_RUN_CONTAINERD: Mutex<Option<bool>> = Mutex::new(None);

/// A private containerd. Dropping it removes everything it made.
#[derive(Debug)]
pub struct Containerd {
    pub opts: Options,
    /// Everything private lives under here.
    pub dir: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub address: PathBuf,
    pub ttrpc_address: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    /// Holds the shim symlinks placed first on containerd's PATH.
    pub path_dir: PathBuf,
    /// FIFOs for ctr's stdio (pass with `--fifo-dir`), instead of /run/containerd/fifo.
    pub fifo_dir: PathBuf,
    /// The containerd namespace every ctr call uses; unique to this instance.
    pub namespace: String,
    child: Option<Child>,
    ids: Mutex<BTreeSet<String>>,
    seq: AtomicU32,
}

impl Containerd {
    /// Starts a private containerd of `version` with CRI disabled.
    pub fn start(version: Version) -> Result<Self, ContainerdError> {
        Self::start_with(Options::new(version))
    }

    pub fn start_with(opts: Options) -> Result<Self, ContainerdError> {
        let v = opts.version;
        for p in [v.containerd(), v.ctr(), v.runc_shim()] {
            if !p.exists() {
                return Err(ContainerdError::Missing {
                    version: v,
                    path: p,
                });
            }
        }
        {
            let mut created = CREATED_RUN_CONTAINERD
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if created.is_none() {
                *created = Some(!Path::new("/run/containerd").exists());
            }
        }
        let dir = make_temp_dir("brisk-ctr")?;
        let suffix = dir
            .file_name()
            .map(|s| {
                s.to_string_lossy()
                    .rsplit('-')
                    .next()
                    .unwrap_or("x")
                    .to_string()
            })
            .unwrap_or_default();
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let mut cd = Containerd {
            root: dir.join("root"),
            state: dir.join("state"),
            address: dir.join("containerd.sock"),
            ttrpc_address: dir.join("containerd.sock.ttrpc"),
            config: dir.join("config.toml"),
            log: dir.join("containerd.log"),
            path_dir: dir.join("bin"),
            fifo_dir: dir.join("fifo"),
            namespace: format!("brisk-{suffix}"),
            dir,
            opts,
            child: None,
            ids: Mutex::new(BTreeSet::new()),
            seq: AtomicU32::new(0),
        };
        // From here on Drop cleans up whatever a failure leaves.
        cd.prepare()?;
        cd.spawn()?;
        Ok(cd)
    }

    fn prepare(&self) -> Result<(), ContainerdError> {
        for d in [&self.root, &self.state, &self.path_dir, &self.fifo_dir] {
            fs::create_dir_all(d).map_err(io_err("creating dir", d))?;
        }
        let runc_link = self.path_dir.join("containerd-shim-runc-v2");
        symlink(self.opts.version.runc_shim(), &runc_link)
            .map_err(io_err("linking runc shim", &runc_link))?;
        // Linked even if not built yet, so a later build is picked up and a
        // missing shim shows up as containerd's own "not found" error.
        let brisk_link = self.path_dir.join("containerd-shim-brisk-v2");
        let brisk = self
            .opts
            .brisk_shim
            .clone()
            .unwrap_or_else(brisk_shim_binary);
        symlink(brisk, &brisk_link).map_err(io_err("linking brisk shim", &brisk_link))?;
        if let Some(runc) = &self.opts.runc_binary {
            let runc_link = self.path_dir.join("runc");
            symlink(runc, &runc_link).map_err(io_err("linking runc", &runc_link))?;
        }
        fs::write(&self.config, self.config_toml())
            .map_err(io_err("writing config", &self.config))?;
        Ok(())
    }

    /// The generated config file's text.
    pub fn config_toml(&self) -> String {
        let v = self.opts.version;
        let q = |p: &Path| toml_str(&p.to_string_lossy());
        let disabled: Vec<String> = v
            .disabled_plugins(self.opts.cri)
            .iter()
            .map(|p| toml_str(p))
            .collect();
        let imports: Vec<String> = self.opts.imports.iter().map(|p| q(p)).collect();
        let mut s = format!(
            "version = {ver}\nroot = {root}\nstate = {state}\nimports = [{imports}]\ndisabled_plugins = [{disabled}]\n\n\
             [grpc]\n  address = {addr}\n\n[ttrpc]\n  address = {ttrpc}\n\n\
             [debug]\n  address = \"\"\n  level = {level}\n\n[metrics]\n  address = \"\"\n\n\
             [plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = {opt}\n",
            ver = v.config_version(),
            root = q(&self.root),
            state = q(&self.state),
            disabled = disabled.join(", "),
            imports = imports.join(", "),
            addr = q(&self.address),
            ttrpc = q(&self.ttrpc_address),
            opt = q(&self.root.join("opt")),
            // BRISK_CONTAINERD_LOG_LEVEL=debug shows event publishing and shim
            // calls in the log that failure messages quote.
            level = toml_str(&std::env::var("BRISK_CONTAINERD_LOG_LEVEL").unwrap_or_else(|_| "info".into())),
        );
        let snap_key = match v.config_version() {
            2 => "io.containerd.grpc.v1.cri\".containerd",
            _ => "io.containerd.cri.v1.images\"",
        };
        if self.opts.cri {
            s.push_str(&format!(
                "  [plugins.\"{snap_key}]\n    snapshotter = {}\n",
                toml_str(self.opts.snapshotter)
            ));
        }
        if !self.opts.extra_config.is_empty() {
            s.push('\n');
            s.push_str(&self.opts.extra_config);
            s.push('\n');
        }
        s
    }

    fn env_path(&self) -> OsString {
        let mut p = OsString::from(self.path_dir.as_os_str());
        p.push(":");
        p.push(self.opts.version.bin_dir());
        p.push(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        p
    }

    fn spawn(&mut self) -> Result<(), ContainerdError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err("opening log", &self.log))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("duplicating log fd", &self.log))?;
        let bin = self.opts.version.containerd();
        let child = Command::new(&bin)
            .arg("--config")
            .arg(&self.config)
            .env("PATH", self.env_path())
            .env("TMPDIR", &self.dir)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| ContainerdError::Spawn { path: bin, source })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), ContainerdError> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.child = None;
                    return Err(self.not_ready(format!("containerd exited: {st}")));
                }
            }
            if self.address.exists() {
                let out = self.ctr_timeout(&["version"], Duration::from_secs(10));
                if out.status.success() {
                    return Ok(());
                }
                last = String::from_utf8_lossy(&out.stderr).into_owned();
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(self.not_ready(format!("`ctr version` still failing: {last}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn not_ready(&self, detail: String) -> ContainerdError {
        ContainerdError::NotReady {
            version: self.opts.version,
            address: self.address.clone(),
            detail,
            log: self.log_tail(40),
        }
    }

    /// Last `n` lines of containerd's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// PID of the containerd we started, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A fresh container id, recorded so Drop can find its shim socket.
    pub fn new_id(&self, stem: &str) -> String {
        let id = format!("{stem}-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        id
    }

    /// Where a shim of container `id` (or of a group named `id`) listens: the socket file both
    /// the runc shim and brisk put in the shared socket directory.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        Path::new(SHIM_SOCKET_DIR).join(shim_socket_hash(
            &self.address.to_string_lossy(),
            &self.namespace,
            id,
        ))
    }

    /// A `ctr` command with our address and namespace; for callers that need
    /// their own stdio (events, pty). Wrap the child in [`ChildGuard`].
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.opts.version.ctr());
        c.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        c.env("PATH", self.env_path())
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE");
        c
    }

    /// Runs `ctr <args>` to completion (killed after 120 s).
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_timeout(args, CTR_TIMEOUT)
    }

    /// Runs ctr and fails unless it exits 0; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> Result<String, ContainerdError> {
        let out = self.ctr(args);
        if !out.status.success() {
            return Err(ContainerdError::Ctr {
                args: args.iter().map(|s| s.to_string()).collect(),
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ctr_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        // stdout/stderr go to files rather than pipes so a ctr that hangs can be
        // killed by deadline without a reader thread per stream.
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("ctr-{n}.out"));
        let err_path = self.dir.join(format!("ctr-{n}.err"));
        let fail = |msg: String| Output {
            status: exit_status(127),
            stdout: Vec::new(),
            stderr: msg.into_bytes(),
        };
        let (out_f, err_f) = match (fs::File::create(&out_path), fs::File::create(&err_path)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return fail(format!(
                    "creating ctr output files in {}: {e}",
                    self.dir.display()
                ))
            }
        };
        let mut child = match self
            .ctr_command(args)
            .stdin(Stdio::null())
            .stdout(out_f)
            .stderr(err_f)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                return fail(format!(
                    "spawning {}: {e}",
                    self.opts.version.ctr().display()
                ))
            }
        };
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() > timeout => {
                    timed_out = true;
                    let _ = child.kill();
                    break child.wait().unwrap_or_else(|_| exit_status(137));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return fail(format!("waiting for ctr: {e}")),
            }
        };
        let stdout = fs::read(&out_path).unwrap_or_default();
        let mut stderr = fs::read(&err_path).unwrap_or_default();
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        if timed_out {
            stderr.extend_from_slice(
                format!("\n[brisk-integration: ctr {args:?} killed after {timeout:?}]\n")
                    .as_bytes(),
            );
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// `containerd config dump` of our config: the merged view (imports included).
    pub fn config_dump(&self) -> Result<String, ContainerdError> {
        let bin = self.opts.version.containerd();
        let out = Command::new(&bin)
            .arg("--config")
            .arg(&self.config)
            .args(["config", "dump"])
            .output()
            .map_err(|source| ContainerdError::Spawn { path: bin, source })?;
        if !out.status.success() {
            return Err(ContainerdError::Ctr {
                args: vec!["containerd".into(), "config".into(), "dump".into()],
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `version` and imports the busybox image; the common test setup.
    pub fn with_busybox(version: Version) -> Result<(Self, String), ContainerdError> {
        let cd = Self::start(version)?;
        let image = cd.import_busybox()?;
        Ok((cd, image))
    }

    /// `ctr run` arguments up to and including the container id: runtime, our
    /// fifo dir, then `extra`, image and id. Append the command.
    pub fn run_args<'a>(
        &'a self,
        runtime: &'a str,
        extra: &[&'a str],
        image: &'a str,
        id: &'a str,
    ) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--runtime",
            runtime,
            "--fifo-dir",
            self.fifo_dir_str(),
        ];
        v.extend_from_slice(extra);
        v.push(image);
        v.push(id);
        v
    }

    pub fn fifo_dir_str(&self) -> &str {
        self.fifo_dir.to_str().unwrap_or("/tmp")
    }

    /// Builds the busybox image into our dir and imports it; returns its reference.
    pub fn import_busybox(&self) -> Result<String, ContainerdError> {
        let img = image::build_busybox_image(&self.dir.join("busybox-oci.tar"))?;
        self.import_image(&img)?;
        Ok(img.reference)
    }

    /// `ctr images import` of an OCI archive. The same flags work on 1.6 to
    /// 2.x: the name comes from the index's io.containerd.image.name annotation
    /// and the image is unpacked. 1.6 has no `--local` (1.7's default output is
    /// the local importer's); 2.x imports through the transfer service unless
    /// `--local`. `--all-platforms` changes nothing for this one-platform
    /// image; `--index-name N` adds an image N for the index on all three.
    pub fn import_image(&self, img: &OciImage) -> Result<(), ContainerdError> {
        let archive = img.archive.to_string_lossy().into_owned();
        self.ctr_ok(&[
            "images",
            "import",
            "--snapshotter",
            self.opts.snapshotter,
            &archive,
        ])?;
        let listed: Vec<String> = self
            .ctr_ok(&["images", "ls", "-q"])?
            .lines()
            .map(str::to_string)
            .collect();
        if !listed.iter().any(|l| l == &img.reference) {
            return Err(ContainerdError::ImageMissing {
                reference: img.reference.clone(),
                listed,
            });
        }
        Ok(())
    }

    /// `ctr task ls` as (id, pid, status) rows.
    pub fn tasks(&self) -> Result<Vec<(String, u32, String)>, ContainerdError> {
        let out = self.ctr_ok(&["task", "ls"])?;
        Ok(out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let id = f.next()?.to_string();
                let pid = f.next()?.parse().ok()?;
                let st = f.next()?.to_string();
                Some((id, pid, st))
            })
            .collect())
    }

    /// Status of task `id` per `ctr task ls` (RUNNING, PAUSED, STOPPED, ...).
    pub fn task_status(&self, id: &str) -> Result<Option<String>, ContainerdError> {
        Ok(self.task(id)?.map(|t| t.2))
    }

    /// The `ctr task ls` row (id, pid, status) of task `id`, if it is listed.
    pub fn task(&self, id: &str) -> Result<Option<(String, u32, String)>, ContainerdError> {
        Ok(self.tasks()?.into_iter().find(|t| t.0 == id))
    }

    /// Polls until task `id` has `status` (bounded, so a hung task fails the test).
    pub fn wait_task_status(&self, id: &str, status: &str) -> Result<(), ContainerdError> {
        wait_for(
            &format!("task {id} reaching {status}"),
            Duration::from_secs(60),
            || Ok(self.task_status(id)?.as_deref() == Some(status)),
        )
    }

    /// Processes whose command line names our private address: our shims.
    pub fn shim_pids(&self) -> Vec<u32> {
        let addr = self.address.to_string_lossy().into_owned();
        let me = std::process::id();
        let ours = self.pid();
        proc_pids()
            .into_iter()
            .filter(|&p| p != me && Some(p) != ours)
            .filter(|&p| {
                let args = cmdline(p);
                // Not ctr itself: it takes --address too, but it is our child
                // and exits by itself.
                !args
                    .first()
                    .is_some_and(|a| a.ends_with("/ctr") || a == "ctr")
                    && args
                        .iter()
                        .any(|a| a == &addr || a.strip_prefix("unix://") == Some(addr.as_str()))
            })
            .collect()
    }

    /// The shim serving container `id`.
    pub fn shim_pid(&self, id: &str) -> Result<u32, ContainerdError> {
        self.shim_pids()
            .into_iter()
            .find(|&p| cmdline(p).windows(2).any(|w| w[0] == "-id" && w[1] == id))
            .ok_or_else(|| ContainerdError::NoShim {
                id: id.to_string(),
                address: self.address.clone(),
            })
    }

    /// SIGKILLs the shim of container `id` and waits until it is gone.
    pub fn kill_shim(&self, id: &str) -> Result<u32, ContainerdError> {
        let pid = self.shim_pid(id)?;
        let pfd = Pidfd::open(pid).map_err(io_err(
            "pidfd_open of the shim",
            Path::new(&format!("/proc/{pid}")),
        ))?;
        pfd.kill(Signal::SIGKILL).map_err(io_err(
            "killing the shim",
            Path::new(&format!("/proc/{pid}")),
        ))?;
        if !pfd.wait_exit(Duration::from_secs(30)) {
            return Err(ContainerdError::Timeout {
                what: format!("shim {pid} exiting after SIGKILL"),
                timeout: Duration::from_secs(30),
            });
        }
        Ok(pid)
    }

    /// SIGKILLs containerd (shims keep running) and starts it again on the same
    /// root, state and sockets.
    pub fn restart(&mut self) -> Result<(), ContainerdError> {
        self.kill_daemon(Signal::SIGKILL, Duration::from_secs(30));
        self.spawn()
    }

    /// Stops the daemon: `sig`, then SIGKILL after `grace`.
    fn kill_daemon(&mut self, sig: Signal, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // The child is ours and not yet reaped, so its pid cannot be reused.
        let _ = nix::sys::signal::kill(pid, sig);
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Mount points under our private dir (deepest last).
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(&self.dir)
    }

    /// The rootfs mount point containerd prepares for container `id`.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.state
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
            .join("rootfs")
    }

    /// Cgroup directories of our namespace, one per hierarchy that has it.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        // A pure cgroup v2 host has one hierarchy, mounted at the root itself.
        let unified = Path::new(CGROUP_ROOT).join(&self.namespace);
        if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
            if unified.is_dir() {
                out.push(unified);
            }
            return out;
        }
        let Ok(rd) = fs::read_dir(CGROUP_ROOT) else {
            return out;
        };
        for e in rd.flatten() {
            let d = e.path().join(&self.namespace);
            if let Ok(real) = fs::canonicalize(&d) {
                if real.is_dir() && seen.insert(real.clone()) {
                    out.push(real);
                }
            }
        }
        out
    }

    /// Processes inside our namespace's cgroups (container processes).
    pub fn cgroup_pids(&self) -> Vec<u32> {
        let mut pids = BTreeSet::new();
        for d in self.cgroup_dirs() {
            walk_dirs(&d, &mut |dir| {
                if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
                    pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
                }
            });
        }
        pids.into_iter().collect()
    }

    fn cleanup_containers(&mut self) {
        if self.child.is_none() {
            return;
        }
        let short = Duration::from_secs(20);
        let Ok(out) = self.ctr_ok(&["task", "ls", "-q"]) else {
            return;
        };
        for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.thaw(id);
            let _ = self.ctr_timeout(&["task", "kill", "-a", "-s", "SIGKILL", id], short);
            let _ = wait_for("task stop", Duration::from_secs(10), || {
                Ok(matches!(
                    self.task_status(id)?.as_deref(),
                    None | Some("STOPPED") | Some("UNKNOWN")
                ))
            });
            let _ = self.ctr_timeout(&["task", "delete", "-f", id], short);
        }
        if let Ok(out) = self.ctr_ok(&["containers", "ls", "-q"]) {
            for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let _ = self.ctr_timeout(&["containers", "delete", id], short);
            }
        }
    }

    /// Resumes a frozen container: SIGKILL is not acted upon while frozen.
    fn thaw(&self, id: &str) {
        let _ = self.ctr_timeout(&["task", "resume", id], Duration::from_secs(10));
        for d in self.cgroup_dirs() {
            let f = d.join(id).join("freezer.state");
            if f.exists() {
                let _ = fs::write(&f, "THAWED");
            }
        }
    }

    fn kill_leftovers(&self) {
        for _round in 0..5 {
            // Cgroup members first: some may be frozen, which SIGKILL won't finish.
            for d in self.cgroup_dirs() {
                walk_dirs(&d, &mut |dir| {
                    let f = dir.join("freezer.state");
                    if f.exists() {
                        let _ = fs::write(&f, "THAWED");
                    }
                    let f = dir.join("cgroup.freeze");
                    if f.exists() {
                        let _ = fs::write(&f, "0");
                    }
                });
            }
            let pids: BTreeSet<u32> = self
                .cgroup_pids()
                .into_iter()
                .chain(self.shim_pids())
                .collect();
            if pids.is_empty() {
                return;
            }
            let fds: Vec<Pidfd> = pids.iter().filter_map(|&p| Pidfd::open(p).ok()).collect();
            for f in &fds {
                let _ = f.kill(Signal::SIGKILL);
            }
            for f in &fds {
                f.wait_exit(Duration::from_secs(5));
            }
        }
    }

    fn remove_cgroups(&self) {
        for d in self.cgroup_dirs() {
            // Children before parents; rmdir only ever removes empty cgroups.
            let mut dirs = Vec::new();
            walk_dirs(&d, &mut |dir| dirs.push(dir.to_path_buf()));
            dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for dir in dirs {
                let _ = fs::remove_dir(&dir);
            }
        }
    }

    fn remove_host_state(&self) {
        let addr = self.address.to_string_lossy().into_owned();
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for id in &ids {
            let sock =
                Path::new(SHIM_SOCKET_DIR).join(shim_socket_hash(&addr, &self.namespace, id));
            let _ = fs::remove_file(&sock);
        }
        for root in [RUNC_ROOT, BRISK_ROOT] {
            let ns_dir = Path::new(root).join(&self.namespace);
            if ns_dir.exists() {
                let _ = fs::remove_dir_all(&ns_dir);
            }
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live = live.saturating_sub(1);
        let created = CREATED_RUN_CONTAINERD
            .lock()
            .map(|c| c.unwrap_or(false))
            .unwrap_or(false);
        if *live == 0 && created {
            // Only if empty: another containerd may have moved in meanwhile.
            for d in [
                SHIM_SOCKET_DIR,
                RUNC_ROOT,
                BRISK_ROOT,
                "/run/containerd/fifo",
                "/run/containerd",
            ] {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.cleanup_containers();
        self.kill_daemon(Signal::SIGTERM, Duration::from_secs(15));
        self.kill_leftovers();
        for m in mounts_under(&self.dir).into_iter().rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        self.remove_cgroups();
        self.remove_host_state();
        if mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "brisk-integration: mounts remain under {}; not removing it",
                self.dir.display()
            );
        }
    }
}

/// `sha256(address/namespace/id)` as containerd and the shim crates name the
/// shim's socket in /run/containerd/s.
pub fn shim_socket_hash(address: &str, namespace: &str, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let p = Path::new(address).join(namespace).join(id);
    Sha256::digest(p.to_string_lossy().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Kills its child (ctr events, ctr run -t ...) when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Waits up to `timeout` for exit; kills the child if it outlives it.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            if start.elapsed() > timeout {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A pidfd: signals and exit waits that cannot hit a recycled pid.
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    pub fn open(pid: u32) -> io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
        // no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    pub fn kill(&self, sig: Signal) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with our valid pidfd, a signal number, a
        // null siginfo (kernel fills the default) and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // ESRCH: already exited; that is what the caller wanted.
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// True once the process has exited (pidfd becomes readable).
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let mut fds = [nix::poll::PollFd::new(
                self.0.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let left = timeout.saturating_sub(start.elapsed());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(n) if n > 0 => return true,
                Ok(_) if start.elapsed() >= timeout => return false,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    pub fn is_alive(&self) -> bool {
        !self.wait_exit(Duration::ZERO)
    }
}

/// Polls `cond` every 50 ms until true or `timeout` elapses.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Result<bool, ContainerdError>,
) -> Result<(), ContainerdError> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(ContainerdError::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exit_status(code: i32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(code << 8)
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Creates a private dir under /tmp (or $BRISK_TEST_TMP): short, because unix
/// socket paths are limited to 108 bytes.
pub fn make_temp_dir(prefix: &str) -> Result<PathBuf, ContainerdError> {
    let base =
        std::env::var_os("BRISK_TEST_TMP").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let template = base.join(format!("{prefix}-XXXXXX"));
    nix::unistd::mkdtemp(&template).map_err(|e| ContainerdError::Io {
        step: "mkdtemp",
        path: template.clone(),
        source: io::Error::from_raw_os_error(e as i32),
    })
}

pub(crate) fn proc_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn walk_dirs(dir: &Path, f: &mut dyn FnMut(&Path)) {
    f(dir);
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk_dirs(&e.path(), f);
            }
        }
    }
}

/// Mount points at or under `dir` in our mount namespace, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (proc(5)).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\134c"), "/tmp/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }

    #[test]
    fn toml_strings_are_quoted_and_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn shim_socket_hash_matches_containerd_scheme() {
        // printf '/run/c.sock/default/x' | sha256sum
        assert_eq!(
            shim_socket_hash("/run/c.sock", "default", "x"),
            "351af489a2b591516329955f945936f2913e5bb8585e11dbb89c877cd861762a"
        );
        assert_ne!(
            shim_socket_hash("/a", "n", "x"),
            shim_socket_hash("/a", "n", "y")
        );
    }
}

/// Generates one `#[test]` per containerd version × runtime for a test body
/// `fn name(version: Version, runtime: &str)`: `name::v1_6_runc`,
/// `name::v2_1_brisk`, ... so each combination passes or fails on its own and
/// can be picked with a filter (`cargo test -- runc`).
#[macro_export]
macro_rules! ctr_matrix {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::containerd::{Version, BRISK, RUNC};
            #[test] fn v1_6_runc() { super::$name(Version::V1_6, RUNC) }
            #[test] fn v1_6_brisk() { super::$name(Version::V1_6, BRISK) }
            #[test] fn v1_7_runc() { super::$name(Version::V1_7, RUNC) }
            #[test] fn v1_7_brisk() { super::$name(Version::V1_7, BRISK) }
            #[test] fn v2_1_runc() { super::$name(Version::V2_1, RUNC) }
            #[test] fn v2_1_brisk() { super::$name(Version::V2_1, BRISK) }
        }
    )+};
}

/// A pty pair for driving `ctr run -t` / `ctr task exec -t`: the slave becomes
/// ctr's stdio, the test reads and writes the master.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    pub fn open() -> io::Result<Self> {
        let p =
            nix::pty::openpty(None, None).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        Ok(Pty {
            master: p.master,
            slave: p.slave,
        })
    }

    /// Spawns `cmd` with the slave as stdin, stdout and stderr.
    pub fn spawn(&self, mut cmd: Command) -> io::Result<ChildGuard> {
        let s = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
        cmd.stdin(s(&self.slave)?)
            .stdout(s(&self.slave)?)
            .stderr(s(&self.slave)?);
        cmd.spawn().map(ChildGuard)
    }

    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() {
            off += nix::unistd::write(&self.master, &data[off..])
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        }
        Ok(())
    }

    /// Reads from the master into `buf` until `pred(buf)` holds, EOF/EIO (slave
    /// closed by everyone) or `timeout`. Returns whether `pred` held.
    pub fn read_until(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
        pred: impl Fn(&[u8]) -> bool,
    ) -> bool {
        let start = Instant::now();
        let mut chunk = [0u8; 4096];
        while !pred(buf) {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => match nix::unistd::read(&self.master, &mut chunk) {
                    Ok(0) | Err(nix::errno::Errno::EIO) => return pred(buf),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => return pred(buf),
                },
                Err(_) => return pred(buf),
            }
        }
        true
    }
}
