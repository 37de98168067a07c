//! The public lifecycle API: [`Runtime`] (a state root) and [`Container`].
//!
//! Every call here is synchronous and may block (it waits on the container's init over a socket);
//! async callers run it on a blocking thread. None of it forks the calling process: containers are
//! spawned by re-executing a sealed copy of the caller's binary (see [`crate::process`]).
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::Error;
use crate::state::{State, Status};

/// The container's stdio as seen by its init (or an exec'd process). `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Where the pty master goes when the process has `terminal: true`.
#[derive(Debug)]
pub enum ConsoleSocket {
    /// `--console-socket PATH`: a listening unix socket; the master is sent over SCM_RIGHTS.
    Path(PathBuf),
    /// An already connected unix socket (the shim's in-process equivalent).
    Connected(OwnedFd),
}

/// Options for [`Runtime::create`], mirroring `runc create`.
#[derive(Debug, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub stdio: Stdio,
    pub console_socket: Option<ConsoleSocket>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: these fds become 3, 4, ... in the container, in order.
    pub preserve_fds: Vec<OwnedFd>,
    /// The systemd cgroup driver (`runc --systemd-cgroup`, the shim's `SystemdCgroup`):
    /// cgroupsPath is `slice:prefix:name` and the container runs in a transient systemd scope.
    /// Needs systemd as PID 1; without it create fails naming linux.cgroupsPath.
    pub systemd_cgroup: bool,
    /// Rootless mode (`brisk --rootless`, see [`crate::rootless`]): cgroups the user may not
    /// create are left out when no limit needs them, and device rules are not written.
    pub rootless: bool,
}

/// Options for [`Container::exec`].
#[derive(Debug, Default)]
pub struct ExecOpts {
    pub stdio: Stdio,
    pub console_socket: Option<ConsoleSocket>,
    pub preserve_fds: Vec<OwnedFd>,
}

/// runc `exec` options beyond [`ExecOpts`] (which the shim builds field by field).
#[derive(Debug, Default, Clone)]
pub struct ExecExtras {
    /// `--ignore-paused`: exec into a paused container; the process then waits in the frozen
    /// cgroup until the container is resumed.
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`: a sub-cgroup of the container's to join, per v1
    /// controller; the key "" means every hierarchy.
    pub sub_cgroups: std::collections::BTreeMap<String, String>,
}

/// A process spawned into a container. The caller is its parent (the spawn uses CLONE_PARENT), so
/// the caller reaps it; `pidfd` attributes the exit without a pid-reuse race.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// A state root (`--root`).
#[derive(Debug)]
pub struct Runtime {
    root: PathBuf,
}

/// A container known to a [`Runtime`]: its persisted state plus, right after create, the pidfd of
/// its init.
#[derive(Debug)]
pub struct Container {
    pub(crate) root: PathBuf,
    pub(crate) state: State,
    pub(crate) init_pidfd: Option<OwnedFd>,
}

impl Runtime {
    /// A runtime rooted at `root` (created 0700 if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Runtime, Error> {
        let root = root.into();
        crate::state::ensure_root(&root)?;
        Ok(Runtime { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create a container from `opts.bundle`: validate, spawn the init, run the create-time hooks,
    /// and return once the init waits for [`Container::start`]. On error nothing is left behind.
    pub fn create(&self, id: &str, opts: CreateOpts) -> Result<Container, Error> {
        crate::process::create(&self.root, id, opts)
    }

    /// The container `id`, or [`Error::NotFound`].
    pub fn load(&self, id: &str) -> Result<Container, Error> {
        let state = State::load(&self.root, id)?;
        Ok(Container { root: self.root.clone(), state, init_pidfd: None })
    }

    /// Restore container `id` from a CRIU checkpoint (`runc restore`): the bundle's config, the
    /// images in `opts.image_path`; the restored init is the caller's child, like a created one.
    /// On error nothing is left behind (no state dir, cgroup or mount).
    pub fn restore(&self, id: &str, opts: crate::criu::RestoreOpts, systemd_cgroup: bool) -> Result<Container, Error> {
        crate::criu::restore(&self.root, id, opts, systemd_cgroup)
    }

    /// All containers under this root, sorted by id.
    pub fn list(&self) -> Result<Vec<Container>, Error> {
        let mut out = Vec::new();
        for id in crate::state::list_ids(&self.root)? {
            // A container deleted while we list is simply not listed.
            match self.load(&id) {
                Ok(c) => out.push(c),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn bundle(&self) -> &Path {
        &self.state.bundle
    }

    /// The init's pid (0 before it exists).
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// The persisted state record.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The status right now (checks the init process, the exec fifo and the freezer).
    pub fn status(&self) -> Status {
        self.state.current_status(&self.root)
    }

    /// The OCI state JSON object (runtime.md "State").
    pub fn oci_state(&self) -> serde_json::Value {
        self.state.oci_json(self.status())
    }

    /// The init's pidfd as returned by clone3 (only on the value returned by `create`).
    pub fn take_init_pidfd(&mut self) -> Option<OwnedFd> {
        self.init_pidfd.take()
    }

    /// Let the init exec the user process (runtime.md "start"), then run poststart hooks.
    pub fn start(&mut self) -> Result<(), Error> {
        crate::process::start(self)
    }

    /// Send `signal` to the init, or with `all` to every process of the container. Takes a nix
    /// `Signal` or a [`crate::signal::Sig`] (any number 1..=64, real-time signals included).
    pub fn kill(&self, signal: impl Into<crate::signal::Sig>, all: bool) -> Result<(), Error> {
        crate::process::kill(self, Some(signal.into()), all)
    }

    /// Signal 0, kill(2)'s existence check, under [`Container::kill`]'s rules: without `all` an
    /// error if the init is gone; with `all` every process in the cgroup (none is fine, as in runc).
    pub fn kill_probe(&self, all: bool) -> Result<(), Error> {
        crate::process::kill(self, None, all)
    }

    /// Remove the container: with `force` a running one is SIGKILLed first. Runs poststop hooks,
    /// removes its cgroups and its state directory.
    pub fn delete(self, force: bool) -> Result<(), Error> {
        crate::process::delete(self, force)
    }

    /// Run `process` inside the container's namespaces and cgroup.
    pub fn exec(&self, process: &Process, opts: ExecOpts) -> Result<Spawned, Error> {
        crate::process::exec(self, process, opts, &ExecExtras::default())
    }

    /// [`Container::exec`] with runc's further exec options (see [`ExecExtras`]).
    pub fn exec_with(&self, process: &Process, opts: ExecOpts, extras: &ExecExtras) -> Result<Spawned, Error> {
        crate::process::exec(self, process, opts, extras)
    }

    /// Pids of every process in the container (from its cgroup).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        crate::cgroups::pids(&self.state.cgroup)
    }

    /// Checkpoint the container with CRIU (`runc checkpoint`). Without `leave_running` or
    /// `pre_dump` CRIU stops the processes; removing the container is then the caller's step (as
    /// runc's CLI destroys it), so a failed dump leaves it untouched and running.
    pub fn checkpoint(&self, opts: &crate::criu::CheckpointOpts) -> Result<(), Error> {
        crate::criu::checkpoint(self, opts)
    }

    /// Freeze every process of the container.
    pub fn pause(&mut self) -> Result<(), Error> {
        crate::process::set_frozen(self, true)
    }

    /// Thaw a paused container.
    pub fn resume(&mut self) -> Result<(), Error> {
        crate::process::set_frozen(self, false)
    }
}

/// Cgroup operations (stats, live update, OOM watch): thin delegations to [`crate::cgroups`].
impl Container {
    /// Usage figures of the container's cgroups; [`crate::cgroups::Stats::version`] says whether
    /// they are v1 (fill containerd's cgroups.v1.Metrics) or v2 (cgroups.v2.Metrics).
    pub fn stats(&self) -> Result<crate::cgroups::Stats, Error> {
        Ok(crate::cgroups::stats::read(&self.state.cgroup)?)
    }

    /// Change the container's limits live (`runc update`, the shim's Update): fields set in
    /// `resources` are written, the others keep their values.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), Error> {
        let status = self.status();
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(Error::WrongStatus { id: self.id().into(), status: status.to_string(), op: "update" });
        }
        crate::cgroups::validate_resources(resources).map_err(|(field, reason)| crate::cgroups::CgroupError::Field { field, reason })?;
        Ok(crate::cgroups::update(&self.state.cgroup, resources)?)
    }

    /// A pollable OOM notification for the container's memory cgroup (see [`crate::cgroups::oom`]).
    pub fn oom_watch(&self) -> Result<crate::cgroups::OomWatch, Error> {
        Ok(crate::cgroups::OomWatch::new(&self.state.cgroup)?)
    }
}
