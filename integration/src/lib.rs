//! Test harness: bundles, images, private containerd instances.

pub mod bundle;
pub mod runtime_cli;
pub mod containerd;
pub mod image;
pub mod attack;
