//! Loading and validating a bundle's config.json. (in progress)
use std::path::PathBuf;
pub const OCI_VERSION: &str = "1.2.0";
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}
