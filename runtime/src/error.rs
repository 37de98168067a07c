//! The crate-level error. Module errors carry the step and the path; this enum adds the lifecycle
//! conditions callers branch on, and [`Error::kind`] maps everything once to the kinds containerd's
//! errdefs and runc's exit codes care about.
use std::path::PathBuf;

/// What kind of failure, for mapping to errdefs (shim) or messages (CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unsupported,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {id:?} is {status}: cannot {op}")]
    WrongStatus { id: String, status: String, op: &'static str },
    #[error("process {pid} of container {id:?} has already exited")]
    ProcessGone { id: String, pid: i32 },
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: String, reason: String },
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Spawn(#[from] crate::process::SpawnError),
    #[error(transparent)]
    SelfExe(#[from] crate::selfexe::SelfExeError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Criu(#[from] crate::criu::CriuError),
    /// A failure reported by the container's init from inside the container.
    #[error("container init: {step}: {message}")]
    Init { step: String, message: String },
    #[error("{step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::ProcessGone { .. } => ErrorKind::NotFound,
            Error::InvalidId { .. } | Error::Spec(_) | Error::Namespace(_) => ErrorKind::InvalidArgument,
            Error::WrongStatus { .. } => ErrorKind::FailedPrecondition,
            Error::Unsupported { .. } | Error::Criu(crate::criu::CriuError::Unsupported { .. }) => ErrorKind::Unsupported,
            Error::Criu(crate::criu::CriuError::Image { .. }) => ErrorKind::InvalidArgument,
            Error::Criu(crate::criu::CriuError::Spawn { .. } | crate::criu::CriuError::Check { .. } | crate::criu::CriuError::MissingFeature { .. }) => ErrorKind::FailedPrecondition,
            Error::State(crate::state::StateError::NotFound { .. }) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}
