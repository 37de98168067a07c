//! The crate-level error: one variant per module error, so callers can map kinds (not found, already
//! exists, invalid argument...) in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
}
