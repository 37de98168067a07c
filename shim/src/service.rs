//! The Task service: containerd's task API over the brisk runtime.
//!
//! State lives in one table under a std mutex that is never held across an await. Runtime calls
//! block (they talk to the container's init), so they run on tokio's blocking pool. Every event is
//! enqueued while the table lock is held, right where the state change it reports happens, so the
//! queue order is the order of the state changes (see [`crate::events`]).
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use brisk_runtime::cgroups::OomEvent;
use brisk_runtime::{ConsoleSocket, CreateOpts, ExecOpts, Runtime, Stdio};
use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
    PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
    StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest,
    WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::ttrpc::r#async::TtrpcContext;
use containerd_shim_protos::types::task::{ProcessInfo, Status};
use brisk_runtime::signal::Sig;
use nix::sys::signal::Signal;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::errors::{to_ttrpc, Result, ShimError};
use crate::events::{self, Action, ExitInfo, ProcKey, Publisher, Sequencer};
use crate::options::ShimOptions;
use crate::stdio::{self, ProcIo, StdioSpec};

/// A shim-side bundle file recording where the runtime state lives, for the `delete` action
/// (which runs without the Create request).
pub const SHIM_STATE_FILE: &str = "brisk-shim.json";

/// What runc's shim puts in ProcessInfo.info for an exec (ctr task ps shows it).
pub const PROCESS_DETAILS_TYPE: &str = "containerd.runc.v1.ProcessDetails";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BundleRecord {
    pub root: PathBuf,
    pub options: ShimOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Created,
    Running,
    Stopped,
}

#[derive(Debug)]
struct Proc {
    pid: u32,
    pidfd: Option<OwnedFd>,
    state: PState,
    exit: Option<ExitInfo>,
    exit_tx: watch::Sender<Option<ExitInfo>>,
    stdio: StdioSpec,
    raw: (String, String, String),
    io: Option<ProcIo>,
    /// An exec's process spec until it is started.
    spec: Option<oci_spec::runtime::Process>,
}

impl Proc {
    fn new(raw: (String, String, String), stdio: StdioSpec) -> Proc {
        Proc {
            pid: 0,
            pidfd: None,
            state: PState::Created,
            exit: None,
            exit_tx: watch::channel(None).0,
            stdio,
            raw,
            io: None,
            spec: None,
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: String,
    bundle: PathBuf,
    root: PathBuf,
    init: Proc,
    execs: HashMap<String, Proc>,
    seq: Sequencer,
    paused: bool,
    /// IoUid/IoGid: owner of the stdio pipes of the init and of every exec.
    io_ids: (u32, u32),
    oom: Option<brisk_runtime::cgroups::OomWatch>,
    /// The container has its own pid namespace: its init's death kills everything in it. Without
    /// one, the shim kills the rest itself when the init exits (as runc's shim does).
    own_pidns: bool,
    /// The init has been reaped; its exit is being settled (see [`settle_init_exit`]). No exec
    /// may start from here on, as in runc's shim once it has seen the init's exit.
    init_reaped: bool,
}

impl Entry {
    fn proc(&self, exec_id: &str) -> Result<&Proc> {
        if exec_id.is_empty() {
            Ok(&self.init)
        } else {
            self.execs.get(exec_id).ok_or_else(|| {
                ShimError::NotFound(format!("exec {exec_id:?} of container {:?}", self.id))
            })
        }
    }

    fn proc_mut(&mut self, exec_id: &str) -> Result<&mut Proc> {
        if exec_id.is_empty() {
            Ok(&mut self.init)
        } else {
            let id = self.id.clone();
            self.execs
                .get_mut(exec_id)
                .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id:?} of container {id:?}")))
        }
    }

    fn key_proc_mut(&mut self, key: &ProcKey) -> Option<&mut Proc> {
        match key {
            ProcKey::Init => Some(&mut self.init),
            ProcKey::Exec(e) => self.execs.get_mut(e),
        }
    }
}

#[derive(Debug, Default)]
pub struct Tables {
    containers: HashMap<String, Entry>,
    /// Shutdown was accepted: the socket is gone and no container may be created any more.
    closing: bool,
}

/// State shared by the service, the reaper and the server.
#[derive(Debug)]
pub struct Shared {
    pub namespace: String,
    publisher: Publisher,
    tables: Mutex<Tables>,
    /// create/exec calls in flight: their child may be a zombie before its pidfd is registered, so
    /// the reaper leaves unknown zombies alone meanwhile.
    spawning: AtomicUsize,
    pub reap_kick: Notify,
    pub shutdown: Notify,
    /// Woken whenever a start (init or exec) finishes.
    start_done: Notify,
    /// The listening socket file, until it is removed.
    socket: Mutex<Option<crate::server::SocketFile>>,
    /// This value's own Arc, for the tasks an exit starts.
    me: Weak<Shared>,
}

impl Shared {
    pub fn new(namespace: &str, publisher: Publisher) -> Arc<Shared> {
        Arc::new_cyclic(|me| Shared {
            namespace: namespace.to_string(),
            publisher,
            tables: Mutex::new(Tables::default()),
            spawning: AtomicUsize::new(0),
            reap_kick: Notify::new(),
            shutdown: Notify::new(),
            start_done: Notify::new(),
            socket: Mutex::new(None),
            me: me.clone(),
        })
    }

    pub fn set_socket(&self, socket: Option<crate::server::SocketFile>) {
        *self.socket.lock().unwrap_or_else(|p| p.into_inner()) = socket;
    }

    /// Remove the listening socket file (once; only while it is still this shim's).
    pub fn remove_socket(&self) {
        if let Some(s) = self.socket.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.remove();
        }
    }

    /// Shutdown accepted, with the table lock held so no Create slips in: the socket file goes
    /// before the reply, so when containerd's Delete/Shutdown returns no socket is left
    /// (containerd's TestShimDoesNotLeakSockets) and a `start` for the same group cannot connect
    /// to this dying shim and hand containerd its address; it binds a new shim instead. runc's
    /// shim removes its socket from a shutdown callback started before its reply, too.
    fn begin_shutdown(&self, t: &mut Tables) {
        t.closing = true;
        self.remove_socket();
        self.shutdown.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock aborts the process (panic = "abort" in release); in
        // debug builds recover the data rather than wedge every RPC.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spawns_in_flight(&self) -> bool {
        self.spawning.load(Ordering::SeqCst) > 0
    }

    /// Reaper entry: for every tracked process, check its pidfd; return (container, key) pairs
    /// whose exit was collected, after applying them.
    pub fn collect_tracked_exits(&self) {
        let mut t = self.lock();
        let mut found = Vec::new();
        for (cid, e) in t.containers.iter_mut() {
            let keys: Vec<ProcKey> = std::iter::once(ProcKey::Init)
                .chain(e.execs.keys().map(|k| ProcKey::Exec(k.clone())))
                .collect();
            for key in keys {
                if let Some(p) = e.key_proc_mut(&key) {
                    if let Some(info) = try_reap_pidfd(p) {
                        found.push((cid.clone(), key, info));
                    }
                }
            }
        }
        for (cid, key, info) in found {
            self.exit_observed(&mut t, &cid, key, info);
        }
    }

    /// Reaper entry: a zombie with this pid was peeked. If it is tracked, reap it through its pidfd
    /// and return true.
    pub fn reap_tracked_pid(&self, pid: i32) -> bool {
        let mut t = self.lock();
        let mut hit = None;
        'outer: for (cid, e) in t.containers.iter_mut() {
            let keys: Vec<ProcKey> = std::iter::once(ProcKey::Init)
                .chain(e.execs.keys().map(|k| ProcKey::Exec(k.clone())))
                .collect();
            for key in keys {
                if let Some(p) = e.key_proc_mut(&key) {
                    if p.pid as i32 == pid && p.pidfd.is_some() {
                        hit = Some((cid.clone(), key.clone(), try_reap_pidfd(p)));
                        break 'outer;
                    }
                }
            }
        }
        match hit {
            Some((cid, key, Some(info))) => {
                self.exit_observed(&mut t, &cid, key, info);
                true
            }
            Some((_, _, None)) => true,
            None => false,
        }
    }

    fn exit_observed(&self, t: &mut Tables, cid: &str, key: ProcKey, info: ExitInfo) {
        let Some(e) = t.containers.get_mut(cid) else {
            return;
        };
        log::info!(
            "container {cid} process {key:?} pid {} exited with status {}",
            info.pid,
            info.status
        );
        if key == ProcKey::Init {
            if e.init_reaped {
                return;
            }
            e.init_reaped = true;
            // The init's exit is the container's end: it is published only once nothing of the
            // container is left and its output is out (settle_init_exit).
            let drain = e
                .init
                .io
                .as_mut()
                .map(ProcIo::take_output_tasks)
                .unwrap_or_default();
            let leftovers = (!e.own_pidns).then(|| (e.root.clone(), e.id.clone()));
            match self.me.upgrade() {
                Some(shared) => {
                    tokio::spawn(settle_init_exit(
                        shared,
                        cid.to_string(),
                        info,
                        leftovers,
                        drain,
                    ));
                }
                None => self.init_exit_settled(e, info),
            }
            return;
        }
        let actions = e.seq.exited(key, info);
        self.apply(e, actions);
    }

    /// The init's exit, once settled, goes to the sequencer (which still holds it for running
    /// execs and a start in flight).
    fn init_exit_settled(&self, e: &mut Entry, info: ExitInfo) {
        // An OOM kill readies SIGCHLD and the OOM wake-up fd together: TaskOOM goes first.
        if e.oom.as_mut().is_some_and(|w| matches!(w.check(), Some(OomEvent::Oom { .. }))) {
            let actions = e.seq.oom();
            self.apply(e, actions);
        }
        let actions = e.seq.exited(ProcKey::Init, info);
        self.apply(e, actions);
    }

    fn finish_init_exit(&self, cid: &str, info: ExitInfo) {
        let mut t = self.lock();
        if let Some(e) = t.containers.get_mut(cid) {
            self.init_exit_settled(e, info);
        }
    }

    /// Carry out the sequencer's decisions, in order, with the lock held.
    fn apply(&self, e: &mut Entry, actions: Vec<Action>) {
        for a in actions {
            let silent = matches!(a, Action::SilentExit(..));
            match a {
                Action::Exit(key, info) | Action::SilentExit(key, info) => {
                    let cid = e.id.clone();
                    let Some(p) = e.key_proc_mut(&key) else {
                        continue;
                    };
                    p.state = PState::Stopped;
                    p.exit = Some(info);
                    p.pidfd = None;
                    if !silent {
                        let id = match &key {
                            ProcKey::Init => cid.clone(),
                            ProcKey::Exec(x) => x.clone(),
                        };
                        self.publisher.publish(
                            events::TOPIC_EXIT,
                            &TaskExit {
                                container_id: cid,
                                id,
                                pid: info.pid,
                                exit_status: info.status,
                                exited_at: Some(events::timestamp(info.at)).into(),
                                ..Default::default()
                            },
                        );
                    }
                    p.exit_tx.send_replace(Some(info));
                }
                Action::Oom => self.publisher.publish(
                    events::TOPIC_OOM,
                    &TaskOOM {
                        container_id: e.id.clone(),
                        ..Default::default()
                    },
                ),
            }
        }
    }

    /// The OOM wake-up fd fired: enqueue TaskOOM if the counter moved. False once the container or
    /// its cgroup is gone (the monitor stops).
    fn oom_check(&self, cid: &str) -> bool {
        let mut t = self.lock();
        let Some(e) = t.containers.get_mut(cid) else {
            return false;
        };
        let Some(w) = e.oom.as_mut() else {
            return false;
        };
        match w.check() {
            Some(OomEvent::Gone) => false,
            Some(OomEvent::Oom { kills }) => {
                log::info!("container {cid}: OOM ({kills} kills)");
                let actions = e.seq.oom();
                self.apply(e, actions);
                true
            }
            None => true,
        }
    }
}

/// How long the container's leftover processes may take to die after SIGKILL.
const LEFTOVER_WAIT: Duration = Duration::from_secs(5);
/// How long the init's output may take to drain once its writers are gone (runc's shim waits as
/// long for its copies, in Delete). Bounded: a reader that stopped reading must not hold the exit.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Between the init's reaping and its TaskExit. runc's shim (handleInitExit) kills every process
/// left in a container without its own pid namespace (`runc kill --all`) before it publishes the
/// init's exit; brisk also waits until they are gone and the init's output copies have reached
/// EOF, so that when containerd hears of the exit (and closes the container's fifos) everything
/// the container wrote is out and nothing of it runs any more (containerd's
/// TestContainerKillInitPidHost; CRI's "Failed to pipe stdout ... file already closed"). A
/// container with its own pid namespace has no leftovers: the kernel killed them with its init.
async fn settle_init_exit(
    shared: Arc<Shared>,
    cid: String,
    info: ExitInfo,
    leftovers: Option<(PathBuf, String)>,
    drain: Vec<JoinHandle<()>>,
) {
    if let Some((root, id)) = leftovers {
        match tokio::task::spawn_blocking(move || kill_leftovers(&root, &id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("container {cid}: {e}"),
            Err(e) => log::warn!("container {cid}: killing leftover processes: {e}"),
        }
    }
    let drained = tokio::time::timeout(DRAIN_WAIT, async {
        for t in drain {
            let _ = t.await;
        }
    })
    .await;
    if drained.is_err() {
        log::warn!(
            "container {cid}: its output was still being copied {DRAIN_WAIT:?} after its init \
             exited; publishing the exit anyway"
        );
    }
    shared.finish_init_exit(&cid, info);
}

/// SIGKILL every process left in the container's cgroup (frozen meanwhile, so none forks away:
/// runc's `kill --all`) and wait until the cgroup is empty.
fn kill_leftovers(root: &Path, id: &str) -> Result<()> {
    let rt = Runtime::new(root).map_err(ShimError::runtime("open runtime state root"))?;
    let c = match rt.load(id) {
        Ok(c) => c,
        // Deleted already (Delete of a never-started container kills and removes it itself).
        Err(e) if e.kind() == brisk_runtime::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ShimError::runtime("load container")(e)),
    };
    c.kill(Signal::SIGKILL, true)
        .map_err(ShimError::runtime("kill leftover processes"))?;
    let deadline = Instant::now() + LEFTOVER_WAIT;
    loop {
        match c.pids() {
            Ok(p) if p.is_empty() => return Ok(()),
            // No cgroup any more: nothing can be left in it.
            Err(_) => return Ok(()),
            Ok(p) if Instant::now() >= deadline => {
                return Err(ShimError::Internal(format!(
                    "processes {p:?} still alive {LEFTOVER_WAIT:?} after SIGKILL; publishing the \
                     init's exit anyway"
                )))
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

async fn oom_monitor(shared: Arc<Shared>, cid: String, efd: OwnedFd) {
    // SAFETY: the AsyncFd owns the wake-up fd (a dup of the watch's) for its whole life.
    let Ok(afd) = (unsafe { tokio::io::unix::AsyncFd::register(efd) }) else {
        return;
    };
    loop {
        let Ok(mut guard) = afd.readable().await else {
            return;
        };
        // Big enough for an inotify event (v2) as well as an eventfd counter (v1).
        let mut buf = [0u8; 1024];
        match guard
            .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from))
        {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_would_block) => continue,
        }
        if !shared.oom_check(&cid) {
            return;
        }
    }
}

/// waitid(P_PIDFD, WEXITED|WNOHANG): the exit of this process, if it has ended.
fn try_reap_pidfd(p: &mut Proc) -> Option<ExitInfo> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    if p.exit.is_some() {
        return None;
    }
    let fd = p.pidfd.as_ref()?;
    let status = match waitid(
        Id::PIDFd(std::os::fd::AsFd::as_fd(fd)),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
    ) {
        Ok(WaitStatus::Exited(_, code)) => code as u32,
        Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as u32,
        Ok(_) => return None,
        // ECHILD: someone else reaped it (should not happen); report it as killed rather than
        // leaving a waiter hanging forever.
        Err(nix::errno::Errno::ECHILD) => 255,
        Err(_) => return None,
    };
    p.pidfd = None;
    Some(ExitInfo {
        pid: p.pid,
        status,
        at: SystemTime::now(),
    })
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes (pid, flags) and returns a new fd or -1; no pointers involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_signal(fd: &OwnedFd, sig: Sig) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal(pidfd, sig, NULL info, 0 flags); the fd is open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig.number(),
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let r = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ShimError::Internal(format!("blocking task failed: {e}")));
    // Runtime calls (spec parsing, seccomp compilation) allocate far more than the idle shim
    // keeps; give the freed heap back so each shim stays small for the container's lifetime.
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointers are passed.
    unsafe {
        libc::malloc_trim(0);
    }
    r?
}

/// Counts a create/exec in flight for the reaper; kicks the reaper when done.
struct SpawnGuard<'a>(&'a Shared);
impl<'a> SpawnGuard<'a> {
    fn new(s: &'a Shared) -> SpawnGuard<'a> {
        s.spawning.fetch_add(1, Ordering::SeqCst);
        SpawnGuard(s)
    }
}
impl Drop for SpawnGuard<'_> {
    fn drop(&mut self) {
        self.0.spawning.fetch_sub(1, Ordering::SeqCst);
        self.0.reap_kick.notify_one();
    }
}

/// containerd passes the number its client gave: any of 1..=64, real-time signals included
/// (podman's `kill -s 64`), through the runtime's one signal parser.
fn signal_from(n: u32) -> Result<Sig> {
    Sig::from_number(i64::from(n)).map_err(|e| ShimError::InvalidArgument {
        field: "signal",
        reason: e.to_string(),
    })
}

/// Whether config.json gives the container a pid namespace of its own (type pid without a path).
fn own_pid_namespace(bundle: &Path) -> bool {
    let Ok(data) = std::fs::read(bundle.join("config.json")) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else {
        return true;
    };
    v.pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .map(|ns| {
            ns.iter().any(|n| {
                n["type"] == "pid"
                    && n.get("path")
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .is_empty()
            })
        })
        .unwrap_or(false)
}

fn status_of(p: &Proc, paused: bool) -> Status {
    match p.state {
        PState::Created => Status::CREATED,
        PState::Running if paused => Status::PAUSED,
        PState::Running => Status::RUNNING,
        PState::Stopped => Status::STOPPED,
    }
}

/// Stats: the container's cgroup figures in the metrics type of this host (see [`crate::metrics`]).
fn stats(root: &Path, id: &str) -> Result<StatsResponse> {
    let c = Runtime::new(root).and_then(|rt| rt.load(id)).map_err(ShimError::runtime("load container"))?;
    let s = c.stats().map_err(ShimError::runtime("read cgroup stats"))?;
    Ok(StatsResponse { stats: containerd_shim_protos::protobuf::MessageField::some(crate::metrics::to_any(&s)), ..Default::default() })
}

/// Update: `resources` is an Any holding the OCI LinuxResources as JSON (what containerd's
/// `task.Update` and CRI's UpdateContainerResources send).
fn update(root: &Path, id: &str, req: &UpdateTaskRequest) -> Result<()> {
    let any = req.resources.as_ref().ok_or_else(|| ShimError::InvalidArgument { field: "resources", reason: "missing".into() })?;
    let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value).map_err(|e| ShimError::InvalidArgument {
        field: "resources",
        reason: format!("{} is not OCI LinuxResources JSON: {e}", any.type_url),
    })?;
    let c = Runtime::new(root).and_then(|rt| rt.load(id)).map_err(ShimError::runtime("load container"))?;
    c.update(&resources).map_err(ShimError::runtime("update resources"))
}

#[derive(Debug, Clone)]
pub struct Service {
    pub shared: Arc<Shared>,
}

impl Service {
    fn entry_info(&self, id: &str) -> Result<(PathBuf, PathBuf)> {
        let t = self.shared.lock();
        let e = t
            .containers
            .get(id)
            .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
        Ok((e.root.clone(), e.bundle.clone()))
    }

    async fn do_create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        if req.id.is_empty() {
            return Err(ShimError::InvalidArgument {
                field: "id",
                reason: "empty container id".into(),
            });
        }
        if req.bundle.is_empty() {
            return Err(ShimError::InvalidArgument {
                field: "bundle",
                reason: "empty bundle path".into(),
            });
        }
        if !req.checkpoint.is_empty() {
            return Err(ShimError::NotImplemented(
                "restore from checkpoint (no CRIU support)".into(),
            ));
        }
        {
            let t = self.shared.lock();
            if t.closing {
                // Shutdown was accepted and the socket is gone: a container created now would
                // live in a shim that is about to exit.
                return Err(ShimError::FailedPrecondition(format!(
                    "container {:?}: this shim is shutting down",
                    req.id
                )));
            }
            if t.containers.contains_key(&req.id) {
                return Err(ShimError::AlreadyExists(format!("container {:?}", req.id)));
            }
        }
        let opts = crate::options::parse_any(req.options.as_ref())?;
        let ns = self.shared.namespace.clone();
        let root = opts.state_root(&ns);
        let bundle = PathBuf::from(&req.bundle);
        let spec = stdio::parse(&req.stdin, &req.stdout, &req.stderr, req.terminal)?;
        check_create_terminal(&bundle, req.terminal)?;
        let record = BundleRecord {
            root: root.clone(),
            options: opts.clone(),
        };
        write_atomic(
            &bundle.join(SHIM_STATE_FILE),
            &serde_json::to_vec(&record).unwrap_or_default(),
        )?;

        let rootfs = bundle.join("rootfs");
        let mounts = req.rootfs.clone();
        let mounted = !mounts.is_empty();
        if mounted {
            let target = rootfs.clone();
            blocking(move || crate::mount::mount_all(&mounts, &target)).await?;
        }
        let unmount = |rootfs: PathBuf| async move {
            if mounted {
                let _ = blocking(move || crate::mount::unmount_all(&rootfs)).await;
            }
        };

        let guard = SpawnGuard::new(&self.shared);
        let (id, spec2, ns2, root2, bundle2) = (
            req.id.clone(),
            spec.clone(),
            ns.clone(),
            root.clone(),
            bundle.clone(),
        );
        let created = blocking(move || {
            let mut prep = stdio::prepare(&spec2, &id, &ns2, opts.io_uid, opts.io_gid)?;
            let rt = Runtime::new(&root2).map_err(ShimError::runtime("open runtime state root"))?;
            let copts = CreateOpts {
                bundle: bundle2,
                stdio: Stdio {
                    stdin: prep.stdin.take(),
                    stdout: prep.stdout.take(),
                    stderr: prep.stderr.take(),
                },
                console_socket: prep.console_peer.take().map(ConsoleSocket::Connected),
                no_pivot: opts.no_pivot_root,
                no_new_keyring: opts.no_new_keyring,
                systemd_cgroup: opts.systemd_cgroup,
                ..Default::default()
            };
            let mut c = rt
                .create(&id, copts)
                .map_err(ShimError::runtime("create container"))?;
            let pid = c.pid();
            let pidfd = c.take_init_pidfd().or_else(|| pidfd_open(pid));
            let oom = c.oom_watch().ok();
            let oom_fd = oom.as_ref().and_then(|w| std::os::fd::AsFd::as_fd(w).try_clone_to_owned().ok());
            match prep.receive_console() {
                Ok(master) => Ok((pid, pidfd, master, prep, oom, oom_fd)),
                Err(e) => {
                    let _ = c.delete(true);
                    Err(e)
                }
            }
        })
        .await;
        let (pid, pidfd, master, prep, oom_watch, oom_fd) = match created {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                unmount(rootfs).await;
                return Err(e);
            }
        };
        let io = match prep.start(master) {
            Ok(io) => io,
            Err(e) => {
                drop(guard);
                let (id, root) = (req.id.clone(), root.clone());
                let _ = blocking(move || {
                    let rt = Runtime::new(&root)
                        .map_err(ShimError::runtime("open runtime state root"))?;
                    rt.load(&id)
                        .and_then(|c| c.delete(true))
                        .map_err(ShimError::runtime("delete after failed create"))
                })
                .await;
                unmount(rootfs).await;
                return Err(e);
            }
        };
        let mut init = Proc::new(
            (req.stdin.clone(), req.stdout.clone(), req.stderr.clone()),
            spec,
        );
        init.pid = pid as u32;
        init.pidfd = pidfd;
        init.io = Some(io);
        {
            let mut t = self.shared.lock();
            t.containers.insert(
                req.id.clone(),
                Entry {
                    id: req.id.clone(),
                    bundle: bundle.clone(),
                    root,
                    init,
                    execs: HashMap::new(),
                    seq: Sequencer::default(),
                    paused: false,
                    io_ids: (opts.io_uid, opts.io_gid),
                    oom: oom_watch,
                    own_pidns: own_pid_namespace(&bundle),
                    init_reaped: false,
                },
            );
            self.shared.publisher.publish(
                events::TOPIC_CREATE,
                &TaskCreate {
                    container_id: req.id.clone(),
                    bundle: req.bundle.clone(),
                    rootfs: req.rootfs.clone(),
                    io: Some(TaskIO {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                        ..Default::default()
                    })
                    .into(),
                    checkpoint: req.checkpoint.clone(),
                    pid: pid as u32,
                    ..Default::default()
                },
            );
        }
        drop(guard);
        if let Some(fd) = oom_fd {
            tokio::spawn(oom_monitor(self.shared.clone(), req.id.clone(), fd));
        }
        log::info!("created container {} pid {pid}", req.id);
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn do_start(&self, req: StartRequest) -> Result<StartResponse> {
        if req.exec_id.is_empty() {
            self.start_init(&req.id).await
        } else {
            self.start_exec(&req.id, &req.exec_id).await
        }
    }

    async fn start_init(&self, id: &str) -> Result<StartResponse> {
        let root = {
            let mut t = self.shared.lock();
            let e = t
                .containers
                .get_mut(id)
                .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
            match e.init.state {
                PState::Created => {}
                PState::Running => {
                    return Err(ShimError::FailedPrecondition(format!(
                        "container {id:?} was already started"
                    )))
                }
                PState::Stopped => {
                    return Err(ShimError::FailedPrecondition(format!(
                        "container {id:?} is stopped: cannot start"
                    )))
                }
            }
            e.seq.begin_start(ProcKey::Init);
            e.root.clone()
        };
        let cid = id.to_string();
        let res = blocking(move || {
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            rt.load(&cid)
                .and_then(|mut c| c.start())
                .map_err(ShimError::runtime("start container"))
        })
        .await;
        let mut t = self.shared.lock();
        let Some(e) = t.containers.get_mut(id) else {
            return Err(ShimError::NotFound(format!(
                "container {id:?} (deleted while starting)"
            )));
        };
        let pid = e.init.pid;
        let ok = res.is_ok();
        if ok {
            if e.init.state == PState::Created {
                e.init.state = PState::Running;
            }
            self.shared.publisher.publish(
                events::TOPIC_START,
                &TaskStart {
                    container_id: id.to_string(),
                    pid,
                    ..Default::default()
                },
            );
        }
        let actions = e.seq.end_start(ProcKey::Init, ok);
        self.shared.apply(e, actions);
        self.shared.start_done.notify_waiters();
        res.map(|_| StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start_exec(&self, id: &str, exec_id: &str) -> Result<StartResponse> {
        let (root, process, spec, (uid, gid)) = {
            let mut t = self.shared.lock();
            let e = t
                .containers
                .get_mut(id)
                .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
            if e.init.state == PState::Stopped || e.init_reaped || e.seq.init_exit_released() {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {id:?} is stopped: cannot start exec {exec_id:?}"
                )));
            }
            if e.init.state == PState::Created {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {id:?} is not started: cannot start exec {exec_id:?}"
                )));
            }
            let p = e.proc_mut(exec_id)?;
            if p.state != PState::Created {
                return Err(ShimError::FailedPrecondition(format!(
                    "exec {exec_id:?} was already started"
                )));
            }
            let process = p.spec.take().ok_or_else(|| {
                ShimError::Internal(format!("exec {exec_id:?} has no process spec"))
            })?;
            let spec = p.stdio.clone();
            e.seq.begin_start(ProcKey::Exec(exec_id.to_string()));
            (e.root.clone(), process, spec, e.io_ids)
        };
        let guard = SpawnGuard::new(&self.shared);
        let (cid, ns, eid) = (
            id.to_string(),
            self.shared.namespace.clone(),
            exec_id.to_string(),
        );
        let res = blocking(move || {
            let mut prep = stdio::prepare(&spec, &eid, &ns, uid, gid)?;
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            let c = rt
                .load(&cid)
                .map_err(ShimError::runtime("load container"))?;
            let opts = ExecOpts {
                stdio: Stdio {
                    stdin: prep.stdin.take(),
                    stdout: prep.stdout.take(),
                    stderr: prep.stderr.take(),
                },
                console_socket: prep.console_peer.take().map(ConsoleSocket::Connected),
                ..Default::default()
            };
            let spawned = c.exec(&process, opts).map_err(ShimError::runtime("exec"))?;
            let master = prep.receive_console()?;
            Ok((spawned, master, prep))
        })
        .await;
        let key = ProcKey::Exec(exec_id.to_string());
        let mut t = self.shared.lock();
        let Some(e) = t.containers.get_mut(id) else {
            return Err(ShimError::NotFound(format!(
                "container {id:?} (deleted while starting exec)"
            )));
        };
        let out = match res {
            Ok((spawned, master, prep)) => {
                let io = prep.start(master);
                if let Some(p) = e.execs.get_mut(exec_id) {
                    p.pid = spawned.pid as u32;
                    p.pidfd = Some(spawned.pidfd);
                    p.state = PState::Running;
                    p.io = io
                        .map_err(|err| log::warn!("exec {exec_id} stdio: {err}"))
                        .ok();
                }
                self.shared.publisher.publish(
                    events::TOPIC_EXEC_STARTED,
                    &TaskExecStarted {
                        container_id: id.to_string(),
                        exec_id: exec_id.to_string(),
                        pid: spawned.pid as u32,
                        ..Default::default()
                    },
                );
                let actions = e.seq.end_start(key, true);
                self.shared.apply(e, actions);
                self.shared.start_done.notify_waiters();
                Ok(StartResponse {
                    pid: spawned.pid as u32,
                    ..Default::default()
                })
            }
            Err(err) => {
                let actions = e.seq.end_start(key, false);
                self.shared.apply(e, actions);
                self.shared.start_done.notify_waiters();
                Err(err)
            }
        };
        drop(t);
        drop(guard);
        out
    }

    async fn do_delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let id = req.id.as_str();
        if !req.exec_id.is_empty() {
            let mut t = self.shared.lock();
            let e = t
                .containers
                .get_mut(id)
                .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
            let p = e.proc(&req.exec_id)?;
            if p.state == PState::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "exec {:?} is running: cannot delete it",
                    req.exec_id
                )));
            }
            let p = e
                .execs
                .remove(&req.exec_id)
                .ok_or_else(|| ShimError::NotFound(format!("exec {:?}", req.exec_id)))?;
            let exit = p.exit.unwrap_or(ExitInfo {
                pid: p.pid,
                status: 0,
                at: SystemTime::now(),
            });
            return Ok(delete_response(exit));
        }
        let (root, bundle, never_started, mut rx) = {
            let mut t = self.shared.lock();
            let e = t
                .containers
                .get_mut(id)
                .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
            let never_started = e.init.state == PState::Created;
            if e.init.state == PState::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {id:?} is running: kill it before deleting it"
                )));
            }
            if never_started {
                let actions = e.seq.silence_init_exit();
                self.shared.apply(e, actions);
            }
            (
                e.root.clone(),
                e.bundle.clone(),
                never_started,
                e.init.exit_tx.subscribe(),
            )
        };
        let cid = id.to_string();
        blocking(move || {
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            match rt.load(&cid) {
                Ok(c) => c
                    .delete(true)
                    .map_err(ShimError::runtime("delete container")),
                Err(e) if e.kind() == brisk_runtime::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ShimError::runtime("load container")(e)),
            }
        })
        .await?;
        if never_started {
            // The runtime killed the waiting init; let the reaper collect it for the exit status.
            let _ =
                tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|x| x.is_some())).await;
        }
        let rootfs = bundle.join("rootfs");
        blocking(move || crate::mount::unmount_all(&rootfs)).await?;
        let mut t = self.shared.lock();
        let e = t
            .containers
            .remove(id)
            .ok_or_else(|| ShimError::NotFound(format!("container {id:?}")))?;
        let exit = e.init.exit.unwrap_or(ExitInfo {
            pid: e.init.pid,
            status: 128 + 9,
            at: SystemTime::now(),
        });
        self.shared.publisher.publish(
            events::TOPIC_DELETE,
            &TaskDelete {
                container_id: id.to_string(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: Some(events::timestamp(exit.at)).into(),
                id: id.to_string(),
                ..Default::default()
            },
        );
        log::info!("deleted container {id}");
        Ok(delete_response(exit))
    }

    fn do_exec(&self, req: ExecProcessRequest) -> Result<()> {
        if req.exec_id.is_empty() {
            return Err(ShimError::InvalidArgument {
                field: "exec_id",
                reason: "empty exec id".into(),
            });
        }
        let any = req
            .spec
            .as_ref()
            .ok_or_else(|| ShimError::InvalidArgument {
                field: "spec",
                reason: "missing process spec".into(),
            })?;
        let mut process: oci_spec::runtime::Process =
            serde_json::from_slice(&any.value).map_err(|e| ShimError::InvalidArgument {
                field: "spec",
                reason: format!("process spec ({}) is not valid JSON: {e}", any.type_url),
            })?;
        // The request's flag decides, as in containerd's runc shim (pkg/process/init.go exec:
        // `spec.Terminal = r.Terminal`): the Go client sends `terminal: true` with a process spec
        // that says false (`task.Exec(.., cio.NewCreator(cio.WithTerminal))`).
        process.set_terminal(Some(req.terminal));
        let stdio = stdio::parse(&req.stdin, &req.stdout, &req.stderr, req.terminal)?;
        let mut t = self.shared.lock();
        let e = t
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))?;
        if e.execs.contains_key(&req.exec_id) {
            return Err(ShimError::AlreadyExists(format!(
                "exec {:?} in container {:?}",
                req.exec_id, req.id
            )));
        }
        if e.init.state == PState::Stopped || e.init_reaped || e.seq.init_exit_released() {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is stopped: cannot exec",
                req.id
            )));
        }
        let mut p = Proc::new(
            (req.stdin.clone(), req.stdout.clone(), req.stderr.clone()),
            stdio,
        );
        p.spec = Some(process);
        e.execs.insert(req.exec_id.clone(), p);
        self.shared.publisher.publish(
            events::TOPIC_EXEC_ADDED,
            &TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(())
    }

    async fn do_kill(&self, req: KillRequest) -> Result<()> {
        let sig = signal_from(req.signal)?;
        // An exec whose start is in flight is already visible (ps lists it): wait for the start to
        // finish rather than fail, as runc's shim does by holding the process lock while starting.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let done = self.shared.start_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            {
                let t = self.shared.lock();
                let starting = t.containers.get(&req.id).is_some_and(|e| {
                    !req.exec_id.is_empty()
                        && e.seq.is_starting(&ProcKey::Exec(req.exec_id.clone()))
                });
                if !starting {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                break;
            }
        }
        let root = {
            let t = self.shared.lock();
            let e = t
                .containers
                .get(&req.id)
                .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))?;
            if !req.exec_id.is_empty() {
                let p = e.proc(&req.exec_id)?;
                return match (p.state, &p.pidfd) {
                    (PState::Created, _) => Err(ShimError::FailedPrecondition(format!(
                        "exec {:?} has not been started",
                        req.exec_id
                    ))),
                    (PState::Stopped, _) | (PState::Running, None) => Err(ShimError::NotFound(
                        format!("exec {:?}: process already finished", req.exec_id),
                    )),
                    (PState::Running, Some(fd)) => pidfd_signal(fd, sig).map_err(|err| {
                        if err.raw_os_error() == Some(libc::ESRCH) {
                            ShimError::NotFound(format!(
                                "exec {:?}: process already finished",
                                req.exec_id
                            ))
                        } else {
                            ShimError::io("signal exec", &req.exec_id)(err)
                        }
                    }),
                };
            }
            if e.init.state == PState::Stopped && !req.all {
                return Err(ShimError::NotFound(format!(
                    "container {:?}: process already finished",
                    req.id
                )));
            }
            e.root.clone()
        };
        let (id, all) = (req.id.clone(), req.all);
        blocking(move || {
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            rt.load(&id)
                .and_then(|c| c.kill(sig, all))
                .map_err(ShimError::runtime("kill"))
        })
        .await
    }

    async fn do_pids(&self, req: PidsRequest) -> Result<PidsResponse> {
        let (root, _) = self.entry_info(&req.id)?;
        let id = req.id.clone();
        let pids = blocking(move || {
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            rt.load(&id)
                .and_then(|c| c.pids())
                .map_err(ShimError::runtime("list pids"))
        })
        .await?;
        let t = self.shared.lock();
        let e = t
            .containers
            .get(&req.id)
            .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))?;
        let processes = pids
            .into_iter()
            .map(|pid| {
                let mut info = ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                };
                if let Some((eid, _)) = e
                    .execs
                    .iter()
                    .find(|(_, p)| p.pid as i32 == pid && p.state == PState::Running)
                {
                    let d = ProcessDetails {
                        exec_id: eid.clone(),
                        ..Default::default()
                    };
                    info.info = Some(events::to_any(PROCESS_DETAILS_TYPE, &d)).into();
                }
                info
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    async fn pause_resume(&self, id: &str, pause: bool) -> Result<()> {
        let (root, _) = self.entry_info(id)?;
        let cid = id.to_string();
        blocking(move || {
            let rt = Runtime::new(&root).map_err(ShimError::runtime("open runtime state root"))?;
            let mut c = rt
                .load(&cid)
                .map_err(ShimError::runtime("load container"))?;
            if pause {
                c.pause().map_err(ShimError::runtime("pause"))
            } else {
                c.resume().map_err(ShimError::runtime("resume"))
            }
        })
        .await?;
        let mut t = self.shared.lock();
        if let Some(e) = t.containers.get_mut(id) {
            e.paused = pause;
            if pause {
                self.shared.publisher.publish(
                    events::TOPIC_PAUSED,
                    &TaskPaused {
                        container_id: id.to_string(),
                        ..Default::default()
                    },
                );
            } else {
                self.shared.publisher.publish(
                    events::TOPIC_RESUMED,
                    &TaskResumed {
                        container_id: id.to_string(),
                        ..Default::default()
                    },
                );
            }
        }
        Ok(())
    }

    fn do_state(&self, req: &StateRequest) -> Result<StateResponse> {
        let t = self.shared.lock();
        let e = t
            .containers
            .get(&req.id)
            .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))?;
        let p = e.proc(&req.exec_id)?;
        let exit = p.exit;
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: e.bundle.display().to_string(),
            pid: p.pid,
            status: status_of(p, e.paused).into(),
            stdin: p.raw.0.clone(),
            stdout: p.raw.1.clone(),
            stderr: p.raw.2.clone(),
            terminal: p.stdio.terminal,
            exit_status: exit.map(|x| x.status).unwrap_or(0),
            exited_at: exit.map(|x| events::timestamp(x.at)).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    async fn do_wait(&self, req: &WaitRequest) -> Result<WaitResponse> {
        let mut rx = {
            let t = self.shared.lock();
            let e = t
                .containers
                .get(&req.id)
                .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))?;
            e.proc(&req.exec_id)?.exit_tx.subscribe()
        };
        let exit = rx
            .wait_for(|x| x.is_some())
            .await
            .map_err(|_| {
                ShimError::NotFound(format!(
                    "process {:?} of container {:?} went away",
                    req.exec_id, req.id
                ))
            })?
            .unwrap_or(ExitInfo {
                pid: 0,
                status: 0,
                at: SystemTime::now(),
            });
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: Some(events::timestamp(exit.at)).into(),
            ..Default::default()
        })
    }
}

/// For the init process the bundle's `process.terminal` is what the runtime acts on; containerd's
/// runc shim does not rewrite it from CreateTaskRequest.terminal (it only hands runc a console
/// socket), and runc refuses a console socket without `process.terminal` ("cannot use console
/// socket if runc will not detach or allocate tty"). Refused here the same way, with a message
/// naming both, instead of a console socket that never receives a pty. The opposite mismatch is
/// refused by the runtime (`process.terminal` needs a console socket).
fn check_create_terminal(bundle: &Path, terminal: bool) -> Result<()> {
    if !terminal {
        return Ok(());
    }
    let path = bundle.join("config.json");
    let in_spec = std::fs::read(&path)
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|v| v.pointer("/process/terminal")?.as_bool())
        .unwrap_or(false);
    if in_spec {
        return Ok(());
    }
    Err(ShimError::InvalidArgument {
        field: "terminal",
        reason: format!(
            "the request asks for a terminal but {} has process.terminal false (runc: cannot use console socket if runc will not detach or allocate tty)",
            path.display()
        ),
    })
}

fn delete_response(exit: ExitInfo) -> DeleteResponse {
    DeleteResponse {
        pid: exit.pid,
        exit_status: exit.status,
        exited_at: Some(events::timestamp(exit.at)).into(),
        ..Default::default()
    }
}

pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(ShimError::io("write", tmp.display()))?;
    f.write_all(data)
        .map_err(ShimError::io("write", tmp.display()))?;
    f.sync_data()
        .map_err(ShimError::io("sync", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(ShimError::io("rename", path.display()))
}

type R<T> = ttrpc::Result<T>;

#[async_trait]
impl Task for Service {
    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> R<StateResponse> {
        self.do_state(&req).map_err(to_ttrpc)
    }

    async fn create(&self, _ctx: &TtrpcContext, req: CreateTaskRequest) -> R<CreateTaskResponse> {
        log::debug!("create {} bundle {}", req.id, req.bundle);
        self.do_create(req).await.map_err(|e| {
            log::error!("create: {e}");
            to_ttrpc(e)
        })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> R<StartResponse> {
        self.do_start(req).await.map_err(to_ttrpc)
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> R<DeleteResponse> {
        self.do_delete(req).await.map_err(to_ttrpc)
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> R<PidsResponse> {
        self.do_pids(req).await.map_err(to_ttrpc)
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> R<Empty> {
        self.pause_resume(&req.id, true)
            .await
            .map(|_| Empty::new())
            .map_err(to_ttrpc)
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> R<Empty> {
        self.pause_resume(&req.id, false)
            .await
            .map(|_| Empty::new())
            .map_err(to_ttrpc)
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: containerd_shim_protos::api::CheckpointTaskRequest,
    ) -> R<Empty> {
        Err(to_ttrpc(ShimError::NotImplemented(format!(
            "checkpoint of container {:?} (brisk has no CRIU support)",
            req.id
        ))))
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> R<Empty> {
        self.do_kill(req)
            .await
            .map(|_| Empty::new())
            .map_err(to_ttrpc)
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> R<Empty> {
        self.do_exec(req).map(|_| Empty::new()).map_err(to_ttrpc)
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> R<Empty> {
        let t = self.shared.lock();
        let r = t
            .containers
            .get(&req.id)
            .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))
            .and_then(|e| e.proc(&req.exec_id))
            .and_then(|p| match &p.io {
                Some(io) => io.resize(req.width, req.height),
                None => Err(ShimError::FailedPrecondition(
                    "process has no terminal to resize".into(),
                )),
            });
        r.map(|_| Empty::new()).map_err(to_ttrpc)
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> R<Empty> {
        let mut t = self.shared.lock();
        let r = t
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| ShimError::NotFound(format!("container {:?}", req.id)))
            .and_then(|e| e.proc_mut(&req.exec_id))
            .map(|p| {
                if req.stdin {
                    if let Some(io) = p.io.as_mut() {
                        io.close_stdin();
                    }
                }
            });
        r.map(|_| Empty::new()).map_err(to_ttrpc)
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> R<Empty> {
        let r = self
            .entry_info(&req.id)
            .and_then(|(root, _)| update(&root, &req.id, &req));
        r.map(|_| Empty::new()).map_err(to_ttrpc)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> R<WaitResponse> {
        self.do_wait(&req).await.map_err(to_ttrpc)
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> R<StatsResponse> {
        self.entry_info(&req.id)
            .and_then(|(root, _)| stats(&root, &req.id))
            .map_err(to_ttrpc)
    }

    async fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> R<ConnectResponse> {
        let t = self.shared.lock();
        let task_pid = t.containers.get(&req.id).map(|e| e.init.pid).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> R<Empty> {
        let mut t = self.shared.lock();
        if t.containers.is_empty() && !t.closing {
            log::info!("shutdown requested with no container left: exiting");
            self.shared.begin_shutdown(&mut t);
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracked child's exit is collected through its pidfd and attributed (state, waiters,
    /// TaskExit); an untracked child is reaped as an orphan.
    #[test]
    fn reaper_attributes_tracked_exits_and_reaps_orphans() {
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (p, mut drain) = Publisher::new("/nonexistent", "ns");
            let shared = Shared::new("ns", p);
            let tracked = std::process::Command::new("/bin/sh")
                .args(["-c", "exit 3"])
                .spawn()
                .unwrap();
            let orphan = std::process::Command::new("/bin/sh")
                .args(["-c", "exit 0"])
                .spawn()
                .unwrap();
            let (tpid, opid) = (tracked.id() as i32, orphan.id() as i32);
            // The reaper, not std, waits for them.
            std::mem::forget(tracked);
            std::mem::forget(orphan);
            let mut init = Proc::new(Default::default(), stdio::parse("", "", "", false).unwrap());
            init.pid = tpid as u32;
            init.pidfd = pidfd_open(tpid);
            init.state = PState::Running;
            assert!(init.pidfd.is_some());
            let rx = init.exit_tx.subscribe();
            shared.lock().containers.insert(
                "c".into(),
                Entry {
                    id: "c".into(),
                    bundle: PathBuf::new(),
                    root: PathBuf::new(),
                    init,
                    execs: HashMap::new(),
                    seq: Sequencer::default(),
                    paused: false,
                    io_ids: (0, 0),
                    oom: None,
                    own_pidns: true,
                    init_reaped: false,
                },
            );
            let orphan_gone = || {
                matches!(
                    waitid(
                        Id::Pid(nix::unistd::Pid::from_raw(opid)),
                        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
                    ),
                    Err(nix::errno::Errno::ECHILD)
                )
            };
            for _ in 0..3000 {
                crate::reaper::reap_pass(&shared);
                if rx.borrow().is_some() && orphan_gone() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let exit = rx.borrow().expect("tracked exit attributed");
            assert_eq!((exit.pid, exit.status), (tpid as u32, 3));
            assert!(orphan_gone(), "orphan {opid} not reaped");
            assert_eq!(shared.lock().containers["c"].init.state, PState::Stopped);
            assert_eq!(drain.try_next_topic(), Some(events::TOPIC_EXIT));
        });
    }

    #[test]
    fn pid_namespace_detection() {
        let dir = std::env::temp_dir().join(format!("brisk-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write =
            |v: serde_json::Value| std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
        write(serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}));
        assert!(own_pid_namespace(&dir));
        write(
            serde_json::json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}),
        );
        assert!(!own_pid_namespace(&dir));
        write(serde_json::json!({"linux": {"namespaces": [{"type": "mount"}]}}));
        assert!(!own_pid_namespace(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signals_are_validated() {
        assert_eq!(signal_from(9).unwrap(), Sig::KILL);
        assert_eq!(signal_from(34).unwrap().number(), 34);
        assert_eq!(signal_from(64).unwrap().number(), 64);
        assert!(signal_from(0).is_err());
        let e = signal_from(999).unwrap_err();
        assert!(e.to_string().contains("signal"), "{e}");
    }
}
