//! The shim's error type and its one mapping to containerd's errdefs (ttrpc status codes, which
//! containerd decodes with `errdefs.FromGRPC`).
use containerd_shim_protos::ttrpc;
use ttrpc::Code;

use brisk_runtime::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{0}: not found")]
    NotFound(String),
    #[error("{0}: already exists")]
    AlreadyExists(String),
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}: not implemented")]
    NotImplemented(String),
    #[error("{step}: {source}")]
    Runtime {
        step: &'static str,
        #[source]
        source: brisk_runtime::Error,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Options(#[from] crate::options::OptionsError),
    #[error("{0}")]
    Internal(String),
}

impl ShimError {
    pub fn runtime(step: &'static str) -> impl FnOnce(brisk_runtime::Error) -> ShimError {
        move |source| ShimError::Runtime { step, source }
    }

    pub fn io(
        step: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> ShimError {
        let path = path.to_string();
        move |source| ShimError::Io { step, path, source }
    }

    pub fn code(&self) -> Code {
        match self {
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::InvalidArgument { .. } | ShimError::Options(_) => Code::INVALID_ARGUMENT,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::NotImplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Runtime { source, .. } => match source.kind() {
                ErrorKind::NotFound => Code::NOT_FOUND,
                ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
                ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
                ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
                ErrorKind::Unsupported => Code::UNIMPLEMENTED,
                ErrorKind::Internal => Code::INTERNAL,
            },
            ShimError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Code::NOT_FOUND
            }
            ShimError::Io { .. } | ShimError::Internal(_) => Code::UNKNOWN,
        }
    }
}

/// The single place shim errors become ttrpc statuses.
pub fn to_ttrpc(e: ShimError) -> ttrpc::Error {
    // The chain goes into the message: containerd shows it to the user as is.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), msg))
}

pub type Result<T> = std::result::Result<T, ShimError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: ShimError) -> (Code, String) {
        match to_ttrpc(e) {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn errdefs_mapping() {
        assert_eq!(
            code_of(ShimError::NotFound("container c1".into())).0,
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(ShimError::AlreadyExists("exec e1".into())).0,
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            code_of(ShimError::FailedPrecondition(
                "container c1 is stopped".into()
            ))
            .0,
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(ShimError::NotImplemented("checkpoint".into())).0,
            Code::UNIMPLEMENTED
        );
        let (c, m) = code_of(ShimError::InvalidArgument {
            field: "exec spec",
            reason: "not JSON".into(),
        });
        assert_eq!(c, Code::INVALID_ARGUMENT);
        assert!(m.contains("exec spec"), "{m}");
    }

    #[test]
    fn runtime_error_kinds_map_once() {
        let cases = [
            (
                brisk_runtime::Error::NotFound { id: "c".into() },
                Code::NOT_FOUND,
            ),
            (
                brisk_runtime::Error::AlreadyExists { id: "c".into() },
                Code::ALREADY_EXISTS,
            ),
            (
                brisk_runtime::Error::ProcessGone {
                    id: "c".into(),
                    pid: 1,
                },
                Code::NOT_FOUND,
            ),
            (
                brisk_runtime::Error::InvalidId {
                    id: "../x".into(),
                    reason: "slash",
                },
                Code::INVALID_ARGUMENT,
            ),
            (
                brisk_runtime::Error::WrongStatus {
                    id: "c".into(),
                    status: "stopped".into(),
                    op: "start",
                },
                Code::FAILED_PRECONDITION,
            ),
            (
                brisk_runtime::Error::Unsupported {
                    what: "x".into(),
                    reason: "y".into(),
                },
                Code::UNIMPLEMENTED,
            ),
        ];
        for (err, want) in cases {
            let (got, msg) = code_of(ShimError::Runtime {
                step: "kill",
                source: err,
            });
            assert_eq!(got, want, "{msg}");
            assert!(msg.starts_with("kill: "), "{msg}");
        }
    }

    #[test]
    fn bad_options_are_invalid_argument() {
        let e = ShimError::from(crate::options::OptionsError::UnknownType("x".into()));
        assert_eq!(code_of(e).0, Code::INVALID_ARGUMENT);
    }
}
