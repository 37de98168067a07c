//! A busybox OCI image built locally from the host's static busybox, so the
//! end-to-end tests never pull from a registry.
//!
//! The archive is an OCI image layout (image-spec `image-layout.md`) in a tar:
//! `oci-layout`, `index.json` and `blobs/sha256/*` with one uncompressed layer.
//! `ctr images import` on 1.6, 1.7 and 2.x names the image from the
//! `io.containerd.image.name` annotation of the index entry; the
//! `org.opencontainers.image.ref.name` annotation is kept for other tools.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

/// The reference the imported image is known by.
pub const BUSYBOX_REF: &str = "docker.io/library/busybox:brisk";

/// Where the busybox binary comes from (Debian's busybox-static).
pub const HOST_BUSYBOX: &str = "/bin/busybox";

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading busybox binary {path}: {source}")]
    ReadBusybox { path: PathBuf, source: io::Error },
    #[error("listing busybox applets with `{path} --list`: {detail}")]
    ListApplets { path: PathBuf, detail: String },
    #[error("{step} while building the image tar: {source}")]
    Tar {
        step: &'static str,
        source: io::Error,
    },
    #[error("writing image archive {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("unsupported host architecture {0} for the OCI platform field")]
    Arch(String),
}

/// An OCI image archive on disk.
#[derive(Debug, Clone)]
pub struct OciImage {
    /// Path of the image-layout tar.
    pub archive: PathBuf,
    /// Image name recorded in the index annotation.
    pub reference: String,
    /// `sha256:...` digest of the manifest.
    pub manifest_digest: String,
}

fn oci_arch() -> Result<&'static str, ImageError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("arm64"),
        "riscv64" => Ok("riscv64"),
        "powerpc64" => Ok("ppc64le"),
        "s390x" => Ok("s390x"),
        other => Err(ImageError::Arch(other.to_string())),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(data) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>, ImageError> {
    let out =
        Command::new(busybox)
            .arg("--list")
            .output()
            .map_err(|e| ImageError::ListApplets {
                path: busybox.to_path_buf(),
                detail: e.to_string(),
            })?;
    if !out.status.success() {
        return Err(ImageError::ListApplets {
            path: busybox.to_path_buf(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        // An applet name becomes a path component: refuse anything odd.
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/') && *a != "." && *a != "..")
        .map(str::to_string)
        .collect())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    // A fixed mtime keeps the layer digest reproducible.
    h.set_mtime(0);
    h
}

fn tar_err(step: &'static str) -> impl FnOnce(io::Error) -> ImageError {
    move |source| ImageError::Tar { step, source }
}

/// The root filesystem layer: busybox, its applet symlinks and the few
/// directories and files a container runtime expects to mount over.
fn build_layer(busybox: &Path) -> Result<Vec<u8>, ImageError> {
    let bin = fs::read(busybox).map_err(|source| ImageError::ReadBusybox {
        path: busybox.to_path_buf(),
        source,
    })?;
    let applets = busybox_applets(busybox)?;
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin/", 0o755),
        ("dev/", 0o755),
        ("etc/", 0o755),
        ("proc/", 0o555),
        ("root/", 0o700),
        ("sys/", 0o555),
        ("tmp/", 0o1777),
        ("usr/", 0o755),
        ("usr/bin/", 0o755),
        ("var/", 0o755),
    ] {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        b.append_data(&mut h, dir, io::empty())
            .map_err(tar_err("adding a directory"))?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", bin.as_slice())
        .map_err(tar_err("adding bin/busybox"))?;
    for applet in &applets {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .map_err(tar_err("adding an applet symlink"))?;
    }
    for (path, content) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/hostname", "brisk\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, content.len() as u64);
        b.append_data(&mut h, path, content.as_bytes())
            .map_err(tar_err("adding an /etc file"))?;
    }
    b.into_inner().map_err(tar_err("finishing the layer"))
}

/// Writes the busybox root filesystem (the layer of [`build_busybox_image`]) as a plain tar at
/// `dest`: what `docker import` takes (Docker 20.10 cannot load an OCI image layout).
pub fn build_busybox_rootfs_tar(dest: &Path) -> Result<(), ImageError> {
    let layer = build_layer(Path::new(HOST_BUSYBOX))?;
    fs::write(dest, layer).map_err(|source| ImageError::Write {
        path: dest.to_path_buf(),
        source,
    })
}

/// Builds the busybox OCI image archive at `dest` (a `.tar` path).
pub fn build_busybox_image(dest: &Path) -> Result<OciImage, ImageError> {
    build_image_from(Path::new(HOST_BUSYBOX), BUSYBOX_REF, dest)
}

/// Builds an OCI image archive from a static busybox at `busybox`, named `reference`.
pub fn build_image_from(
    busybox: &Path,
    reference: &str,
    dest: &Path,
) -> Result<OciImage, ImageError> {
    let arch = oci_arch()?;
    let layer = build_layer(busybox)?;
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));

    let config = serde_json::to_vec(&json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "brisk-integration: host busybox-static" }],
    }))
    .map_err(|e| ImageError::Tar { step: "serializing the config", source: e.into() })?;
    pack_archive(arch, &layer, &config, reference, dest)
}

/// A file of an image built by [`build_image_from_files`]: path inside the
/// image (relative, no `..`), mode and content.
#[derive(Debug, Clone)]
pub struct ImageFile<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
}

/// Builds a one-layer OCI image archive at `dest` holding just `files`, with
/// `entrypoint` as the image config's Entrypoint (e.g. the pod sandbox's pause
/// image). Same layout and naming rules as [`build_image_from`].
pub fn build_image_from_files(
    files: &[ImageFile<'_>],
    entrypoint: &[&str],
    reference: &str,
    dest: &Path,
) -> Result<OciImage, ImageError> {
    let arch = oci_arch()?;
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = header(tar::EntryType::Regular, f.mode, f.data.len() as u64);
        b.append_data(&mut h, f.path, f.data)
            .map_err(tar_err("adding an image file"))?;
    }
    let layer = b.into_inner().map_err(tar_err("finishing the layer"))?;
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let config = serde_json::to_vec(&json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": { "Entrypoint": entrypoint, "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "brisk-integration: build_image_from_files" }],
    }))
    .map_err(|e| ImageError::Tar { step: "serializing the config", source: e.into() })?;
    pack_archive(arch, &layer, &config, reference, dest)
}

/// Writes the image-layout tar (manifest, index, blobs) for one layer and its config.
fn pack_archive(
    arch: &str,
    layer: &[u8],
    config: &[u8],
    reference: &str,
    dest: &Path,
) -> Result<OciImage, ImageError> {
    let layer_digest = format!("sha256:{}", sha256_hex(layer));
    let config_digest = format!("sha256:{}", sha256_hex(config));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len() }],
    }))
    .map_err(|e| ImageError::Tar {
        step: "serializing the manifest",
        source: e.into(),
    })?;
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let tag = reference
        .rsplit_once(':')
        .map(|(_, t)| t)
        .filter(|t| !t.contains('/'))
        .unwrap_or("latest");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": { "architecture": arch, "os": "linux" },
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .map_err(|e| ImageError::Tar {
        step: "serializing the index",
        source: e.into(),
    })?;
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |path: String, data: &[u8], kind: tar::EntryType, mode: u32| {
        let mut h = header(kind, mode, data.len() as u64);
        out.append_data(&mut h, path, data)
    };
    add(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        tar::EntryType::Regular,
        0o644,
    )
    .map_err(tar_err("adding oci-layout"))?;
    add("blobs/".into(), b"", tar::EntryType::Directory, 0o755)
        .map_err(tar_err("adding blobs/"))?;
    add(
        "blobs/sha256/".into(),
        b"",
        tar::EntryType::Directory,
        0o755,
    )
    .map_err(tar_err("adding blobs/sha256/"))?;
    for (digest, data) in [
        (&layer_digest, layer),
        (&config_digest, config),
        (&manifest_digest, &manifest[..]),
    ] {
        let hex = digest.trim_start_matches("sha256:");
        add(
            format!("blobs/sha256/{hex}"),
            data,
            tar::EntryType::Regular,
            0o644,
        )
        .map_err(tar_err("adding a blob"))?;
    }
    add("index.json".into(), &index, tar::EntryType::Regular, 0o644)
        .map_err(tar_err("adding index.json"))?;
    let bytes = out.into_inner().map_err(tar_err("finishing the archive"))?;
    let werr = |source| ImageError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let tmp = dest.with_extension("tar.tmp");
    let mut f = fs::File::create(&tmp).map_err(werr)?;
    f.write_all(&bytes).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    fs::rename(&tmp, dest).map_err(werr)?;
    Ok(OciImage {
        archive: dest.to_path_buf(),
        reference: reference.to_string(),
        manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_has_layout_index_and_blobs_with_matching_digests() {
        let dir = std::env::temp_dir().join(format!("brisk-image-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let img = build_busybox_image(&dir.join("busybox.tar")).expect("build image");
        let data = fs::read(&img.archive).expect("read archive");
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(data.as_slice());
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                let mut body = Vec::new();
                io::Read::read_to_end(&mut e, &mut body).expect("read blob");
                assert_eq!(
                    sha256_hex(&body),
                    hex,
                    "blob {name} content does not match its name"
                );
            }
            names.push(name);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
        assert!(names.contains(&"oci-layout".to_string()));
        assert!(names.contains(&"index.json".to_string()));
        assert!(names.contains(&format!(
            "blobs/sha256/{}",
            img.manifest_digest.trim_start_matches("sha256:")
        )));
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13)
                .count(),
            3
        );
    }
}
