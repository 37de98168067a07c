//! Pods through containerd's CRI plugin, driven by a real CRI gRPC client:
//! the `k8s-cri` crate's tonic-generated `runtime.v1` client over containerd's
//! unix socket.
//!
//! [`CriEnv`] is one test's world: a private containerd with CRI enabled that
//! runs inside a [`PrivateNetns`] (so the CNI bridge, veths and hostNetwork
//! pods never touch the host's network), the locally built pause and busybox
//! images imported into CRI's `k8s.io` namespace, a CNI bridge network in a
//! temp dir, and pod cgroups under the harness's own cgroup name.
//!
//! What each release needs (the config is generated per version):
//! * 1.6.20 / 1.7.24 (config v2): everything lives in
//!   `[plugins."io.containerd.grpc.v1.cri"]`: `sandbox_image`,
//!   `restrict_oom_score_adj`, `netns_mounts_under_state_dir`, `.cni`.
//!   An `imports` file that has a `[plugins."io.containerd.grpc.v1.cri"...]`
//!   table replaces the main file's whole CRI section (observed with
//!   `containerd config dump`), so the brisk snippet's tables are inlined.
//! * 2.1.9 (config v3): `io.containerd.cri.v1.images` (`pinned_images.sandbox`),
//!   `io.containerd.cri.v1.runtime` (`restrict_oom_score_adj`, netns, `cni`
//!   with `bin_dirs`), `io.containerd.grpc.v1.cri` (stream server). Imports
//!   merge table by table, so the brisk snippet is imported as a file.

use std::collections::BTreeSet;
use std::fs;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::cni::{self, CniError, CniNetwork, PrivateNetns};
use crate::containerd::{self, Containerd, ContainerdError, Options, Version};
use crate::image;
use crate::pause::{self, PauseError};

pub use k8s_cri::v1;

/// containerd namespace the CRI plugin keeps its containers and images in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// CRI runtime handler names (keys of the `containerd.runtimes` table).
pub const RUNC: &str = "runc";
pub const BRISK: &str = "brisk";
/// libcni's result cache: containerd's go-cni has no setting for it, so CNI
/// ADD writes `<network>-<sandbox id>-<ifname>` here and DEL removes it.
pub const CNI_CACHE_DIR: &str = "/var/lib/cni";
/// Shared host dirs our pods make (libcni's cache, the runtimes' k8s.io
/// state dirs), whether each existed before the first [`CriEnv`] of this
/// process, and how many envs are live: the last one removes, if empty, the
/// dirs that did not exist before.
static HOST_DIRS: Mutex<(Vec<(PathBuf, bool)>, u32)> = Mutex::new((Vec::new(), 0));

/// Children before parents, for removal in this order.
fn shared_host_dirs() -> Vec<PathBuf> {
    let mut v = vec![
        Path::new(CNI_CACHE_DIR).join("results"),
        PathBuf::from(CNI_CACHE_DIR),
    ];
    v.extend(
        RUNTIME_STATE_ROOTS
            .iter()
            .map(|r| Path::new(r).join(CRI_NAMESPACE)),
    );
    v
}
/// Upper bound on one RPC; a hung shim fails the test instead of hanging it.
const RPC_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("starting the tokio runtime for the CRI client: {0}")]
    Runtime(io::Error),
    #[error("connecting to the CRI socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("CRI {method} failed: {status}")]
    Rpc {
        method: &'static str,
        status: tonic::Status,
    },
    #[error("CRI {method} did not answer within {timeout:?}")]
    Timeout {
        method: &'static str,
        timeout: Duration,
    },
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    #[error(transparent)]
    Cni(#[from] CniError),
    #[error(transparent)]
    Pause(#[from] PauseError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error("{step} at {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`ctr -n k8s.io images import {archive}` failed: {detail}")]
    Import { archive: PathBuf, detail: String },
    #[error("{what} did not happen within {timeout:?}: {detail}")]
    NotReady {
        what: String,
        timeout: Duration,
        detail: String,
    },
    #[error("streaming exec at {url}: {detail}")]
    Stream { url: String, detail: String },
    #[error("CRI log {path} line {line}: {detail}: {text:?}")]
    LogFormat {
        path: PathBuf,
        line: usize,
        detail: &'static str,
        text: String,
    },
}

impl CriError {
    /// The gRPC status of a failed RPC.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            CriError::Rpc { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// A blocking CRI client (runtime and image services) on one connection.
#[derive(Debug)]
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects to the CRI gRPC server on unix socket `path` (containerd's
    /// main address).
    pub fn connect(path: &Path) -> Result<Self, CriError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CriError::Runtime)?;
        let sock = path.to_path_buf();
        let channel = rt
            .block_on(async {
                // The URI is required by tonic but unused: the connector dials
                // the socket.
                Endpoint::from_static("http://[::1]:50051")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    }))
                    .await
            })
            .map_err(|source| CriError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(CriClient {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// Runs one RuntimeService RPC to completion (bounded by a timeout).
    pub fn call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, CriError>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.block(method, f(self.runtime.clone()))
    }

    /// Runs one ImageService RPC to completion.
    pub fn call_image<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, CriError>
    where
        F: FnOnce(ImageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.block(method, f(self.images.clone()))
    }

    fn block<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CriError> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(RPC_TIMEOUT, fut).await })
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(CriError::Rpc { method, status }),
            Err(_) => Err(CriError::Timeout {
                method,
                timeout: RPC_TIMEOUT,
            }),
        }
    }

    pub fn version(&self) -> Result<cri::VersionResponse, CriError> {
        self.call("Version", |mut c| async move {
            c.version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
        })
    }

    pub fn status(&self) -> Result<cri::StatusResponse, CriError> {
        self.call("Status", |mut c| async move {
            c.status(cri::StatusRequest { verbose: false }).await
        })
    }

    /// RunPodSandbox; returns the sandbox id.
    pub fn run_pod_sandbox(
        &self,
        config: &cri::PodSandboxConfig,
        handler: &str,
    ) -> Result<String, CriError> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        self.call("RunPodSandbox", |mut c| async move {
            c.run_pod_sandbox(req).await
        })
        .map(|r| r.pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus, CriError> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        };
        let r = self.call("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(req).await
        })?;
        r.status
            .ok_or_else(|| missing("PodSandboxStatus", "status"))
    }

    pub fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats, CriError> {
        let req = cri::PodSandboxStatsRequest {
            pod_sandbox_id: id.to_string(),
        };
        let r = self.call("PodSandboxStats", |mut c| async move {
            c.pod_sandbox_stats(req).await
        })?;
        r.stats.ok_or_else(|| missing("PodSandboxStats", "stats"))
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("StopPodSandbox", |mut c| async move {
            c.stop_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("RemovePodSandbox", |mut c| async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn list_pod_sandbox(&self) -> Result<Vec<cri::PodSandbox>, CriError> {
        self.call("ListPodSandbox", |mut c| async move {
            c.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                .await
        })
        .map(|r| r.items)
    }

    /// CreateContainer; returns the container id.
    pub fn create_container(
        &self,
        pod_id: &str,
        config: &cri::ContainerConfig,
        pod_config: &cri::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        };
        self.call("CreateContainer", |mut c| async move {
            c.create_container(req).await
        })
        .map(|r| r.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<(), CriError> {
        let req = cri::StartContainerRequest {
            container_id: id.to_string(),
        };
        self.call("StartContainer", |mut c| async move {
            c.start_container(req).await
        })
        .map(drop)
    }

    /// StopContainer with a grace period of `timeout_s` seconds before SIGKILL.
    pub fn stop_container(&self, id: &str, timeout_s: i64) -> Result<(), CriError> {
        let req = cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_s,
        };
        self.call("StopContainer", |mut c| async move {
            c.stop_container(req).await
        })
        .map(drop)
    }

    pub fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.call("RemoveContainer", |mut c| async move {
            c.remove_container(req).await
        })
        .map(drop)
    }

    pub fn list_containers(&self) -> Result<Vec<cri::Container>, CriError> {
        self.call("ListContainers", |mut c| async move {
            c.list_containers(cri::ListContainersRequest { filter: None })
                .await
        })
        .map(|r| r.containers)
    }

    pub fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, CriError> {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        let r = self.call("ContainerStatus", |mut c| async move {
            c.container_status(req).await
        })?;
        r.status.ok_or_else(|| missing("ContainerStatus", "status"))
    }

    pub fn container_stats(&self, id: &str) -> Result<cri::ContainerStats, CriError> {
        let req = cri::ContainerStatsRequest {
            container_id: id.to_string(),
        };
        let r = self.call("ContainerStats", |mut c| async move {
            c.container_stats(req).await
        })?;
        r.stats.ok_or_else(|| missing("ContainerStats", "stats"))
    }

    /// UpdateContainerResources with Linux resources (zero fields mean "unchanged" to containerd).
    pub fn update_container_resources(
        &self,
        id: &str,
        linux: cri::LinuxContainerResources,
    ) -> Result<(), CriError> {
        let req = cri::UpdateContainerResourcesRequest {
            container_id: id.to_string(),
            linux: Some(linux),
            ..Default::default()
        };
        self.call("UpdateContainerResources", |mut c| async move {
            c.update_container_resources(req).await
        })?;
        Ok(())
    }

    /// ExecSync with a `timeout_s` second limit inside the runtime.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout_s: i64,
    ) -> Result<cri::ExecSyncResponse, CriError> {
        let req = cri::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        self.call("ExecSync", |mut c| async move { c.exec_sync(req).await })
    }

    /// Exec: returns the streaming URL (stdout and stderr, no stdin/tty).
    pub fn exec_url(&self, id: &str, cmd: &[&str]) -> Result<String, CriError> {
        let req = cri::ExecRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        };
        self.call("Exec", |mut c| async move { c.exec(req).await })
            .map(|r| r.url)
    }

    /// ImageStatus: whether CRI knows image `reference`.
    pub fn image_present(&self, reference: &str) -> Result<bool, CriError> {
        let req = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: reference.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        self.call_image(
            "ImageStatus",
            |mut c| async move { c.image_status(req).await },
        )
        .map(|r| r.image.is_some())
    }
}

fn missing(method: &'static str, field: &str) -> CriError {
    CriError::Rpc {
        method,
        status: tonic::Status::internal(format!("response has no {field}")),
    }
}

/// Where the runc shim and the brisk shim keep per-container state:
/// `<root>/<namespace>/<id>`.
pub const RUNTIME_STATE_ROOTS: [&str; 2] = ["/run/containerd/runc", "/run/containerd/brisk"];

/// Kinds of host state a pod leaves while it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// A shim process (its command line names our containerd's address).
    ShimProcess,
    /// A pod network namespace pinned under containerd's state dir.
    Netns,
    /// A veth in containerd's (private) network namespace.
    Veth,
    /// libcni's cached ADD result for our network.
    CniCache,
    /// A host-local address lease.
    Lease,
    /// A mount under the harness's dir (rootfs, shm, netns pin).
    Mount,
    /// A container cgroup under the harness's cgroup name.
    Cgroup,
    /// A shim bundle dir under containerd's state.
    ShimBundle,
    /// A shim socket in /run/containerd/s.
    ShimSocket,
    /// runc or brisk state of one of our ids.
    RuntimeState,
}

/// CRI settings a test may change.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Clamp the sandbox's oom_score_adj (-998) to containerd's own. Needed
    /// where negative values cannot be set (no CAP_SYS_RESOURCE, as here).
    pub restrict_oom_score_adj: bool,
    /// `key = value` lines for the brisk handler's `options` table (empty: no table).
    pub brisk_options: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            restrict_oom_score_adj: true,
            brisk_options: String::new(),
        }
    }
}

/// Whether this process's children may lower their oom_score_adj (needs
/// CAP_SYS_RESOURCE): probed in a child shell so our own value is untouched.
pub fn can_lower_oom_score_adj() -> bool {
    Command::new("sh")
        .args(["-c", "echo -998 > /proc/self/oom_score_adj"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One test's CRI world. [`CriEnv::finish`] tears it down and reports what
/// was left behind; dropping it without `finish` (a failed test) still
/// removes everything, best effort.
#[derive(Debug)]
pub struct CriEnv {
    pub version: Version,
    pub cri: CriClient,
    /// `None` only while tearing down.
    cd: Option<Containerd>,
    pub net: CniNetwork,
    pub netns: PrivateNetns,
    /// Our temp dir: images, CNI config and leases, pod log dirs.
    pub dir: PathBuf,
    pub pause_image: String,
    pub busybox_image: String,
    /// Every sandbox and container id seen, for the host-state checks.
    ids: Mutex<BTreeSet<String>>,
    seq: std::sync::atomic::AtomicU32,
    /// Last field: released after containerd is gone.
    _host_dirs: HostDirsHold,
}

impl CriEnv {
    /// Starts containerd `version` with CRI on, CNI and images ready.
    pub fn start(version: Version) -> Result<Self, CriError> {
        Self::start_with(version, Settings::default())
    }

    /// [`CriEnv::start`] with non-default CRI settings.
    pub fn start_with(version: Version, settings: Settings) -> Result<Self, CriError> {
        cni::check_plugins()?;
        let hold = HostDirsHold::acquire();
        let dir = containerd::make_temp_dir("brisk-cri")?;
        match Self::start_in(version, settings, &dir, hold) {
            Ok(env) => Ok(env),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn start_in(
        version: Version,
        settings: Settings,
        dir: &Path,
        hold: HostDirsHold,
    ) -> Result<Self, CriError> {
        let suffix = dir
            .file_name()
            .map(|s| {
                s.to_string_lossy()
                    .rsplit('-')
                    .next()
                    .unwrap_or("x")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let net = CniNetwork::write(dir, &format!("brisk-{suffix}"))?;
        let pause_img = pause::build_pause_image(dir)?;
        let busybox_img = image::build_busybox_image(&dir.join("busybox-oci.tar"))?;
        let opts = cri_options(version, &net, settings)?;
        let (netns, cd) = PrivateNetns::create_and_run(move || Containerd::start_with(opts))?;
        let cd = cd?;
        let cri = CriClient::connect(&cd.address)?;
        let env = CriEnv {
            version,
            cri,
            cd: Some(cd),
            net,
            netns,
            dir: dir.to_path_buf(),
            pause_image: pause_img.reference.clone(),
            busybox_image: busybox_img.reference.clone(),
            ids: Mutex::new(BTreeSet::new()),
            seq: std::sync::atomic::AtomicU32::new(0),
            _host_dirs: hold,
        };
        // From here on Drop cleans up.
        for img in [&pause_img, &busybox_img] {
            env.import(&img.archive)?;
        }
        env.wait_ready()?;
        Ok(env)
    }

    /// The private containerd.
    pub fn cd(&self) -> &Containerd {
        // Only `finish`/Drop take it, and they consume or end `self`.
        self.cd
            .as_ref()
            .unwrap_or_else(|| unreachable!("containerd taken"))
    }

    /// `ctr -n k8s.io images import`: the harness's ctr helpers use its own
    /// namespace, CRI only sees `k8s.io`.
    fn import(&self, archive: &Path) -> Result<(), CriError> {
        let cd = self.cd();
        let out = Command::new(cd.opts.version.ctr())
            .arg("--address")
            .arg(&cd.address)
            .args(["--namespace", CRI_NAMESPACE, "images", "import"])
            .args(["--snapshotter", cd.opts.snapshotter])
            .arg(archive)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .output()
            .map_err(|e| CriError::Import {
                archive: archive.to_path_buf(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(CriError::Import {
                archive: archive.to_path_buf(),
                detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(())
    }

    /// Waits for RuntimeReady and NetworkReady and for CRI to see both images.
    fn wait_ready(&self) -> Result<(), CriError> {
        let start = Instant::now();
        loop {
            let mut detail = String::new();
            match self.cri.status() {
                Ok(st) => {
                    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
                    let ready = |t: &str| conds.iter().any(|c| c.r#type == t && c.status);
                    if !(ready("RuntimeReady") && ready("NetworkReady")) {
                        detail = format!("conditions {conds:?}");
                    }
                }
                Err(e) => detail = e.to_string(),
            }
            if detail.is_empty() {
                for img in [&self.pause_image, &self.busybox_image] {
                    match self.cri.image_present(img) {
                        Ok(true) => {}
                        Ok(false) => detail = format!("CRI does not list image {img} yet"),
                        Err(e) => detail = e.to_string(),
                    }
                }
            }
            if detail.is_empty() {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(CriError::NotReady {
                    what: "CRI runtime, network and images ready".into(),
                    timeout: READY_TIMEOUT,
                    detail: format!("{detail}\n--- containerd log ---\n{}", self.log_tail(40)),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.cd.as_ref().map(|c| c.log_tail(n)).unwrap_or_default()
    }

    fn next(&self) -> u32 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A pod config: its own log dir under ours, cgroups under the harness's
    /// cgroup name (so its Drop finds them), host or CNI network, a private
    /// PID namespace per container and a shared IPC namespace.
    pub fn pod_config(
        &self,
        name: &str,
        host_network: bool,
    ) -> Result<cri::PodSandboxConfig, CriError> {
        self.pod_config_with(name, host_network, cri::NamespaceMode::Container)
    }

    /// [`CriEnv::pod_config`] with the PID namespace mode: `Container` (one
    /// per container, the kubelet default) or `Pod` (shared, with the pause
    /// process as PID 1: `shareProcessNamespace: true`).
    pub fn pod_config_with(
        &self,
        name: &str,
        host_network: bool,
        pid: cri::NamespaceMode,
    ) -> Result<cri::PodSandboxConfig, CriError> {
        let n = self.next();
        let log_dir = self.dir.join("logs").join(format!("{name}-{n}"));
        fs::create_dir_all(&log_dir).map_err(|source| CriError::Io {
            step: "creating the pod log dir",
            path: log_dir.clone(),
            source,
        })?;
        let network = if host_network {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        };
        Ok(cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.to_string(),
                uid: format!("{name}-uid-{n}"),
                namespace: "brisk-test".into(),
                attempt: 0,
            }),
            hostname: if host_network {
                String::new()
            } else {
                name.to_string()
            },
            log_directory: log_dir.to_string_lossy().into_owned(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("/{}", self.cd().namespace),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(network, pid)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// A busybox container config running `command`, logging to `<name>.log`
    /// in the pod's log dir, in the pod's namespaces.
    pub fn container_config(
        &self,
        name: &str,
        command: &[&str],
        pod: &cri::PodSandboxConfig,
    ) -> cri::ContainerConfig {
        let ns = pod
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: self.busybox_image.clone(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: None,
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: ns,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox, remembering the id for the leftover checks.
    pub fn run_pod(
        &self,
        config: &cri::PodSandboxConfig,
        handler: &str,
    ) -> Result<String, CriError> {
        let id = self.cri.run_pod_sandbox(config, handler)?;
        self.remember(&id);
        Ok(id)
    }

    /// CreateContainer + StartContainer.
    pub fn start_container(
        &self,
        pod_id: &str,
        config: &cri::ContainerConfig,
        pod: &cri::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let id = self.cri.create_container(pod_id, config, pod)?;
        self.remember(&id);
        self.cri.start_container(&id)?;
        Ok(id)
    }

    fn remember(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string());
    }

    /// The shim processes of this containerd as (pid, binary name): the
    /// basename of each one's argv[0].
    pub fn shims(&self) -> Vec<(u32, String)> {
        self.cd()
            .shim_pids()
            .into_iter()
            .map(|pid| {
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let argv0 = cmd.split(|&b| b == 0).next().unwrap_or_default();
                let name = String::from_utf8_lossy(argv0);
                (pid, name.rsplit('/').next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// Polls ContainerStatus until `pred` holds (bounded).
    pub fn wait_container(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&cri::ContainerStatus) -> bool,
    ) -> Result<cri::ContainerStatus, CriError> {
        let timeout = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            let st = self.cri.container_status(id)?;
            if pred(&st) {
                return Ok(st);
            }
            if start.elapsed() > timeout {
                return Err(CriError::NotReady {
                    what: format!("container {id}: {what}"),
                    timeout,
                    detail: format!("last status {st:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the container's CRI log file until a line's content is `want`.
    pub fn wait_log_line(&self, path: &Path, want: &str) -> Result<Vec<CriLogLine>, CriError> {
        let timeout = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines = parse_cri_log(path, &text)?;
            if lines.iter().any(|l| l.content == want) {
                return Ok(lines);
            }
            if start.elapsed() > timeout {
                return Err(CriError::NotReady {
                    what: format!("log line {want:?} in {}", path.display()),
                    timeout,
                    detail: format!("log so far: {text:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Exec through the CRI streaming server: fetches the URL with the Exec
    /// RPC and drives it with the Kubernetes websocket channel protocol
    /// (v4.channel.k8s.io) from inside containerd's network namespace, where
    /// the stream server listens on 127.0.0.1.
    pub fn exec_stream(&self, container_id: &str, cmd: &[&str]) -> Result<StreamExec, CriError> {
        let url = self.cri.exec_url(container_id, cmd)?;
        let u = url.clone();
        self.netns.run_in(move || ws_exec(&u))?
    }

    /// Stops and removes every pod CRI still has, remembering their ids.
    fn remove_all(&self) -> Vec<String> {
        let mut errs = Vec::new();
        match self.cri.list_containers() {
            Ok(cs) => {
                for c in cs {
                    self.remember(&c.id);
                    errs.push(format!(
                        "container {} ({:?}) still listed",
                        c.id, c.metadata
                    ));
                    let _ = self.cri.stop_container(&c.id, 0);
                    let _ = self.cri.remove_container(&c.id);
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
        match self.cri.list_pod_sandbox() {
            Ok(pods) => {
                for p in pods {
                    self.remember(&p.id);
                    errs.push(format!("pod {} ({:?}) still listed", p.id, p.metadata));
                    if let Err(e) = self.cri.stop_pod_sandbox(&p.id) {
                        errs.push(format!("StopPodSandbox {} in cleanup: {e}", p.id));
                    }
                    if let Err(e) = self.cri.remove_pod_sandbox(&p.id) {
                        errs.push(format!("RemovePodSandbox {} in cleanup: {e}", p.id));
                    }
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
        errs
    }

    /// Every trace a pod leaves on the host while it exists, each with its
    /// kind: the leftover checks of [`CriEnv::finish`] are these, and a test
    /// can call this on a live pod to prove the checks see what they look for.
    pub fn pod_traces(&self) -> Vec<(Trace, String)> {
        let mut out = Vec::new();
        let cd = self.cd();
        for pid in cd.shim_pids() {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            out.push((
                Trace::ShimProcess,
                format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ),
            ));
        }
        for ns in netns_files(&cd.state) {
            out.push((Trace::Netns, ns.display().to_string()));
        }
        match self.netns.veths() {
            Ok(v) => out.extend(v.into_iter().map(|n| (Trace::Veth, n))),
            Err(e) => out.push((Trace::Veth, format!("listing veths: {e}"))),
        }
        let cache = Path::new(CNI_CACHE_DIR).join("results");
        if let Ok(rd) = fs::read_dir(&cache) {
            let prefix = format!("{}-", self.net.name);
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    out.push((Trace::CniCache, e.path().display().to_string()));
                }
            }
        }
        out.extend(self.net.leases().into_iter().map(|l| (Trace::Lease, l)));
        for m in containerd::mounts_under(&cd.dir) {
            out.push((Trace::Mount, m.display().to_string()));
        }
        for d in cd.cgroup_dirs() {
            if let Ok(rd) = fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        out.push((Trace::Cgroup, e.path().display().to_string()));
                    }
                }
            }
        }
        let tasks = cd
            .state
            .join("io.containerd.runtime.v2.task")
            .join(CRI_NAMESPACE);
        if let Ok(rd) = fs::read_dir(&tasks) {
            for e in rd.flatten() {
                out.push((Trace::ShimBundle, e.path().display().to_string()));
            }
        }
        let addr = cd.address.to_string_lossy().into_owned();
        for id in self.ids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let sock = shim_socket(&addr, id);
            if sock.exists() {
                out.push((Trace::ShimSocket, format!("{} ({id})", sock.display())));
            }
            for root in RUNTIME_STATE_ROOTS {
                let dir = Path::new(root).join(CRI_NAMESPACE).join(id);
                if dir.exists() {
                    out.push((Trace::RuntimeState, dir.display().to_string()));
                }
            }
        }
        out
    }

    /// [`CriEnv::pod_traces`] once shims had time to exit, as messages.
    fn leftovers(&self) -> Vec<String> {
        let cd = self.cd();
        // Shims exit once their last container is deleted; give them a moment.
        let _ = containerd::wait_for("shims exiting", Duration::from_secs(30), || {
            Ok(cd.shim_pids().is_empty())
        });
        self.pod_traces()
            .into_iter()
            .map(|(kind, what)| format!("{kind:?} left: {what}"))
            .collect()
    }

    /// Removes what containerd cannot: shim sockets and runtime state named
    /// by our ids in the shared /run/containerd, and our temp dir.
    fn remove_host_state(&self, addr: &str) {
        for id in self.ids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = fs::remove_file(shim_socket(addr, id));
            for root in RUNTIME_STATE_ROOTS {
                let _ = fs::remove_dir_all(Path::new(root).join(CRI_NAMESPACE).join(id));
            }
        }
        if containerd::mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// Tears everything down and returns what the test left behind: pods or
    /// containers still listed, shim processes, pod netns, veths, leases,
    /// mounts, cgroups, shim sockets, runc state. Empty means clean.
    pub fn finish(mut self) -> Vec<String> {
        let mut errs = self.remove_all();
        errs.extend(self.leftovers());
        let cgroups = self.cd().cgroup_dirs();
        let addr = self.cd().address.to_string_lossy().into_owned();
        drop(self.cd.take());
        for d in cgroups {
            if d.exists() {
                errs.push(format!(
                    "cgroup {} survived containerd's cleanup",
                    d.display()
                ));
            }
        }
        self.remove_host_state(&addr);
        errs
    }
}

impl Drop for CriEnv {
    fn drop(&mut self) {
        let Some(cd) = self.cd.as_ref() else {
            return;
        };
        let addr = cd.address.to_string_lossy().into_owned();
        // CRI first, so CNI DEL runs and netns/veths/leases go the normal way.
        let _ = self.remove_all();
        drop(self.cd.take());
        self.remove_host_state(&addr);
    }
}

/// One env's hold on the shared host dirs (see [`HOST_DIRS`]).
#[derive(Debug)]
struct HostDirsHold;

impl HostDirsHold {
    fn acquire() -> Self {
        let mut h = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        if h.0.is_empty() {
            h.0 = shared_host_dirs()
                .into_iter()
                .map(|d| {
                    let existed = d.exists();
                    (d, existed)
                })
                .collect();
        }
        h.1 += 1;
        HostDirsHold
    }
}

impl Drop for HostDirsHold {
    fn drop(&mut self) {
        let mut h = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        h.1 = h.1.saturating_sub(1);
        if h.1 == 0 {
            for (d, existed) in &h.0 {
                if !existed {
                    // remove_dir only removes empty dirs.
                    let _ = fs::remove_dir(d);
                }
            }
        }
    }
}

/// `/run/containerd/s/<hash>` of a CRI shim (namespace k8s.io).
fn shim_socket(address: &str, id: &str) -> PathBuf {
    Path::new("/run/containerd/s").join(containerd::shim_socket_hash(address, CRI_NAMESPACE, id))
}

/// Pod netns pinned under containerd's state (netns_mounts_under_state_dir):
/// every entry of any `netns` directory below `state`.
pub fn netns_files(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![state.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == "netns" {
                if let Ok(inner) = fs::read_dir(&p) {
                    out.extend(inner.flatten().map(|x| x.path()));
                }
            } else {
                stack.push(p);
            }
        }
    }
    out
}

fn namespaces(network: cri::NamespaceMode, pid: cri::NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The containerd options for a CRI test: CRI on, the brisk snippet from
/// config/containerd, sandbox image, CNI dirs, host-specific settings.
pub fn cri_options(
    version: Version,
    net: &CniNetwork,
    settings: Settings,
) -> Result<Options, CriError> {
    let mut opts = Options::new(version);
    opts.cri = true;
    let q = |p: &Path| toml_str(&p.to_string_lossy());
    let conf_dir = q(&net.conf_dir);
    let bin_dir = q(&cni::bin_dir());
    let pause = toml_str(pause::PAUSE_REF);
    let config_dir = containerd::workspace_dir().join("config/containerd");
    let restrict = settings.restrict_oom_score_adj;
    let brisk_options = |table: &str| {
        if settings.brisk_options.is_empty() {
            String::new()
        } else {
            format!(
                "[plugins.\"{table}\".containerd.runtimes.brisk.options]\n{}\n",
                settings.brisk_options
            )
        }
    };
    // Shared by every release: on this host the bounding set lacks
    // CAP_SYS_RESOURCE, so CRI's negative oom_score_adj for the sandbox
    // (-998) must be clamped to containerd's own
    // (restrict_oom_score_adj); pod netns are pinned under containerd's
    // state dir so the test finds them.
    opts.extra_config = match version.config_version() {
        2 => {
            let snippet = config_dir.join("brisk-v2.toml");
            let text = fs::read_to_string(&snippet).map_err(|source| CriError::Io {
                step: "reading the brisk CRI snippet",
                path: snippet.clone(),
                source,
            })?;
            let body: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("version"))
                .map(|l| format!("{l}\n"))
                .collect();
            format!(
                "[plugins.\"io.containerd.grpc.v1.cri\"]\n\
                 \x20 sandbox_image = {pause}\n\
                 \x20 restrict_oom_score_adj = {restrict}\n\
                 \x20 netns_mounts_under_state_dir = true\n\
                 \x20 stream_server_address = \"127.0.0.1\"\n\
                 \x20 stream_server_port = \"0\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
                 \x20 bin_dir = {bin_dir}\n\
                 \x20 conf_dir = {conf_dir}\n\
                 \x20 max_conf_num = 1\n\
                 # config/containerd/brisk-v2.toml, inlined (see the module doc)\n{body}{opts}",
                opts = brisk_options("io.containerd.grpc.v1.cri"),
            )
        }
        _ => {
            opts.imports.push(config_dir.join("brisk-v3.toml"));
            format!(
                "[plugins.\"io.containerd.cri.v1.images\".pinned_images]\n\
                 \x20 sandbox = {pause}\n\
                 [plugins.\"io.containerd.cri.v1.runtime\"]\n\
                 \x20 restrict_oom_score_adj = {restrict}\n\
                 \x20 netns_mounts_under_state_dir = true\n\
                 [plugins.\"io.containerd.cri.v1.runtime\".cni]\n\
                 \x20 bin_dirs = [{bin_dir}]\n\
                 \x20 conf_dir = {conf_dir}\n\
                 \x20 max_conf_num = 1\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n\
                 \x20 stream_server_address = \"127.0.0.1\"\n\
                 \x20 stream_server_port = \"0\"\n{opts}",
                opts = brisk_options("io.containerd.cri.v1.runtime"),
            )
        }
    };
    Ok(opts)
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// One line of a CRI container log: `<RFC3339Nano> <stdout|stderr> <F|P> <content>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLogLine {
    pub timestamp: String,
    pub stream: String,
    /// `F` full line, `P` partial (split at max_container_log_line_size).
    pub tag: String,
    pub content: String,
}

/// Parses a CRI log file, failing on the first line not in CRI format.
pub fn parse_cri_log(path: &Path, text: &str) -> Result<Vec<CriLogLine>, CriError> {
    let err = |line: usize, detail: &'static str, text: &str| CriError::LogFormat {
        path: path.to_path_buf(),
        line,
        detail,
        text: text.to_string(),
    };
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let mut it = l.splitn(4, ' ');
        let (Some(ts), Some(stream), Some(tag)) = (it.next(), it.next(), it.next()) else {
            return Err(err(i + 1, "fewer than 3 fields", l));
        };
        let content = it.next().unwrap_or("");
        if !is_rfc3339_nano(ts) {
            return Err(err(i + 1, "timestamp is not RFC 3339", l));
        }
        if stream != "stdout" && stream != "stderr" {
            return Err(err(i + 1, "stream is not stdout/stderr", l));
        }
        if tag != "F" && !tag.starts_with('P') {
            return Err(err(i + 1, "tag is not F or P", l));
        }
        out.push(CriLogLine {
            timestamp: ts.to_string(),
            stream: stream.to_string(),
            tag: tag.to_string(),
            content: content.to_string(),
        });
    }
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, as Go's time.RFC3339Nano writes.
fn is_rfc3339_nano(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// What a streaming exec produced.
#[derive(Debug, Clone, Default)]
pub struct StreamExec {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The v4 error channel's status object: `{"status":"Success"}` or a
    /// Failure with reason NonZeroExitCode and the code in details.causes.
    pub status: Option<serde_json::Value>,
}

impl StreamExec {
    /// The exit code per the status object (0 on Success).
    pub fn exit_code(&self) -> Option<i32> {
        let st = self.status.as_ref()?;
        if st["status"] == "Success" {
            return Some(0);
        }
        st["details"]["causes"]
            .as_array()?
            .iter()
            .find(|c| c["reason"] == "ExitCode")?["message"]
            .as_str()?
            .parse()
            .ok()
    }
}

/// Drives one exec stream URL with the websocket channel protocol: every
/// binary message is `<channel byte><data>`, 1 stdout, 2 stderr, 3 status.
fn ws_exec(url: &str) -> Result<StreamExec, CriError> {
    use tungstenite::client::IntoClientRequest;
    let serr = |detail: String| CriError::Stream {
        url: url.to_string(),
        detail,
    };
    let ws_url = url
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .ok_or_else(|| serr("not an http:// URL".into()))?;
    let hostport = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stream = std::net::TcpStream::connect(&hostport)
        .map_err(|e| serr(format!("connect {hostport}: {e}")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| serr(format!("read timeout: {e}")))?;
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| serr(format!("request: {e}")))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let (mut ws, _resp) =
        tungstenite::client::client(req, stream).map_err(|e| serr(format!("handshake: {e}")))?;
    let mut out = StreamExec::default();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Binary(data)) => {
                let Some((&ch, rest)) = data.split_first() else {
                    continue;
                };
                match ch {
                    1 => out.stdout.extend_from_slice(rest),
                    2 => out.stderr.extend_from_slice(rest),
                    3 if !rest.is_empty() => {
                        out.status = Some(
                            serde_json::from_slice(rest)
                                .map_err(|e| serr(format!("status channel: {e}: {rest:?}")))?,
                        );
                    }
                    _ => {}
                }
            }
            Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            // The server may drop the TCP connection right after the status.
            Err(_) if out.status.is_some() => break,
            Err(e) => return Err(serr(format!("reading: {e}"))),
        }
    }
    Ok(out)
}

/// Generates one `#[test]` per containerd version × CRI handler for a body
/// `fn name(version: Version, handler: &str)`: `name::v1_6_runc`, ...
#[macro_export]
macro_rules! cri_matrix {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::containerd::Version;
            use $crate::cri::{BRISK, RUNC};
            #[test] fn v1_6_runc() { super::$name(Version::V1_6, RUNC) }
            #[test] fn v1_6_brisk() { super::$name(Version::V1_6, BRISK) }
            #[test] fn v1_7_runc() { super::$name(Version::V1_7, RUNC) }
            #[test] fn v1_7_brisk() { super::$name(Version::V1_7, BRISK) }
            #[test] fn v2_1_runc() { super::$name(Version::V2_1, RUNC) }
            #[test] fn v2_1_brisk() { super::$name(Version::V2_1, BRISK) }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_parse() {
        let p = Path::new("x.log");
        let lines = parse_cri_log(
            p,
            "2024-01-02T03:04:05.123456789Z stdout F hello world\n2024-01-02T03:04:05+01:00 stderr P part\n",
        )
        .expect("parse");
        assert_eq!(lines[0].content, "hello world");
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(lines[1].tag, "P");
        assert!(parse_cri_log(p, "hello\n").is_err());
        assert!(parse_cri_log(p, "2024-01-02 stdout F x\n").is_err());
        assert!(parse_cri_log(p, "2024-01-02T03:04:05Z stdin F x\n").is_err());
    }

    #[test]
    fn stream_exit_code_from_status() {
        let ok = StreamExec {
            status: Some(serde_json::json!({"metadata":{},"status":"Success"})),
            ..Default::default()
        };
        assert_eq!(ok.exit_code(), Some(0));
        let fail = StreamExec {
            status: Some(
                serde_json::json!({"status":"Failure","reason":"NonZeroExitCode",
                "details":{"causes":[{"reason":"ExitCode","message":"3"}]}}),
            ),
            ..Default::default()
        };
        assert_eq!(fail.exit_code(), Some(3));
    }
}
