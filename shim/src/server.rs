//! The long-running shim: started by `start` with the listening socket as fd 3, in its own session,
//! cwd = the bundle of the container that started it.
use std::os::fd::FromRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::shim_async::{create_task, Task};
use containerd_shim_protos::ttrpc::r#async::transport::Listener;
use containerd_shim_protos::ttrpc::r#async::Server;

use crate::args::Flags;
use crate::events::Publisher;
use crate::service::{Service, Shared};

/// Env var naming the inherited listening socket fd.
pub const LISTEN_FD_ENV: &str = "BRISK_SHIM_LISTEN_FD";
pub const TASK_V2: &str = "containerd.task.v2.Task";
pub const TASK_V3: &str = "containerd.task.v3.Task";

pub fn run(flags: &Flags) -> i32 {
    crate::logger::init(
        std::path::Path::new("log"),
        flags.debug,
        &flags.namespace,
        &flags.id,
    );
    let fd: i32 = match std::env::var(LISTEN_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(fd) => fd,
        None => {
            eprintln!("containerd-shim-brisk-v2: no action given and no {LISTEN_FD_ENV}: this binary is started by containerd");
            return 2;
        }
    };
    if let Err(e) = crate::reaper::set_subreaper() {
        log::error!("PR_SET_CHILD_SUBREAPER: {e}");
        return 1;
    }
    // One malloc arena: the shim is mostly idle and per-thread arenas of the blocking pool would
    // otherwise dominate its resident memory.
    // SAFETY: mallopt only adjusts allocator parameters; called before any extra thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    // Identified now, while the file is the one `start` bound for this process.
    let socket = (!flags.socket.is_empty())
        .then(|| SocketFile::identify(Path::new(flags.socket.trim_start_matches("unix://"))))
        .and_then(|r| r.map_err(|e| log::warn!("listening socket: {e}")).ok());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(16)
        .thread_keep_alive(Duration::from_secs(5))
        .thread_stack_size(512 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("tokio runtime: {e}");
            return 1;
        }
    };
    let (publisher, drain) = Publisher::new(&ttrpc_address, &flags.namespace);
    let shared = Shared::new(&flags.namespace, publisher);
    shared.set_socket(socket);
    let served = shared.clone();
    let code = rt.block_on(async move {
        let shared = served;
        // SAFETY: `start` passed the listening socket as this fd and nothing else in this process
        // owns it.
        let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        let listener = match Listener::try_from(std_listener) {
            Ok(l) => l,
            Err(e) => {
                log::error!("listening socket fd {fd}: {e}");
                return 1;
            }
        };
        let sigchld = match crate::reaper::sigchld() {
            Ok(s) => s,
            Err(e) => {
                log::error!("SIGCHLD: {e}");
                return 1;
            }
        };
        tokio::spawn(drain.run());
        tokio::spawn(crate::reaper::run(shared.clone(), sigchld));
        let task: Arc<dyn Task + Send + Sync> = Arc::new(Service {
            shared: shared.clone(),
        });
        let mut server = Server::new()
            .add_listener(listener)
            .register_service(services(task));
        if let Err(e) = server.start().await {
            log::error!("ttrpc server: {e}");
            return 1;
        }
        log::info!("serving {TASK_V2} and {TASK_V3} (events to {ttrpc_address})");
        // The Shutdown handler removed the socket file before it replied (see
        // `Shared::begin_shutdown`): from here on no `start` can reach this shim.
        shared.shutdown.notified().await;
        // Let the Shutdown reply leave before the connections are closed.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), server.shutdown()).await;
        0
    });
    // Any other way out (a failed setup) removes it here, if it is still ours.
    shared.remove_socket();
    code
}

/// The shim's listening socket file as `start` bound it. It is removed only while the path still
/// names that file: once a shim has unlinked its socket, the next `start` for the same group binds
/// a new one at the same path, and the old shim must not remove that.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub fn identify(path: &Path) -> std::io::Result<SocketFile> {
        let m = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// Unlink the socket file if it is still this one. Connections already made stay open; new
    /// connects fail with ENOENT, which `start` answers by binding a fresh socket.
    pub fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == (self.dev, self.ino) => {
                match std::fs::remove_file(&self.path) {
                    Ok(()) => log::debug!("removed socket {}", self.path.display()),
                    Err(e) => log::warn!("remove socket {}: {e}", self.path.display()),
                }
            }
            Ok(_) => log::info!(
                "socket {} belongs to a newer shim: left in place",
                self.path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("stat socket {}: {e}", self.path.display()),
        }
    }
}

/// The task service under both names: containerd 1.6/1.7 call `containerd.task.v2.Task`, 2.x
/// `containerd.task.v3.Task`; the messages are identical, only the service name differs.
pub fn services(
    task: Arc<dyn Task + Send + Sync>,
) -> std::collections::HashMap<String, containerd_shim_protos::ttrpc::r#async::Service> {
    let mut all = create_task(task.clone());
    let mut second = create_task(task);
    if let Some(v3) = second.remove(TASK_V3) {
        all.insert(TASK_V2.to_string(), v3);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Publisher;

    #[test]
    fn socket_file_is_removed_only_while_it_is_ours() {
        let dir = std::env::temp_dir().join(format!("brisk-sock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let first = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ours = SocketFile::identify(&path).unwrap();
        ours.remove();
        assert!(!path.exists(), "our own socket is removed");
        // The next shim binds the same path: the old shim's late cleanup must leave it alone.
        let second = std::os::unix::net::UnixListener::bind(&path).unwrap();
        ours.remove();
        assert!(path.exists(), "a newer shim's socket was removed");
        drop((first, second));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn both_task_service_names_are_registered() {
        let (p, _d) = Publisher::new("/nonexistent", "ns");
        let shared = Shared::new("ns", p);
        let s = services(Arc::new(Service { shared }));
        for name in [TASK_V2, TASK_V3] {
            let svc = s.get(name).unwrap_or_else(|| panic!("{name} missing"));
            for m in [
                "Create", "Start", "Delete", "Exec", "Kill", "Wait", "State", "Pids", "Shutdown",
                "Connect",
            ] {
                assert!(svc.methods.contains_key(m), "{name}/{m}");
            }
        }
    }
}
