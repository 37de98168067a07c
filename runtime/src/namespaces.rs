//! Linux namespaces: the one table of kinds that the spec parser, the spawner and `features` share.
use std::os::fd::AsRawFd;
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType as T;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("{path}: {source}")]
    Open { path: String, #[source] source: std::io::Error },
    #[error("{path} is a {actual} namespace, not {expected}")]
    WrongType { path: String, actual: &'static str, expected: &'static str },
    #[error("{path} is not a namespace file")]
    NotNamespace { path: String },
}

/// (spec type, OCI name, clone flag, name under /proc/<pid>/ns). The order is the order in which
/// namespaces are joined: user first (it decides the privileges for the rest), mnt last (joining it
/// changes how later paths resolve).
pub const NAMESPACES: &[(T, &str, u64, &str)] = &[
    (T::User, "user", libc::CLONE_NEWUSER as u64, "user"),
    (T::Pid, "pid", libc::CLONE_NEWPID as u64, "pid"),
    (T::Network, "network", libc::CLONE_NEWNET as u64, "net"),
    (T::Ipc, "ipc", libc::CLONE_NEWIPC as u64, "ipc"),
    (T::Uts, "uts", libc::CLONE_NEWUTS as u64, "uts"),
    (T::Cgroup, "cgroup", libc::CLONE_NEWCGROUP as u64, "cgroup"),
    (T::Time, "time", libc::CLONE_NEWTIME as u64, "time"),
    (T::Mount, "mount", libc::CLONE_NEWNS as u64, "mnt"),
];

fn entry(t: T) -> &'static (T, &'static str, u64, &'static str) {
    // Every variant of the oci-spec enum is in the table (tested below).
    NAMESPACES.iter().find(|e| e.0 == t).unwrap_or(&NAMESPACES[0])
}

/// The OCI name ("network", "mount", ...).
pub fn name(t: T) -> &'static str {
    entry(t).1
}

pub fn clone_flag(t: T) -> u64 {
    entry(t).2
}

/// The entry name under /proc/<pid>/ns ("net", "mnt", ...).
pub fn proc_name(t: T) -> &'static str {
    entry(t).3
}

/// A namespace path must be a namespace of the declared type (config-linux.md "Namespaces": "a
/// runtime MUST generate an error if the path is not associated with a namespace of type `type`").
pub fn check_path(path: &Path, t: T) -> Result<(), NamespaceError> {
    let p = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| NamespaceError::Open { path: p.clone(), source })?;
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
    if r < 0 {
        return Err(NamespaceError::NotNamespace { path: p });
    }
    let actual = NAMESPACES.iter().find(|e| e.2 == r as u64).map(|e| e.1).unwrap_or("unknown");
    if r as u64 != clone_flag(t) {
        return Err(NamespaceError::WrongType { path: p, actual, expected: name(t) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_type() {
        for t in [T::Mount, T::Cgroup, T::Uts, T::Ipc, T::User, T::Pid, T::Network, T::Time] {
            assert!(NAMESPACES.iter().any(|e| e.0 == t), "{t:?}");
        }
    }

    #[test]
    fn check_path_detects_type() {
        check_path(Path::new("/proc/self/ns/net"), T::Network).expect("net is net");
        let e = check_path(Path::new("/proc/self/ns/net"), T::Ipc).expect_err("net is not ipc");
        assert!(e.to_string().contains("network namespace, not ipc"), "{e}");
        assert!(check_path(Path::new("/etc/hostname"), T::Ipc).is_err());
    }
}
