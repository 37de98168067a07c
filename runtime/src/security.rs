//! Process credentials and confinement: capabilities, user/group switch, noNewPrivileges, seccomp.
//!
//! [`finalize_process`] is the last step of both the container init and an exec'd process before
//! execve: it owns the order of these calls, because that order is where the bugs live (seccomp needs
//! CAP_SYS_ADMIN unless noNewPrivileges is set; setuid drops capabilities unless KEEPCAPS is set; the
//! filter must be loaded as late as possible so that the runtime's own syscalls are not filtered).

use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxSeccomp, Process};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("security: {step}: {source}")]
    Sys { step: &'static str, #[source] source: nix::Error },
    #[error("security: {step}: {reason}")]
    Invalid { step: &'static str, reason: String },
}

/// Validate the security-relevant parts of a process before any side effect (unknown capability
/// names, seccomp actions, architectures, operators, flags).
pub fn validate(_process: &Process, _seccomp: Option<&LinuxSeccomp>) -> Result<(), SecurityError> {
    Ok(())
}

/// Switch to the process's user, apply the five capability sets, noNewPrivileges and seccomp, in the
/// order the kernel requires. Returns the seccomp notify fd when the profile uses SCMP_ACT_NOTIFY.
pub fn finalize_process(_process: &Process, _seccomp: Option<&LinuxSeccomp>) -> Result<Option<OwnedFd>, SecurityError> {
    Err(SecurityError::Invalid { step: "finalize", reason: "not implemented yet".into() })
}

/// Send the seccomp notify fd and the container state to the agent at `listener_path`.
pub fn send_to_listener(_listener_path: &std::path::Path, _notify_fd: std::os::fd::BorrowedFd<'_>, _state_json: &str, _metadata: &str) -> Result<(), SecurityError> {
    Err(SecurityError::Invalid { step: "seccomp listener", reason: "not implemented yet".into() })
}

/// containerd CRI's default capability set (config/capabilities/default.json).
pub fn default_capabilities() -> Vec<String> {
    Vec::new()
}

/// containerd's default seccomp profile (config/seccomp/default.json).
pub fn default_seccomp() -> serde_json::Value {
    serde_json::Value::Null
}
