//! Test harness: bundles, images, private containerd instances.
