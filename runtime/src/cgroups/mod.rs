//! Cgroup placement, limits, freezing, stats, OOM notification and removal, for v1, hybrid and
//! unified (v2) hosts.
//!
//! The container gets its own cgroup in every mounted hierarchy (cgroupsPath, config-linux.md
//! "Control groups"). Only directories brisk created are ever written to or removed: the
//! [`Placement`] records them, in creation order, so `delete` removes exactly those. The one
//! exception is cgroup v2 delegation on a unified host: like runc (fs2 CreateCgroupPath), the
//! controllers a container needs are enabled in its ancestors' `cgroup.subtree_control`, without
//! which no v2 limit file exists. No limit of an ancestor is ever written.
//!
//! Submodules: [`v1`] and [`v2`] apply `linux.resources` the way runc 1.1.5 does on each
//! interface, [`devices`] turns device rules into v1 writes or a v2 eBPF program, [`stats`] reads
//! usage figures, [`oom`] gives a pollable OOM notification. [`systemd`] is the systemd driver
//! (`slice:prefix:name` cgroupsPath, a transient scope created over D-Bus, see [`dbus`]): systemd
//! makes the unit's directories, the same fs code then writes the limits into them.
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

pub mod dbus;
pub mod devices;
pub mod oom;
pub mod rootless;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

pub use oom::{OomEvent, OomWatch};
pub use stats::{CgroupVersion, Stats};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    /// A `linux.resources` field this host cannot honour, or an invalid value in it.
    #[error("linux.resources.{field}: {reason}")]
    Field { field: String, reason: String },
    /// The kernel refused a value (out of range, above the parent's, device unknown...).
    #[error("linux.resources.{field}: writing {value:?} to {path}: {source}")]
    FieldWrite { field: String, value: String, path: PathBuf, #[source] source: std::io::Error },
    #[error("cgroup: {reason}")]
    Invalid { reason: String },
    #[error("cgroup eBPF device filter: {step}: {source}")]
    Bpf { step: &'static str, #[source] source: std::io::Error },
    /// Boxed: D-Bus errors carry paths and names, and every cgroup Result would pay their size.
    #[error(transparent)]
    Systemd(Box<systemd::SystemdError>),
}

impl From<systemd::SystemdError> for CgroupError {
    fn from(e: systemd::SystemdError) -> CgroupError {
        CgroupError::Systemd(Box::new(e))
    }
}

pub(crate) fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { step, path: path.to_path_buf(), source }
}

pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Field { field: field.into(), reason: reason.into() }
}

/// One mounted hierarchy as seen in /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Mount point, e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup (pure v2).
    pub mount: PathBuf,
    /// "cgroup" (v1) or "cgroup2".
    pub fstype: String,
    /// v1 controllers (and `name=...`) from the super options; empty for cgroup2.
    pub controllers: Vec<String>,
    /// The hierarchy path mounted at `mount` (mountinfo field 4).
    pub root: PathBuf,
}

impl Hierarchy {
    /// The name used under the container's /sys/fs/cgroup (the mount point's last component).
    pub fn name(&self) -> String {
        self.mount.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Where a container's cgroups are: one directory per hierarchy, plus the directories brisk created
/// (in creation order, so removal is the reverse).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Placement {
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    pub created: Vec<PathBuf>,
    /// Set when the systemd driver placed the container: `dirs` are that unit's, and removal
    /// stops the unit. Absent in state files written before the driver existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

impl Placement {
    /// The directory of the v1 hierarchy carrying `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.iter().find(|(h, _)| h.fstype == "cgroup" && h.has(controller)).map(|(_, d)| d.as_path())
    }

    /// The directory in the cgroup2 hierarchy (the only one on a unified host; the `unified` mount
    /// on a hybrid host).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|(h, _)| h.fstype == "cgroup2").map(|(_, d)| d.as_path())
    }

    /// True when every hierarchy is cgroup2 (a pure v2 host).
    pub fn is_unified(&self) -> bool {
        !self.dirs.is_empty() && self.dirs.iter().all(|(h, _)| h.fstype == "cgroup2")
    }

    /// Which interface limits and stats use.
    pub fn version(&self) -> CgroupVersion {
        if self.is_unified() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// The host's cgroup hierarchies, from `mountinfo` text.
pub fn parse_mountinfo(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let controllers = if fstype == "cgroup" {
            post[2].split(',').filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("xattr") && *o != "clone_children").map(str::to_string).collect()
        } else {
            Vec::new()
        };
        let h = Hierarchy { mount: PathBuf::from(crate::sys::unescape_mountinfo(pre[4])), fstype: fstype.into(), controllers, root: PathBuf::from(crate::sys::unescape_mountinfo(pre[3])) };
        // The same hierarchy can be mounted twice (e.g. cpu and cpu,cpuacct links); keep the first.
        if !out.iter().any(|o: &Hierarchy| o.mount == h.mount || (o.fstype == h.fstype && o.controllers == h.controllers)) {
            out.push(h);
        }
    }
    out
}


pub fn host_hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let p = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(p).map_err(io_err("read", p))?;
    Ok(parse_mountinfo(&text))
}

/// True on a pure cgroup v2 host (one cgroup2 hierarchy and no v1 controllers).
pub fn is_unified(hs: &[Hierarchy]) -> bool {
    hs.iter().all(|h| h.fstype == "cgroup2")
}

/// cgroupsPath syntax check at config load, before the driver is known: a `slice:prefix:name`
/// path is left to [`check_driver`]; a plain path must not climb out with "..".
pub fn check_path(p: &Path) -> Result<(), String> {
    let s = p.to_string_lossy();
    if s.contains(':') {
        return Ok(());
    }
    if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("{s:?} must not contain \"..\""));
    }
    Ok(())
}

/// cgroupsPath against the chosen driver, at create. The systemd driver needs systemd as PID 1
/// (runc: "systemd cgroup flag passed, but systemd support for managing cgroups is not
/// available") and a `slice:prefix:name` path; the cgroupfs driver refuses that form (runc would
/// make a directory literally named "a:b:c", which is never what such a path means).
pub fn check_driver(p: Option<&Path>, id: &str, use_systemd: bool) -> Result<(), String> {
    if use_systemd {
        if !systemd::booted() {
            return Err(format!("the systemd cgroup driver was requested, but systemd is not PID 1 on this host ({} does not exist)", systemd::BOOTED_MARKER));
        }
        return systemd::parse_path(p, id).map(drop);
    }
    match p.map(|p| p.to_string_lossy()) {
        Some(s) if s.contains(':') => Err(format!("{s:?} is a systemd slice:prefix:name path; it needs the systemd cgroup driver (brisk --systemd-cgroup, or SystemdCgroup = true in the shim's runtime options)")),
        _ => Ok(()),
    }
}

/// Host-independent checks of `linux.resources`, at config load time. What depends on the host's
/// cgroup mode (a v1-only field on a v2 host, a controller that is not mounted) is refused when it
/// is applied, by [`create`] or [`update`], also naming the field.
pub fn validate_resources(r: &LinuxResources) -> Result<(), (String, String)> {
    let mut c = crate::spec::Collector::fail_fast();
    let _ = check_resources(r, "", &mut c);
    for w in c.problems().iter().filter(|p| p.severity != crate::spec::Severity::Error) {
        log::warn!("linux.resources.{}: {} ({})", w.path, w.message, w.hint);
    }
    match c.first_error() {
        Some(p) => Err((p.path.clone(), if p.hint.is_empty() { p.message.clone() } else { format!("{} ({})", p.message, p.hint) })),
        None => Ok(()),
    }
}

/// [`validate_resources`]'s checks, reporting into a collector; paths start with `prefix`
/// (`linux.resources` for a config, "" for `update`'s own resources).
pub fn check_resources(r: &LinuxResources, prefix: &str, c: &mut crate::spec::Collector) -> crate::spec::Flow {
    let at = |f: &str| if prefix.is_empty() { f.to_string() } else { format!("{prefix}.{f}") };
    if let Some(m) = r.memory() {
        #[allow(deprecated)]
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            // Deprecated in the spec and obsolete since Linux 5.4; runc 1.1.5 warns and ignores
            // them (specconv "Kernel memory settings are ignored"), at create and at update, and
            // so does brisk: nothing ever writes memory.kmem.*.
            let f = if m.kernel().is_some() { "memory.kernel" } else { "memory.kernelTCP" };
            c.warn(at(f), "kernel memory settings are ignored (deprecated; runc 1.1.5 ignores them too)", "remove it");
        }
        if m.swappiness().is_some_and(|s| s > 100) {
            c.unsupported(at("memory.swappiness"), format!("invalid value {}", m.swappiness().unwrap_or_default()), "valid range is 0-100")?;
        }
    }
    for (i, d) in r.devices().as_deref().unwrap_or_default().iter().enumerate() {
        if let Err(reason) = devices::Rule::from_spec(d) {
            c.unsupported(at(&format!("devices[{i}]")), reason, "")?;
        }
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if k.contains('/') || !k.contains('.') || k.starts_with('.') {
                c.unsupported(at(&format!("unified[{k:?}]")), "must be a file name of the form CONTROLLER.PARAMETER", "e.g. memory.high")?;
            }
        }
    }
    Ok(())
}

/// The container's directory in each hierarchy, for `cgroups_path`, as runc 1.1.5 resolves it:
/// absolute → from the hierarchy root; relative → under the caller's own cgroup; absent → the
/// relative path `<id>` (specconv gives the cgroup the container's name, and the fs managers put a
/// relative name under the caller's cgroup). On a pure v2 host "the caller's cgroup" is its
/// parent (fs2 defaultDirPath): the caller's own cgroup has processes, so no controller could be
/// enabled for a child of it.
pub fn plan(hs: &[Hierarchy], cgroups_path: Option<&Path>, id: &str, own: &str) -> Vec<(Hierarchy, PathBuf)> {
    let name = PathBuf::from(id);
    let path = cgroups_path.unwrap_or(&name);
    let unified = is_unified(hs);
    hs.iter()
        .map(|h| {
            let full = if path.is_absolute() {
                path.to_path_buf()
            } else {
                let mut base = own_path(own, h).unwrap_or_else(|| PathBuf::from("/"));
                if unified {
                    base = base.parent().map(Path::to_path_buf).unwrap_or(base);
                }
                base.join(path)
            };
            // The hierarchy may be mounted from a sub-path (inside a container): strip it.
            let inside = full.strip_prefix(&h.root).map(Path::to_path_buf).unwrap_or(full);
            (h.clone(), h.mount.join(inside.strip_prefix("/").unwrap_or(&inside)))
        })
        .collect()
}

/// This process's cgroup in hierarchy `h`, from /proc/self/cgroup text.
fn own_path(own: &str, h: &Hierarchy) -> Option<PathBuf> {
    for line in own.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let matches = if h.fstype == "cgroup2" { ctrls.is_empty() } else { ctrls.split(',').any(|c| h.has(c)) };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Create the container's cgroups (recording what was created) and apply `resources` and the
/// device rules (`resources.devices`, then runc's default allow list: [`devices::full_list`]).
///
/// With `use_systemd` nothing is created yet: the returned placement holds the unit and its
/// planned directories, and [`enter`] starts the unit with the first process in it (a scope
/// cannot exist without one) and only then applies the limits.
pub fn create(cgroups_path: Option<&Path>, id: &str, resources: Option<&LinuxResources>, devices: &[LinuxDevice], use_systemd: bool) -> Result<Placement, CgroupError> {
    let hs = host_hierarchies()?;
    if use_systemd {
        let invalid = |reason| CgroupError::Invalid { reason: format!("linux.cgroupsPath: {reason}") };
        let unit = systemd::parse_path(cgroups_path, id).map_err(invalid)?;
        let pid1 = fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
        let dirs = systemd::plan(&hs, &unit, &pid1).map_err(invalid)?;
        return Ok(Placement { dirs, created: Vec::new(), systemd: Some(unit) });
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut placement = Placement { dirs: plan(&hs, cgroups_path, id, &own), created: Vec::new(), systemd: None };
    let res = (|| {
        let unified = placement.is_unified();
        for (h, dir) in placement.dirs.clone() {
            mkdir_recording(&h, &dir, &mut placement.created)?;
            if unified {
                v2::enable_controllers(&h.mount, &dir)?;
            }
        }
        let empty = LinuxResources::default();
        let r = resources.unwrap_or(&empty);
        apply(&placement, r, Mode::Create)?;
        devices::apply(&placement, r.devices().as_deref().unwrap_or_default(), devices)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = remove(&placement);
        return Err(e);
    }
    Ok(placement)
}

/// mkdir -p that records each directory it made; a new v1 cpuset directory inherits its parent's
/// cpus and mems, without which no task can join it (ENOSPC).
fn mkdir_recording(h: &Hierarchy, dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() && p != h.mount {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("mkdir", &d)(e)),
        }
        if h.has("cpuset") {
            let parent = d.parent().unwrap_or(&h.mount);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = fs::read_to_string(parent.join(f)).map_err(io_err("read", &parent.join(f)))?;
                write(&d.join(f), v.trim())?;
            }
        }
    }
    Ok(())
}

/// Write one cgroup file. Never creates it: a missing file means the controller or feature is
/// absent, which callers turn into an error naming the resource field.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(path).map_err(io_err("open", path))?;
    f.write_all(value.as_bytes()).map_err(io_err("write", path))
}

/// Write `file` in `dir` for resource field `name`: a missing file becomes a field error.
pub(crate) fn write_field(dir: &Path, file: &str, value: &str, name: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    if !path.exists() {
        return Err(field(name, format!("{} does not exist (controller or feature not available on this host)", path.display())));
    }
    match write(&path, value) {
        Err(CgroupError::Io { source, .. }) => Err(CgroupError::FieldWrite { field: name.into(), value: value.into(), path, source }),
        other => other,
    }
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(io_err("read", path))
}

/// Whether resources are applied at create time or as a live update (some writes depend on it:
/// runc's memory/swap ordering, checkBeforeUpdate, replacing the v2 device program).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Put the container's first process (the init helper) into the placement [`create`] returned.
/// cgroupfs: the directories exist and hold the limits already, this is [`add`]. systemd: start
/// the unit with `pid` in it (runc starts it with the init's pid; brisk's init is cloned by the
/// helper from inside the unit, so it starts there too), make the directories systemd does not
/// manage (v1 hierarchies such as freezer or cpuset, as runc's fs join does), then apply the
/// limits and device rules with the cgroupfs code, as runc's manager Set does after Apply. On
/// error the caller removes the placement (which stops the unit).
pub fn enter(p: &mut Placement, pid: i32, resources: Option<&LinuxResources>, devices: &[LinuxDevice]) -> Result<(), CgroupError> {
    let Some(unit) = p.systemd.clone() else { return add(p, pid) };
    let empty = LinuxResources::default();
    let r = resources.unwrap_or(&empty);
    let rules = devices::full_list(r.devices().as_deref().unwrap_or_default(), devices)?;
    let unified = p.is_unified();
    let mut m = systemd::Manager::connect()?;
    let version = if r.cpu().as_ref().and_then(|c| c.period()).is_some() { m.version() } else { 0 };
    let pid_prop = (!unit.is_slice()).then_some(pid as u32);
    let props = systemd::properties(&unit, pid_prop, unified, r, &rules, &systemd::read_proc_devices(), version);
    m.start(&unit, props)?;
    for (h, dir) in p.dirs.clone() {
        mkdir_recording(&h, &dir, &mut p.created)?;
        if unified {
            v2::enable_controllers(&h.mount, &dir)?;
        }
    }
    add(p, pid)?;
    apply(p, r, Mode::Create)?;
    devices::apply(p, r.devices().as_deref().unwrap_or_default(), devices)
}

/// Move `pid` into the container's cgroups.
pub fn add(p: &Placement, pid: i32) -> Result<(), CgroupError> {
    for (_, dir) in &p.dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

/// Device cgroup rules runc adds to every container (and brisk, to behave the same).
pub const DEFAULT_ALLOWED_DEVICES: &[&str] = devices::DEFAULT_ALLOWED;

/// Apply `r` (v1 controllers on v1/hybrid hosts; the v2 equivalents on a unified host), except the
/// device rules ([`devices::apply`]).
pub fn apply(p: &Placement, r: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    if p.is_unified() {
        let d = p.unified_dir().ok_or_else(|| CgroupError::Invalid { reason: "no cgroup2 directory in the placement".into() })?;
        v2::apply(d, r, mode)
    } else {
        v1::apply(p, r, mode)
    }
}

/// Live update (`runc update`, the shim's Update): the fields set in `r` are written, the others
/// keep their current values. Device rules, when present, replace the container's rules.
pub fn update(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    if p.dirs.is_empty() {
        return Err(CgroupError::Invalid { reason: NO_CGROUPS.into() });
    }
    if let Some(rules) = r.devices().as_deref() {
        for (i, d) in rules.iter().enumerate() {
            devices::Rule::from_spec(d).map_err(|reason| field(format!("devices[{i}]"), reason))?;
        }
    }
    if let Some(unit) = &p.systemd {
        // systemd re-applies a unit's recorded limits whenever it re-realizes it: record the new
        // ones first, as runc's systemd manager Set does, then write them like cgroupfs.
        let rules = r.devices().as_deref().map(|d| devices::full_list(d, &[])).transpose()?;
        let mut m = systemd::Manager::connect()?;
        let version = if r.cpu().as_ref().and_then(|c| c.period()).is_some() { m.version() } else { 0 };
        let props = systemd::update_properties(p.is_unified(), r, rules.as_deref(), &systemd::read_proc_devices(), version);
        m.set_properties(&unit.name, props)?;
    }
    apply(p, r, Mode::Update)?;
    if let Some(rules) = r.devices().as_deref() {
        devices::apply(p, rules, &[])?;
    }
    Ok(())
}

/// Pids of every process in the container (any hierarchy holds all of them).
pub fn pids(p: &Placement) -> Result<Vec<i32>, crate::Error> {
    let Some((_, dir)) = p.dirs.iter().find(|(h, _)| h.has("pids") || h.has("memory")).or(p.dirs.first()) else {
        // Only a rootless container without permission to create any cgroup has none (runc
        // fails `ps` and `kill --all` then too, less clearly).
        return Err(CgroupError::Invalid { reason: NO_CGROUPS.into() }.into());
    };
    let f = dir.join("cgroup.procs");
    let text = fs::read_to_string(&f).map_err(|e| CgroupError::Io { step: "read", path: f.clone(), source: e })?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

pub fn is_frozen(p: &Placement) -> bool {
    if let Some(d) = p.v1_dir("freezer") {
        return fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
    }
    if let Some(d) = p.unified_dir().filter(|_| p.is_unified()) {
        return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    }
    false
}

/// Freeze or thaw every process, waiting until the kernel reports the new state (v1
/// `freezer.state` reads FROZEN/THAWED; v2 `cgroup.events` has `frozen 1`/`frozen 0`).
pub fn set_frozen(p: &Placement, frozen: bool) -> Result<(), CgroupError> {
    if let Some(d) = p.v1_dir("freezer") {
        let f = d.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write(&f, want)?;
            let now = read(&f)?;
            if now.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Err(CgroupError::Invalid { reason: format!("{}: did not become {want}", f.display()) });
    }
    if let Some(d) = p.unified_dir().filter(|_| p.is_unified()) {
        let f = d.join("cgroup.freeze");
        write(&f, if frozen { "1" } else { "0" })?;
        let events = d.join("cgroup.events");
        let want = if frozen { "1" } else { "0" };
        for _ in 0..5000 {
            let text = read(&events)?;
            if stats::flat_keyed(&text).get("frozen").map(|v| v.to_string()).as_deref() == Some(want) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Err(CgroupError::Invalid { reason: format!("{}: frozen did not become {want}", events.display()) });
    }
    Err(CgroupError::Invalid { reason: if p.dirs.is_empty() { NO_CGROUPS.into() } else { "no freezer available for this container".into() } })
}

/// Why `ps`, `pause` or `kill --all` cannot work on a container that has no cgroup.
pub(crate) const NO_CGROUPS: &str = "cgroups not configured for container: in rootless mode the user could not create its cgroup (runc refuses the same); give the user a delegated cgroup and set linux.cgroupsPath to one below it";

/// Remove the directories brisk created, deepest first. A directory still busy (its last task is
/// exiting) is retried briefly; one that is gone already is fine. A systemd unit is stopped first
/// (systemd removes its own directories; a unit already collected because its processes all
/// exited counts as stopped).
pub fn remove(p: &Placement) -> Result<(), CgroupError> {
    if let Some(unit) = &p.systemd {
        systemd::Manager::connect()?.stop(&unit.name)?;
    }
    for d in p.created.iter().rev() {
        let mut tries = 0;
        loop {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                // A parent shared with other containers still has children: not ours to force.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Some(d) != p.created.last() => break,
                Err(e) => return Err(io_err("rmdir", d)(e)),
            }
        }
    }
    Ok(())
}

/// (name, fstype, host dir) for each hierarchy, as the rootfs code mounts them.
pub fn mounts_for_rootfs(p: &Placement) -> Vec<(String, String, PathBuf)> {
    p.dirs.iter().map(|(h, d)| (h.name(), h.fstype.clone(), d.clone())).collect()
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::Path;

    /// A fake cgroup directory: each `(file, content)` created, so writes to anything else fail
    /// like a missing controller file does.
    pub fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for (f, c) in files {
            std::fs::write(d.path().join(f), c).expect("write fixture");
        }
        d
    }

    pub fn get(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).expect("read fixture")
    }

    /// `linux.resources` from JSON.
    pub fn res(json: &str) -> oci_spec::runtime::LinuxResources {
        serde_json::from_str(json).expect("resources json")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
";

    const UNIFIED: &str = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn parses_hybrid() {
        let hs = parse_mountinfo(HYBRID);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].fstype, "cgroup2");
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert_eq!(hs[3].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[3].name(), "cpu,cpuacct");
        assert!(!is_unified(&hs));
    }

    #[test]
    fn parses_unified() {
        let hs = parse_mountinfo(UNIFIED);
        assert_eq!(hs.len(), 1);
        assert!(is_unified(&hs));
        let p = Placement { dirs: plan(&hs, Some(Path::new("/a")), "id", ""), created: vec![], systemd: None };
        assert!(p.is_unified());
        assert_eq!(p.version(), CgroupVersion::V2);
        assert_eq!(p.unified_dir(), Some(Path::new("/sys/fs/cgroup/a")));
        // Relative and absent paths go under the parent of the caller's cgroup (runc's fs2).
        let own = "0::/user.slice/u/x\n";
        assert_eq!(plan(&hs, Some(Path::new("c")), "id", own)[0].1, PathBuf::from("/sys/fs/cgroup/user.slice/u/c"));
        assert_eq!(plan(&hs, None, "id", own)[0].1, PathBuf::from("/sys/fs/cgroup/user.slice/u/id"));
        assert_eq!(plan(&hs, None, "id", "0::/\n")[0].1, PathBuf::from("/sys/fs/cgroup/id"));
    }

    #[test]
    fn plans_absolute_relative_and_default_paths() {
        let hs = parse_mountinfo(HYBRID);
        let own = "5:memory:/user.slice\n0::/user.slice/x\n";
        let abs = plan(&hs, Some(Path::new("/a/b")), "id", own);
        assert_eq!(abs[2].1, PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        let rel = plan(&hs, Some(Path::new("c")), "id", own);
        assert_eq!(rel[2].1, PathBuf::from("/sys/fs/cgroup/memory/user.slice/c"));
        assert_eq!(rel[0].1, PathBuf::from("/sys/fs/cgroup/unified/user.slice/x/c"));
        // No cgroupsPath: `<own cgroup>/<id>`, as runc does (not `/<id>`).
        let own = "4:cpu,cpuacct:/user.slice/s\n5:memory:/user.slice\n0::/user.slice/x\n";
        let def = plan(&hs, None, "id", own);
        assert_eq!(def[3].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice/s/id"));
        assert_eq!(def[2].1, PathBuf::from("/sys/fs/cgroup/memory/user.slice/id"));
        let p = Placement { dirs: def, created: vec![], systemd: None };
        assert_eq!(p.version(), CgroupVersion::V1);
        assert_eq!(p.v1_dir("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice/s/id")));
        // A caller in the root cgroup: `/<id>`.
        assert_eq!(plan(&hs, None, "id", "5:memory:/\n")[2].1, PathBuf::from("/sys/fs/cgroup/memory/id"));
    }

    #[test]
    fn systemd_paths_need_the_systemd_driver() {
        assert!(check_path(Path::new("system.slice:brisk:x")).is_ok(), "left to check_driver");
        assert!(check_path(Path::new("/a/../b")).is_err());
        assert!(check_path(Path::new("/a/b")).is_ok());
        let e = check_driver(Some(Path::new("system.slice:brisk:x")), "x", false).unwrap_err();
        assert!(e.contains("systemd-cgroup") && e.contains("system.slice:brisk:x"), "{e}");
        assert!(check_driver(Some(Path::new("/a/b")), "x", false).is_ok());
        assert!(check_driver(None, "x", false).is_ok());
        if systemd::booted() {
            assert!(check_driver(Some(Path::new("/a/b")), "x", true).unwrap_err().contains("slice:prefix:name"));
        } else {
            let e = check_driver(Some(Path::new("system.slice:brisk:x")), "x", true).unwrap_err();
            assert!(e.contains("systemd is not PID 1") && e.contains("/run/systemd/system"), "{e}");
        }
    }

    #[test]
    fn old_state_files_load_without_the_systemd_field() {
        let p: Placement = serde_json::from_str(r#"{"dirs":[],"created":["/sys/fs/cgroup/x"]}"#).unwrap();
        assert!(p.systemd.is_none());
        let with = Placement { systemd: Some(systemd::Unit { name: "brisk-x.scope".into(), slice: "system.slice".into() }), ..p };
        let back: Placement = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back.systemd, with.systemd);
    }

    #[test]
    fn validation_names_the_field() {
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"swappiness":101}}"#).unwrap();
        assert_eq!(validate_resources(&r).unwrap_err().0, "memory.swappiness");
        let r: LinuxResources = serde_json::from_str(r#"{"devices":[{"allow":true,"type":"c","access":"rwx"}]}"#).unwrap();
        assert_eq!(validate_resources(&r).unwrap_err().0, "devices[0]");
        let r: LinuxResources = serde_json::from_str(r#"{"unified":{"../memory.max":"1"}}"#).unwrap();
        assert!(validate_resources(&r).unwrap_err().0.starts_with("unified"));
        let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"burst":1,"idle":1},"rdma":{"mlx5_0":{"hcaHandles":1}}}"#).unwrap();
        assert!(validate_resources(&r).is_ok());
    }
}
