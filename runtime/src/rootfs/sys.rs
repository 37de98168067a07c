//! The syscall seam of the rootfs steps. [`Sys`] is what the planning code in `ops` calls; [`RealSys`]
//! is the kernel. Container paths given to it are absolute paths inside the current root, which the
//! real implementation resolves with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` against a
//! directory fd of the rootfs, so no path it touches can lead outside (CVE-2021-30465).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mknodat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{fchownat, Gid, Uid};

use super::copyup::{copy_tree, CopyError};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// Where a mount(2) goes.
#[derive(Debug)]
pub(crate) enum Target<'a, F> {
    /// A path opened inside the root (mounted on through /proc/self/fd/N).
    In(&'a F),
    /// A host path, used for the steps that act on the rootfs itself (before it is the root) or on "/".
    Host(&'a Path),
}

/// `struct mount_attr` for mount_setattr(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
}

pub(crate) trait Sys {
    /// An opened path inside the root (`O_PATH`).
    type Fd: std::fmt::Debug;

    /// Use this host directory as the root that container paths are resolved in.
    fn set_root(&mut self, host_dir: &Path) -> nix::Result<()>;
    /// The target of the symlink at `path` (its parent resolved in the root), `None` if `path` is
    /// not a symlink; `ENOENT` if it does not exist.
    fn readlink(&mut self, path: &Path) -> nix::Result<Option<PathBuf>>;
    /// Open `path` inside the root, following symlinks only inside it.
    fn open(&mut self, path: &Path) -> nix::Result<Self::Fd>;
    /// Open a directory inside the root for reading its entries (tmpcopyup's source, opened before
    /// the tmpfs covers it: the fd keeps reaching the image's directory underneath).
    fn open_dir(&mut self, path: &Path) -> nix::Result<Self::Fd>;
    /// Copy the tree under `src` (from `open_dir`) into the directory at `dest` (runc's tmpcopyup).
    fn copy_tree(&mut self, src: &Self::Fd, dest: &Path) -> Result<(), CopyError>;
    fn kind(&mut self, fd: &Self::Fd) -> nix::Result<Kind>;
    /// Permission bits (07777) of an opened path.
    fn perm(&mut self, fd: &Self::Fd) -> nix::Result<u32>;
    /// chmod a directory inside the root (never through a symlink).
    fn chmod_dir(&mut self, path: &Path, perm: u32) -> nix::Result<()>;
    /// mkdir (not -p); `EEXIST` when something is there.
    fn mkdir(&mut self, path: &Path, mode: u32) -> nix::Result<()>;
    /// Create an empty regular file (never through a symlink); `EEXIST` when something is there.
    fn create_file(&mut self, path: &Path, mode: u32) -> nix::Result<()>;
    fn mknod(&mut self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> nix::Result<()>;
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> nix::Result<()>;
    fn symlink(&mut self, target: &Path, path: &Path) -> nix::Result<()>;
    fn unlink(&mut self, path: &Path) -> nix::Result<()>;
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: Target<'_, Self::Fd>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    fn mount_setattr(&mut self, target: &Self::Fd, attr: MountAttr) -> nix::Result<()>;
    /// umount2(MNT_DETACH) of a host path (--no-pivot's hiding of host proc/sysfs).
    fn umount_detach(&mut self, path: &Path) -> nix::Result<()>;
    /// The per-mount flags of the mount `target` is on (statvfs), as `MS_*` bits.
    fn mount_flags(&mut self, target: &Self::Fd) -> nix::Result<MsFlags>;
    /// Host path type, following symlinks (bind-mount sources).
    fn host_kind(&mut self, path: &Path) -> nix::Result<Kind>;
    fn host_is_procfs(&mut self, path: &Path) -> nix::Result<bool>;
    fn host_exists(&mut self, path: &Path) -> bool;
    /// The host has only the unified cgroup v2 hierarchy at /sys/fs/cgroup.
    fn cgroup2_only(&mut self) -> bool;
    fn mountinfo(&mut self) -> nix::Result<String>;
    fn umask(&mut self, mask: u32) -> u32;
    /// pivot_root(".", ".") into `rootfs`, make the old root rslave, detach it, chdir("/").
    fn pivot_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)>;
    /// runc --no-pivot: MS_MOVE `rootfs` onto "/", chroot("."), chdir("/").
    fn move_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)>;
}

/// The kernel.
#[derive(Debug, Default)]
pub(crate) struct RealSys {
    root: Option<OwnedFd>,
    /// Host path of the root, for the fallback when /proc/self/fd is not available.
    root_path: PathBuf,
    procfd: bool,
}

/// An `O_PATH` fd plus the container path it was opened for.
#[derive(Debug)]
pub(crate) struct RealFd {
    fd: OwnedFd,
    path: PathBuf,
}

fn rel(path: &Path) -> PathBuf {
    let r: PathBuf = path.components().filter(|c| matches!(c, Component::Normal(_))).collect();
    if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    }
}

fn split(path: &Path) -> nix::Result<(PathBuf, OsString)> {
    let name = path.file_name().ok_or(Errno::EINVAL)?.to_os_string();
    Ok((path.parent().unwrap_or(Path::new("/")).to_path_buf(), name))
}

fn kind_of(mode: u32) -> Kind {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn statvfs_to_ms(f: FsFlags) -> MsFlags {
    let mut out = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (0x1000) is not MS_RELATIME: a raw copy would set MS_REC.
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st) {
            out |= ms;
        }
    }
    out
}

impl RealSys {
    fn root(&self) -> nix::Result<&OwnedFd> {
        self.root.as_ref().ok_or(Errno::EBADF)
    }

    fn open_in(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.root()?, &rel(path), how)
    }

    fn parent(&self, path: &Path) -> nix::Result<(OwnedFd, OsString)> {
        let (parent, name) = split(path)?;
        Ok((self.open_in(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?, name))
    }

    fn target_path(&self, fd: &RealFd) -> PathBuf {
        if self.procfd {
            PathBuf::from(format!("/proc/self/fd/{}", fd.fd.as_raw_fd()))
        } else {
            self.root_path.join(rel(&fd.path))
        }
    }
}

impl Sys for RealSys {
    type Fd = RealFd;

    fn set_root(&mut self, host_dir: &Path) -> nix::Result<()> {
        let fd = nix::fcntl::open(host_dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
        self.root = Some(fd);
        self.root_path = host_dir.to_path_buf();
        // After pivot the container may have no procfs on /proc (the image's own /proc directory
        // must not be trusted to hold magic links); then the root is "/" and plain paths cannot
        // leave it.
        self.procfd = nix::sys::statfs::statfs("/proc")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        Ok(())
    }

    fn readlink(&mut self, path: &Path) -> nix::Result<Option<PathBuf>> {
        if path.file_name().is_none() {
            return Ok(None);
        }
        let (dir, name) = self.parent(path)?;
        match nix::fcntl::readlinkat(&dir, name.as_os_str()) {
            Ok(t) => Ok(Some(PathBuf::from(t))),
            Err(Errno::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open(&mut self, path: &Path) -> nix::Result<RealFd> {
        Ok(RealFd { fd: self.open_in(path, OFlag::O_PATH)?, path: path.to_path_buf() })
    }

    fn open_dir(&mut self, path: &Path) -> nix::Result<RealFd> {
        Ok(RealFd { fd: self.open_in(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?, path: path.to_path_buf() })
    }

    fn copy_tree(&mut self, src: &RealFd, dest: &Path) -> Result<(), CopyError> {
        let to = self
            .open_in(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|source| CopyError { step: "open tmpfs", path: PathBuf::from("."), source })?;
        copy_tree(src.fd.as_fd(), to.as_fd())
    }

    fn kind(&mut self, fd: &RealFd) -> nix::Result<Kind> {
        Ok(kind_of(fstat(&fd.fd)?.st_mode))
    }

    fn perm(&mut self, fd: &RealFd) -> nix::Result<u32> {
        Ok(fstat(&fd.fd)?.st_mode & 0o7777)
    }

    fn chmod_dir(&mut self, path: &Path, perm: u32) -> nix::Result<()> {
        let fd = self.open_in(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(perm))
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        nix::sys::stat::mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(mode))
    }

    fn create_file(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        openat(
            &dir,
            name.as_os_str(),
            // O_EXCL: an existing file is reported, never opened for writing (it may belong to an
            // unmapped user in a user namespace), and a symlink is never followed.
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(mode),
        )
        .map(drop)
    }

    fn mknod(&mut self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        mknodat(&dir, name.as_os_str(), kind, Mode::from_bits_truncate(perm), dev)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        fchownat(
            &dir,
            name.as_os_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    fn symlink(&mut self, target: &Path, path: &Path) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        nix::unistd::symlinkat(target, &dir, name.as_os_str())
    }

    fn unlink(&mut self, path: &Path) -> nix::Result<()> {
        let (dir, name) = self.parent(path)?;
        nix::unistd::unlinkat(&dir, name.as_os_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
    }

    fn mount(
        &mut self,
        source: Option<&Path>,
        target: Target<'_, RealFd>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        let target = match target {
            Target::In(fd) => self.target_path(fd),
            Target::Host(p) => p.to_path_buf(),
        };
        mount(source, &target, fstype, flags, data)
    }

    fn mount_setattr(&mut self, target: &RealFd, attr: MountAttr) -> nix::Result<()> {
        #[repr(C)]
        struct RawMountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        let raw = RawMountAttr {
            attr_set: attr.attr_set,
            attr_clr: attr.attr_clr,
            propagation: attr.propagation,
            userns_fd: 0,
        };
        // SAFETY: mount_setattr reads `size_of::<RawMountAttr>()` bytes from a live, properly laid
        // out struct (MOUNT_ATTR_SIZE_VER0 layout) and an empty NUL-terminated path; the fd is owned
        // by `target` and open for the duration of the call.
        let res = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                target.fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
                &raw as *const RawMountAttr,
                std::mem::size_of::<RawMountAttr>(),
            )
        };
        Errno::result(res).map(drop)
    }

    fn umount_detach(&mut self, path: &Path) -> nix::Result<()> {
        umount2(path, MntFlags::MNT_DETACH)
    }

    fn mount_flags(&mut self, target: &RealFd) -> nix::Result<MsFlags> {
        Ok(statvfs_to_ms(fstatvfs(target.fd.as_fd())?.flags()))
    }

    fn host_kind(&mut self, path: &Path) -> nix::Result<Kind> {
        Ok(kind_of(nix::sys::stat::stat(path)?.st_mode))
    }

    fn host_is_procfs(&mut self, path: &Path) -> nix::Result<bool> {
        Ok(nix::sys::statfs::statfs(path)?.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
    }

    fn host_exists(&mut self, path: &Path) -> bool {
        nix::sys::stat::lstat(path).is_ok()
    }

    fn cgroup2_only(&mut self) -> bool {
        nix::sys::statfs::statfs("/sys/fs/cgroup")
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false)
    }

    fn mountinfo(&mut self) -> nix::Result<String> {
        std::fs::read("/proc/self/mountinfo")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    fn umask(&mut self, mask: u32) -> u32 {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask)).bits()
    }

    fn pivot_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)> {
        let ro = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let old = nix::fcntl::open("/", ro, Mode::empty()).map_err(|e| ("open old root", e))?;
        let new = nix::fcntl::open(rootfs, ro, Mode::empty()).map_err(|e| ("open new root", e))?;
        nix::unistd::fchdir(&new).map_err(|e| ("chdir into rootfs", e))?;
        // pivot_root(".", ".") stacks the old root on top of the new one at "/", so no put_old
        // directory is needed inside the rootfs (runc's approach).
        nix::unistd::pivot_root(".", ".").map_err(|e| ("pivot_root", e))?;
        nix::unistd::fchdir(&old).map_err(|e| ("chdir into old root", e))?;
        // Make the old root rslave first so that the detach below does not propagate unmounts back
        // to the host's mounts.
        mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| ("make old root rslave", e))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| ("detach old root", e))?;
        nix::unistd::chdir("/").map_err(|e| ("chdir /", e))
    }

    fn move_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)> {
        nix::unistd::chdir(rootfs).map_err(|e| ("chdir into rootfs", e))?;
        mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|e| ("move rootfs to /", e))?;
        nix::unistd::chroot(".").map_err(|e| ("chroot", e))?;
        nix::unistd::chdir("/").map_err(|e| ("chdir /", e))
    }
}


#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// RealSys never leaves the root, whatever symlinks the rootfs holds (CVE-2021-30465). No root
    /// privileges needed: only opens, mkdir and readlink.
    #[test]
    fn real_sys_stays_inside_the_root() {
        let t = Tmp(std::env::temp_dir().join(format!("brisk-rootfs-sys-{}", std::process::id())));
        let root = t.0.join("rootfs");
        let outside = t.0.join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../outside", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root", root.join("magic")).unwrap();
        let mut s = RealSys::default();
        s.set_root(&root).unwrap();

        // Neither an absolute nor a relative symlink reaches the host's `outside`.
        assert_eq!(s.open(Path::new("/abs/secret")).unwrap_err(), Errno::ENOENT);
        assert_eq!(s.open(Path::new("/rel/secret")).unwrap_err(), Errno::ENOENT);
        assert_eq!(s.open(Path::new("/../../outside/secret")).unwrap_err(), Errno::ENOENT);
        // /proc/self/root is a magic link: refused outright.
        assert!(s.open(Path::new("/magic/etc")).is_err());
        // Creating through the symlink creates inside the root.
        s.mkdir(Path::new("/abs/newdir"), 0o755).unwrap_err();
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        s.mkdir(Path::new("/abs/newdir"), 0o755).unwrap();
        assert!(root.join(outside.strip_prefix("/").unwrap()).join("newdir").is_dir());
        assert!(!outside.join("newdir").exists());
        s.create_file(Path::new("/abs/f"), 0o644).unwrap();
        assert!(!outside.join("f").exists());
        // The final component is never followed by create_file.
        assert_eq!(s.create_file(Path::new("/abs"), 0o644).unwrap_err(), Errno::EEXIST);
        assert_eq!(s.create_file(Path::new("/abs/f"), 0o644).unwrap_err(), Errno::EEXIST);

        assert_eq!(s.readlink(Path::new("/abs")).unwrap(), Some(outside.clone()));
        assert_eq!(s.readlink(Path::new("/etc")).unwrap(), None);
        assert_eq!(s.readlink(Path::new("/nope")).unwrap_err(), Errno::ENOENT);
        let fd = s.open(Path::new("/etc")).unwrap();
        assert_eq!(s.kind(&fd).unwrap(), Kind::Dir);
    }
}
