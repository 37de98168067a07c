//! Cgroup placement. (in progress)
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Placement {}
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {0}")]
    Other(String),
}
pub fn pids(_p: &Placement) -> Result<Vec<i32>, crate::Error> { Ok(vec![]) }
pub fn is_frozen(_p: &Placement) -> bool { false }
