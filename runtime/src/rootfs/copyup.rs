//! runc's `tmpcopyup`: copy a directory tree of the image into a freshly mounted tmpfs.
//!
//! What is copied, and how, follows runc 1.1.5 (libcontainer/rootfs_linux.go doTmpfsCopyUp, which
//! uses github.com/mrunalp/fileutils CopyDirectory):
//! * directories: mkdir with the source's permission bits (so the process umask applies, as with
//!   Go's os.Mkdir), then lchown;
//! * regular files: new file, content copied, chown, then chmod with the full 07777 bits (after the
//!   chown, which would clear set-uid/set-gid);
//! * symlinks: the same target, lchown'ed;
//! * character and block devices: mknod with the same number, chown, chmod.
//!
//! Not copied, as in runc: the top directory's owner (the tmpfs root keeps the tmpfs's own), access
//! and modification times, extended attributes, hard links (each name gets its own copy).
//! Deliberate differences: a FIFO is recreated (runc's copy fails on one, since it creates nothing
//! and then cannot chown it), and a socket is skipped (its inode carries no data to copy).
//!
//! Every step is relative to directory fds and never follows a symlink (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`), so nothing in the image can make the copy read or write outside the
//! source tree and the new tmpfs.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

/// A failed step of the copy: what was done, on which path (relative to the copied directory).
#[derive(Debug, thiserror::Error)]
#[error("{step} {path}: {source}")]
pub(crate) struct CopyError {
    pub step: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: Errno,
}

fn err<'p>(step: &'static str, path: &'p Path) -> impl FnOnce(Errno) -> CopyError + 'p {
    move |source| CopyError { step, path: path.to_path_buf(), source }
}

/// Deeper trees are refused rather than exhausting fds (two per level are open at once).
const MAX_DEPTH: usize = 256;

/// Copy the contents of directory `src` into directory `dst` (both opened `O_RDONLY|O_DIRECTORY`).
pub(crate) fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), CopyError> {
    copy_dir(src, dst, Path::new("."), 0)
}

fn owner(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))
}

fn perm(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path, depth: usize) -> Result<(), CopyError> {
    if depth > MAX_DEPTH {
        return Err(err("copy (too deep)", rel)(Errno::ELOOP));
    }
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // A fresh open of "." gives the directory stream its own file offset.
    let mut dir = Dir::openat(src, ".", dir_flags, Mode::empty()).map_err(err("open directory", rel))?;
    for entry in dir.iter() {
        let entry = entry.map_err(err("read directory", rel))?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let path = rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let path = path.as_path();
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("stat", path))?;
        let (uid, gid) = owner(&st);
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => {
                mkdirat(dst, name, perm(&st)).map_err(err("mkdir", path))?;
                fchownat(dst, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("chown", path))?;
                let s: OwnedFd = openat(src, name, dir_flags, Mode::empty()).map_err(err("open directory", path))?;
                let d: OwnedFd = openat(dst, name, dir_flags, Mode::empty()).map_err(err("open new directory", path))?;
                copy_dir(s.as_fd(), d.as_fd(), path, depth + 1)?;
            }
            SFlag::S_IFREG => {
                let from: OwnedFd = openat(src, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(err("open", path))?;
                let to: OwnedFd = openat(
                    dst,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(err("create", path))?;
                let (mut from, mut to) = (File::from(from), File::from(to));
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| err("copy", path)(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
                fchown(&to, uid, gid).map_err(err("chown", path))?;
                fchmod(&to, perm(&st)).map_err(err("chmod", path))?;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name).map_err(err("readlink", path))?;
                symlinkat(target.as_os_str(), dst, name).map_err(err("symlink", path))?;
                fchownat(dst, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("chown", path))?;
            }
            kind @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
                mknodat(dst, name, kind, perm(&st), st.st_rdev).map_err(err("mknod", path))?;
                fchownat(dst, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("chown", path))?;
                // Just created by us in a tmpfs no one else sees yet: not a symlink.
                fchmodat(dst, name, perm(&st), FchmodatFlags::FollowSymlink).map_err(err("chmod", path))?;
            }
            // Sockets: nothing to copy (see the module comment).
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("brisk-copyup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    fn dir_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
    }

    /// Content, modes (set-uid included), symlinks, subdirectories and FIFOs are copied; nothing is
    /// followed through a symlink. Ownership is checked when the test runs as root (chown to
    /// another owner needs CAP_CHOWN); otherwise the files are the test user's and stay so.
    #[test]
    fn copies_a_tree_like_runc() {
        let t = tmp("tree");
        let (src, dst, outside) = (t.0.join("src"), t.0.join("dst"), t.0.join("outside"));
        for d in [&src, &dst, &outside] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(outside.join("secret"), "host").unwrap();
        std::fs::write(src.join("f"), "hello").unwrap();
        std::fs::create_dir(src.join("sub")).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(src.join("sub/g"), "deep").unwrap();
        std::os::unix::fs::symlink("../outside", src.join("esc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            nix::unistd::chown(&src.join("f"), Some(Uid::from_raw(1234)), Some(Gid::from_raw(5678))).unwrap();
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &src.join("esc"),
                Some(Uid::from_raw(42)),
                Some(Gid::from_raw(43)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .unwrap();
            nix::unistd::chown(&src.join("sub"), Some(Uid::from_raw(7)), Some(Gid::from_raw(8))).unwrap();
        }
        // After the chown, which clears set-uid.
        std::fs::set_permissions(src.join("f"), std::fs::Permissions::from_mode(0o4750)).unwrap();

        let (s, d) = (dir_fd(&src), dir_fd(&dst));
        copy_tree(s.as_fd(), d.as_fd()).unwrap();

        assert_eq!(std::fs::read_to_string(dst.join("f")).unwrap(), "hello");
        let f = std::fs::metadata(dst.join("f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4750);
        assert_eq!(std::fs::read_to_string(dst.join("sub/g")).unwrap(), "deep");
        assert_eq!(std::fs::metadata(dst.join("sub")).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::read_link(dst.join("esc")).unwrap(), Path::new("../outside"));
        assert_eq!(std::fs::read_link(dst.join("abs")).unwrap(), Path::new("/etc/passwd"));
        let fifo = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
        assert_eq!(fifo.mode() & SFlag::S_IFMT.bits(), SFlag::S_IFIFO.bits());
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        // Nothing was copied from where the symlinks point.
        assert!(!dst.join("secret").exists() && !dst.join("passwd").exists());
        assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 5);
        if root {
            assert_eq!((f.uid(), f.gid()), (1234, 5678));
            let l = std::fs::symlink_metadata(dst.join("esc")).unwrap();
            assert_eq!((l.uid(), l.gid()), (42, 43));
            let sub = std::fs::metadata(dst.join("sub")).unwrap();
            assert_eq!((sub.uid(), sub.gid()), (7, 8));
        }
        // The source is untouched.
        assert_eq!(std::fs::read_to_string(outside.join("secret")).unwrap(), "host");
    }

    #[test]
    fn an_existing_name_in_the_destination_is_an_error_naming_it() {
        let t = tmp("exists");
        let (src, dst) = (t.0.join("src"), t.0.join("dst"));
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir_all(dst.join("d")).unwrap();
        let e = copy_tree(dir_fd(&src).as_fd(), dir_fd(&dst).as_fd()).unwrap_err();
        assert_eq!((e.step, e.path.as_path(), e.source), ("mkdir", Path::new("./d"), Errno::EEXIST));
    }
}
