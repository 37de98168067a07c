//! A recording fake of the syscall seam: an in-memory tree for the current root, a few host paths,
//! and the list of operations performed, as strings the tests compare.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;

use super::copyup::CopyError;
use super::sys::{Kind, MountAttr, Sys, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File,
    Dev,
    Link(PathBuf),
}

#[derive(Debug, Default)]
pub(crate) struct FakeSys {
    pub nodes: BTreeMap<PathBuf, Node>,
    pub host: BTreeMap<PathBuf, Kind>,
    pub host_procfs: Vec<PathBuf>,
    pub ops: Vec<String>,
    pub cgroup2_only: bool,
    pub mountinfo: String,
    /// statvfs flags per container path.
    pub mount_flags: BTreeMap<PathBuf, MsFlags>,
    /// Fail the first operation whose record starts with the key, once.
    pub fail: Vec<(String, Errno)>,
    umask: u32,
}

fn fmt_flags(f: MsFlags) -> String {
    let names = [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_SYNCHRONOUS, "sync"),
        (MsFlags::MS_REMOUNT, "remount"),
        (MsFlags::MS_MANDLOCK, "mand"),
        (MsFlags::MS_DIRSYNC, "dirsync"),
        (MsFlags::MS_NOATIME, "noatime"),
        (MsFlags::MS_NODIRATIME, "nodiratime"),
        (MsFlags::MS_BIND, "bind"),
        (MsFlags::MS_MOVE, "move"),
        (MsFlags::MS_REC, "rec"),
        (MsFlags::MS_UNBINDABLE, "unbindable"),
        (MsFlags::MS_PRIVATE, "private"),
        (MsFlags::MS_SLAVE, "slave"),
        (MsFlags::MS_SHARED, "shared"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
        (MsFlags::MS_LAZYTIME, "lazytime"),
    ];
    let v: Vec<&str> = names.iter().filter(|(m, _)| f.contains(*m)).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

impl FakeSys {
    /// A rootfs with the given directories.
    pub fn with_dirs(dirs: &[&str]) -> Self {
        let mut f = FakeSys::default();
        f.nodes.insert(PathBuf::from("/"), Node::Dir);
        for d in dirs {
            f.add(d, Node::Dir);
        }
        f.umask = 0o022;
        f
    }

    pub fn add(&mut self, path: &str, node: Node) {
        let p = PathBuf::from(path);
        let mut cur = PathBuf::from("/");
        for c in p.parent().unwrap_or(Path::new("/")).components() {
            if let Component::Normal(n) = c {
                cur.push(n);
                self.nodes.entry(cur.clone()).or_insert(Node::Dir);
            }
        }
        self.nodes.insert(p, node);
    }

    fn record(&mut self, op: String) -> nix::Result<()> {
        if let Some(i) = self.fail.iter().position(|(k, _)| op.starts_with(k.as_str())) {
            let (_, e) = self.fail.remove(i);
            self.ops.push(format!("{op} => {e:?}"));
            return Err(e);
        }
        self.ops.push(op);
        Ok(())
    }

    fn parent_is_dir(&self, path: &Path) -> nix::Result<()> {
        match path.parent().map(|p| self.nodes.get(p)) {
            Some(Some(Node::Dir)) | None => Ok(()),
            Some(Some(_)) => Err(Errno::ENOTDIR),
            Some(None) => Err(Errno::ENOENT),
        }
    }

    /// Follow symlinks at the end of `path`, like RESOLVE_IN_ROOT (intermediate components are
    /// assumed resolved already: the code under test resolves before it opens).
    fn follow(&self, path: &Path) -> nix::Result<PathBuf> {
        let mut p = path.to_path_buf();
        for _ in 0..40 {
            match self.nodes.get(&p) {
                Some(Node::Link(t)) => {
                    let base = if t.is_absolute() { PathBuf::from("/") } else { p.parent().unwrap_or(Path::new("/")).to_path_buf() };
                    p = super::clean(&base.join(t));
                }
                Some(_) => return Ok(p),
                None => return Err(Errno::ENOENT),
            }
        }
        Err(Errno::ELOOP)
    }
}

impl Sys for FakeSys {
    type Fd = PathBuf;

    fn set_root(&mut self, host_dir: &Path) -> nix::Result<()> {
        self.record(format!("root {}", host_dir.display()))
    }

    fn readlink(&mut self, path: &Path) -> nix::Result<Option<PathBuf>> {
        self.parent_is_dir(path)?;
        match self.nodes.get(path) {
            Some(Node::Link(t)) => Ok(Some(t.clone())),
            Some(_) => Ok(None),
            None => Err(Errno::ENOENT),
        }
    }

    fn open(&mut self, path: &Path) -> nix::Result<PathBuf> {
        self.follow(path)
    }

    fn open_dir(&mut self, path: &Path) -> nix::Result<PathBuf> {
        let p = self.follow(path)?;
        match self.nodes.get(&p) {
            Some(Node::Dir) => Ok(p),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn copy_tree(&mut self, src: &PathBuf, dest: &Path) -> Result<(), CopyError> {
        self.record(format!("copyup {} -> {}", src.display(), dest.display()))
            .map_err(|source| CopyError { step: "copy", path: PathBuf::from("."), source })
    }

    fn kind(&mut self, fd: &PathBuf) -> nix::Result<Kind> {
        Ok(match self.nodes.get(fd) {
            Some(Node::Dir) => Kind::Dir,
            Some(Node::File) => Kind::File,
            Some(Node::Link(_)) => Kind::Symlink,
            Some(Node::Dev) => Kind::Other,
            None => return Err(Errno::ENOENT),
        })
    }

    fn perm(&mut self, fd: &PathBuf) -> nix::Result<u32> {
        self.nodes.get(fd).map(|_| 0o750).ok_or(Errno::ENOENT)
    }

    fn chmod_dir(&mut self, path: &Path, perm: u32) -> nix::Result<()> {
        self.record(format!("chmod {} {perm:o}", path.display()))
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        self.parent_is_dir(path)?;
        if self.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        self.record(format!("mkdir {} {mode:o}", path.display()))?;
        self.nodes.insert(path.to_path_buf(), Node::Dir);
        Ok(())
    }

    fn create_file(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        self.parent_is_dir(path)?;
        if self.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        self.record(format!("create {} {mode:o} umask={:o}", path.display(), self.umask))?;
        self.nodes.insert(path.to_path_buf(), Node::File);
        Ok(())
    }

    fn mknod(&mut self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> nix::Result<()> {
        self.parent_is_dir(path)?;
        if self.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        let k = match kind {
            SFlag::S_IFCHR => "c",
            SFlag::S_IFBLK => "b",
            SFlag::S_IFIFO => "p",
            _ => "?",
        };
        let (ma, mi) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        self.record(format!("mknod {} {k} {ma}:{mi} {perm:o} umask={:o}", path.display(), self.umask))?;
        self.nodes.insert(path.to_path_buf(), Node::Dev);
        Ok(())
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> nix::Result<()> {
        self.record(format!("chown {} {uid}:{gid}", path.display()))
    }

    fn symlink(&mut self, target: &Path, path: &Path) -> nix::Result<()> {
        self.parent_is_dir(path)?;
        if self.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        self.record(format!("symlink {} -> {}", path.display(), target.display()))?;
        self.nodes.insert(path.to_path_buf(), Node::Link(target.to_path_buf()));
        Ok(())
    }

    fn unlink(&mut self, path: &Path) -> nix::Result<()> {
        if self.nodes.remove(path).is_none() {
            return Err(Errno::ENOENT);
        }
        self.record(format!("unlink {}", path.display()))
    }

    fn mount(
        &mut self,
        source: Option<&Path>,
        target: Target<'_, PathBuf>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        let t = match target {
            Target::In(p) => p.display().to_string(),
            Target::Host(p) => format!("host:{}", p.display()),
        };
        let src = source.map(|s| s.display().to_string()).unwrap_or_else(|| "-".into());
        self.record(format!(
            "mount {src} {t} {} {} {}",
            fstype.unwrap_or("-"),
            fmt_flags(flags),
            data.unwrap_or("-")
        ))
    }

    fn mount_setattr(&mut self, target: &PathBuf, attr: MountAttr) -> nix::Result<()> {
        self.record(format!("setattr {} set={:#x} clr={:#x}", target.display(), attr.attr_set, attr.attr_clr))
    }

    fn umount_detach(&mut self, path: &Path) -> nix::Result<()> {
        self.record(format!("umount {}", path.display()))
    }

    fn mount_flags(&mut self, target: &PathBuf) -> nix::Result<MsFlags> {
        Ok(self.mount_flags.get(target).copied().unwrap_or(MsFlags::empty()))
    }

    fn host_kind(&mut self, path: &Path) -> nix::Result<Kind> {
        self.host.get(path).copied().ok_or(Errno::ENOENT)
    }

    fn host_is_procfs(&mut self, path: &Path) -> nix::Result<bool> {
        Ok(self.host_procfs.iter().any(|p| p == path))
    }

    fn host_exists(&mut self, path: &Path) -> bool {
        self.host.contains_key(path)
    }

    fn cgroup2_only(&mut self) -> bool {
        self.cgroup2_only
    }

    fn mountinfo(&mut self) -> nix::Result<String> {
        Ok(self.mountinfo.clone())
    }

    fn umask(&mut self, mask: u32) -> u32 {
        self.ops.push(format!("umask {mask:o}"));
        let old = self.umask;
        self.umask = mask;
        old
    }

    fn pivot_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)> {
        self.record(format!("pivot_root {}", rootfs.display())).map_err(|e| ("pivot_root", e))
    }

    fn move_root(&mut self, rootfs: &Path) -> Result<(), (&'static str, nix::Error)> {
        self.record(format!("move_root {}", rootfs.display())).map_err(|e| ("move rootfs to /", e))
    }
}
