//! Cgroup placement, limits, freezing and removal, for v1, hybrid and unified hosts.
//!
//! The container gets its own cgroup in every mounted hierarchy (cgroupsPath, config-linux.md
//! "Control groups"). Only directories brisk created are ever written to or removed: the
//! [`Placement`] records them, in creation order, so `delete` removes exactly those.
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("cgroup: {reason}")]
    Invalid { reason: String },
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { step, path: path.to_path_buf(), source }
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
        let h = Hierarchy { mount: PathBuf::from(unescape(pre[4])), fstype: fstype.into(), controllers, root: PathBuf::from(unescape(pre[3])) };
        // The same hierarchy can be mounted twice (e.g. cpu and cpu,cpuacct links); keep the first.
        if !out.iter().any(|o: &Hierarchy| o.mount == h.mount || (o.fstype == "cgroup" && o.controllers == h.controllers)) {
            out.push(h);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
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

/// cgroupsPath syntax check. The systemd driver's `slice:prefix:name` form is refused with a clear
/// error until the systemd driver exists.
pub fn check_path(p: &Path) -> Result<(), String> {
    let s = p.to_string_lossy();
    if s.contains(':') {
        return Err(format!("{s:?} is a systemd slice:prefix:name path; the systemd cgroup driver is not supported yet"));
    }
    if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("{s:?} must not contain \"..\""));
    }
    Ok(())
}

/// Resource fields brisk applies; anything else set in `linux.resources` is refused by name
/// (config-linux.md: a runtime must not silently ignore a requested limit).
pub fn validate_resources(r: &LinuxResources) -> Result<(), (String, String)> {
    let ns = |f: &str| Err((f.to_string(), "not supported yet".to_string()));
    if let Some(cpu) = r.cpu() {
        if cpu.burst().is_some() {
            return ns("cpu.burst");
        }
        if cpu.idle().is_some() {
            return ns("cpu.idle");
        }
    }
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            return Err(("memory.kernel".into(), "kernel memory limits are deprecated and not supported (runc ignores them since 1.0.0-rc95; brisk refuses)".into()));
        }
        if m.use_hierarchy().is_some() {
            return ns("memory.useHierarchy");
        }
    }
    if r.rdma().as_ref().is_some_and(|x| !x.is_empty()) {
        return ns("rdma");
    }
    if r.unified().as_ref().is_some_and(|x| !x.is_empty()) {
        return ns("unified");
    }
    if let Some(b) = r.block_io() {
        if b.leaf_weight().is_some() || b.weight_device().as_ref().is_some_and(|w| !w.is_empty()) {
            return ns("blockIO.weightDevice");
        }
    }
    Ok(())
}

/// The container's directory in each hierarchy, for `cgroups_path` (absolute: from the hierarchy
/// root; relative: from the caller's own cgroup; absent: `/<id>`).
pub fn plan(hs: &[Hierarchy], cgroups_path: Option<&Path>, id: &str, own: &str) -> Vec<(Hierarchy, PathBuf)> {
    let rel = match cgroups_path {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => PathBuf::from("/").join(p),
        None => PathBuf::from("/").join(id),
    };
    hs.iter()
        .map(|h| {
            let base = if cgroups_path.is_some_and(|p| !p.is_absolute()) {
                own_path(own, h).unwrap_or_else(|| PathBuf::from("/"))
            } else {
                PathBuf::from("/")
            };
            let full = base.join(rel.strip_prefix("/").unwrap_or(&rel));
            // The hierarchy may be mounted from a sub-path (inside a container): strip it.
            let inside = full.strip_prefix(&h.root).map(Path::to_path_buf).unwrap_or(full);
            (h.clone(), h.mount.join(inside))
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

/// Create the container's cgroups (recording what was created) and apply `resources`.
pub fn create(cgroups_path: Option<&Path>, id: &str, resources: Option<&LinuxResources>, devices: &[LinuxDevice]) -> Result<Placement, CgroupError> {
    let hs = host_hierarchies()?;
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut placement = Placement { dirs: plan(&hs, cgroups_path, id, &own), created: Vec::new() };
    let res = (|| {
        for (h, dir) in placement.dirs.clone() {
            mkdir_recording(&h, &dir, &mut placement.created)?;
        }
        if let Some(r) = resources {
            apply(&placement, r)?;
        }
        allow_devices(&placement, devices)?;
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

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err("write", path))
}

/// Move `pid` into the container's cgroups.
pub fn add(p: &Placement, pid: i32) -> Result<(), CgroupError> {
    for (_, dir) in &p.dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

fn dir_with<'a>(p: &'a Placement, controller: &str) -> Option<&'a Path> {
    p.dirs.iter().find(|(h, _)| h.has(controller)).map(|(_, d)| d.as_path())
}

fn unified_dir(p: &Placement) -> Option<&Path> {
    p.dirs.iter().find(|(h, _)| h.fstype == "cgroup2").map(|(_, d)| d.as_path())
}

/// The devices of `linux.devices` are usable in the container (runc adds an allow rule for each).
fn allow_devices(p: &Placement, devices: &[LinuxDevice]) -> Result<(), CgroupError> {
    let Some(d) = dir_with(p, "devices") else { return Ok(()) };
    for dev in devices {
        let typ = match dev.typ() {
            oci_spec::runtime::LinuxDeviceType::B => "b",
            oci_spec::runtime::LinuxDeviceType::P => continue,
            _ => "c",
        };
        write(&d.join("devices.allow"), &format!("{typ} {}:{} rwm", dev.major(), dev.minor()))?;
    }
    Ok(())
}

/// Device cgroup rules runc adds to every container (and brisk, to behave the same).
pub const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm",
];

/// Apply `r` (v1 controllers on v1/hybrid hosts; the v2 equivalents on a unified host).
pub fn apply(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    let unified = p.dirs.iter().all(|(h, _)| h.fstype == "cgroup2");
    if unified {
        return apply_v2(p, r);
    }
    if let Some(d) = dir_with(p, "devices") {
        for rule in r.devices().as_deref().unwrap_or_default() {
            let typ = rule.typ().map(|t| t.as_str().to_string()).unwrap_or_else(|| "a".into());
            let num = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n.to_string()).unwrap_or_else(|| "*".into());
            let line = if typ == "a" {
                "a".to_string()
            } else {
                format!("{typ} {}:{} {}", num(rule.major()), num(rule.minor()), rule.access().as_deref().unwrap_or("rwm"))
            };
            let file = if rule.allow() { "devices.allow" } else { "devices.deny" };
            write(&d.join(file), &line)?;
        }
        // runc (libcontainer/specconv AllowedDevices) always allows mknod of anything plus the
        // default devices of config-linux.md after the spec's own rules; configs written for runc
        // (`runc spec`: deny all) rely on it.
        for line in DEFAULT_ALLOWED_DEVICES {
            write(&d.join("devices.allow"), line)?;
        }
    }
    if let (Some(m), Some(d)) = (r.memory(), dir_with(p, "memory")) {
        if let Some(v) = m.limit() {
            write(&d.join("memory.limit_in_bytes"), &v.to_string())?;
        }
        if let Some(v) = m.reservation() {
            write(&d.join("memory.soft_limit_in_bytes"), &v.to_string())?;
        }
        if let Some(v) = m.swap() {
            write(&d.join("memory.memsw.limit_in_bytes"), &v.to_string())?;
        }
        if let Some(v) = m.swappiness() {
            write(&d.join("memory.swappiness"), &v.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write(&d.join("memory.oom_control"), "1")?;
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(d) = dir_with(p, "cpu") {
            if let Some(v) = c.shares() {
                write(&d.join("cpu.shares"), &v.to_string())?;
            }
            if let Some(v) = c.period() {
                write(&d.join("cpu.cfs_period_us"), &v.to_string())?;
            }
            if let Some(v) = c.quota() {
                write(&d.join("cpu.cfs_quota_us"), &v.to_string())?;
            }
            if let Some(v) = c.realtime_period() {
                write(&d.join("cpu.rt_period_us"), &v.to_string())?;
            }
            if let Some(v) = c.realtime_runtime() {
                write(&d.join("cpu.rt_runtime_us"), &v.to_string())?;
            }
        }
        if let Some(d) = dir_with(p, "cpuset") {
            if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
                write(&d.join("cpuset.cpus"), v)?;
            }
            if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
                write(&d.join("cpuset.mems"), v)?;
            }
        }
    }
    if let (Some(pids), Some(d)) = (r.pids(), dir_with(p, "pids")) {
        let v = if pids.limit() <= 0 { "max".to_string() } else { pids.limit().to_string() };
        write(&d.join("pids.max"), &v)?;
    }
    if let (Some(b), Some(d)) = (r.block_io(), dir_with(p, "blkio")) {
        if let Some(w) = b.weight() {
            write(&d.join("blkio.weight"), &w.to_string())?;
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
            ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
            ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
            ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (file, list) in throttles {
            for t in list.as_deref().unwrap_or_default() {
                write(&d.join(file), &format!("{}:{} {}", t.major(), t.minor(), t.rate()))?;
            }
        }
    }
    if let Some(n) = r.network() {
        if let (Some(id), Some(d)) = (n.class_id(), dir_with(p, "net_cls")) {
            write(&d.join("net_cls.classid"), &id.to_string())?;
        }
        if let Some(d) = dir_with(p, "net_prio") {
            for pr in n.priorities().as_deref().unwrap_or_default() {
                write(&d.join("net_prio.ifpriomap"), &format!("{} {}", pr.name(), pr.priority()))?;
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        // On hybrid hosts hugetlb lives in the cgroup2 hierarchy.
        let (d, file) = match (dir_with(p, "hugetlb"), unified_dir(p)) {
            (Some(d), _) => (d, format!("hugetlb.{}.limit_in_bytes", h.page_size())),
            (None, Some(d)) => (d, format!("hugetlb.{}.max", h.page_size())),
            _ => return Err(CgroupError::Invalid { reason: "hugepageLimits: no hugetlb controller on this host".into() }),
        };
        let path = d.join(&file);
        if !path.exists() {
            return Err(CgroupError::Invalid { reason: format!("hugepageLimits: {} does not exist (hugetlb not enabled for this cgroup)", path.display()) });
        }
        write(&path, &h.limit().to_string())?;
    }
    Ok(())
}

/// The v2 interface for the same fields (runc's conversions: cpu.shares → cpu.weight, etc.).
fn apply_v2(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(d) = unified_dir(p) else { return Ok(()) };
    if let Some(m) = r.memory() {
        if let Some(v) = m.limit() {
            write(&d.join("memory.max"), &if v < 0 { "max".into() } else { v.to_string() })?;
        }
        if let Some(v) = m.reservation() {
            write(&d.join("memory.low"), &v.to_string())?;
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            // runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000].
            let w = if s == 0 { 0 } else { 1 + ((s.saturating_sub(2)) * 9999) / 262142 };
            if w > 0 {
                write(&d.join("cpu.weight"), &w.to_string())?;
            }
        }
        if c.quota().is_some() || c.period().is_some() {
            let q = c.quota().filter(|q| *q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
            write(&d.join("cpu.max"), &format!("{q} {}", c.period().unwrap_or(100000)))?;
        }
    }
    if let Some(pids) = r.pids() {
        write(&d.join("pids.max"), &if pids.limit() <= 0 { "max".into() } else { pids.limit().to_string() })?;
    }
    Ok(())
}

/// Pids of every process in the container (any hierarchy holds all of them).
pub fn pids(p: &Placement) -> Result<Vec<i32>, crate::Error> {
    let Some((_, dir)) = p.dirs.iter().find(|(h, _)| h.has("pids") || h.has("memory")).or(p.dirs.first()) else {
        return Ok(Vec::new());
    };
    let f = dir.join("cgroup.procs");
    let text = fs::read_to_string(&f).map_err(|e| CgroupError::Io { step: "read", path: f.clone(), source: e })?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

pub fn is_frozen(p: &Placement) -> bool {
    if let Some(d) = dir_with(p, "freezer") {
        return fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
    }
    if let Some(d) = unified_dir(p).filter(|_| p.dirs.iter().all(|(h, _)| h.fstype == "cgroup2")) {
        return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    }
    false
}

/// Freeze or thaw every process, waiting until the kernel reports the new state.
pub fn set_frozen(p: &Placement, frozen: bool) -> Result<(), CgroupError> {
    if let Some(d) = dir_with(p, "freezer") {
        let f = d.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write(&f, want)?;
            let now = fs::read_to_string(&f).map_err(io_err("read", &f))?;
            if now.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Err(CgroupError::Invalid { reason: format!("{}: did not become {want}", f.display()) });
    }
    if let Some(d) = unified_dir(p) {
        let f = d.join("cgroup.freeze");
        if f.exists() {
            return write(&f, if frozen { "1" } else { "0" });
        }
    }
    Err(CgroupError::Invalid { reason: "no freezer available for this container".into() })
}

/// Remove the directories brisk created, deepest first. A directory still busy (its last task is
/// exiting) is retried briefly; one that is gone already is fine.
pub fn remove(p: &Placement) -> Result<(), CgroupError> {
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
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
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
    fn plans_absolute_relative_and_default_paths() {
        let hs = parse_mountinfo(HYBRID);
        let own = "5:memory:/user.slice\n0::/user.slice/x\n";
        let abs = plan(&hs, Some(Path::new("/a/b")), "id", own);
        assert_eq!(abs[2].1, PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        let rel = plan(&hs, Some(Path::new("c")), "id", own);
        assert_eq!(rel[2].1, PathBuf::from("/sys/fs/cgroup/memory/user.slice/c"));
        assert_eq!(rel[0].1, PathBuf::from("/sys/fs/cgroup/unified/user.slice/x/c"));
        let def = plan(&hs, None, "id", own);
        assert_eq!(def[3].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/id"));
    }

    #[test]
    fn systemd_paths_are_refused() {
        assert!(check_path(Path::new("system.slice:brisk:x")).is_err());
        assert!(check_path(Path::new("/a/../b")).is_err());
        assert!(check_path(Path::new("/a/b")).is_ok());
    }
}
