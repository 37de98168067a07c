//! The container's filesystem view: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Everything here runs inside the container's init process (single-threaded, already in its new
//! mount namespace), in the order [`prepare`] → (createContainer hooks) → [`pivot`] → [`finalize`].
//! Paths inside the rootfs are always resolved with `openat2(RESOLVE_IN_ROOT)` so that a symlink in a
//! mount destination can never lead outside the rootfs (CVE-2021-30465).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// What the rootfs steps need to know beyond the spec itself.
#[derive(Debug, Clone)]
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of the rootfs (root.path resolved against the bundle).
    pub rootfs: &'a Path,
    /// `--no-pivot`: chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The init runs in a user namespace it created: devices are bind-mounted, not mknod'ed.
    pub in_userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// For `type: cgroup` mounts: each mounted hierarchy of the host as (mount-point name under
    /// /sys/fs/cgroup, e.g. "memory", "cpu,cpuacct", "unified"; filesystem type "cgroup" or
    /// "cgroup2"; host directory of this container's cgroup in it).
    pub cgroup_mounts: &'a [(String, String, PathBuf)],
}

/// Errors of the rootfs steps; each variant names the step and the path it was working on.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {step} {path}: {source}")]
    Sys { step: &'static str, path: PathBuf, #[source] source: nix::Error },
    #[error("rootfs: {step} {path}: {reason}")]
    Invalid { step: &'static str, path: PathBuf, reason: String },
}

/// Set up the mount namespace before pivot: propagation, rootfs bind, `mounts` in order, devices,
/// /dev symlinks. Runs in the init, in the container's new mount namespace.
pub fn prepare(_cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    Err(RootfsError::Invalid { step: "prepare", path: PathBuf::new(), reason: "not implemented yet".into() })
}

/// pivot_root into the rootfs (or chroot with `--no-pivot`) and detach the old root.
pub fn pivot(_cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    Err(RootfsError::Invalid { step: "pivot", path: PathBuf::new(), reason: "not implemented yet".into() })
}

/// After pivot, when the process has a terminal: bind-mount the pty slave (a /dev/pts/N path inside
/// the container) onto /dev/console.
pub fn setup_console(_slave: &Path) -> Result<(), RootfsError> {
    Err(RootfsError::Invalid { step: "console", path: PathBuf::new(), reason: "not implemented yet".into() })
}

/// After pivot: maskedPaths, readonlyPaths, read-only /proc/sys as needed, root.readonly and
/// rootfsPropagation.
pub fn finalize(_cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    Err(RootfsError::Invalid { step: "finalize", path: PathBuf::new(), reason: "not implemented yet".into() })
}
