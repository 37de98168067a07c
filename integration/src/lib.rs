//! Test harness: bundles, images, private containerd instances.

pub mod bundle;
pub mod containerd;
pub mod image;
#[cfg(feature = "cri")]
pub mod cni;
pub mod cri;
pub mod pause;
pub mod runtime_cli;
