//! The pod sandbox ("pause") image, built locally: integration/pause/pause.c
//! compiled with `gcc -static -Os` and packed as a one-file OCI image, so CRI
//! tests never pull registry.k8s.io/pause.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::{self, ImageFile, OciImage};

/// The reference containerd's CRI is configured to use as sandbox image.
pub const PAUSE_REF: &str = "localhost/brisk/pause:test";

/// The C source, next to this crate's sources.
pub fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pause/pause.c")
}

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("running {cc} to build {src}: {source} (Debian: apt-get install gcc libc6-dev)")]
    Spawn {
        cc: String,
        src: PathBuf,
        source: io::Error,
    },
    #[error("{cc} -static failed on {src}: {status}\n{stderr}")]
    Compile {
        cc: String,
        src: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("reading the pause binary {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("packing the pause image: {0}")]
    Image(#[from] image::ImageError),
}

/// Compiles the static pause binary into `dir` and returns its path.
/// `$CC` overrides the compiler (default `gcc`).
pub fn build_pause_binary(dir: &Path) -> Result<PathBuf, PauseError> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let src = source();
    let out = dir.join("pause");
    let res = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .map_err(|source| PauseError::Spawn {
            cc: cc.clone(),
            src: src.clone(),
            source,
        })?;
    if !res.status.success() {
        return Err(PauseError::Compile {
            cc,
            src,
            status: res.status,
            stderr: String::from_utf8_lossy(&res.stderr).into_owned(),
        });
    }
    Ok(out)
}

/// Builds the pause binary and its image archive (`/pause`, entrypoint
/// `["/pause"]`, named [`PAUSE_REF`]) in `dir`.
pub fn build_pause_image(dir: &Path) -> Result<OciImage, PauseError> {
    let bin = build_pause_binary(dir)?;
    let data = std::fs::read(&bin).map_err(|source| PauseError::Read {
        path: bin.clone(),
        source,
    })?;
    let files = [ImageFile {
        path: "pause",
        mode: 0o755,
        data: &data,
    }];
    Ok(image::build_image_from_files(
        &files,
        &["/pause"],
        PAUSE_REF,
        &dir.join("pause-oci.tar"),
    )?)
}
