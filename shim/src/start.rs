//! The `start` action: find or launch the shim server for this container's group and print its
//! address in the form this containerd reads.
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::args::Flags;
use crate::bootstrap::{self, LegacyEnv};

/// Pods share one shim: CRI marks every container of a sandbox with the sandbox id.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
pub const DEFAULT_SOCKET_DIR: &str = "/run/containerd/s";
const MAX_INPUT: u64 = 10 << 20;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("start: {step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start: ShimCgroup {path:?}: {reason}")]
    ShimCgroup { path: String, reason: String },
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// The grouping id: the sandbox id annotation of the bundle's config.json, else the container id.
pub fn grouping_id(config_json: &[u8], id: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(config_json)
        .ok()
        .and_then(|v| {
            v.pointer("/annotations")?
                .get(SANDBOX_ID_ANNOTATION)?
                .as_str()
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// `<dir>/<sha256(filepath.Join(address, namespace, group))>`, as containerd's shim library names
/// sockets (the hash keeps the path within the unix socket length limit).
pub fn socket_path(dir: &str, address: &str, namespace: &str, group: &str) -> PathBuf {
    let joined = [address, namespace, group]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let mut cleaned = String::with_capacity(joined.len());
    for c in joined.chars() {
        if c == '/' && cleaned.ends_with('/') {
            continue;
        }
        cleaned.push(c);
    }
    let digest = Sha256::digest(cleaned.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(dir).join(hex)
}

fn read_stdin() -> Vec<u8> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Vec::new();
    }
    let mut input = Vec::new();
    let _ = stdin.lock().take(MAX_INPUT).read_to_end(&mut input);
    input
}

pub fn run(flags: &Flags) -> Result<(), StartError> {
    let input = read_stdin();
    let params = bootstrap::parse_start(&input, flags, &LegacyEnv::from_process())?;
    let bundle = std::env::current_dir().map_err(io("get cwd (bundle)", Path::new(".")))?;
    let config = std::fs::read(bundle.join("config.json")).unwrap_or_default();
    let group = grouping_id(&config, &params.id);
    let dir = params
        .socket_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_string());
    let path = socket_path(&dir, &params.grpc_address, &params.namespace, &group);
    let address = format!("unix://{}", path.display());

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&dir)
        .map_err(io("create socket dir", Path::new(&dir)))?;
    let listener = match UnixListener::bind(&path) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&path).is_ok() {
                // The group's shim is up: containerd talks to it for this container too. A shim
                // that accepted Shutdown cannot answer here: it unlinks this path before it
                // replies (server.rs, `Shared::begin_shutdown`), so a connect that succeeds
                // reached a shim that is not shutting down (as in containerd's runc shim, which
                // also decides by connecting).
                None
            } else {
                // A stale socket of a dead shim.
                std::fs::remove_file(&path).map_err(io("remove stale socket", &path))?;
                Some(UnixListener::bind(&path).map_err(io("listen", &path))?)
            }
        }
        Err(e) => return Err(io("listen", &path)(e)),
    };
    if let Some(listener) = listener {
        if let Err(e) = spawn_server(flags, &params, &listener, &path, &bundle) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    }
    let _ = crate::service::write_atomic(&bundle.join("address"), address.as_bytes());
    let mut out = std::io::stdout().lock();
    out.write_all(&bootstrap::encode_reply(params.reply, &address))
        .map_err(io("write reply", Path::new("stdout")))?;
    out.flush()
        .map_err(io("write reply", Path::new("stdout")))?;
    Ok(())
}

fn spawn_server(
    flags: &Flags,
    params: &bootstrap::StartParams,
    listener: &UnixListener,
    path: &Path,
    bundle: &Path,
) -> Result<(), StartError> {
    let exe =
        std::env::current_exe().map_err(io("find own executable", Path::new("/proc/self/exe")))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("-namespace")
        .arg(&params.namespace)
        .arg("-id")
        .arg(&params.id)
        .arg("-address")
        .arg(&params.grpc_address)
        .arg("-socket")
        .arg(path)
        .current_dir(bundle)
        .env("TTRPC_ADDRESS", &params.ttrpc_address)
        .env(crate::server::LISTEN_FD_ENV, "3")
        // containerd 1.6 reads start's combined output until EOF: the server must not hold it.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if params.debug || flags.debug {
        cmd.arg("-debug");
    }
    let fd = listener.as_raw_fd();
    // SAFETY: runs in the forked child before exec (this process is single-threaded here); only
    // setsid, dup2 and fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: containerd restarts and terminal hangups do not reach the shim.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io("start shim server", &exe))?;
    // ShimCgroup: the runc shim moves its server into that cgroup right after starting it
    // (cmd/containerd-shim-runc-v2 manager StartShim); options it cannot read are ignored there.
    let shim_cgroup = crate::options::parse_any(params.options.as_ref())
        .map(|o| o.shim_cgroup)
        .unwrap_or_default();
    if !shim_cgroup.is_empty() {
        if let Err(e) = join_cgroup(child.id(), &shim_cgroup, Path::new(CGROUP_ROOT)) {
            // As the runc shim does on this error: the server must not outlive a failed start.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    }
    let _ =
        crate::service::write_atomic(&bundle.join("shim.pid"), child.id().to_string().as_bytes());
    // Not waited for: it outlives this process and is reparented.
    std::mem::forget(child);
    Ok(())
}

/// Move `pid` into cgroup `path` as containerd's cgroups library does for the runc shim: on a
/// cgroup v2 host (`<root>/cgroup.controllers` exists) `<root>/<path>/cgroup.procs`; otherwise the
/// v1 way, `cgroup.procs` of `<path>` in every v1 hierarchy that has it (hierarchies without it are
/// skipped, none having it is an error; the hybrid layout's unified mount is not a v1 hierarchy
/// and is left alone, as cgroup1.Load does).
pub fn join_cgroup(pid: u32, path: &str, root: &Path) -> Result<(), StartError> {
    let bad = |reason: &str| StartError::ShimCgroup {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let rel = Path::new(path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad("must be a cgroup path without . or .. components"));
    }
    let write = |dir: &Path| {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(io("join shim cgroup", &procs))
    };
    if root.join("cgroup.controllers").exists() {
        return write(&root.join(rel));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("read", Path::new("/proc/self/mountinfo")))?;
    let mut joined = 0;
    for mnt in v1_hierarchies(&info).iter().filter(|m| m.starts_with(root)) {
        let dir = mnt.join(rel);
        if dir.is_dir() {
            write(&dir)?;
            joined += 1;
        }
    }
    if joined == 0 {
        return Err(bad(
            "no cgroup v1 hierarchy has this cgroup (create it first)",
        ));
    }
    Ok(())
}

/// Mount points of cgroup v1 hierarchies (fstype `cgroup`) in a mountinfo text.
fn v1_hierarchies(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split(' ').next()? == "cgroup").then_some(())?;
            pre.split(' ')
                .nth(4)
                .map(|m| PathBuf::from(unescape_octal(m)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
fn unescape_octal(s: &str) -> String {
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
    fn v1_hierarchies_from_mountinfo() {
        let info = "30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                    31 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    32 24 0:28 / /sys/fs/cgroup/a\\040b rw - cgroup cgroup rw,name=x\n\
                    33 24 0:29 / /proc rw - proc proc rw\n";
        assert_eq!(
            v1_hierarchies(info),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/a b")
            ]
        );
    }

    #[test]
    fn shim_cgroup_path_is_checked() {
        let root = Path::new("/nonexistent-cgroup-root");
        for bad in ["/a/../b", "./a"] {
            let e = join_cgroup(1, bad, root).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e = join_cgroup(1, "/missing", root).unwrap_err();
        assert!(e.to_string().contains("/missing"), "{e}");
    }

    #[test]
    fn pods_share_a_group() {
        let cfg = br#"{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1","io.kubernetes.cri.container-type":"container"}}"#;
        assert_eq!(grouping_id(cfg, "c1"), "sb1");
        assert_eq!(grouping_id(br#"{"annotations":{}}"#, "c1"), "c1");
        assert_eq!(grouping_id(b"", "c1"), "c1");
    }

    #[test]
    fn socket_path_is_sha256_of_joined_address() {
        let p = socket_path(
            "/run/containerd/s",
            "/run/containerd/containerd.sock",
            "default",
            "c1",
        );
        let want = Sha256::digest(b"/run/containerd/containerd.sock/default/c1");
        let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(p, Path::new("/run/containerd/s").join(hex));
        // Same group, same socket; another group, another socket.
        assert_eq!(
            p,
            socket_path(
                "/run/containerd/s",
                "/run/containerd/containerd.sock",
                "default",
                "c1"
            )
        );
        assert_ne!(
            p,
            socket_path(
                "/run/containerd/s",
                "/run/containerd/containerd.sock",
                "default",
                "c2"
            )
        );
        assert!(p.as_os_str().len() < 108);
    }
}
