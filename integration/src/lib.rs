//! Test harness: bundles, images, private containerd instances.

pub mod attack;
pub mod bundle;
pub mod cni;
pub mod containerd;
pub mod docker;
pub mod events;
pub mod image;
pub mod pause;
pub mod propagation;
pub mod rootless;
pub mod runtime_cli;

#[cfg(feature = "cri")]
pub mod cri;
