//! cgroups for a rootless container, with runc 1.1.5's rules (libcontainer/cgroups/fs and fs2 with
//! `Rootless` set):
//!
//! - A hierarchy where the user may not create the container's cgroup (EACCES, EPERM or EROFS) is
//!   left out of the placement, but only when the config names no `linux.cgroupsPath`: a path
//!   the user asked for must work (runc: `isIgnorableError(...) && Path == ""`).
//! - A limit whose controller was left out is refused, naming the field (runc's "cannot set
//!   memory limit: container could not join or create cgroup").
//! - Device rules are never written: the devices controller cannot be delegated to an ordinary
//!   user and runc skips it in rootless mode. Device access is bounded instead by the user
//!   namespace: only nodes the user can open on the host are bind-mounted in.
//! - Limits on hierarchies the user can write (a delegated subtree, e.g. a cgroupsPath below the
//!   user's own cgroup on a v2 host) are applied as for root.
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{apply, host_hierarchies, mkdir_recording, plan, v1, v2, CgroupError, Hierarchy, Mode, Placement};

/// Like [`super::create`] for a rootless caller (see the module docs). The systemd driver would
/// need the user's own systemd instance (runc talks to it over the user bus); brisk does not
/// support that yet and says so.
pub fn create(cgroups_path: Option<&Path>, id: &str, resources: Option<&LinuxResources>, use_systemd: bool) -> Result<Placement, CgroupError> {
    if use_systemd {
        return Err(CgroupError::Invalid { reason: "the systemd cgroup driver is not supported in rootless mode (it needs the user's systemd instance); use the default cgroupfs driver".into() });
    }
    let hs = host_hierarchies()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut planned = plan(&hs, cgroups_path, id, &own);
    let unified = !planned.is_empty() && planned.iter().all(|(h, _)| h.fstype == "cgroup2");
    let empty = LinuxResources::default();
    let r = resources.unwrap_or(&empty);
    if !unified && r.hugepage_limits().as_deref().unwrap_or_default().is_empty() {
        // Hybrid host: the cgroup2 mount holds no controller a limit here needs (brisk uses it
        // only for hugetlb where v1 has none), and joining it needs write access to the common
        // ancestor's cgroup.procs, the v2 root, which no ordinary user has even with the
        // container's own directory delegated. runc 1.1.5's fs driver never joins it either
        // (its rootless containers show "0::/").
        planned.retain(|(h, _)| h.fstype != "cgroup2");
    }
    let mut placement = Placement { dirs: Vec::new(), created: Vec::new(), systemd: None };
    let mut denied: Vec<(Hierarchy, PathBuf, std::io::Error)> = Vec::new();
    let res = (|| {
        for (h, dir) in planned {
            let made = mkdir_recording(&h, &dir, &mut placement.created).and_then(|()| if unified { v2::enable_controllers(&h.mount, &dir) } else { Ok(()) });
            match made {
                Ok(()) => placement.dirs.push((h, dir)),
                Err(CgroupError::Io { source, .. }) if cgroups_path.is_none() && is_permission(&source) => denied.push((h, dir, source)),
                Err(e) => return Err(e),
            }
        }
        for (field, controller) in needed(r, unified) {
            if let Some((_, dir, e)) = denied.iter().find(|(h, _, _)| if unified { h.fstype == "cgroup2" } else { h.controllers.iter().any(|c| c == controller) }) {
                return Err(CgroupError::Field {
                    field: field.to_string(),
                    reason: format!("cannot set this limit in rootless mode: the container could not create its cgroup {} ({e}); remove the limit, or delegate a cgroup to this user and name it in linux.cgroupsPath (runc refuses the same)", dir.display()),
                });
            }
        }
        if !placement.dirs.is_empty() {
            apply(&placement, r, Mode::Create)?;
        }
        // No devices::apply: see the module docs.
        Ok(())
    })();
    if let Err(e) = res {
        let _ = super::remove(&placement);
        return Err(e);
    }
    for (_, dir, e) in &denied {
        log::debug!("rootless: no cgroup {} ({e}); the config sets no limit there", dir.display());
    }
    Ok(placement)
}

/// runc's isIgnorableError: permission errors in the loose sense (EROFS is one for an ordinary
/// user: a read-only cgroupfs mount).
fn is_permission(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS))
}

/// (field, v1 controller) for each limit `r` sets, devices excepted. On a unified host every field
/// needs the one cgroup2 directory, so the controller does not matter there.
fn needed(r: &LinuxResources, unified: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if let Some(c) = r.cpu() {
        if c.cpus().as_deref().is_some_and(|v| !v.is_empty()) || c.mems().as_deref().is_some_and(|v| !v.is_empty()) {
            out.push(("cpu.cpus", "cpuset"));
        }
        if v1::cpu_is_set(c) {
            out.push(("cpu", "cpu"));
        }
    }
    if r.memory().as_ref().is_some_and(v1::memory_is_set) {
        out.push(("memory", "memory"));
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() != 0) {
        out.push(("pids.limit", "pids"));
    }
    if r.block_io().as_ref().is_some_and(v1::blkio_is_set) {
        out.push(("blockIO", "blkio"));
    }
    if r.hugepage_limits().as_deref().is_some_and(|h| !h.is_empty()) {
        out.push(("hugepageLimits", "hugetlb"));
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|id| id != 0) {
            out.push(("network.classID", "net_cls"));
        }
        if n.priorities().as_deref().is_some_and(|p| !p.is_empty()) {
            out.push(("network.priorities", "net_prio"));
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(("rdma", "rdma"));
    }
    if unified && r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        out.push(("unified", ""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_names_each_set_field() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({"memory": {"limit": 1048576}, "pids": {"limit": 10}, "devices": [{"allow": false, "access": "rwm"}]})).expect("resources");
        assert_eq!(needed(&r, false), vec![("memory", "memory"), ("pids.limit", "pids")]);
        assert!(needed(&LinuxResources::default(), false).is_empty());
    }

    #[test]
    fn permission_errors_are_the_ignorable_ones() {
        assert!(is_permission(&std::io::Error::from_raw_os_error(libc::EACCES)));
        assert!(is_permission(&std::io::Error::from_raw_os_error(libc::EROFS)));
        assert!(!is_permission(&std::io::Error::from_raw_os_error(libc::ENOENT)));
    }
}
