//! brisk's OCI runtime library.
//!
//! Everything that creates, inspects or destroys a container lives here; the `brisk` CLI and the
//! containerd shim are thin front ends over [`Runtime`] and [`Container`]. This crate never starts an
//! async runtime and never changes its caller's process-wide state (docs/ARCHITECTURE.md, design rule 3): every
//! namespace, mount, credential or seccomp change happens in a child process that was spawned by
//! re-executing a sealed copy of the caller's binary (see [`process`]).
//!
//! Binaries that use this crate must call [`init::run_if_init`] first thing in `main`, before any
//! thread (and so before tokio) is started.

pub mod cgroups;
pub mod container;
pub mod criu;
pub mod error;
pub mod features;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod selfexe;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sys;

pub use container::{ConsoleSocket, Container, CreateOpts, ExecExtras, ExecOpts, Runtime, Spawned, Stdio};
pub use error::{Error, ErrorKind};
pub use state::Status;
