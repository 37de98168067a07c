//! Spawning containers and processes. (in progress)
use crate::container::*;
use crate::Error;
use std::path::Path;
use nix::sys::signal::Signal;
use oci_spec::runtime::Process;
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("spawn: {0}")]
    Other(String),
}
fn ni() -> Error { Error::Unsupported { what: "this operation".into(), reason: "not implemented yet".into() } }
pub(crate) fn create(_root: &Path, _id: &str, _opts: CreateOpts) -> Result<Container, Error> { Err(ni()) }
pub(crate) fn start(_c: &mut Container) -> Result<(), Error> { Err(ni()) }
pub(crate) fn kill(_c: &Container, _s: Signal, _all: bool) -> Result<(), Error> { Err(ni()) }
pub(crate) fn delete(_c: Container, _force: bool) -> Result<(), Error> { Err(ni()) }
pub(crate) fn exec(_c: &Container, _p: &Process, _o: ExecOpts) -> Result<Spawned, Error> { Err(ni()) }
pub(crate) fn set_frozen(_c: &mut Container, _f: bool) -> Result<(), Error> { Err(ni()) }
