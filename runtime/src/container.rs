//! The public lifecycle API: [`Runtime`] (a state root) and [`Container`].
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The container's stdio as seen by its init (or an exec'd process). `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Options for [`Runtime::create`], mirroring `runc create`.
#[derive(Debug, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub stdio: Stdio,
    /// `--console-socket`: the pty master is sent there over SCM_RIGHTS.
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: fds 3..3+N of the caller are passed to the container, in order.
    pub preserve_fds: Vec<OwnedFd>,
}

/// Options for [`Container::exec`].
#[derive(Debug, Default)]
pub struct ExecOpts {
    pub stdio: Stdio,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: Vec<OwnedFd>,
}

/// A state root (`--root`), with the sealed copy of the caller's binary used to spawn inits.
#[derive(Debug)]
pub struct Runtime {
    pub root: PathBuf,
}

/// A container known to a [`Runtime`].
#[derive(Debug)]
pub struct Container {
    pub id: String,
}
