//! Host-side fixtures for mount propagation tests (sharedsubtree.rst): a host directory that is a
//! *shared* mount point, like the host paths Kubernetes' `mountPropagation: Bidirectional` and
//! critest's "mount with 'rshared'" need, plus mounts made on the host under it.
//!
//! Everything mounted under the fixture's directory — by the test on the host, or propagated back
//! from a container — is detached when the fixture is dropped, also when the test fails.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A temp dir holding `vol/`, a tmpfs made shared (its own peer group), so that mounts under it
/// propagate to every peer: bind mounts of it in containers with `rshared`, and back.
#[derive(Debug)]
pub struct SharedVolume {
    dir: tempfile::TempDir,
    vol: PathBuf,
}

impl SharedVolume {
    /// Mount a tmpfs at `<tmp>/vol` and make it shared (`mount --make-shared`).
    pub fn new() -> SharedVolume {
        let dir = tempfile::Builder::new().prefix("brisk-prop-").tempdir().expect("propagation temp dir");
        let vol = dir.path().join("vol");
        fs::create_dir(&vol).expect("mkdir vol");
        let v = SharedVolume { dir, vol };
        mount(Some("brisk-prop"), &v.vol, Some("tmpfs"), MsFlags::empty(), Some("size=1m,mode=755"))
            .unwrap_or_else(|e| panic!("mounting a tmpfs on {}: {e}", v.vol.display()));
        mount(None::<&str>, &v.vol, None::<&str>, MsFlags::MS_SHARED, None::<&str>)
            .unwrap_or_else(|e| panic!("making {} shared: {e}", v.vol.display()));
        assert!(mount_of(&v.vol).is_some_and(|m| m.contains("shared:")), "{} is not a shared mount", v.vol.display());
        v
    }

    /// The shared mount point on the host.
    pub fn path(&self) -> &Path {
        &self.vol
    }

    /// On the host: mount a fresh tmpfs at `<vol>/<name>` (created) holding `marker` with `content`.
    pub fn host_mount(&self, name: &str, marker: &str, content: &str) -> PathBuf {
        let p = self.vol.join(name);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        mount(Some("brisk-prop-host"), &p, Some("tmpfs"), MsFlags::empty(), Some("size=1m"))
            .unwrap_or_else(|e| panic!("mounting a tmpfs on {}: {e}", p.display()));
        fs::write(p.join(marker), content).unwrap_or_else(|e| panic!("writing {marker} in {}: {e}", p.display()));
        p
    }
}

impl Default for SharedVolume {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SharedVolume {
    fn drop(&mut self) {
        // Deepest first; MNT_DETACH also copes with a mount still busy in a dying container. A
        // propagated mount can appear more than once (stacked): repeat until none is left.
        for _ in 0..8 {
            let mut under = crate::containerd::mounts_under(self.dir.path());
            if under.is_empty() {
                break;
            }
            under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
            for m in under {
                let _ = umount2(&m, MntFlags::MNT_DETACH);
            }
        }
        // TempDir's own drop removes the (now plain) directories.
    }
}

/// The host's mountinfo line of the mount at `path`, if something is mounted exactly there.
pub fn mount_of(path: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The last one: the mount on top, as path lookup sees it. The fixture's paths (tempfile names)
    // have nothing mountinfo escapes.
    info.lines().rev().find(|l| l.split_whitespace().nth(4).is_some_and(|p| Path::new(p) == path)).map(str::to_owned)
}
