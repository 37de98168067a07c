//! The container-side half of the spawn protocol.
/// If this process was started as a brisk init helper, run it and never return.
pub fn run_if_init() {}
