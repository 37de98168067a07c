//! The systemd cgroup driver: the container's cgroup is a transient scope unit created over
//! systemd's D-Bus API, as runc 1.1.5 does with `--systemd-cgroup` (libcontainer/cgroups/systemd).
//!
//! cgroupsPath is `slice:prefix:name`: the unit is `prefix-name.scope` (or `name` itself when it
//! ends in `.slice`) under `slice` (default `system.slice`). systemd creates the unit's cgroup with
//! the given pid already in it; limits are then written with the same fs code as the cgroupfs
//! driver (v1/v2 `apply`, `devices::apply`), so the files end with the values runc writes. The
//! limits are also passed as unit properties, because systemd rewrites a unit's cgroup files from
//! its properties whenever it re-realizes the unit (daemon-reload, a sibling's change): without
//! them a reload would reset e.g. the device policy to allow-all on v1 (why runc sets them too).
//!
//! Removal is StopUnit (never rmdir of systemd's directories), followed by rmdir of the v1
//! directories brisk itself made in hierarchies systemd does not manage (freezer, cpuset, ...).
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::dbus::{self, Conn, DbusError, Message, Value};
use super::devices::Rule;
use super::Hierarchy;

/// The directory whose existence means systemd is PID 1 (sd_booted(3)).
pub const BOOTED_MARKER: &str = "/run/systemd/system";

/// The slice a scope goes to when cgroupsPath names none (runc: system.slice for root).
pub const DEFAULT_SLICE: &str = "system.slice";

/// The unit prefix when cgroupsPath is empty (runc uses "runc"; brisk names itself).
pub const DEFAULT_PREFIX: &str = "brisk";

const DEST: &str = "org.freedesktop.systemd1";
const OBJ: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("systemd {step} of unit {unit}: {source}")]
    Dbus { step: &'static str, unit: String, #[source] source: DbusError },
    /// A job ended with a result other than "done" (e.g. "failed", "timeout", "canceled").
    #[error("systemd {step} of unit {unit}: job finished with result {result:?}")]
    Job { step: &'static str, unit: String, result: String },
    #[error("systemd: no connection on {bus} ({bus_err}) nor on {private} ({private_err})")]
    Connect { bus: &'static str, bus_err: Box<DbusError>, private: &'static str, private_err: Box<DbusError> },
}

/// A systemd unit holding a container, as persisted in state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// e.g. "brisk-abc.scope", or a ".slice" unit.
    pub name: String,
    /// The parent slice unit, e.g. "system.slice".
    pub slice: String,
}

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }

    /// The unit's cgroup path relative to the hierarchy root, e.g. /system.slice/brisk-abc.scope,
    /// or /a.slice/a-b.slice/x.scope for slice "a-b.slice".
    pub fn cgroup(&self) -> Result<PathBuf, String> {
        let s = expand_slice(&self.slice)?;
        Ok(PathBuf::from(s).join(&self.name))
    }
}

/// True when systemd is PID 1 (sd_booted: /run/systemd/system exists).
pub fn booted() -> bool {
    Path::new(BOOTED_MARKER).is_dir()
}

/// Parse cgroupsPath for the systemd driver, as runc's specconv: exactly three ':'-separated parts
/// `slice:prefix:name`; empty means `system.slice:brisk:<id>`. The unit is `prefix-name.scope`,
/// unless `name` ends in `.slice` (then it is that slice, and the prefix is not used).
pub fn parse_path(p: Option<&Path>, id: &str) -> Result<Unit, String> {
    let s = p.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let (slice, prefix, name) = if s.is_empty() {
        (String::new(), DEFAULT_PREFIX.to_string(), id.to_string())
    } else {
        let parts: Vec<&str> = s.split(':').collect();
        let [slice, prefix, name] = parts.as_slice() else {
            return Err(format!("{s:?}: the systemd cgroup driver expects \"slice:prefix:name\""));
        };
        (slice.to_string(), prefix.to_string(), name.to_string())
    };
    if name.is_empty() {
        return Err(format!("{s:?}: the name part (after the last ':') is empty"));
    }
    let name = if name.ends_with(".slice") {
        name
    } else if prefix.is_empty() {
        // An empty prefix gives "name.scope": joining with '-' would start the unit name with
        // a '-', which systemd refuses.
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    check_unit_name(&name).map_err(|r| format!("{s:?}: unit name {name:?} {r}"))?;
    let slice = if slice.is_empty() { DEFAULT_SLICE.to_string() } else { slice };
    expand_slice(&slice).map_err(|r| format!("{s:?}: {r}"))?;
    Ok(Unit { name, slice })
}

/// Unit names are ASCII letters, digits and ":-_.\" (systemd.unit(5)); '/' would let the cgroup
/// path leave the slice.
fn check_unit_name(n: &str) -> Result<(), String> {
    if n.len() > 255 {
        return Err("is longer than 255 bytes".into());
    }
    if let Some(c) = n.chars().find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c))) {
        return Err(format!("contains {c:?}"));
    }
    Ok(())
}

/// A slice's cgroup path (systemd.slice(5): "a-b.slice" is a child of "a.slice"), as runc's
/// ExpandSlice: "-.slice" is the root; empty components ("a--b.slice", "-a.slice") are invalid.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(base) = slice.strip_suffix(".slice").filter(|b| !b.is_empty()) else {
        return Err(format!("invalid slice name {slice:?}: must end in \".slice\""));
    };
    if slice.contains('/') {
        return Err(format!("invalid slice name {slice:?}: contains '/'"));
    }
    check_unit_name(slice).map_err(|r| format!("invalid slice name {slice:?}: {r}"))?;
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(format!("invalid slice name {slice:?}: empty component"));
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The unit's directory in each hierarchy. Like runc: on v1, below PID 1's own cgroup in that
/// hierarchy minus a trailing init.scope (systemd ≥ 226 runs in init.scope; getSubsystemPath); on
/// v2, from the hierarchy root. `pid1` is /proc/1/cgroup.
pub fn plan(hs: &[Hierarchy], unit: &Unit, pid1: &str) -> Result<Vec<(Hierarchy, PathBuf)>, String> {
    let rel = unit.cgroup()?;
    Ok(hs
        .iter()
        .map(|h| {
            let base = if h.fstype == "cgroup" { super::own_path(pid1, h).unwrap_or_else(|| PathBuf::from("/")) } else { PathBuf::from("/") };
            let base = if base.file_name().is_some_and(|n| n == "init.scope") { base.parent().map(Path::to_path_buf).unwrap_or_default() } else { base };
            let full = base.join(rel.strip_prefix("/").unwrap_or(&rel));
            let inside = full.strip_prefix(&h.root).map(Path::to_path_buf).unwrap_or(full);
            (h.clone(), h.mount.join(inside))
        })
        .collect())
}

fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::str(name), Value::variant(v)])
}

/// The StartTransientUnit properties, in runc 1.1.5's order (systemd/v1.go and v2.go Apply):
/// Description ("brisk container UNIT"), Slice + Delegate (a scope) or Wants (a slice), PIDs, accounting, no default
/// dependencies (a container must not be ordered after/stopped with shutdown targets by default),
/// then the resource properties. `version` is systemd's (for CPUQuotaPeriodUSec, since 242).
pub fn properties(unit: &Unit, pid: Option<u32>, unified: bool, r: &LinuxResources, rules: &[Rule], proc_devices: &str, version: u32) -> Vec<Value> {
    let mut p = vec![prop("Description", Value::str(format!("brisk container {}", unit.name)))];
    if unit.is_slice() {
        p.push(prop("Wants", Value::Array("s".into(), vec![Value::str(&unit.slice)])));
    } else {
        p.push(prop("Slice", Value::str(&unit.slice)));
        p.push(prop("Delegate", Value::Bool(true)));
    }
    if let Some(pid) = pid {
        p.push(prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])));
    }
    p.push(prop("MemoryAccounting", Value::Bool(true)));
    p.push(prop("CPUAccounting", Value::Bool(true)));
    p.push(prop(if unified { "IOAccounting" } else { "BlockIOAccounting" }, Value::Bool(true)));
    p.push(prop("TasksAccounting", Value::Bool(true)));
    p.push(prop("DefaultDependencies", Value::Bool(false)));
    p.extend(device_properties(rules, proc_devices));
    p.extend(resource_properties(unified, r, version));
    p
}

/// Limits as unit properties (runc genV1ResourcesProperties / genV2ResourcesProperties), with
/// runc's conversions, so a re-realize by systemd writes what the fs code wrote. Not passed (the fs
/// write is the only one, as with runc before systemd 244): cpuset (AllowedCPUs needs a bitmask
/// conversion and systemd ≥ 244), `unified` keys.
fn resource_properties(unified: bool, r: &LinuxResources, version: u32) -> Vec<Value> {
    let mut p = Vec::new();
    let mem = r.memory().as_ref();
    let limit = mem.and_then(|m| m.limit()).unwrap_or(0);
    let cpu = r.cpu().as_ref();
    let shares = cpu.and_then(|c| c.shares()).unwrap_or(0);
    if unified {
        if limit != 0 {
            p.push(prop("MemoryMax", Value::U64(limit as u64)));
        }
        let low = mem.and_then(|m| m.reservation()).unwrap_or(0);
        if low != 0 {
            p.push(prop("MemoryLow", Value::U64(low as u64)));
        }
        // An invalid combination is left to the fs code, which names the field.
        if let Ok(swap) = super::v2::memory_swap_to_v2(mem.and_then(|m| m.swap()).unwrap_or(0), limit) {
            if swap != 0 {
                p.push(prop("MemorySwapMax", Value::U64(swap as u64)));
            }
        }
        if shares != 0 {
            p.push(prop("CPUWeight", Value::U64(super::v2::cpu_shares_to_weight(shares))));
        }
    } else {
        if limit != 0 {
            p.push(prop("MemoryLimit", Value::U64(limit as u64)));
        }
        if shares != 0 {
            p.push(prop("CPUShares", Value::U64(shares)));
        }
    }
    let quota = cpu.and_then(|c| c.quota()).unwrap_or(0);
    let period = cpu.and_then(|c| c.period()).unwrap_or(0);
    if period != 0 && version >= 242 {
        p.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota != 0 || period != 0 {
        p.push(prop("CPUQuotaPerSecUSec", Value::U64(cpu_quota_per_sec(quota, period))));
    }
    if !unified {
        let w = r.block_io().as_ref().and_then(|b| b.weight()).unwrap_or(0);
        if w != 0 {
            p.push(prop("BlockIOWeight", Value::U64(u64::from(w))));
        }
    }
    let pids = r.pids().as_ref().map(|p| p.limit()).unwrap_or(0);
    if pids > 0 || pids == -1 {
        p.push(prop("TasksMax", Value::U64(pids as u64)));
    }
    p
}

/// runc addCpuQuota: microseconds of CPU per second, rounded up to whole percent (systemd keeps a
/// percentage internally, so a fractional one would come back lower than asked); u64::MAX
/// (USEC_INFINITY) for no quota.
pub fn cpu_quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 { 100_000 } else { period };
    let v = (quota as u64).saturating_mul(1_000_000) / period;
    if !v.is_multiple_of(10_000) {
        (v / 10_000 + 1) * 10_000
    } else {
        v
    }
}

/// DevicePolicy and DeviceAllow for the effective rule list (runc generateDeviceProperties).
/// systemd has allow lists only: "strict" plus allow entries; a rule list that ends as allow-all
/// becomes "auto" with no entries. A deny list systemd cannot express becomes strict with no
/// entries (deny all), which the fs write right after replaces with the real rules — runc does
/// the same. Entry paths: "/dev/char/M:m" for one device, the /proc/devices group ("char-pts")
/// for "M:*", "char-*"/"block-*" for "*:*"; "*:m" has no systemd form and is left to the fs write.
pub fn device_properties(rules: &[Rule], proc_devices: &str) -> Vec<Value> {
    // Like runc's devices emulator (and systemd's "strict"), start from deny-all: a rule list
    // without an explicit "a" rule is an allow list.
    let mut all = vec![Rule { allow: false, typ: 'a', major: None, minor: None, access: "rwm".into() }];
    all.extend_from_slice(rules);
    let (default_allow, exceptions) = super::devices::reduce(&all);
    if default_allow {
        let policy = if exceptions.is_empty() { "auto" } else { "strict" };
        return vec![prop("DevicePolicy", Value::str(policy)), prop("DeviceAllow", Value::Array("(ss)".into(), vec![]))];
    }
    let mut allow = Vec::new();
    for r in exceptions.iter().filter(|r| r.allow) {
        let kind = if r.typ == 'b' { "block" } else { "char" };
        let path = match (r.major, r.minor) {
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
            (Some(ma), None) => match device_group(proc_devices, r.typ, ma) {
                Some(g) => format!("{kind}-{g}"),
                None => continue,
            },
            (None, None) => format!("{kind}-*"),
            (None, Some(_)) => continue,
        };
        allow.push(Value::Struct(vec![Value::str(path), Value::str(&r.access)]));
    }
    vec![prop("DevicePolicy", Value::str("strict")), prop("DeviceAllow", Value::Array("(ss)".into(), allow))]
}

/// The driver name of major `major` in /proc/devices ("Character devices:" / "Block devices:").
fn device_group(proc_devices: &str, typ: char, major: u32) -> Option<String> {
    let want = if typ == 'b' { "Block devices:" } else { "Character devices:" };
    let mut inside = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            inside = line == want;
            continue;
        }
        if !inside {
            continue;
        }
        let mut it = line.split_whitespace();
        if it.next().and_then(|m| m.parse::<u32>().ok()) == Some(major) {
            return it.next().map(str::to_string);
        }
    }
    None
}

/// The properties a live update changes (runc's manager Set): the limits set in `r`, and the
/// device policy when `rules` is given.
pub fn update_properties(unified: bool, r: &LinuxResources, rules: Option<&[Rule]>, proc_devices: &str, version: u32) -> Vec<Value> {
    let mut p = rules.map(|rules| device_properties(rules, proc_devices)).unwrap_or_default();
    p.extend(resource_properties(unified, r, version));
    p
}

/// A connection to systemd's manager: the system bus first, then systemd's private socket (the
/// order of go-systemd's NewWithContext, which runc uses).
#[derive(Debug)]
pub struct Manager {
    conn: Conn,
}

impl Manager {
    pub fn connect() -> Result<Manager, SystemdError> {
        let bus_err = match Conn::connect(Path::new(dbus::SYSTEM_BUS), true) {
            Ok(conn) => return Ok(Manager { conn }),
            Err(e) => e,
        };
        match Conn::connect(Path::new(dbus::SYSTEMD_PRIVATE), false) {
            Ok(conn) => Ok(Manager { conn }),
            Err(private_err) => Err(SystemdError::Connect { bus: dbus::SYSTEM_BUS, bus_err: Box::new(bus_err), private: dbus::SYSTEMD_PRIVATE, private_err: Box::new(private_err) }),
        }
    }

    fn call(&mut self, step: &'static str, unit: &str, member: &str, body: Vec<Value>) -> Result<Vec<Value>, SystemdError> {
        self.conn.call(Message::call(DEST, OBJ, MANAGER, member, body)).map_err(|source| SystemdError::Dbus { step, unit: unit.to_string(), source })
    }

    /// Job signals reach a bus client only through a match rule. On the private socket systemd
    /// sends them to every peer; Manager.Subscribe (as go-systemd does on every connection) keeps
    /// that from depending on the default.
    fn watch_jobs(&mut self, unit: &str) -> Result<(), SystemdError> {
        if !self.conn.is_bus {
            return self.call("Subscribe", unit, "Subscribe", vec![]).map(drop);
        }
        let rule = format!("type='signal',sender='{DEST}',path='{OBJ}',interface='{MANAGER}',member='JobRemoved'");
        self.conn
            .call(Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", vec![Value::str(rule)]))
            .map(drop)
            .map_err(|source| SystemdError::Dbus { step: "AddMatch", unit: unit.to_string(), source })
    }

    /// Wait for JobRemoved(id, job, unit, result) of `job` and return its result.
    fn wait_job(&mut self, step: &'static str, unit: &str, job: &str) -> Result<String, SystemdError> {
        self.conn
            .wait_signal(&format!("JobRemoved for {job}"), |m| {
                if m.member.as_deref() != Some("JobRemoved") || m.interface.as_deref() != Some(MANAGER) {
                    return None;
                }
                (m.body.get(1).and_then(Value::as_str) == Some(job)).then(|| m.body.get(3).and_then(Value::as_str).unwrap_or("").to_string())
            })
            .map_err(|source| SystemdError::Dbus { step, unit: unit.to_string(), source })
    }

    /// systemd's version number (Manager.Version, e.g. "252.19-1~deb12u1" → 252); 0 if unknown.
    pub fn version(&mut self) -> u32 {
        let body = vec![Value::str(MANAGER), Value::str("Version")];
        let r = self.conn.call(Message::call(DEST, OBJ, "org.freedesktop.DBus.Properties", "Get", body));
        let v = match r.as_deref() {
            Ok([Value::Variant(v)]) => v.as_str().unwrap_or("").to_string(),
            _ => String::new(),
        };
        v.trim_start_matches(|c: char| !c.is_ascii_digit()).split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    /// SetUnitProperties(name, runtime = true, props): systemd records the new limits (and writes
    /// them itself); like runc, the fs code writes them right after.
    pub fn set_properties(&mut self, unit: &str, props: Vec<Value>) -> Result<(), SystemdError> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", unit, "SetUnitProperties", vec![Value::str(unit), Value::Bool(true), Value::Array("(sv)".into(), props)]).map(drop)
    }

    /// StartTransientUnit and wait for its job. A leftover unit of the same name (a failed one is
    /// kept until reset) is reset and the start retried once; runc instead joins an existing unit,
    /// which could put this container into another one's scope.
    pub fn start(&mut self, unit: &Unit, props: Vec<Value>) -> Result<(), SystemdError> {
        self.watch_jobs(&unit.name)?;
        let body = || vec![Value::str(&unit.name), Value::str("replace"), Value::Array("(sv)".into(), props.clone()), Value::Array("(sa(sv))".into(), vec![])];
        let job = match self.call("StartTransientUnit", &unit.name, "StartTransientUnit", body()) {
            Err(SystemdError::Dbus { source: DbusError::Reply { name, .. }, .. }) if name == "org.freedesktop.systemd1.UnitExists" => {
                let _ = self.call("ResetFailedUnit", &unit.name, "ResetFailedUnit", vec![Value::str(&unit.name)]);
                self.call("StartTransientUnit", &unit.name, "StartTransientUnit", body())?
            }
            other => other?,
        };
        let job = job.first().and_then(Value::as_str).unwrap_or("").to_string();
        let result = self.wait_job("start", &unit.name, &job)?;
        if result != "done" {
            let _ = self.call("ResetFailedUnit", &unit.name, "ResetFailedUnit", vec![Value::str(&unit.name)]);
            return Err(SystemdError::Job { step: "start", unit: unit.name.clone(), result });
        }
        Ok(())
    }

    /// StopUnit and wait for its job; a unit that no longer exists (its processes all exited, so
    /// systemd collected it) is already stopped. A failed unit is reset so it does not linger.
    pub fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.watch_jobs(unit)?;
        match self.call("StopUnit", unit, "StopUnit", vec![Value::str(unit), Value::str("replace")]) {
            Ok(job) => {
                let job = job.first().and_then(Value::as_str).unwrap_or("").to_string();
                let result = self.wait_job("stop", unit, &job)?;
                if result != "done" {
                    log::warn!("systemd stop of unit {unit}: job finished with result {result:?}");
                }
            }
            Err(SystemdError::Dbus { source: DbusError::Reply { name, .. }, .. }) if name == "org.freedesktop.systemd1.NoSuchUnit" => {}
            Err(e) => return Err(e),
        }
        let _ = self.call("ResetFailedUnit", unit, "ResetFailedUnit", vec![Value::str(unit)]);
        Ok(())
    }
}

/// /proc/devices, for DeviceAllow group names.
pub fn read_proc_devices() -> String {
    fs::read_to_string("/proc/devices").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_cgroups_paths_like_runc() {
        let u = parse_path(Some(Path::new("system.slice:cri-containerd:abc")), "id").unwrap();
        assert_eq!(u, Unit { name: "cri-containerd-abc.scope".into(), slice: "system.slice".into() });
        assert_eq!(u.cgroup().unwrap(), PathBuf::from("/system.slice/cri-containerd-abc.scope"));
        let u = parse_path(Some(Path::new(":brisk:x")), "id").unwrap();
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.name, "brisk-x.scope");
        let u = parse_path(None, "c1").unwrap();
        assert_eq!(u.name, "brisk-c1.scope");
        let u = parse_path(Some(Path::new("kubepods-besteffort.slice:cri-containerd:abc")), "id").unwrap();
        assert_eq!(u.cgroup().unwrap(), PathBuf::from("/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope"));
        let u = parse_path(Some(Path::new("system.slice::x")), "id").unwrap();
        assert_eq!(u.name, "x.scope");
        let u = parse_path(Some(Path::new("a.slice:p:a-b.slice")), "id").unwrap();
        assert!(u.is_slice());
        assert_eq!(u.name, "a-b.slice");
        for bad in ["/plain/path", "a:b", "a:b:c:d", "system.slice:p:", "nosuffix:p:x", "a--b.slice:p:x", "system.slice:p:x/y", "system.slice:p/q:x"] {
            let e = parse_path(Some(Path::new(bad)), "id").unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn expands_slices_like_runc() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [".slice", "a", "-a.slice", "a-.slice", "a--b.slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans_unit_directories() {
        let hs = super::super::parse_mountinfo(
            "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             34 30 0:30 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
        );
        let u = Unit { name: "brisk-x.scope".into(), slice: "a-b.slice".into() };
        let pid1 = "5:memory:/init.scope\n4:freezer:/\n0::/init.scope\n";
        let p = plan(&hs, &u, pid1).unwrap();
        assert_eq!(p[0].1, PathBuf::from("/sys/fs/cgroup/unified/a.slice/a-b.slice/brisk-x.scope"));
        assert_eq!(p[1].1, PathBuf::from("/sys/fs/cgroup/memory/a.slice/a-b.slice/brisk-x.scope"));
        assert_eq!(p[2].1, PathBuf::from("/sys/fs/cgroup/freezer/a.slice/a-b.slice/brisk-x.scope"));
    }

    fn names(props: &[Value]) -> Vec<String> {
        props
            .iter()
            .map(|p| match p {
                Value::Struct(f) => f[0].as_str().unwrap().to_string(),
                _ => panic!("not a property"),
            })
            .collect()
    }

    fn get<'a>(props: &'a [Value], name: &str) -> &'a Value {
        props
            .iter()
            .find_map(|p| match p {
                Value::Struct(f) if f[0].as_str() == Some(name) => match &f[1] {
                    Value::Variant(v) => Some(v.as_ref()),
                    _ => None,
                },
                _ => None,
            })
            .unwrap_or_else(|| panic!("no property {name}"))
    }

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n 10 misc\n136 pts\n\nBlock devices:\n  8 sd\n";

    #[test]
    fn scope_properties_in_runc_order() {
        let u = Unit { name: "brisk-x.scope".into(), slice: "system.slice".into() };
        let r = super::super::testutil::res(r#"{"memory":{"limit":67108864},"cpu":{"shares":512,"quota":50000,"period":100000},"pids":{"limit":99},"blockIO":{"weight":300}}"#);
        let rules = super::super::devices::full_list(&[], &[]).unwrap();
        let v1 = properties(&u, Some(42), false, &r, &rules, PROC_DEVICES, 252);
        assert_eq!(
            names(&v1),
            [
                "Description", "Slice", "Delegate", "PIDs", "MemoryAccounting", "CPUAccounting", "BlockIOAccounting", "TasksAccounting", "DefaultDependencies", "DevicePolicy", "DeviceAllow", "MemoryLimit", "CPUShares",
                "CPUQuotaPeriodUSec", "CPUQuotaPerSecUSec", "BlockIOWeight", "TasksMax"
            ]
        );
        assert_eq!(get(&v1, "PIDs"), &Value::Array("u".into(), vec![Value::U32(42)]));
        assert_eq!(get(&v1, "Delegate"), &Value::Bool(true));
        assert_eq!(get(&v1, "CPUQuotaPerSecUSec"), &Value::U64(500_000));
        assert_eq!(get(&v1, "TasksMax"), &Value::U64(99));
        let v2 = properties(&u, None, true, &r, &rules, PROC_DEVICES, 241);
        assert!(!names(&v2).contains(&"PIDs".to_string()));
        assert!(!names(&v2).contains(&"CPUQuotaPeriodUSec".to_string()), "systemd < 242 has no CPUQuotaPeriodUSec");
        assert_eq!(get(&v2, "CPUWeight"), &Value::U64(20), "512 shares → weight 1 + (510 * 9999) / 262142");
        assert_eq!(get(&v2, "MemoryMax"), &Value::U64(67108864));
        assert!(names(&v2).contains(&"IOAccounting".to_string()));
        let s = Unit { name: "a-b.slice".into(), slice: "a.slice".into() };
        let sp = properties(&s, None, true, &LinuxResources::default(), &rules, PROC_DEVICES, 252);
        assert_eq!(get(&sp, "Wants"), &Value::Array("s".into(), vec![Value::str("a.slice")]));
        assert!(!names(&sp).contains(&"Delegate".to_string()));
    }

    #[test]
    fn update_sends_only_what_changes() {
        let r = super::super::testutil::res(r#"{"pids":{"limit":5}}"#);
        let p = update_properties(true, &r, None, "", 252);
        assert_eq!(names(&p), ["TasksMax"]);
        let rules = super::super::devices::full_list(&[], &[]).unwrap();
        let p = update_properties(false, &LinuxResources::default(), Some(&rules), PROC_DEVICES, 252);
        assert_eq!(names(&p), ["DevicePolicy", "DeviceAllow"]);
    }

    #[test]
    fn pids_unlimited_and_quota_rounding() {
        let r = super::super::testutil::res(r#"{"pids":{"limit":-1},"cpu":{"quota":12345}}"#);
        let p = resource_properties(false, &r, 252);
        assert_eq!(get(&p, "TasksMax"), &Value::U64(u64::MAX));
        // 12345 µs per 100 ms = 123450 µs/s → rounded up to whole percent.
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), &Value::U64(130_000));
        assert_eq!(cpu_quota_per_sec(-1, 100_000), u64::MAX);
        assert_eq!(cpu_quota_per_sec(25_000, 50_000), 500_000);
    }

    #[test]
    fn device_allow_entries_like_runc() {
        let mut rules = super::super::devices::full_list(&[], &[]).unwrap();
        rules.push(Rule { allow: true, typ: 'b', major: None, minor: None, access: "m".into() });
        rules.push(Rule { allow: true, typ: 'b', major: Some(8), minor: None, access: "rw".into() });
        let p = device_properties(&rules, PROC_DEVICES);
        assert_eq!(get(&p, "DevicePolicy"), &Value::str("strict"));
        let Value::Array(_, entries) = get(&p, "DeviceAllow") else { panic!() };
        let pairs: Vec<(String, String)> = entries
            .iter()
            .map(|e| match e {
                Value::Struct(f) => (f[0].as_str().unwrap().to_string(), f[1].as_str().unwrap().to_string()),
                _ => panic!(),
            })
            .collect();
        for want in [("char-*", "m"), ("block-*", "m"), ("/dev/char/1:3", "rwm"), ("char-pts", "rwm"), ("/dev/char/10:200", "rwm"), ("block-sd", "rw")] {
            assert!(pairs.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {pairs:?}");
        }
        // A major without a /proc/devices entry has no systemd form: left to the fs write.
        let odd = vec![Rule { allow: false, typ: 'a', major: None, minor: None, access: "rwm".into() }, Rule { allow: true, typ: 'c', major: Some(250), minor: None, access: "r".into() }];
        let p = device_properties(&odd, PROC_DEVICES);
        assert_eq!(get(&p, "DeviceAllow"), &Value::Array("(ss)".into(), vec![]));
        // Allow-all is "auto"; a deny list is strict (deny all) until the fs write.
        let all = vec![Rule { allow: true, typ: 'a', major: None, minor: None, access: "rwm".into() }];
        assert_eq!(get(&device_properties(&all, ""), "DevicePolicy"), &Value::str("auto"));
        let deny = vec![Rule { allow: true, typ: 'a', major: None, minor: None, access: "rwm".into() }, Rule { allow: false, typ: 'c', major: Some(1), minor: Some(3), access: "rwm".into() }];
        assert_eq!(get(&device_properties(&deny, ""), "DevicePolicy"), &Value::str("strict"));
    }

    /// The whole StartTransientUnit call as bytes: the body signature is "ssa(sv)a(sa(sv))".
    #[test]
    fn start_transient_unit_message() {
        let props = vec![prop("Delegate", Value::Bool(true))];
        let body = vec![Value::str("u.scope"), Value::str("replace"), Value::Array("(sv)".into(), props), Value::Array("(sa(sv))".into(), vec![])];
        let m = Message::call(DEST, OBJ, MANAGER, "StartTransientUnit", body);
        let bytes = m.encode(3);
        let sig = b"\x08\x01g\x00\x10ssa(sv)a(sa(sv))\x00";
        assert!(bytes.windows(sig.len()).any(|w| w == sig));
        let mut want = Vec::new();
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(b"u.scope\0");
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(b"replace\0");
        // a(sv) at 24: length (32..52 = 20), padding, then the struct at 32 (8-aligned):
        // "Delegate" (32..45), variant signature "b" (45..48), true (48..52).
        want.extend_from_slice(&20u32.to_le_bytes());
        want.extend_from_slice(&[0; 4]);
        want.extend_from_slice(&8u32.to_le_bytes());
        want.extend_from_slice(b"Delegate\0");
        want.extend_from_slice(&[1, b'b', 0]);
        want.extend_from_slice(&1u32.to_le_bytes());
        // a(sa(sv)) at 52: length 0; its (empty) elements would start at 56, already 8-aligned.
        want.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(&bytes[bytes.len() - want.len()..], want.as_slice());
        assert_eq!(&bytes[4..8], &(want.len() as u32).to_le_bytes());
    }
}
