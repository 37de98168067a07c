//! The container's filesystem view: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Everything here runs inside the container's init process (single-threaded, already in its new
//! mount namespace), in the order [`prepare`] → (createContainer hooks) → [`pivot`] →
//! [`setup_console`] → [`finalize`].
//! Paths inside the rootfs are always resolved with `openat2(RESOLVE_IN_ROOT)` and mounted on
//! through the resulting fd (`/proc/self/fd/N`), so that a symlink in a mount destination, even one
//! swapped in after the check, can never lead outside the rootfs (CVE-2021-30465).
//!
//! The steps are written against the `sys::Sys` seam; the planning (option parsing, the ordered
//! list of operations for a spec) is unit-tested with a recording fake.
//!
//! runc 1.1 is followed except where noted, and in these deliberate differences:
//! * readonlyPaths are remounted `ro,nosuid,nodev,noexec` (runc keeps only the flags already set);
//! * a v1 `type: cgroup` mount with `ro` really ends read-only at its tmpfs (runc 1.1.5 leaves the
//!   tmpfs rw);
//! * a tmpfs over an existing directory keeps that directory's mode unless `mode=` is given (runc
//!   1.1 lets the directory's mode override `mode=`);
//! * `type: bind` alone means a bind mount; `idmap`, `ridmap` and uid/gid-mapped mounts are refused
//!   by name instead of being passed to the filesystem as data;
//! * `tmpcopyup` copies from an fd of the image's directory opened before the tmpfs covers it, into
//!   the tmpfs mounted directly at its destination; runc mounts the tmpfs on a private directory
//!   under the host's /tmp, copies, then moves it. The resulting tree is the same (see
//!   `copyup.rs` for what is copied), without a host directory to create and clean up.
//!
//! A relative bind-mount source is resolved by the kernel against the init's working directory
//! (runc resolves it against the bundle, which is runc's cwd).

mod copyup;
mod options;
mod sys;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

pub use options::{
    mount_option_names, parse_options, parse_propagation, MountOption, OptionEffect, ParsedOptions,
    MOUNT_OPTIONS,
};
use sys::{Kind, MountAttr, RealSys, Sys, Target};

/// What the rootfs steps need to know beyond the spec itself.
#[derive(Debug, Clone)]
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of the rootfs (root.path resolved against the bundle).
    pub rootfs: &'a Path,
    /// `--no-pivot`: chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The init runs in a user namespace it created: devices are bind-mounted, not mknod'ed.
    pub in_userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// For `type: cgroup` mounts: each mounted hierarchy of the host as (mount-point name under
    /// /sys/fs/cgroup, e.g. "memory", "cpu,cpuacct", "unified"; filesystem type "cgroup" or
    /// "cgroup2"; host directory of this container's cgroup in it).
    pub cgroup_mounts: &'a [(String, String, PathBuf)],
}

/// Errors of the rootfs steps; each variant names the step and the path it was working on.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {step} {path}: {source}")]
    Sys { step: &'static str, path: PathBuf, #[source] source: nix::Error },
    #[error("rootfs: {step} {path}: {reason}")]
    Invalid { step: &'static str, path: PathBuf, reason: String },
    /// A mount(2) of a filesystem or bind failed (`what` is the filesystem type or "bind").
    #[error("rootfs: mount {what} on {path}: {source}")]
    Mount { what: String, path: PathBuf, #[source] source: nix::Error },
    /// tmpcopyup of the mount at `dest` failed at `step` on `path` (relative to `dest`).
    #[error("rootfs: tmpcopyup {dest}: {step} {path}: {source}")]
    CopyUp { dest: PathBuf, step: &'static str, path: PathBuf, #[source] source: nix::Error },
}

fn sys_err<'p>(step: &'static str, path: &'p Path) -> impl FnOnce(nix::Error) -> RootfsError + 'p {
    move |source| RootfsError::Sys { step, path: path.to_path_buf(), source }
}

fn invalid(step: &'static str, path: &Path, reason: impl Into<String>) -> RootfsError {
    RootfsError::Invalid { step, path: path.to_path_buf(), reason: reason.into() }
}

/// Set up the mount namespace before pivot: propagation, rootfs bind, `mounts` in order, devices,
/// /dev symlinks. Runs in the init, in the container's new mount namespace.
pub fn prepare(cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    prepare_with(&mut RealSys::default(), cfg)
}

/// pivot_root into the rootfs (or chroot with `--no-pivot`) and detach the old root.
pub fn pivot(cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    pivot_with(&mut RealSys::default(), cfg)
}

/// Without a mount namespace in the config, runc 1.1.5 enters the rootfs with chroot (its
/// `chroot()`: chdir to the rootfs, chroot("."), chdir("/")) instead of pivot_root, then creates
/// process.cwd as prepareRootfs does (finalize, which would otherwise, is skipped in that case).
pub fn chroot(cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    nix::unistd::chdir(cfg.rootfs).map_err(sys_err("chdir into", cfg.rootfs))?;
    nix::unistd::chroot(".").map_err(sys_err("chroot", cfg.rootfs))?;
    nix::unistd::chdir("/").map_err(sys_err("chdir", Path::new("/")))?;
    let mut sys = RealSys::default();
    sys.set_root(Path::new("/")).map_err(sys_err("open", Path::new("/")))?;
    if let Some(cwd) = cfg.spec.process().as_ref().map(|p| p.cwd()) {
        let res = resolve(&mut sys, cwd)?;
        mkdir_all(&mut sys, &res.path, 0o755)?;
    }
    Ok(())
}

/// After pivot, when the process has a terminal: bind-mount the pty slave (a /dev/pts/N path inside
/// the container) onto /dev/console.
pub fn setup_console(slave: &Path) -> Result<(), RootfsError> {
    setup_console_with(&mut RealSys::default(), slave)
}

/// After pivot: /dev read-only if asked, root.readonly, readonlyPaths, maskedPaths and
/// rootfsPropagation (in runc's order). Also creates process.cwd if missing, before / goes read-only.
pub fn finalize(cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    finalize_with(&mut RealSys::default(), cfg)
}

/// The default devices (config-linux.md "Default Devices"), as runc creates them.
fn default_devices() -> Vec<(&'static str, i64, i64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

/// lxcfs-style files that may be bind-mounted over inside /proc (runc's checkProcMount list).
const PROC_MOUNT_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// A container path with its symlinks resolved inside the root, like runc's SecureJoin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub path: PathBuf,
    /// The last component of the path as given was a symlink.
    pub last_was_symlink: bool,
}

/// Lexically clean an absolute container path (relative ones are taken relative to "/", as runc
/// does for backward compatibility).
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Resolve `path` inside the root: symlinks are followed with "/" meaning the rootfs and ".."
/// stopping at it; components that do not exist yet are kept as they are. The result is only a
/// plan: every later open goes through openat2(RESOLVE_IN_ROOT), so a symlink swapped in after this
/// walk still cannot escape.
fn resolve<S: Sys>(sys: &mut S, path: &Path) -> Result<Resolved, RootfsError> {
    let mut out = PathBuf::from("/");
    let mut pending: Vec<OsString> = Vec::new();
    let push_all = |pending: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push(OsString::from("..")),
                _ => {}
            }
        }
    };
    push_all(&mut pending, path);
    let mut hops = 0;
    let mut last_was_symlink = false;
    while let Some(c) = pending.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let cand = out.join(&c);
        match sys.readlink(&cand) {
            Ok(Some(target)) => {
                hops += 1;
                if hops > 255 {
                    return Err(sys_err("resolve", path)(Errno::ELOOP));
                }
                if pending.is_empty() {
                    last_was_symlink = true;
                }
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_all(&mut pending, &target);
            }
            Ok(None) | Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => out = cand,
            Err(e) => return Err(sys_err("resolve", path)(e)),
        }
    }
    Ok(Resolved { path: out, last_was_symlink })
}

/// mkdir -p inside the root; existing components (or symlinks to directories inside the root) are
/// kept.
fn mkdir_all<S: Sys>(sys: &mut S, path: &Path, mode: u32) -> Result<(), RootfsError> {
    let mut cur = PathBuf::from("/");
    for c in path.components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            match sys.mkdir(&cur, mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", &cur)(e)),
            }
        }
    }
    Ok(())
}

/// Create a mount destination as a directory or an empty file (runc's createIfNotExists).
fn create_dest<S: Sys>(sys: &mut S, dest: &Path, dir: bool) -> Result<(), RootfsError> {
    if dir {
        return mkdir_all(sys, dest, 0o755);
    }
    if let Some(parent) = dest.parent() {
        mkdir_all(sys, parent, 0o755)?;
    }
    match sys.create_file(dest, 0o755) {
        Ok(()) | Err(Errno::EEXIST) | Err(Errno::EISDIR) => Ok(()),
        Err(e) => Err(sys_err("create mount point", dest)(e)),
    }
}

fn open<S: Sys>(sys: &mut S, step: &'static str, path: &Path) -> Result<S::Fd, RootfsError> {
    sys.open(path).map_err(sys_err(step, path))
}

/// Flags a remount keeps from the current mount when the kernel refuses to drop them (locked flags
/// of a mount inherited from a more privileged mount namespace, e.g. in a user namespace).
fn locked_flags(existing: MsFlags, wanted: MsFlags) -> MsFlags {
    let mut keep = existing & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    if !wanted.intersects(atime) {
        keep |= existing & (atime | MsFlags::MS_NODIRATIME);
    }
    keep
}

/// Remount `path` (already mounted) with `flags | MS_REMOUNT`, retrying once with the mount's
/// locked flags added on EPERM.
fn remount<S: Sys>(sys: &mut S, what: &str, path: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    let flags = (flags | MsFlags::MS_REMOUNT) - MsFlags::MS_REC;
    let fd = open(sys, "open for remount", path)?;
    let merr = |source| RootfsError::Mount { what: format!("{what} (remount)"), path: path.to_path_buf(), source };
    match sys.mount(None, Target::In(&fd), None, flags, None) {
        Err(Errno::EPERM) => {
            let existing = sys.mount_flags(&fd).map_err(sys_err("statvfs", path))?;
            let retry = flags | locked_flags(existing, flags);
            if retry == flags {
                return Err(merr(Errno::EPERM));
            }
            sys.mount(None, Target::In(&fd), None, retry, None).map_err(merr)
        }
        r => r.map_err(merr),
    }
}

fn apply_propagation<S: Sys>(sys: &mut S, path: &Path, props: &[MsFlags]) -> Result<(), RootfsError> {
    for p in props {
        let fd = open(sys, "open for propagation", path)?;
        sys.mount(None, Target::In(&fd), None, *p, None).map_err(sys_err("set propagation", path))?;
    }
    Ok(())
}

fn apply_recursive<S: Sys>(sys: &mut S, path: &Path, opts: &ParsedOptions) -> Result<(), RootfsError> {
    if !opts.has_recursive_attrs() {
        return Ok(());
    }
    let fd = open(sys, "open for mount_setattr", path)?;
    let attr = MountAttr { attr_set: opts.attr_set, attr_clr: opts.attr_clr, propagation: 0 };
    sys.mount_setattr(&fd, attr).map_err(sys_err("mount_setattr", path))
}

/// A bind mount onto an already-resolved destination: create it like the source (dir or file),
/// bind, propagation, then a remount for the flags a bind ignores on first mount.
fn bind_mount<S: Sys>(
    sys: &mut S,
    source: &Path,
    dest: &Path,
    flags: MsFlags,
    propagation: &[MsFlags],
) -> Result<(), RootfsError> {
    let kind = sys.host_kind(source).map_err(sys_err("stat bind source", source))?;
    create_dest(sys, dest, kind == Kind::Dir)?;
    let fd = open(sys, "open mount point", dest)?;
    let bind_flags = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
    sys.mount(Some(source), Target::In(&fd), None, bind_flags, None)
        .map_err(|source| RootfsError::Mount { what: "bind".into(), path: dest.to_path_buf(), source })?;
    drop(fd);
    apply_propagation(sys, dest, propagation)?;
    if !(flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)).is_empty() {
        remount(sys, "bind", dest, flags | MsFlags::MS_BIND)?;
    }
    Ok(())
}

/// runc's checkProcMount: only procfs itself on /proc, and only a few lxcfs files inside it.
fn check_proc_mount<S: Sys>(sys: &mut S, dest: &Path, source: &Path) -> Result<(), RootfsError> {
    let Ok(under) = dest.strip_prefix("/proc") else { return Ok(()) };
    if under.as_os_str().is_empty() {
        if sys.host_is_procfs(source).map_err(sys_err("statfs bind source", source))? {
            return Ok(());
        }
        return Err(invalid("mount", dest, format!("{} is not of type proc", source.display())));
    }
    if PROC_MOUNT_ALLOWED.iter().any(|p| Path::new(p) == dest) {
        return Ok(());
    }
    Err(invalid("mount", dest, "mounts over files inside /proc are not allowed"))
}

/// (index in `mounts`, source) of every bind mount of `spec`.
pub fn bind_sources(spec: &Spec) -> Vec<(usize, PathBuf)> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    mounts.iter().enumerate().filter(|(_, m)| mount_is_bind(m, &mount_opts(m))).filter_map(|(i, m)| m.source().clone().map(|s| (i, s))).collect()
}

fn mount_is_bind(m: &Mount, opts: &ParsedOptions) -> bool {
    opts.flags.contains(MsFlags::MS_BIND) || m.typ().as_deref() == Some("bind")
}

fn mount_opts(m: &Mount) -> ParsedOptions {
    parse_options(m.options().as_deref().unwrap_or(&[]))
}

/// One entry of `mounts`.
fn mount_entry<S: Sys>(sys: &mut S, cfg: &RootfsConfig<'_>, m: &Mount) -> Result<(), RootfsError> {
    let opts = mount_opts(m);
    let typ = m.typ().as_deref().unwrap_or("");
    let given = clean(m.destination());
    // Extensions brisk does not implement (runc 1.2's id-mapped mounts): refuse them rather than
    // pass them to the filesystem as data (a bind mount would silently ignore them).
    for o in m.options().as_deref().unwrap_or(&[]) {
        if matches!(o.as_str(), "idmap" | "ridmap") {
            return Err(invalid("mount", &given, format!("mount option {o:?} is not supported")));
        }
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(invalid("mount", &given, "id-mapped mounts (uidMappings/gidMappings) are not supported"));
    }
    let res = resolve(sys, m.destination())?;
    let dest = res.path.as_path();
    if dest == Path::new("/") {
        return Err(invalid("mount", &given, "destination resolves to the container's root"));
    }
    if mount_is_bind(m, &opts) {
        let source = m.source().as_deref().ok_or_else(|| invalid("mount", &given, "bind mount without a source"))?;
        check_proc_mount(sys, dest, source)?;
        bind_mount(sys, source, dest, opts.flags | MsFlags::MS_BIND, &opts.propagation)?;
        return apply_recursive(sys, dest, &opts);
    }
    match typ {
        "cgroup" => return mount_cgroup(sys, cfg, dest, &opts),
        "proc" | "sysfs" => {
            // CVE-2019-19921 / CVE-2019-16884: procfs or sysfs must land on a real directory, never
            // on whatever a symlink in the image points at. The wording is runc's
            // (libcontainer/rootfs_linux.go), which scripts and runc's mask.bats match.
            if res.last_was_symlink {
                return Err(invalid("mount", &given, format!("filesystem {typ:?} must be mounted on ordinary directory, not a symlink")));
            }
            match sys.open(dest) {
                Ok(fd) => {
                    if sys.kind(&fd).map_err(sys_err("stat", dest))? != Kind::Dir {
                        return Err(invalid("mount", &given, format!("filesystem {typ:?} must be mounted on ordinary directory")));
                    }
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(sys_err("open mount point", dest)(e)),
            }
        }
        "" => return Err(invalid("mount", &given, "mount without a type that is not a bind mount")),
        _ => {}
    }
    // Like runc, a tmpfs over an existing directory keeps that directory's mode, unless the mount
    // gives mode= itself (runc 1.1 overrides even that; runc 1.2 and the spec's intent do not).
    let keep_mode = match (typ, sys.open(dest)) {
        ("tmpfs", Ok(fd)) if !opts.data.as_deref().unwrap_or("").split(',').any(|d| d.starts_with("mode=")) => {
            match sys.kind(&fd) {
                Ok(Kind::Dir) => Some(sys.perm(&fd).map_err(sys_err("stat", dest))?),
                _ => None,
            }
        }
        _ => None,
    };
    mkdir_all(sys, dest, 0o755)?;
    // tmpcopyup (runc acts on it for tmpfs only and ignores it elsewhere): keep a handle on the
    // image's directory, which the tmpfs is about to cover.
    let copy_src = if typ == "tmpfs" && opts.copy_up {
        Some(sys.open_dir(dest).map_err(sys_err("tmpcopyup: open", dest))?)
    } else {
        None
    };
    // Like runc: tmpfs (it may need chmod/copy-up) and /dev (devices are created in it later) are
    // mounted read-write first; tmpfs is remounted read-only right away, /dev in finalize().
    let delay_ro = typ == "tmpfs" || given == Path::new("/dev");
    let flags = if delay_ro { opts.flags - MsFlags::MS_RDONLY } else { opts.flags };
    let fd = open(sys, "open mount point", dest)?;
    match sys.mount(m.source().as_deref(), Target::In(&fd), Some(typ), flags, opts.data.as_deref()) {
        // A fresh sysfs needs a network namespace owned by our user namespace (sysfs shows the
        // netns's devices): a rootless container that shares the host's gets EPERM. Bind the
        // host's /sys instead, with the entry's flags, as runc 1.2 does (runc 1.1.5 fails here).
        Err(Errno::EPERM) if typ == "sysfs" && cfg.in_userns => {
            drop(fd);
            bind_mount(sys, Path::new("/sys"), dest, opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &opts.propagation)?;
            return apply_recursive(sys, dest, &opts);
        }
        r => r.map_err(|source| RootfsError::Mount { what: typ.to_string(), path: dest.to_path_buf(), source })?,
    }
    drop(fd);
    if let Some(src) = copy_src {
        // On failure the init exits and its mount namespace, tmpfs included, goes with it.
        sys.copy_tree(&src, dest).map_err(|e| RootfsError::CopyUp {
            dest: dest.to_path_buf(),
            step: e.step,
            path: e.path,
            source: e.source,
        })?;
    }
    if let Some(perm) = keep_mode {
        sys.chmod_dir(dest, perm).map_err(sys_err("chmod", dest))?;
    }
    apply_propagation(sys, dest, &opts.propagation)?;
    if delay_ro && opts.flags.contains(MsFlags::MS_RDONLY) && given != Path::new("/dev") {
        remount(sys, typ, dest, opts.flags)?;
    }
    apply_recursive(sys, dest, &opts)
}

/// `type: cgroup`: cgroup2 on a unified host; on a v1/hybrid host runc's layout (a tmpfs with one
/// bind or cgroup mount per hierarchy, and symlinks for co-mounted controllers).
fn mount_cgroup<S: Sys>(
    sys: &mut S,
    cfg: &RootfsConfig<'_>,
    dest: &Path,
    opts: &ParsedOptions,
) -> Result<(), RootfsError> {
    mkdir_all(sys, dest, 0o755)?;
    let ro = opts.flags & MsFlags::MS_RDONLY;
    if sys.cgroup2_only() {
        let fd = open(sys, "open mount point", dest)?;
        match sys.mount(Some(Path::new("cgroup2")), Target::In(&fd), Some("cgroup2"), opts.flags, opts.data.as_deref()) {
            Ok(()) => {}
            // Like runc: without the privilege to mount cgroup2 (user namespace without a cgroup
            // namespace), bind the container's own cgroup directory instead.
            Err(e @ (Errno::EPERM | Errno::EBUSY)) => {
                let Some((_, _, host)) = cfg.cgroup_mounts.iter().find(|(_, t, _)| t == "cgroup2") else {
                    return Err(RootfsError::Mount { what: "cgroup2".into(), path: dest.to_path_buf(), source: e });
                };
                drop(fd);
                bind_mount(sys, host, dest, opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &[])?;
            }
            Err(source) => return Err(RootfsError::Mount { what: "cgroup2".into(), path: dest.to_path_buf(), source }),
        }
        apply_propagation(sys, dest, &opts.propagation)?;
        return apply_recursive(sys, dest, opts);
    }
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let fd = open(sys, "open mount point", dest)?;
    sys.mount(Some(Path::new("tmpfs")), Target::In(&fd), Some("tmpfs"), base, Some("mode=755"))
        .map_err(|source| RootfsError::Mount { what: "tmpfs".into(), path: dest.to_path_buf(), source })?;
    drop(fd);
    for (name, fstype, host) in cfg.cgroup_mounts {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(invalid("cgroup mount", dest, format!("bad hierarchy name {name:?}")));
        }
        let sub = dest.join(name);
        if cfg.cgroupns {
            mkdir_all(sys, &sub, 0o755)?;
            let (source, fs, data) = match (fstype.as_str(), name.as_str()) {
                ("cgroup2", _) => ("cgroup2", "cgroup2", None),
                (_, "systemd") => ("systemd", "cgroup", Some("name=systemd".to_string())),
                _ => ("cgroup", "cgroup", Some(name.clone())),
            };
            let fd = open(sys, "open mount point", &sub)?;
            sys.mount(Some(Path::new(source)), Target::In(&fd), Some(fs), base | ro, data.as_deref())
                .map_err(|source| RootfsError::Mount { what: fs.into(), path: sub.clone(), source })?;
        } else {
            bind_mount(sys, host, &sub, opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC, &[])?;
        }
    }
    for (name, _, _) in cfg.cgroup_mounts {
        if !name.contains(',') {
            continue;
        }
        for part in name.split(',').filter(|p| !p.is_empty() && !p.starts_with("name=")) {
            let link = dest.join(part);
            match sys.symlink(Path::new(name), &link) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("symlink", &link)(e)),
            }
        }
    }
    if !ro.is_empty() {
        remount(sys, "tmpfs", dest, base | ro)?;
    }
    apply_propagation(sys, dest, &opts.propagation)?;
    apply_recursive(sys, dest, opts)
}

/// One line of /proc/self/mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountInfo {
    root: PathBuf,
    mount_point: PathBuf,
    shared: bool,
    fstype: String,
}

fn parse_mountinfo(mountinfo: &str) -> Vec<MountInfo> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 {
                return None;
            }
            Some(MountInfo {
                root: PathBuf::from(crate::sys::unescape_mountinfo(fields[3])),
                mount_point: PathBuf::from(crate::sys::unescape_mountinfo(fields[4])),
                shared: fields[6..sep].iter().any(|f| f.starts_with("shared:")),
                fstype: fields.get(sep + 1)?.to_string(),
            })
        })
        .collect()
}

/// The mount containing `path` according to mountinfo: (mount point, is shared).
fn containing_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for m in parse_mountinfo(mountinfo) {
        if !path.starts_with(&m.mount_point) {
            continue;
        }
        // Later lines win on equal mount points: they are mounted on top.
        let deeper = match &best {
            Some((b, _)) => m.mount_point.components().count() >= b.components().count(),
            None => true,
        };
        if deeper {
            best = Some((m.mount_point, m.shared));
        }
    }
    best
}


fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>, RootfsError> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.rootfs_propagation().clone()) else { return Ok(None) };
    if p.is_empty() {
        return Ok(None);
    }
    parse_propagation(&p)
        .map(Some)
        .ok_or_else(|| invalid("rootfsPropagation", Path::new("/"), format!("unknown value {p:?}")))
}

fn prepare_with<S: Sys>(sys: &mut S, cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    let rootfs = cfg.rootfs;
    // config-linux.md "Rootfs Mount Propagation"; runc's default keeps the container from
    // propagating anything back to the host.
    let prop = root_propagation(cfg.spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    sys.mount(None, Target::Host(Path::new("/")), None, prop, None).map_err(sys_err("set propagation of", Path::new("/")))?;
    // pivot_root refuses a shared parent mount, and a shared parent would propagate the rootfs bind
    // below to other namespaces (runc's rootfsParentMountPrivate).
    let info = sys.mountinfo().map_err(sys_err("read", Path::new("/proc/self/mountinfo")))?;
    if let Some((mp, true)) = containing_mount(&info, rootfs) {
        sys.mount(None, Target::Host(&mp), None, MsFlags::MS_PRIVATE, None).map_err(sys_err("make private", &mp))?;
    }
    sys.mount(Some(rootfs), Target::Host(rootfs), Some("bind"), MsFlags::MS_BIND | MsFlags::MS_REC, None)
        .map_err(|source| RootfsError::Mount { what: "bind".into(), path: rootfs.to_path_buf(), source })?;
    // Opened after the bind, so that everything below lands on the new mount.
    sys.set_root(rootfs).map_err(sys_err("open rootfs", rootfs))?;
    for m in cfg.spec.mounts().as_deref().unwrap_or(&[]) {
        mount_entry(sys, cfg, m)?;
    }
    let dev_is_bind = cfg
        .spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|m| clean(m.destination()) == Path::new("/dev") && mount_is_bind(m, &mount_opts(m)));
    if !dev_is_bind {
        let old = sys.umask(0);
        let res = create_devices(sys, cfg);
        sys.umask(old);
        res?;
        dev_symlinks(sys)?;
    }
    Ok(())
}

fn device_list(spec: &Spec) -> Vec<LinuxDevice> {
    let given: Vec<LinuxDevice> = spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
    let mut all: Vec<LinuxDevice> = default_devices()
        .into_iter()
        .filter(|(p, _, _)| !given.iter().any(|d| clean(d.path()) == Path::new(p)))
        .map(|(p, major, minor)| {
            let mut d = LinuxDevice::default();
            d.set_path(PathBuf::from(p));
            d.set_typ(LinuxDeviceType::C);
            d.set_major(major);
            d.set_minor(minor);
            d.set_file_mode(Some(0o666));
            d.set_uid(Some(0));
            d.set_gid(Some(0));
            d
        })
        .collect();
    all.extend(given);
    all
}

fn create_devices<S: Sys>(sys: &mut S, cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    for d in device_list(cfg.spec) {
        let given = clean(d.path());
        let res = resolve(sys, d.path())?;
        let dest = res.path.as_path();
        if dest == Path::new("/") {
            return Err(invalid("create device", &given, "device path resolves to the container's root"));
        }
        if let Some(parent) = dest.parent() {
            mkdir_all(sys, parent, 0o755)?;
        }
        if cfg.in_userns {
            // mknod is not allowed in a user namespace: bind the host's node instead (runc).
            match sys.create_file(dest, 0o666) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("create device mount point", dest)(e)),
            }
            let fd = open(sys, "open device mount point", dest)?;
            sys.mount(Some(&given), Target::In(&fd), None, MsFlags::MS_BIND, None)
                .map_err(|source| RootfsError::Mount { what: "bind".into(), path: dest.to_path_buf(), source })?;
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => return Err(invalid("create device", &given, "device type \"a\" cannot be created")),
        };
        let (Ok(major), Ok(minor)) = (u64::try_from(d.major()), u64::try_from(d.minor())) else {
            return Err(invalid("create device", &given, format!("bad device number {}:{}", d.major(), d.minor())));
        };
        let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
        match sys.mknod(dest, kind, perm, nix::sys::stat::makedev(major, minor)) {
            Ok(()) => {}
            // Like runc: a node the image already has is left alone.
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(sys_err("mknod", dest)(e)),
        }
        sys.chown(dest, d.uid().unwrap_or(0), d.gid().unwrap_or(0)).map_err(sys_err("chown", dest))?;
    }
    Ok(())
}

/// /dev/ptmx → pts/ptmx, /dev/fd, /dev/std{in,out,err} and /dev/core (runc's setupPtmx and
/// setupDevSymlinks).
fn dev_symlinks<S: Sys>(sys: &mut S) -> Result<(), RootfsError> {
    let ptmx = Path::new("/dev/ptmx");
    match sys.unlink(ptmx) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys_err("remove", ptmx)(e)),
    }
    sys.symlink(Path::new("pts/ptmx"), ptmx).map_err(sys_err("symlink", ptmx))?;
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if sys.host_exists(Path::new("/proc/kcore")) {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        match sys.symlink(Path::new(target), Path::new(link)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys_err("symlink", Path::new(link))(e)),
        }
    }
    Ok(())
}

fn pivot_with<S: Sys>(sys: &mut S, cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    if cfg.no_pivot {
        hide_host_proc_sys(sys, cfg.rootfs)?;
    }
    let r = if cfg.no_pivot { sys.move_root(cfg.rootfs) } else { sys.pivot_root(cfg.rootfs) };
    r.map_err(|(step, source)| RootfsError::Sys { step, path: cfg.rootfs.to_path_buf(), source })
}

/// --no-pivot leaves the host's mounts reachable in the namespace, and the kernel lets a process
/// mount a fresh procfs or sysfs whenever a full, uncovered one is visible there. Like runc's
/// msMoveRoot, detach every full proc/sysfs mount outside the rootfs (or cover it with a tmpfs
/// where detaching is not permitted) before moving the rootfs onto "/".
fn hide_host_proc_sys<S: Sys>(sys: &mut S, rootfs: &Path) -> Result<(), RootfsError> {
    let info = sys.mountinfo().map_err(sys_err("read", Path::new("/proc/self/mountinfo")))?;
    for m in parse_mountinfo(&info) {
        if m.root != Path::new("/") || !(m.fstype == "proc" || m.fstype == "sysfs") || m.mount_point.starts_with(rootfs) {
            continue;
        }
        let p = m.mount_point.as_path();
        // Keep the detach from propagating to the host.
        match sys.mount(None, Target::Host(p), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None) {
            Ok(()) => {}
            // A parent was already detached.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(sys_err("make rslave", p)(e)),
        }
        match sys.umount_detach(p) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                sys.mount(Some(Path::new("tmpfs")), Target::Host(p), Some("tmpfs"), MsFlags::empty(), None)
                    .map_err(|source| RootfsError::Mount { what: "tmpfs".into(), path: p.to_path_buf(), source })?;
            }
            Err(e) => return Err(sys_err("unmount", p)(e)),
        }
    }
    Ok(())
}

fn setup_console_with<S: Sys>(sys: &mut S, slave: &Path) -> Result<(), RootfsError> {
    let console = Path::new("/dev/console");
    sys.set_root(Path::new("/")).map_err(sys_err("open", Path::new("/")))?;
    let old = sys.umask(0);
    let created = sys.create_file(console, 0o666);
    sys.umask(old);
    match created {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(sys_err("create", console)(e)),
    }
    let fd = open(sys, "open", console)?;
    sys.mount(Some(slave), Target::In(&fd), None, MsFlags::MS_BIND, None)
        .map_err(|source| RootfsError::Mount { what: format!("bind {}", slave.display()), path: console.to_path_buf(), source })
}

fn finalize_with<S: Sys>(sys: &mut S, cfg: &RootfsConfig<'_>) -> Result<(), RootfsError> {
    let root = Path::new("/");
    sys.set_root(root).map_err(sys_err("open", root))?;
    let spec = cfg.spec;
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) {
        let res = resolve(sys, cwd)?;
        mkdir_all(sys, &res.path, 0o755)?;
    }
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let opts = mount_opts(m);
        if clean(m.destination()) == Path::new("/dev") && !mount_is_bind(m, &opts) && opts.flags.contains(MsFlags::MS_RDONLY) {
            let res = resolve(sys, m.destination())?;
            remount(sys, m.typ().as_deref().unwrap_or(""), &res.path, opts.flags)?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        let fd = open(sys, "open", root)?;
        let existing = sys.mount_flags(&fd).map_err(sys_err("statvfs", root))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | existing;
        sys.mount(None, Target::In(&fd), None, flags, None).map_err(sys_err("remount read-only", root))?;
    }
    let linux = spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().clone()).unwrap_or_default() {
        let res = resolve(sys, Path::new(&p))?;
        let fd = match sys.open(&res.path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(sys_err("open readonly path", &res.path)(e)),
        };
        sys.mount(Some(&res.path), Target::In(&fd), None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
            .map_err(|source| RootfsError::Mount { what: "bind".into(), path: res.path.clone(), source })?;
        drop(fd);
        let flags = MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        remount(sys, "bind", &res.path, flags)?;
    }
    for p in linux.and_then(|l| l.masked_paths().clone()).unwrap_or_default() {
        let res = resolve(sys, Path::new(&p))?;
        let fd = match sys.open(&res.path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(sys_err("open masked path", &res.path)(e)),
        };
        let r = if sys.kind(&fd).map_err(sys_err("stat", &res.path))? == Kind::Dir {
            sys.mount(Some(Path::new("tmpfs")), Target::In(&fd), Some("tmpfs"), MsFlags::MS_RDONLY, None)
                .map_err(|source| RootfsError::Mount { what: "tmpfs".into(), path: res.path.clone(), source })
        } else {
            sys.mount(Some(Path::new("/dev/null")), Target::In(&fd), None, MsFlags::MS_BIND, None)
                .map_err(|source| RootfsError::Mount { what: "bind /dev/null".into(), path: res.path.clone(), source })
        };
        r?;
    }
    // config-linux.md "Rootfs Mount Propagation": the new root gets rootfsPropagation now, after
    // pivot (on the rootfs before pivot a shared flag would reach the host). runc 1.1.5 does NOT do
    // this: it applies rootfsPropagation only to the old "/" before pivot (prepareRoot), and its new
    // root keeps what the rootfs bind got (private when the rootfs's parent mount was private or
    // shared), so OCI runtime-tools' linux_rootfs_propagation "shared" fails for runc and passes
    // for brisk. Volume propagation between host and container is the same either way
    // (integration/tests/cli_propagation.rs).
    if let Some(prop) = root_propagation(spec)? {
        sys.mount(None, Target::Host(root), None, prop, None).map_err(sys_err("set propagation of", root))?;
    }
    Ok(())
}
