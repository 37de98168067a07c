//! Persisted container state.
/// The OCI status of a container (runtime.md "State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status { Creating, Created, Running, Stopped, Paused }
