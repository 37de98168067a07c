//! `linux.resources` on cgroup v1 controllers (v1-only and hybrid hosts), written the way runc
//! 1.1.5's libcontainer/cgroups/fs does, in its subsystem order (cpuset, memory, cpu, pids, blkio,
//! hugetlb, net_cls, net_prio, rdma). Device rules are in [`super::devices`]. A field whose
//! controller is not mounted is an error naming the field (runc: "cannot set X limit: container
//! could not join or create cgroup").
//!
//! On a hybrid host the cgroup2 hierarchy also holds the container: `unified` keys and, when no v1
//! hugetlb hierarchy exists, `hugepageLimits` are written there (runc 1.1.5 refuses both on
//! hybrid; brisk honours them when the controller is enabled there and errors clearly otherwise).
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{field, read, write, write_field, CgroupError, Mode, Placement};

fn need<'a>(p: &'a Placement, controller: &str, name: &str) -> Result<&'a Path, CgroupError> {
    p.v1_dir(controller).ok_or_else(|| field(name, format!("no v1 {controller} hierarchy is mounted on this host")))
}

pub fn apply(p: &Placement, r: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    if let Some(c) = r.cpu() {
        if c.cpus().as_deref().is_some_and(|v| !v.is_empty()) || c.mems().as_deref().is_some_and(|v| !v.is_empty()) {
            cpuset(need(p, "cpuset", "cpu.cpus")?, c)?;
        }
    }
    if let Some(m) = r.memory() {
        if memory_is_set(m) {
            memory(need(p, "memory", "memory")?, m, mode)?;
        }
    }
    if let Some(c) = r.cpu() {
        if cpu_is_set(c) {
            cpu(need(p, "cpu", "cpu")?, c)?;
        }
    }
    if let Some(pids) = r.pids() {
        // runc: a limit of 0 means "not set"; negative means unlimited.
        if pids.limit() != 0 {
            let v = if pids.limit() > 0 { pids.limit().to_string() } else { "max".into() };
            write_field(need(p, "pids", "pids.limit")?, "pids.max", &v, "pids.limit")?;
        }
    }
    if let Some(b) = r.block_io() {
        if blkio_is_set(b) {
            blkio(need(p, "blkio", "blockIO")?, b)?;
        }
    }
    for (i, h) in r.hugepage_limits().as_deref().unwrap_or_default().iter().enumerate() {
        let name = format!("hugepageLimits[{i}]");
        match (p.v1_dir("hugetlb"), p.unified_dir()) {
            (Some(d), _) => {
                // runc 1.1.5 also sets the reservation limit where the kernel has one.
                let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size());
                if d.join(&rsvd).exists() {
                    write(&d.join(&rsvd), &h.limit().to_string())?;
                }
                write_field(d, &format!("hugetlb.{}.limit_in_bytes", h.page_size()), &h.limit().to_string(), &name)?;
            }
            (None, Some(d)) => super::v2::hugetlb(d, h, &name)?,
            _ => return Err(field(name, "no hugetlb controller on this host")),
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            // runc: a class id of 0 is "not set".
            if id != 0 {
                write_field(need(p, "net_cls", "network.classID")?, "net_cls.classid", &id.to_string(), "network.classID")?;
            }
        }
        for (i, pr) in n.priorities().as_deref().unwrap_or_default().iter().enumerate() {
            let name = format!("network.priorities[{i}]");
            write_field(need(p, "net_prio", &name)?, "net_prio.ifpriomap", &format!("{} {}", pr.name(), pr.priority()), &name)?;
        }
    }
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            let d = need(p, "rdma", "rdma")?;
            for line in super::v2::rdma_lines(rdma) {
                write_field(d, "rdma.max", &line, "rdma")?;
            }
        }
    }
    if let Some(u) = r.unified() {
        if !u.is_empty() {
            let d = p.unified_dir().ok_or_else(|| field("unified", "this host has no cgroup2 hierarchy (cgroup v1 only)"))?;
            super::v2::unified(d, u)?;
        }
    }
    Ok(())
}

fn cpuset(d: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        write_field(d, "cpuset.cpus", v, "cpu.cpus")?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        write_field(d, "cpuset.mems", v, "cpu.mems")?;
    }
    Ok(())
}

pub(crate) fn memory_is_set(m: &LinuxMemory) -> bool {
    m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() || m.swappiness().is_some() || m.disable_oom_killer() == Some(true) || m.use_hierarchy().is_some()
}

/// runc's setMemoryAndSwap + Set (fs/memory.go).
fn memory(d: &Path, m: &LinuxMemory, mode: Mode) -> Result<(), CgroupError> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if mode == Mode::Update && m.check_before_update() == Some(true) && limit > 0 {
        let usage: i64 = read(&d.join("memory.usage_in_bytes"))?.trim().parse().unwrap_or(0);
        if limit < usage {
            return Err(field("memory.limit", format!("checkBeforeUpdate: new limit {limit} is below the current usage {usage}")));
        }
    }
    // runc: an unlimited memory with swap unset means unlimited swap too, where swap accounting exists.
    if limit == -1 && swap == 0 && d.join("memory.memsw.limit_in_bytes").exists() {
        swap = -1;
    }
    let set_memory = || -> Result<(), CgroupError> {
        if limit == 0 {
            return Ok(());
        }
        match write_field(d, "memory.limit_in_bytes", &limit.to_string(), "memory.limit") {
            Err(CgroupError::FieldWrite { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
                let usage = read(&d.join("memory.usage_in_bytes")).unwrap_or_default();
                let max = read(&d.join("memory.max_usage_in_bytes")).unwrap_or_default();
                Err(field("memory.limit", format!("unable to set memory limit to {limit} (current usage: {}, peak usage: {})", usage.trim(), max.trim())))
            }
            other => other,
        }
    };
    let set_swap = || -> Result<(), CgroupError> {
        if swap == 0 {
            return Ok(());
        }
        write_field(d, "memory.memsw.limit_in_bytes", &swap.to_string(), "memory.swap")
    };
    // The kernel requires memsw >= memory at every step: when raising, swap goes first.
    let mut done = false;
    if limit != 0 && swap != 0 {
        let cur: u64 = read(&d.join("memory.limit_in_bytes"))?.trim().parse().unwrap_or(u64::MAX);
        if swap == -1 || cur < swap as u64 {
            set_swap()?;
            set_memory()?;
            done = true;
        }
    }
    if !done {
        set_memory()?;
        set_swap()?;
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        write_field(d, "memory.soft_limit_in_bytes", &v.to_string(), "memory.reservation")?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_field(d, "memory.oom_control", "1", "memory.disableOOMKiller")?;
    }
    if let Some(v) = m.swappiness() {
        // config-linux.md: 0-100; validate_resources refused anything else.
        write_field(d, "memory.swappiness", &v.to_string(), "memory.swappiness")?;
    }
    if let Some(h) = m.use_hierarchy() {
        // Kernels since 5.x keep hierarchy always on and refuse 0: that refusal is the error.
        write_field(d, "memory.use_hierarchy", if h { "1" } else { "0" }, "memory.useHierarchy")?;
    }
    Ok(())
}

pub(crate) fn cpu_is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some()
}

/// runc's CpuGroup.Set (fs/cpu.go), plus burst (cpu.cfs_burst_us) and idle (cpu.idle), which
/// runc 1.2 added for v1 and the kernel offers on this interface too.
fn cpu(d: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    // Realtime first: runc sets it in Apply, before any task joins (an RT task cannot join a group
    // without runtime).
    if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
        write_field(d, "cpu.rt_period_us", &v.to_string(), "cpu.realtimePeriod")?;
    }
    if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
        write_field(d, "cpu.rt_runtime_us", &v.to_string(), "cpu.realtimeRuntime")?;
    }
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        write_field(d, "cpu.shares", &shares.to_string(), "cpu.shares")?;
        // The kernel clamps silently; runc reads back and reports the bound.
        let got: u64 = read(&d.join("cpu.shares"))?.trim().parse().unwrap_or(shares);
        if shares > got {
            return Err(field("cpu.shares", format!("the maximum allowed cpu-shares is {got}")));
        } else if shares < got {
            return Err(field("cpu.shares", format!("the minimum allowed cpu-shares is {got}")));
        }
    }
    let quota = c.quota().unwrap_or(0);
    let mut period_pending = None;
    if let Some(period) = c.period().filter(|v| *v != 0) {
        match write_field(d, "cpu.cfs_period_us", &period.to_string(), "cpu.period") {
            Ok(()) => {}
            // A period shorter than the current one can be refused (old quota / new period above
            // the parent's); with a quota coming, retry after it, as runc does.
            Err(CgroupError::FieldWrite { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 => period_pending = Some(period),
            Err(e) => return Err(e),
        }
    }
    if quota != 0 {
        write_field(d, "cpu.cfs_quota_us", &quota.to_string(), "cpu.quota")?;
        if let Some(period) = period_pending {
            write_field(d, "cpu.cfs_period_us", &period.to_string(), "cpu.period")?;
        }
    }
    if let Some(b) = c.burst() {
        write_field(d, "cpu.cfs_burst_us", &b.to_string(), "cpu.burst")?;
    }
    if let Some(i) = c.idle() {
        write_field(d, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    Ok(())
}

pub(crate) fn blkio_is_set(b: &LinuxBlockIo) -> bool {
    let some = |l: &Option<Vec<_>>| l.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty());
    b.weight().is_some_and(|v| v != 0)
        || b.leaf_weight().is_some_and(|v| v != 0)
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
        || some(b.throttle_read_bps_device())
        || some(b.throttle_write_bps_device())
        || some(b.throttle_read_iops_device())
        || some(b.throttle_write_iops_device())
}

/// runc's BlkioGroup.Set (fs/blkio.go): the CFQ files when present, else BFQ's.
fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let (weight, weight_device) = if d.join("blkio.weight").exists() { ("blkio.weight", "blkio.weight_device") } else { ("blkio.bfq.weight", "blkio.bfq.weight_device") };
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        write_field(d, weight, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight().filter(|v| *v != 0) {
        write_field(d, "blkio.leaf_weight", &w.to_string(), "blockIO.leafWeight")?;
    }
    for (i, wd) in b.weight_device().as_deref().unwrap_or_default().iter().enumerate() {
        if let Some(w) = wd.weight().filter(|v| *v != 0) {
            write_field(d, weight_device, &format!("{}:{} {w}", wd.major(), wd.minor()), &format!("blockIO.weightDevice[{i}].weight"))?;
        }
        if let Some(w) = wd.leaf_weight().filter(|v| *v != 0) {
            write_field(d, "blkio.leaf_weight_device", &format!("{}:{} {w}", wd.major(), wd.minor()), &format!("blockIO.weightDevice[{i}].leafWeight"))?;
        }
    }
    let throttles = [
        ("blkio.throttle.read_bps_device", "blockIO.throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", "blockIO.throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", "blockIO.throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", "blockIO.throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    for (file, name, list) in throttles {
        for (i, t) in list.as_deref().unwrap_or_default().iter().enumerate() {
            write_field(d, file, &format!("{}:{} {}", t.major(), t.minor(), t.rate()), &format!("{name}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testutil::{dir, get, res};
    use super::*;

    #[test]
    fn memory_raise_writes_swap_first_and_lower_memory_first() {
        let d = dir(&[("memory.limit_in_bytes", "1000"), ("memory.memsw.limit_in_bytes", "1000"), ("memory.soft_limit_in_bytes", ""), ("memory.swappiness", ""), ("memory.oom_control", "")]);
        let r = res(r#"{"memory":{"limit":2000,"swap":3000,"reservation":500,"swappiness":10,"disableOOMKiller":true}}"#);
        memory(d.path(), r.memory().as_ref().unwrap(), Mode::Create).unwrap();
        assert_eq!(get(d.path(), "memory.limit_in_bytes"), "2000");
        assert_eq!(get(d.path(), "memory.memsw.limit_in_bytes"), "3000");
        assert_eq!(get(d.path(), "memory.soft_limit_in_bytes"), "500");
        assert_eq!(get(d.path(), "memory.swappiness"), "10");
        assert_eq!(get(d.path(), "memory.oom_control"), "1");
    }

    #[test]
    fn unlimited_memory_means_unlimited_swap() {
        let d = dir(&[("memory.limit_in_bytes", "1000"), ("memory.memsw.limit_in_bytes", "1000")]);
        memory(d.path(), res(r#"{"memory":{"limit":-1}}"#).memory().as_ref().unwrap(), Mode::Create).unwrap();
        assert_eq!(get(d.path(), "memory.limit_in_bytes"), "-1");
        assert_eq!(get(d.path(), "memory.memsw.limit_in_bytes"), "-1");
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let d = dir(&[("memory.limit_in_bytes", "9000"), ("memory.usage_in_bytes", "5000")]);
        let r = res(r#"{"memory":{"limit":4000,"checkBeforeUpdate":true}}"#);
        let e = memory(d.path(), r.memory().as_ref().unwrap(), Mode::Update).unwrap_err();
        assert!(e.to_string().contains("memory.limit"), "{e}");
        assert_eq!(get(d.path(), "memory.limit_in_bytes"), "9000");
    }

    #[test]
    fn cpu_fields_and_missing_burst_file() {
        let d = dir(&[("cpu.shares", ""), ("cpu.cfs_period_us", ""), ("cpu.cfs_quota_us", ""), ("cpu.rt_period_us", ""), ("cpu.rt_runtime_us", ""), ("cpu.idle", "")]);
        let r = res(r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"realtimePeriod":1000000,"realtimeRuntime":0,"idle":1}}"#);
        cpu(d.path(), r.cpu().as_ref().unwrap()).unwrap();
        assert_eq!(get(d.path(), "cpu.shares"), "512");
        assert_eq!(get(d.path(), "cpu.cfs_quota_us"), "50000");
        assert_eq!(get(d.path(), "cpu.cfs_period_us"), "100000");
        assert_eq!(get(d.path(), "cpu.rt_period_us"), "1000000");
        assert_eq!(get(d.path(), "cpu.rt_runtime_us"), "");
        assert_eq!(get(d.path(), "cpu.idle"), "1");
        let e = cpu(d.path(), res(r#"{"cpu":{"burst":1000}}"#).cpu().as_ref().unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("linux.resources.cpu.burst:"), "{e}");
    }

    #[test]
    fn blkio_uses_bfq_files_without_cfq() {
        let d = dir(&[("blkio.bfq.weight", ""), ("blkio.bfq.weight_device", ""), ("blkio.throttle.read_bps_device", "")]);
        let r = res(r#"{"blockIO":{"weight":300,"weightDevice":[{"major":8,"minor":0,"weight":200}],"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#);
        blkio(d.path(), r.block_io().as_ref().unwrap()).unwrap();
        assert_eq!(get(d.path(), "blkio.bfq.weight"), "300");
        assert_eq!(get(d.path(), "blkio.bfq.weight_device"), "8:0 200");
        assert_eq!(get(d.path(), "blkio.throttle.read_bps_device"), "8:0 1048576");
        let e = blkio(d.path(), res(r#"{"blockIO":{"leafWeight":300}}"#).block_io().as_ref().unwrap()).unwrap_err();
        assert!(e.to_string().contains("blockIO.leafWeight"), "{e}");
    }

    #[test]
    fn missing_controller_names_the_field() {
        let p = Placement::default();
        let e = apply(&p, &res(r#"{"network":{"classID":7}}"#), Mode::Create).unwrap_err();
        assert!(e.to_string().contains("network.classID") && e.to_string().contains("net_cls"), "{e}");
        let e = apply(&p, &res(r#"{"unified":{"memory.high":"1"}}"#), Mode::Create).unwrap_err();
        assert!(e.to_string().contains("unified"), "{e}");
        // Zero values are "unset" in runc: nothing to write, no error.
        apply(&p, &res(r#"{"pids":{"limit":0},"network":{"classID":0}}"#), Mode::Create).unwrap();
    }
}
