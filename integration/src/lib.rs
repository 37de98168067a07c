//! Test harness: bundles, images, private containerd instances.

pub mod containerd;
pub mod image;
