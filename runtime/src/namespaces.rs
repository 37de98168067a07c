//! Namespaces. (in progress)
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace: {0}")]
    Other(String),
}
