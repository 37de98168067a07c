//! Pod networking for the CRI tests, confined to a network namespace the test
//! creates: containerd (and so every CNI plugin it runs, every shim and every
//! hostNetwork pod) lives in a [`PrivateNetns`], so the bridge, the veths and
//! the host-local leases never touch the host's network. Nothing routes off
//! the bridge: no gateway, no masquerade, no default route; the two containers
//! of a pod talk over the pod's own address.
//!
//! Plugins: Debian's containernetworking-plugins (`bridge`, `host-local`,
//! `loopback` in /usr/lib/cni; `$BRISK_CNI_BIN_DIR` overrides).

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

/// Where Debian installs the CNI plugins.
pub const DEFAULT_CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The plugins the test network needs (containerd also runs `loopback`).
pub const PLUGINS: [&str; 3] = ["bridge", "host-local", "loopback"];
/// Private test subnet; it exists only inside a [`PrivateNetns`].
pub const SUBNET: &str = "10.88.77.0/24";
/// The bridge the plugin creates inside the private namespace.
pub const BRIDGE: &str = "brisk-cri0";

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI plugin {path} missing (Debian: apt-get install containernetworking-plugins)")]
    MissingPlugin { path: PathBuf },
    #[error("{step} at {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{step}: {source}")]
    Netns {
        step: &'static str,
        source: nix::errno::Errno,
    },
    #[error("`{cmd}` in the private network namespace failed: {detail}")]
    Command { cmd: String, detail: String },
    #[error("the network-namespace thread panicked during {0}")]
    ThreadPanicked(&'static str),
}

/// The CNI binary directory: `$BRISK_CNI_BIN_DIR` or /usr/lib/cni.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("BRISK_CNI_BIN_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_CNI_BIN_DIR), PathBuf::from)
}

/// Fails naming the first plugin binary that is not there.
pub fn check_plugins() -> Result<(), CniError> {
    let dir = bin_dir();
    for p in PLUGINS {
        let path = dir.join(p);
        if !path.is_file() {
            return Err(CniError::MissingPlugin { path });
        }
    }
    Ok(())
}

/// A bridge network written as a CNI conflist into its own conf dir.
#[derive(Debug, Clone)]
pub struct CniNetwork {
    /// Network name; host-local keeps its leases under `ipam_dir/<name>`.
    pub name: String,
    /// Holds only our conflist (containerd's `conf_dir`).
    pub conf_dir: PathBuf,
    /// host-local's `dataDir`, instead of /var/lib/cni/networks.
    pub ipam_dir: PathBuf,
}

impl CniNetwork {
    /// Writes `<dir>/net.d/10-<name>.conflist` and creates the IPAM dir.
    pub fn write(dir: &Path, name: &str) -> Result<Self, CniError> {
        let conf_dir = dir.join("net.d");
        let ipam_dir = dir.join("ipam");
        for d in [&conf_dir, &ipam_dir] {
            fs::create_dir_all(d).map_err(|source| CniError::Io {
                step: "creating CNI dir",
                path: d.clone(),
                source,
            })?;
        }
        let conf = json!({
            "cniVersion": "0.4.0",
            "name": name,
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                // No gateway address on the bridge and no masquerade: the
                // pod network reaches nothing beyond the bridge, and the
                // plugin leaves ip_forward alone.
                "isGateway": false,
                "ipMasq": false,
                "hairpinMode": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": SUBNET }]],
                    "dataDir": ipam_dir,
                },
            }],
        });
        let path = conf_dir.join(format!("10-{name}.conflist"));
        let text = serde_json::to_string_pretty(&conf).map_err(|e| CniError::Io {
            step: "serializing the CNI conflist",
            path: path.clone(),
            source: e.into(),
        })?;
        fs::write(&path, text).map_err(|source| CniError::Io {
            step: "writing the CNI conflist",
            path,
            source,
        })?;
        Ok(CniNetwork {
            name: name.to_string(),
            conf_dir,
            ipam_dir,
        })
    }

    /// Addresses host-local still has leased (one file per address).
    pub fn leases(&self) -> Vec<String> {
        fs::read_dir(self.ipam_dir.join(&self.name))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// True if `ip` is inside [`SUBNET`] (a /24).
pub fn in_subnet(ip: &str) -> bool {
    let prefix = SUBNET.trim_end_matches("0/24");
    ip.parse::<std::net::Ipv4Addr>().is_ok() && ip.starts_with(prefix)
}

/// A network namespace of our own, held open by an fd. Processes started from
/// [`PrivateNetns::create_and_run`]'s closure (and their children) live in it;
/// it is freed when they have all exited and this is dropped.
#[derive(Debug)]
pub struct PrivateNetns {
    fd: OwnedFd,
}

impl PrivateNetns {
    /// On a fresh thread: unshares a new network namespace, brings its
    /// loopback up (containerd's CRI stream server binds 127.0.0.1), then
    /// runs `f` there. Only that thread ever changes namespace, so the
    /// caller's threads stay where they were.
    pub fn create_and_run<T: Send>(f: impl FnOnce() -> T + Send) -> Result<(Self, T), CniError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
                    CniError::Netns {
                        step: "unshare(CLONE_NEWNET) on the helper thread",
                        source,
                    }
                })?;
                let fd = open_ns("/proc/thread-self/ns/net")?;
                run_cmd(&["ip", "link", "set", "lo", "up"])?;
                Ok((PrivateNetns { fd }, f()))
            })
            .join()
            .map_err(|_| CniError::ThreadPanicked("creating the network namespace"))?
        })
    }

    /// Runs `f` on a fresh thread that has joined this namespace.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, CniError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(self.fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                    |source| CniError::Netns {
                        step: "setns into the private network namespace",
                        source,
                    },
                )?;
                Ok(f())
            })
            .join()
            .map_err(|_| CniError::ThreadPanicked("running in the network namespace"))?
        })
    }

    /// Inode of the namespace: equal to `stat -L /proc/<pid>/ns/net` of every
    /// process inside it.
    pub fn inode(&self) -> Result<u64, CniError> {
        let path = self.fd_path();
        fs::metadata(&path)
            .map(|m| m.ino())
            .map_err(|source| CniError::Io {
                step: "stat of the network namespace",
                path,
                source,
            })
    }

    fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// `ip -o link show <args>` inside the namespace: one name per link.
    pub fn links(&self, args: &[&str]) -> Result<Vec<String>, CniError> {
        let mut cmd = vec!["ip", "-o", "link", "show"];
        cmd.extend_from_slice(args);
        let out = self.run_in(|| run_cmd(&cmd))??;
        Ok(out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect())
    }

    /// Names of veth interfaces in the namespace (the host ends of pods).
    pub fn veths(&self) -> Result<Vec<String>, CniError> {
        self.links(&["type", "veth"])
    }
}

fn open_ns(path: &str) -> Result<OwnedFd, CniError> {
    fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| CniError::Io {
            step: "opening the network namespace",
            path: PathBuf::from(path),
            source,
        })
}

/// Runs a command from the current thread (so in its network namespace).
fn run_cmd(argv: &[&str]) -> Result<String, CniError> {
    let cmd = argv.join(" ");
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| CniError::Command {
            cmd: cmd.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(CniError::Command {
            cmd,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_membership() {
        assert!(in_subnet("10.88.77.2"));
        assert!(!in_subnet("10.88.7.2"));
        assert!(!in_subnet("10.88.77.2x"));
    }

    #[test]
    fn conflist_has_no_gateway_or_masquerade_and_private_ipam() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = CniNetwork::write(dir.path(), "t").expect("write");
        let text = fs::read_to_string(net.conf_dir.join("10-t.conflist")).expect("read");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let p = &v["plugins"][0];
        assert_eq!(p["isGateway"], false);
        assert_eq!(p["ipMasq"], false);
        assert_eq!(p["ipam"]["dataDir"], json!(net.ipam_dir));
        assert!(p["ipam"].get("routes").is_none());
    }
}
