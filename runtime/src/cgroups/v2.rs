//! `linux.resources` on the cgroup v2 interface (pure v2 hosts), with runc 1.1.5's conversions
//! (libcontainer/cgroups/fs2 and utils.go): cpu.shares → cpu.weight, blockIO.weight → io.weight
//! (or io.bfq.weight), memory.swap (memory+swap in the spec) → memory.swap.max (swap only),
//! quota/period → cpu.max. Fields v2 has no interface for (swappiness, disableOOMKiller, realtime,
//! network, leafWeight, per-device weights without BFQ) are errors naming the field, where runc
//! ignores some of them silently. `unified` keys are written last, verbatim, so they win.
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma, LinuxResources};

use super::{field, io_err, read, write, write_field, CgroupError, Mode};

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]; 0 is "unset".
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]; 0 is "unset".
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

/// runc's ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap, v2's is swap alone.
pub fn memory_swap_to_v2(swap: i64, memory: i64) -> Result<i64, String> {
    // Like cgroup v1: unlimited memory with swap unset means both unlimited.
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err("unable to set swap limit without memory limit".into());
    }
    if memory < 0 {
        return Err(format!("invalid memory value: {memory}"));
    }
    if swap < memory {
        return Err("memory+swap limit should be >= memory limit".into());
    }
    Ok(swap - memory)
}

/// runc's numToStr: 0 → unset, -1 → "max".
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

pub fn apply(d: &Path, r: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    if let Some(c) = r.cpu() {
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write_field(d, "cpuset.cpus", v, "cpu.cpus")?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write_field(d, "cpuset.mems", v, "cpu.mems")?;
        }
    }
    if let Some(m) = r.memory() {
        memory(d, m, mode)?;
    }
    if let Some(c) = r.cpu() {
        cpu(d, c)?;
    }
    if let Some(pids) = r.pids() {
        if pids.limit() != 0 {
            let v = if pids.limit() > 0 { pids.limit().to_string() } else { "max".into() };
            write_field(d, "pids.max", &v, "pids.limit")?;
        }
    }
    if let Some(b) = r.block_io() {
        io(d, b)?;
    }
    for (i, h) in r.hugepage_limits().as_deref().unwrap_or_default().iter().enumerate() {
        hugetlb(d, h, &format!("hugepageLimits[{i}]"))?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|c| c != 0) {
            return Err(field("network.classID", "net_cls does not exist on cgroup v2"));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(field("network.priorities", "net_prio does not exist on cgroup v2"));
        }
    }
    if let Some(rdma) = r.rdma() {
        for line in rdma_lines(rdma) {
            write_field(d, "rdma.max", &line, "rdma")?;
        }
    }
    if let Some(u) = r.unified() {
        unified(d, u)?;
    }
    Ok(())
}

fn memory(d: &Path, m: &LinuxMemory, mode: Mode) -> Result<(), CgroupError> {
    if m.swappiness().is_some() {
        return Err(field("memory.swappiness", "cgroup v2 has no per-cgroup swappiness"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(field("memory.disableOOMKiller", "cgroup v2 cannot disable the OOM killer per cgroup"));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(field("memory.useHierarchy", "cgroup v2 is always hierarchical"));
    }
    let limit = m.limit().unwrap_or(0);
    let swap_spec = m.swap().unwrap_or(0);
    if limit == 0 && swap_spec == 0 && m.reservation().unwrap_or(0) == 0 {
        return Ok(());
    }
    if mode == Mode::Update && m.check_before_update() == Some(true) && limit > 0 {
        let usage: i64 = read(&d.join("memory.current"))?.trim().parse().unwrap_or(0);
        if limit < usage {
            return Err(field("memory.limit", format!("checkBeforeUpdate: new limit {limit} is below the current usage {usage}")));
        }
    }
    // On update the swap conversion needs the memory limit: take the current one if not given.
    let mem_for_swap = if limit == 0 && swap_spec > 0 {
        match read(&d.join("memory.max"))?.trim() {
            "max" => -1,
            v => v.parse().unwrap_or(0),
        }
    } else {
        limit
    };
    let swap = memory_swap_to_v2(swap_spec, mem_for_swap).map_err(|e| field("memory.swap", e))?;
    let mut swap_str = num(swap);
    if swap_str.is_none() && swap == 0 && swap_spec > 0 {
        // memory == memory+swap: no swap at all.
        swap_str = Some("0".into());
    }
    if let Some(s) = swap_str {
        let path = d.join("memory.swap.max");
        if path.exists() {
            write(&path, &s)?;
        } else if s != "max" && s != "0" {
            // Without swap accounting, "no swap" and "unlimited swap" hold anyway (runc ignores those).
            return Err(field("memory.swap", format!("{} does not exist (swap accounting is off)", path.display())));
        }
    }
    if let Some(v) = num(limit) {
        write_field(d, "memory.max", &v, "memory.limit")?;
    }
    if let Some(v) = num(m.reservation().unwrap_or(0)) {
        write_field(d, "memory.low", &v, "memory.reservation")?;
    }
    Ok(())
}

fn cpu(d: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(field("cpu.realtimeRuntime", "cgroup v2 has no realtime scheduling controller"));
    }
    let shares = c.shares().unwrap_or(0);
    if shares != 0 && !(2..=262144).contains(&shares) {
        // The v1 kernel clamps and runc reports the bound; the conversion is only defined inside it.
        return Err(field("cpu.shares", format!("{shares} is outside the cpu-shares range [2, 262144]")));
    }
    let w = cpu_shares_to_weight(shares);
    if w != 0 {
        write_field(d, "cpu.weight", &w.to_string(), "cpu.shares")?;
    }
    if let Some(i) = c.idle() {
        write_field(d, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut s = if quota > 0 { quota.to_string() } else { "max".to_string() };
        // Without a period the kernel keeps the current one.
        if period != 0 {
            s = format!("{s} {period}");
        }
        write_field(d, "cpu.max", &s, "cpu.quota")?;
    }
    if let Some(b) = c.burst() {
        write_field(d, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
    }
    Ok(())
}

fn io(d: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    if b.leaf_weight().is_some_and(|v| v != 0) {
        return Err(field("blockIO.leafWeight", "cgroup v2 has no leaf weight"));
    }
    let bfq = d.join("io.bfq.weight");
    let has_bfq = bfq.exists();
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        if has_bfq {
            write(&bfq, &w.to_string())?;
        } else {
            write_field(d, "io.weight", &blkio_weight_to_io_weight(w).to_string(), "blockIO.weight")?;
        }
    }
    for (i, wd) in b.weight_device().as_deref().unwrap_or_default().iter().enumerate() {
        let name = format!("blockIO.weightDevice[{i}]");
        if wd.leaf_weight().is_some_and(|v| v != 0) {
            return Err(field(format!("{name}.leafWeight"), "cgroup v2 has no leaf weight"));
        }
        if let Some(w) = wd.weight().filter(|v| *v != 0) {
            // Only BFQ takes per-device weights on v2.
            if !has_bfq {
                return Err(field(name, format!("{} does not exist (per-device weights need the BFQ I/O scheduler)", bfq.display())));
            }
            write(&bfq, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
    }
    let throttles = [
        ("rbps", "blockIO.throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("wbps", "blockIO.throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("riops", "blockIO.throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("wiops", "blockIO.throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    for (key, name, list) in throttles {
        for (i, t) in list.as_deref().unwrap_or_default().iter().enumerate() {
            write_field(d, "io.max", &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()), &format!("{name}[{i}]"))?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.max` (and the reservation limit where the kernel has it, as runc 1.1.5 does).
pub fn hugetlb(d: &Path, h: &LinuxHugepageLimit, name: &str) -> Result<(), CgroupError> {
    let v = if h.limit() < 0 { "max".to_string() } else { h.limit().to_string() };
    let rsvd = d.join(format!("hugetlb.{}.rsvd.max", h.page_size()));
    if rsvd.exists() {
        write(&rsvd, &v)?;
    }
    write_field(d, &format!("hugetlb.{}.max", h.page_size()), &v, name)
}

/// rdma.max lines (`<device> hca_handle=N hca_object=M`), sorted by device for a stable order.
pub fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Vec<String> {
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    devs.into_iter()
        .filter_map(|(dev, l)| {
            let mut parts = Vec::new();
            if let Some(h) = l.hca_handles() {
                parts.push(format!("hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                parts.push(format!("hca_object={o}"));
            }
            (!parts.is_empty()).then(|| format!("{dev} {}", parts.join(" ")))
        })
        .collect()
}

/// `unified`: each key is a file in the container's cgroup2 directory, written verbatim. A key
/// whose controller is not enabled there is an error naming the key and the controller.
pub fn unified(d: &Path, u: &HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let name = format!("unified[{k:?}]");
        if k.contains('/') {
            return Err(field(name, "must be a file name (no slashes)"));
        }
        let path = d.join(k);
        if !path.exists() {
            let ctrl = k.split('.').next().unwrap_or_default();
            let available = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
            let reason = if ctrl != "cgroup" && !available.split_whitespace().any(|c| c == ctrl) {
                format!("controller {ctrl:?} is not available in {} (available: {:?})", d.display(), available.trim())
            } else {
                format!("{} does not exist", path.display())
            };
            return Err(field(name, reason));
        }
        write(&path, v)?;
    }
    Ok(())
}

/// Enable, in each ancestor of `dir` below and including the hierarchy root `mount`, every
/// controller it offers, so the container's directory gets their files (runc fs2
/// CreateCgroupPath does the same; failures are tolerated there too: a controller that cannot be
/// enabled surfaces as a missing file, named, when a limit needs it).
pub fn enable_controllers(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(mount) else { return Ok(()) };
    let mut cur = mount.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps {
        if !cur.exists() {
            break;
        }
        let offered = fs::read_to_string(cur.join("cgroup.controllers")).map_err(io_err("read", &cur.join("cgroup.controllers")))?;
        let enabled = fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
        for ctrl in offered.split_whitespace() {
            if !enabled.split_whitespace().any(|e| e == ctrl) {
                let _ = write(&cur.join("cgroup.subtree_control"), &format!("+{ctrl}"));
            }
        }
        cur = cur.join(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testutil::{dir, get, res};
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(memory_swap_to_v2(0, -1), Ok(-1));
        assert_eq!(memory_swap_to_v2(300, 100), Ok(200));
        assert_eq!(memory_swap_to_v2(100, 100), Ok(0));
        assert!(memory_swap_to_v2(50, 100).is_err());
        assert!(memory_swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn writes_v2_files() {
        let d = dir(&[
            ("memory.max", "max"), ("memory.swap.max", "max"), ("memory.low", "0"), ("cpu.weight", "100"), ("cpu.max", "max 100000"),
            ("cpu.max.burst", "0"), ("cpu.idle", "0"), ("pids.max", "max"), ("io.weight", "default 100"), ("io.max", ""), ("cpuset.cpus", ""),
            ("hugetlb.2MB.max", "max"), ("memory.high", "max"),
        ]);
        let r = res(r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":4096},
            "cpu":{"shares":1024,"quota":20000,"burst":1000,"idle":0,"cpus":"0"},
            "pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":10}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "unified":{"memory.high":"2000000"}}"#);
        apply(d.path(), &r, Mode::Create).unwrap();
        assert_eq!(get(d.path(), "memory.max"), "1048576");
        assert_eq!(get(d.path(), "memory.swap.max"), "1048576");
        assert_eq!(get(d.path(), "memory.low"), "4096");
        assert_eq!(get(d.path(), "cpu.weight"), "39");
        assert_eq!(get(d.path(), "cpu.max"), "20000");
        assert_eq!(get(d.path(), "cpu.max.burst"), "1000");
        assert_eq!(get(d.path(), "cpu.idle"), "0");
        assert_eq!(get(d.path(), "cpuset.cpus"), "0");
        assert_eq!(get(d.path(), "pids.max"), "max");
        assert_eq!(get(d.path(), "io.weight"), "4950");
        assert_eq!(get(d.path(), "io.max"), "8:0 wiops=10");
        assert_eq!(get(d.path(), "hugetlb.2MB.max"), "4194304");
        assert_eq!(get(d.path(), "memory.high"), "2000000");
    }

    #[test]
    fn update_swap_uses_the_current_memory_limit() {
        let d = dir(&[("memory.max", "1000"), ("memory.swap.max", "0")]);
        apply(d.path(), &res(r#"{"memory":{"swap":3000}}"#), Mode::Update).unwrap();
        assert_eq!(get(d.path(), "memory.swap.max"), "2000");
        assert_eq!(get(d.path(), "memory.max"), "1000");
    }

    #[test]
    fn v1_only_fields_are_named_errors() {
        let d = dir(&[("cgroup.controllers", "cpu memory pids")]);
        for (json, want) in [
            (r#"{"memory":{"swappiness":10}}"#, "memory.swappiness"),
            (r#"{"memory":{"disableOOMKiller":true}}"#, "memory.disableOOMKiller"),
            (r#"{"cpu":{"realtimeRuntime":100}}"#, "cpu.realtimeRuntime"),
            (r#"{"cpu":{"shares":1}}"#, "cpu.shares"),
            (r#"{"network":{"classID":3}}"#, "network.classID"),
            (r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":100}]}}"#, "blockIO.weightDevice[0]"),
            (r#"{"unified":{"hugetlb.2MB.max":"1"}}"#, "controller \"hugetlb\" is not available"),
        ] {
            let e = apply(d.path(), &res(json), Mode::Create).unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn rdma_lines_format() {
        let r = res(r#"{"rdma":{"mlx5_1":{"hcaObjects":3},"mlx5_0":{"hcaHandles":2,"hcaObjects":5}}}"#);
        assert_eq!(rdma_lines(r.rdma().as_ref().unwrap()), vec!["mlx5_0 hca_handle=2 hca_object=5", "mlx5_1 hca_object=3"]);
    }

    #[test]
    fn enables_controllers_in_ancestors_only() {
        let root = dir(&[("cgroup.controllers", "cpu memory"), ("cgroup.subtree_control", "")]);
        let a = root.path().join("a");
        fs::create_dir(&a).unwrap();
        fs::write(a.join("cgroup.controllers"), "cpu memory").unwrap();
        fs::write(a.join("cgroup.subtree_control"), "").unwrap();
        enable_controllers(root.path(), &a.join("c")).unwrap();
        // A plain file records only the last write; the real file accumulates "+cpu +memory".
        assert_eq!(get(root.path(), "cgroup.subtree_control"), "+memory");
        assert_eq!(get(&a, "cgroup.subtree_control"), "+memory");
    }
}
