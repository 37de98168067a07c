//! The file the init helper is exec'd from (docs/ARCHITECTURE.md "Spawning", "CVE-2019-5736").
//!
//! The helper, and the container init it clones, run brisk's own binary inside the container's
//! namespaces until the init's final execve. A container process that opened their
//! `/proc/<pid>/exe` for writing could overwrite the host's brisk binary (CVE-2019-5736). So the
//! helper is never exec'd from the binary's path: it is exec'd through `/proc/self/fd/N` of a file
//! opened from a **read-only overlayfs** whose top layer is the binary's directory, made with
//! fsopen/fsconfig/fsmount and never attached to any mount namespace (runc 1.2's
//! `libcontainer/exeseal` does the same). `/proc/<pid>/exe` then resolves to the overlay's file:
//! opening it for writing fails with EROFS, and unlike a read-only bind mount there is no mount
//! anyone could remount read-write, and no path to the lower file through it.
//!
//! No mount namespace is involved, so the helper stays in its caller's mount namespace and the
//! container's new one is a copy of the caller's: the host's peer groups arrive intact, which
//! `rshared` mounts (Kubernetes' `mountPropagation: Bidirectional`) need. (brisk used to bind the
//! binary read-only in a mount namespace private to the helper; the container's namespace was a
//! copy of that one, where every host mount had already been made a slave.)
//!
//! Where overlayfs cannot be used (no new mount API, not root in the initial user namespace, a
//! binary deleted or replaced by an upgrade) a sealed memfd copy of the binary is the fallback
//! (runc 1.1's technique). Either way the fd is made once per process and reused.
use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum SelfExeError {
    #[error("{step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("{step} {path}: {source}")]
    Sys { step: &'static str, path: PathBuf, #[source] source: nix::Error },
    #[error("{path}: {reason}")]
    Unusable { path: PathBuf, reason: &'static str },
}

fn sys_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> SelfExeError + 'a {
    move |source| SelfExeError::Sys { step, path: path.to_path_buf(), source }
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SelfExeError + 'a {
    move |source| SelfExeError::Io { step, path: path.to_path_buf(), source }
}

const SELF_EXE: &str = "/proc/self/exe";

/// On kernels whose overlayfs takes layers only by path, the empty second layer is this directory
/// under the state root (a name no container id can have: ids never contain '@').
const EMPTY_LAYER: &str = "@exeseal";

/// Which of the two protections [`helper_exe`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// A file of a detached read-only overlayfs over the binary's directory (no copy).
    Overlay,
    /// A sealed memfd copy of the binary.
    Memfd,
}

static EXE: OnceLock<(OwnedFd, Sealing)> = OnceLock::new();

/// The fd to exec the init helper from (through `/proc/self/fd/N`, see [`exec_path`]), made on the
/// first call of this process. `root` is the state root, used only on kernels that need a directory
/// for the overlay's empty layer.
pub fn helper_exe(root: &Path) -> Result<(BorrowedFd<'static>, Sealing), SelfExeError> {
    if let Some((fd, how)) = EXE.get() {
        return Ok((fd.as_fd(), *how));
    }
    let made = match sealed_overlay(root) {
        Ok(fd) => (fd, Sealing::Overlay),
        Err(e) => {
            log::debug!("no read-only overlay for the init helper's binary ({e}); using a sealed memfd copy");
            (sealed_memfd()?, Sealing::Memfd)
        }
    };
    // Two threads may race here (the shim); one result wins and the other fd is closed.
    let (fd, how) = EXE.get_or_init(|| made);
    Ok((fd.as_fd(), *how))
}

/// The path that execs `fd`: execve follows the `/proc/self/fd` magic link to the file itself, so
/// the new process's `/proc/<pid>/exe` is that file, not the binary's path on the host.
pub fn exec_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Our binary, opened `O_PATH` from a detached read-only overlayfs whose top layer is the binary's
/// directory.
fn sealed_overlay(root: &Path) -> Result<OwnedFd, SelfExeError> {
    let link = Path::new(SELF_EXE);
    let exe = fs::read_link(link).map_err(io_err("readlink", link))?;
    if exe.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return Err(SelfExeError::Unusable { path: exe, reason: "the running binary was deleted" });
    }
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(SelfExeError::Unusable { path: exe, reason: "no directory and file name" });
    };
    let mnt = match overlay_by_fd(dir) {
        Ok(m) => m,
        Err(e) => {
            log::debug!("overlayfs with layers by fd: {e}; trying layers by path");
            overlay_by_path(dir, root)?
        }
    };
    let file = nix::fcntl::openat(&mnt, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys_err("open in the read-only overlay", &exe))?;
    // The directory may hold a different file by now (an upgrade renamed a new binary over ours):
    // the helper must run the code that sent it the bootstrap message. With xino off, overlayfs
    // reports the lower file's inode number (its device is the overlay's own).
    let ours = nix::sys::stat::stat(link).map_err(sys_err("stat", link))?;
    let got = nix::sys::stat::fstat(&file).map_err(sys_err("stat in the read-only overlay", &exe))?;
    let key = |s: &nix::sys::stat::FileStat| (s.st_ino, s.st_size, s.st_mtime, s.st_mtime_nsec);
    if key(&ours) != key(&got) {
        return Err(SelfExeError::Unusable { path: exe, reason: "the file in its directory is no longer the running binary" });
    }
    Ok(file)
}

/// The overlay built from fds (Linux 6.13+ for layers by fd): the binary's directory on top of an
/// empty detached tmpfs, so nothing on disk is needed. overlayfs refuses a single lower layer
/// without an upper one, hence the empty second layer.
fn overlay_by_fd(dir: &Path) -> Result<OwnedFd, SelfExeError> {
    let ctx = sys::fsopen(c"overlay").map_err(sys_err("fsopen overlay for", dir))?;
    // Not O_PATH: before Linux 6.15 FSCONFIG_SET_FD takes only fds opened for reading.
    let top = nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(sys_err("open", dir))?;
    sys::fsconfig_set_fd(ctx.as_fd(), c"lowerdir+", top.as_fd()).map_err(sys_err("overlayfs lowerdir+ (fd)", dir))?;
    let tmpfs = sys::fsopen(c"tmpfs").map_err(sys_err("fsopen tmpfs for", dir))?;
    sys::fsconfig_create(tmpfs.as_fd()).map_err(sys_err("create the empty tmpfs layer for", dir))?;
    let empty_mnt = sys::fsmount(tmpfs.as_fd(), libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC)
        .map_err(sys_err("fsmount the empty tmpfs layer for", dir))?;
    let empty = nix::fcntl::openat(&empty_mnt, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys_err("open the empty tmpfs layer for", dir))?;
    sys::fsconfig_set_fd(ctx.as_fd(), c"lowerdir+", empty.as_fd()).map_err(sys_err("overlayfs lowerdir+ (empty tmpfs)", dir))?;
    mount_overlay(ctx, dir)
}

/// The overlay built from paths (any kernel with the new mount API): the binary's directory on top
/// of an empty directory under the state root.
fn overlay_by_path(dir: &Path, root: &Path) -> Result<OwnedFd, SelfExeError> {
    // fsopen first: where no overlay can be made at all (not privileged, e.g. rootless), nothing
    // is created under the state root.
    let ctx = sys::fsopen(c"overlay").map_err(sys_err("fsopen overlay for", dir))?;
    let empty = root.join(EMPTY_LAYER);
    match fs::DirBuilder::new().mode(0o700).create(&empty) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &empty)(e)),
    }
    let mut lower = escape_layer(dir.as_os_str());
    lower.push(b':');
    lower.extend(escape_layer(empty.as_os_str()));
    let lower = CString::new(lower).map_err(|_| SelfExeError::Unusable { path: dir.to_path_buf(), reason: "NUL in path" })?;
    sys::fsconfig_set_string(ctx.as_fd(), c"lowerdir", &lower).map_err(sys_err("overlayfs lowerdir", dir))?;
    mount_overlay(ctx, dir)
}

/// Create the overlay's superblock and a detached read-only mount of it.
fn mount_overlay(ctx: OwnedFd, dir: &Path) -> Result<OwnedFd, SelfExeError> {
    // xino would remap inode numbers (and logs to dmesg when layers are on different filesystems);
    // off, the file keeps its lower inode number, which sealed_overlay compares. An older kernel
    // without the option simply keeps its default, which is off.
    let _ = sys::fsconfig_set_string(ctx.as_fd(), c"xino", c"off");
    sys::fsconfig_create(ctx.as_fd()).map_err(sys_err("create overlayfs over", dir))?;
    sys::fsmount(ctx.as_fd(), libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV).map_err(sys_err("fsmount overlayfs over", dir))
}

/// A path as one overlayfs `lowerdir` entry: ':' separates layers, ',' options (on kernels that
/// parse the legacy option string), and '\' escapes both.
fn escape_layer(p: &OsStr) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    for &b in p.as_bytes() {
        if matches!(b, b'\\' | b':' | b',') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// A sealed, in-memory copy of this process's executable (runc 1.1's cloned_binary): the seals make
/// it immutable, so opening the helper's `/proc/<pid>/exe` for writing gains nothing.
fn sealed_memfd() -> Result<OwnedFd, SelfExeError> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let name: &CStr = c"brisk-init";
    let memfd_path = Path::new("memfd:brisk-init");
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).map_err(sys_err("memfd_create", memfd_path))?;
    let mut src = fs::File::open(SELF_EXE).map_err(io_err("open", Path::new(SELF_EXE)))?;
    let mut dst = fs::File::from(memfd);
    std::io::copy(&mut src, &mut dst).map_err(io_err("copy the binary into", memfd_path))?;
    let memfd = OwnedFd::from(dst);
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(seals)).map_err(sys_err("seal", memfd_path))?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_paths_are_escaped() {
        assert_eq!(escape_layer(OsStr::new("/usr/bin")), b"/usr/bin");
        assert_eq!(escape_layer(OsStr::new("/a:b,c\\d")), b"/a\\:b\\,c\\\\d");
    }

    #[test]
    fn memfd_copy_is_sealed_and_complete() {
        use std::io::Write;
        let fd = sealed_memfd().expect("memfd copy");
        let ours = fs::metadata(SELF_EXE).expect("stat self");
        let copy = nix::sys::stat::fstat(&fd).expect("fstat memfd");
        assert_eq!(copy.st_size as u64, ours.len());
        // F_SEAL_WRITE: whoever reopens it for writing still cannot change a byte.
        let mut w = fs::OpenOptions::new().write(true).open(exec_path(fd.as_fd())).expect("reopen memfd");
        let e = w.write_all(b"x").expect_err("a sealed memfd must not be writable");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    }

    /// Both ways of building the overlay, on this kernel: the file is our binary and cannot be
    /// reopened for writing. Without the privilege to mount (not root) both must fail, and the
    /// memfd fallback is what `helper_exe` uses.
    #[test]
    fn overlay_file_is_the_binary_and_read_only() {
        let root = tempfile::tempdir().expect("tmpdir");
        let exe = fs::read_link(SELF_EXE).expect("readlink");
        let dir = exe.parent().expect("dir");
        let name = exe.file_name().expect("name");
        let by_fd = overlay_by_fd(dir);
        let by_path = overlay_by_path(dir, root.path());
        if !nix::unistd::geteuid().is_root() {
            assert!(by_fd.is_err() && by_path.is_err(), "mounted an overlay without privilege");
            return;
        }
        let mut made = 0;
        for (how, mnt) in [("by fd", by_fd), ("by path", by_path)] {
            // Layers by fd need Linux 6.13 (6.15 for the detached tmpfs layer); layers by path work
            // on any kernel with fsopen.
            let Ok(mnt) = mnt else {
                assert!(how == "by fd" && kernel_release() < (6, 15), "overlayfs {how} failed: {mnt:?}");
                continue;
            };
            made += 1;
            let f = nix::fcntl::openat(&mnt, name, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).expect("open in overlay");
            let st = nix::sys::stat::fstat(&f).expect("fstat");
            assert_eq!(st.st_size as u64, fs::metadata(&exe).expect("stat").len(), "{how}");
            let e = fs::OpenOptions::new().write(true).open(exec_path(f.as_fd())).map(|_| ()).expect_err("writable overlay file");
            assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{how}: {e}");
        }
        assert!(made > 0);
        let fd = sealed_overlay(root.path()).expect("sealed overlay");
        assert_eq!(nix::sys::stat::fstat(&fd).expect("fstat").st_ino, nix::sys::stat::stat(SELF_EXE).expect("stat").st_ino);
        // And it is what the helper is exec'd from: the memfd copy is only the fallback.
        let (_, how) = helper_exe(root.path()).expect("helper exe");
        assert_eq!(how, Sealing::Overlay);
    }

    fn kernel_release() -> (u32, u32) {
        let u = nix::sys::utsname::uname().expect("uname");
        let r = u.release().to_string_lossy().into_owned();
        let mut it = r.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }
}
