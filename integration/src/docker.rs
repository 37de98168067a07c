//! A private Docker daemon (Debian bookworm's docker.io 20.10: /usr/sbin/dockerd and /usr/bin/docker,
//! never the machine's /usr/local/bin/docker) with brisk registered as a runtime, so tests can drive
//! brisk the way Docker users do: dockerd -> its own containerd -> containerd-shim-runc-v2 with
//! `BinaryName` = the runtime binary.
//!
//! Everything the daemon keeps lives in one temporary directory: `--data-root`, `--exec-root` (where
//! dockerd starts its own containerd, with its socket and state), `--pidfile`, the API socket, the
//! daemon.json, and the trust key (daemon.json `deprecated-key-path`, else dockerd writes /etc/docker/key.json).
//! No bridge, no iptables, no forwarding; containers get `--network none`. Containers' cgroups go under
//! a `cgroup-parent` named after the directory. Drop removes the containers, stops dockerd (and with it
//! its containerd and the shims), then kills whatever is left that names the directory, unmounts what
//! is mounted under it, removes the cgroup parent and the directory, even after a failed test.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::containerd::{cmdline, make_temp_dir, mounts_under, proc_pids};
use crate::image;

/// Debian's docker.io daemon and client (`make docker-deps` installs them).
pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";
/// The name brisk is registered under in daemon.json `runtimes`.
pub const BRISK: &str = "brisk";
/// Docker's built-in runtime: `runc` found in dockerd's PATH (set to Debian's directories below, so
/// /usr/sbin/runc, runc 1.1.5).
pub const RUNC: &str = "runc";
/// The tag the busybox rootfs is imported as.
pub const IMAGE: &str = "brisk-busybox:test";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("{path} missing: run `make docker-deps` (Debian's docker.io)")]
    Missing { path: PathBuf },
    #[error("{step} at {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "dockerd at {socket} not ready after {waited:?}: {detail}\n--- dockerd log tail ---\n{log}"
    )]
    NotReady {
        socket: PathBuf,
        waited: Duration,
        detail: String,
        log: String,
    },
    #[error("docker {args:?} failed: {status}\nstdout: {stdout}\nstderr: {stderr}\n--- dockerd log tail ---\n{log}")]
    Docker {
        args: Vec<String>,
        status: ExitStatus,
        stdout: String,
        stderr: String,
        log: String,
    },
    #[error("building the busybox rootfs: {0}")]
    Image(#[from] image::ImageError),
}

/// The brisk binary Docker is to run: `BRISK_BIN`, default `<workspace>/target/release/brisk`.
pub fn brisk_bin() -> PathBuf {
    std::env::var_os("BRISK_BIN").map_or_else(
        || crate::containerd::workspace_dir().join("target/release/brisk"),
        PathBuf::from,
    )
}

/// A running private dockerd; stopped and cleaned up on drop.
#[derive(Debug)]
pub struct Dockerd {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Option<Child>,
    cgroup_parent: String,
    /// /run/docker (and its plugins/) existed before: dockerd creates /run/docker/plugins whatever its
    /// exec-root, so it is removed at the end only when this daemon made it (and it is empty).
    run_docker_existed: bool,
}

impl Dockerd {
    /// Starts dockerd with brisk (at `brisk`) registered, and imports the busybox image as [`IMAGE`].
    pub fn start(brisk: &Path) -> Result<Self, DockerError> {
        for p in [DOCKERD, DOCKER] {
            if !Path::new(p).is_file() {
                return Err(DockerError::Missing { path: p.into() });
            }
        }
        if !brisk.is_file() {
            return Err(DockerError::Missing { path: brisk.into() });
        }
        let dir = make_temp_dir("brisk-docker").map_err(|e| DockerError::Io {
            step: "creating the daemon's directory",
            path: "/tmp".into(),
            source: io::Error::other(e.to_string()),
        })?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut d = Dockerd {
            socket: dir.join("docker.sock"),
            dir,
            daemon: None,
            // Absolute: a relative cgroup-parent is taken relative to the runtime's own cgroup (runc
            // libcontainer), which differs between runtimes and callers.
            cgroup_parent: format!("/{name}"),
            run_docker_existed: Path::new("/run/docker").exists(),
        };
        let config = json!({
            "runtimes": { BRISK: { "path": brisk } },
            "cgroup-parent": d.cgroup_parent,
            "iptables": false,
            "ip-forward": false,
            "ip-masq": false,
            "bridge": "none",
            "userland-proxy": false,
            "storage-driver": "overlay2",
            "log-driver": "json-file",
            "deprecated-key-path": d.dir.join("key.json"),
        });
        let config_path = d.dir.join("daemon.json");
        fs::write(&config_path, config.to_string()).map_err(|source| DockerError::Io {
            step: "writing daemon.json",
            path: config_path.clone(),
            source,
        })?;
        let log_path = d.dir.join("dockerd.log");
        let log = fs::File::create(&log_path).map_err(|source| DockerError::Io {
            step: "creating the dockerd log",
            path: log_path.clone(),
            source,
        })?;
        let log2 = log.try_clone().map_err(|source| DockerError::Io {
            step: "duplicating the dockerd log",
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(&config_path)
            .arg("--data-root")
            .arg(d.dir.join("data"))
            .arg("--exec-root")
            .arg(d.dir.join("exec"))
            .arg("--pidfile")
            .arg(d.dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.socket.display()))
            // Debian's containerd, containerd-shim-runc-v2, runc and docker-init, whatever the caller's PATH.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| DockerError::Io {
                step: "spawning dockerd",
                path: DOCKERD.into(),
                source,
            })?;
        d.daemon = Some(child);
        let start = Instant::now();
        let timeout = Duration::from_secs(60);
        loop {
            let out = d.docker(&["version", "--format", "{{.Server.Version}}"]);
            if out.status.success() {
                break;
            }
            if d.exited() || start.elapsed() > timeout {
                return Err(DockerError::NotReady {
                    socket: d.socket.clone(),
                    waited: start.elapsed(),
                    detail: String::from_utf8_lossy(&out.stderr).into_owned(),
                    log: d.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let tar = d.dir.join("busybox-rootfs.tar");
        image::build_busybox_rootfs_tar(&tar)?;
        let tar_s = tar.to_string_lossy().into_owned();
        d.docker_ok(&["import", &tar_s, IMAGE])?;
        Ok(d)
    }

    /// Has the daemon exited (reaped here)?
    fn exited(&mut self) -> bool {
        match &mut self.daemon {
            None => true,
            Some(c) => !matches!(c.try_wait(), Ok(None)),
        }
    }

    /// A `docker` command against this daemon.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            // No ~/.docker of the caller's (credentials, a context that would override -H).
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .stdin(Stdio::null());
        c
    }

    /// Runs `docker args...`, whatever its status.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap_or_else(|e| Output {
            status: exit_status(127),
            stdout: Vec::new(),
            stderr: format!("spawning {DOCKER}: {e}").into_bytes(),
        })
    }

    /// Runs `docker args...`; its stdout when it succeeds.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String, DockerError> {
        let out = self.docker(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(self.error(args, &out))
        }
    }

    /// The error for a failed `docker args...` run.
    pub fn error(&self, args: &[&str], out: &Output) -> DockerError {
        DockerError::Docker {
            args: args.iter().map(|s| s.to_string()).collect(),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            log: self.log_tail(20),
        }
    }

    /// The last `n` lines of dockerd's log (its containerd logs there too).
    pub fn log_tail(&self, n: usize) -> String {
        let log = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The cgroup-parent the containers' cgroups are under (cgroupfs driver: `/<name>` in each
    /// hierarchy).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Every directory named [`Self::cgroup_parent`] at the top of a cgroup hierarchy.
    fn cgroup_parent_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let Ok(rd) = fs::read_dir(root) else { continue };
            for e in rd.flatten() {
                let p = e.path().join(self.cgroup_parent.trim_start_matches('/'));
                if p.is_dir() {
                    v.push(p);
                }
            }
            let p = Path::new(root).join(self.cgroup_parent.trim_start_matches('/'));
            if p.is_dir() {
                v.push(p);
            }
        }
        v
    }

    fn stop_daemon(&mut self) {
        let Some(child) = &mut self.daemon else {
            return;
        };
        // SIGTERM: dockerd shuts down its containerd (which leaves running shims, killed below).
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let start = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.daemon = None;
    }
}

fn exit_status(code: i32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(code << 8)
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first, while the daemon can still do it properly (shims, mounts, cgroups).
        if !self.exited() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.stop_daemon();
        // dockerd stops its containerd; a shim or containerd that outlived it names our directory
        // (containerd's --config, the shims' -address).
        let dir = self.dir.to_string_lossy().into_owned();
        for pid in proc_pids() {
            if cmdline(pid).iter().any(|a| a.contains(&dir)) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        // Container processes left in the cgroup parent.
        let cgroups = self.cgroup_parent_dirs();
        for _ in 0..50 {
            let mut any = false;
            for cg in &cgroups {
                walk(cg, &mut |d| {
                    for pid in fs::read_to_string(d.join("cgroup.procs"))
                        .unwrap_or_default()
                        .lines()
                    {
                        if let Ok(p) = pid.trim().parse::<i32>() {
                            any = true;
                            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                        }
                    }
                });
            }
            if !any {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for m in mounts_under(&self.dir).into_iter().rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        for cg in &cgroups {
            let mut dirs = Vec::new();
            walk(cg, &mut |d| dirs.push(d.to_path_buf()));
            for d in dirs.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        if !self.run_docker_existed {
            let _ = fs::remove_dir("/run/docker/plugins");
            let _ = fs::remove_dir("/run/docker");
        }
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

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    f(dir);
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), f);
            }
        }
    }
}
