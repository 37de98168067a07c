//! Usage figures of a container's cgroups, from the v1 controllers or the v2 files.
//!
//! [`Stats::version`] says which interface they came from, so the shim answers with the metrics type
//! containerd expects on this host (`io.containerd.cgroups.v1.Metrics` on v1/hybrid,
//! `io.containerd.cgroups.v2.Metrics` on v2; containerd's collector fails on a mismatch). Typed
//! fields hold what both types share, in the v1 units (bytes, nanoseconds); the `raw` maps keep
//! every key of memory.stat / cpu.stat / memory.events verbatim for the rest of each type's fields.
//!
//! Filling containerd's types from a [`Stats`] `s`:
//!
//! `io.containerd.cgroups.v1.Metrics` (`s.version == V1`):
//! - `pids {current, limit}` ← `s.pids`
//! - `cpu.usage {total, kernel, user, per_cpu}` ← `s.cpu.usage_total/usage_kernel/usage_user/per_cpu`;
//!   `cpu.throttling {periods, throttled_periods, throttled_time}` ← `s.cpu.*` of the same names
//! - `memory.usage {limit, usage, max, failcnt}` ← `s.memory.limit/usage/max_usage/failcnt`;
//!   `memory.swap` ← `swap_limit/swap_usage/swap_max_usage/swap_failcnt`; `memory.kernel` ← `kernel_*`;
//!   `cache, rss, rss_huge, mapped_file, dirty, writeback, pg*, *_anon, *_file, unevictable,
//!   hierarchical_memory_limit, total_*` ← `s.memory.raw[name]` (`hierarchical_swap_limit` ←
//!   `raw["hierarchical_memsw_limit"]`)
//! - `blkio.io_service_bytes_recursive / io_serviced_recursive` ← `s.blkio.*` (op, major, minor, value)
//! - `hugetlb[] {pagesize, usage, max, failcnt}` ← `s.hugetlb[] {pagesize, usage, max_usage, failcnt}`
//!
//! `io.containerd.cgroups.v2.Metrics` (`s.version == V2`):
//! - `pids {current, limit}` ← `s.pids`
//! - `cpu {usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec}` ←
//!   `s.cpu.raw[name]`
//! - `memory {usage, usage_limit, swap_usage, swap_limit}` ← `s.memory.usage/limit/swap_usage/swap_limit`;
//!   every other field (anon, file, kernel_stack, slab, sock, shmem, file_mapped, ..., pgfault,
//!   pgmajfault, workingset_*, thp_*) ← `s.memory.raw[name]`
//! - `memory_events {low, high, max, oom, oom_kill}` ← `s.memory.events[name]`
//! - `io.usage[] {major, minor, rbytes, wbytes, rios, wios}` ← `s.blkio.io[]`
//! - `hugetlb[] {current, max, pagesize}` ← `s.hugetlb[] {usage, limit, pagesize}`
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::{CgroupError, Placement};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum CgroupVersion {
    /// v1 controllers (also hybrid hosts): fill `io.containerd.cgroups.v1.Metrics`.
    #[default]
    V1,
    /// Pure cgroup v2: fill `io.containerd.cgroups.v2.Metrics`.
    V2,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub version: CgroupVersion,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// One entry per huge page size the kernel offers.
    pub hugetlb: Vec<HugetlbStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// Total CPU time, ns (v1 cpuacct.usage; v2 cpu.stat usage_usec × 1000).
    pub usage_total: u64,
    /// User / kernel time, ns (v1 cpuacct.stat ticks converted; v2 user_usec / system_usec).
    pub usage_user: u64,
    pub usage_kernel: u64,
    /// Per-CPU total, ns (v1 only; empty on v2).
    pub per_cpu: Vec<u64>,
    /// CFS throttling: periods, throttled periods, throttled time in ns.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    /// v2 cpu.stat verbatim (usec units); empty on v1.
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Current usage in bytes (v1 memory.usage_in_bytes; v2 memory.current).
    pub usage: u64,
    /// Peak usage (v1 max_usage_in_bytes; v2 memory.peak where the kernel has it, else 0).
    pub max_usage: u64,
    /// The limit; `u64::MAX` for none.
    pub limit: u64,
    /// Times the limit was hit (v1 memory.failcnt; v2 memory.events "max").
    pub failcnt: u64,
    /// Page cache (v1 memory.stat "cache"; v2 "file").
    pub cache: u64,
    /// Anonymous memory (v1 "rss"; v2 "anon").
    pub rss: u64,
    /// v1: memory+swap (memory.memsw.*), as containerd's v1 Metrics report it. v2: swap alone
    /// (memory.swap.current / memory.swap.max).
    pub swap_usage: u64,
    pub swap_limit: u64,
    pub swap_max_usage: u64,
    pub swap_failcnt: u64,
    /// v1 kernel memory (memory.kmem.*); zero on v2.
    pub kernel_usage: u64,
    pub kernel_max_usage: u64,
    pub kernel_limit: u64,
    pub kernel_failcnt: u64,
    /// memory.stat verbatim.
    pub raw: BTreeMap<String, u64>,
    /// v2 memory.events verbatim (low, high, max, oom, oom_kill); v1: oom_kill from memory.oom_control.
    pub events: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// 0 for no limit ("max").
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// v1 operation ("Read", "Write", "Sync", "Async", "Discard", "Total"); v2: "Read"/"Write".
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioStats {
    /// v1 (io_service_bytes_recursive) and, derived, v2.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// v2 io.stat as is; empty on v1.
    pub io: Vec<IoEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HugetlbStats {
    pub pagesize: String,
    pub usage: u64,
    /// v1 max_usage_in_bytes; v2 has no peak (0).
    pub max_usage: u64,
    /// v1 failcnt; v2 `hugetlb.<size>.events` "max".
    pub failcnt: u64,
    /// The limit (u64::MAX for none).
    pub limit: u64,
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, cgroup.events, cpuacct.stat).
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?;
            Some((k.to_string(), parse_u64(v)?))
        })
        .collect()
}

/// A single number; "max" is `u64::MAX`.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    // v1 writes -1 as an unlimited reading in a few files.
    s.parse::<u64>().ok().or_else(|| s.parse::<i64>().ok().map(|v| if v < 0 { u64::MAX } else { v as u64 }))
}

/// v1 blkio "8:0 Read 4096" lines ("Total N" lines are skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (maj, min) = it.next()?.split_once(':')?;
            let op = it.next()?.to_string();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry { major: maj.parse().ok()?, minor: min.parse().ok()?, op, value })
        })
        .collect()
}

/// v2 io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" lines.
pub fn parse_io_stat(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (maj, min) = it.next()?.split_once(':')?;
            let mut e = IoEntry { major: maj.parse().ok()?, minor: min.parse().ok()?, ..Default::default() };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else { continue };
                let v = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}

fn read_opt(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn num_file(d: &Path, f: &str) -> u64 {
    read_opt(&d.join(f)).and_then(|s| parse_u64(&s)).unwrap_or(0)
}

/// Clock ticks per second, for cpuacct.stat (USER_HZ; 100 on every Linux ABI brisk runs on).
const USER_HZ: u64 = 100;

/// Read the stats of a placement. A controller that is not there leaves its section zero.
pub fn read(p: &Placement) -> Result<Stats, CgroupError> {
    if p.is_unified() {
        let d = p.unified_dir().ok_or_else(|| CgroupError::Invalid { reason: "no cgroup2 directory in the placement".into() })?;
        return Ok(read_v2(d));
    }
    let mut s = Stats { version: CgroupVersion::V1, ..Default::default() };
    if let Some(d) = p.v1_dir("cpuacct") {
        s.cpu.usage_total = num_file(d, "cpuacct.usage");
        s.cpu.per_cpu = read_opt(&d.join("cpuacct.usage_percpu")).map(|t| t.split_whitespace().filter_map(|v| v.parse().ok()).collect()).unwrap_or_default();
        let st = flat_keyed(&read_opt(&d.join("cpuacct.stat")).unwrap_or_default());
        let ns = 1_000_000_000 / USER_HZ;
        s.cpu.usage_user = st.get("user").copied().unwrap_or(0) * ns;
        s.cpu.usage_kernel = st.get("system").copied().unwrap_or(0) * ns;
    }
    if let Some(d) = p.v1_dir("cpu") {
        let st = flat_keyed(&read_opt(&d.join("cpu.stat")).unwrap_or_default());
        s.cpu.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = p.v1_dir("memory") {
        let m = &mut s.memory;
        m.usage = num_file(d, "memory.usage_in_bytes");
        m.max_usage = num_file(d, "memory.max_usage_in_bytes");
        m.limit = num_file(d, "memory.limit_in_bytes");
        m.failcnt = num_file(d, "memory.failcnt");
        m.swap_usage = num_file(d, "memory.memsw.usage_in_bytes");
        m.swap_max_usage = num_file(d, "memory.memsw.max_usage_in_bytes");
        m.swap_limit = num_file(d, "memory.memsw.limit_in_bytes");
        m.swap_failcnt = num_file(d, "memory.memsw.failcnt");
        m.kernel_usage = num_file(d, "memory.kmem.usage_in_bytes");
        m.kernel_max_usage = num_file(d, "memory.kmem.max_usage_in_bytes");
        m.kernel_limit = num_file(d, "memory.kmem.limit_in_bytes");
        m.kernel_failcnt = num_file(d, "memory.kmem.failcnt");
        m.raw = flat_keyed(&read_opt(&d.join("memory.stat")).unwrap_or_default());
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        m.rss = m.raw.get("rss").copied().unwrap_or(0);
        let oc = flat_keyed(&read_opt(&d.join("memory.oom_control")).unwrap_or_default());
        if let Some(k) = oc.get("oom_kill") {
            m.events.insert("oom_kill".into(), *k);
        }
    }
    if let Some(d) = p.v1_dir("pids") {
        s.pids = pids(d);
    }
    if let Some(d) = p.v1_dir("blkio") {
        // CFQ files where the kernel has them, else BFQ's, else the throttle layer's (which counts
        // every I/O, as runc falls back to).
        let pick = |names: &[&str]| names.iter().find_map(|n| read_opt(&d.join(n))).unwrap_or_default();
        s.blkio.io_service_bytes_recursive = parse_blkio_v1(&pick(&["blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"]));
        s.blkio.io_serviced_recursive = parse_blkio_v1(&pick(&["blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"]));
    }
    if let Some(d) = p.v1_dir("hugetlb") {
        for size in page_sizes() {
            s.hugetlb.push(HugetlbStats {
                usage: num_file(d, &format!("hugetlb.{size}.usage_in_bytes")),
                max_usage: num_file(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: num_file(d, &format!("hugetlb.{size}.failcnt")),
                limit: num_file(d, &format!("hugetlb.{size}.limit_in_bytes")),
                pagesize: size,
            });
        }
    } else if let Some(d) = p.unified_dir() {
        s.hugetlb = hugetlb_v2(d);
    }
    Ok(s)
}

fn pids(d: &Path) -> PidsStats {
    let limit = num_file(d, "pids.max");
    PidsStats { current: num_file(d, "pids.current"), limit: if limit == u64::MAX { 0 } else { limit } }
}

fn hugetlb_v2(d: &Path) -> Vec<HugetlbStats> {
    page_sizes()
        .into_iter()
        .filter(|size| d.join(format!("hugetlb.{size}.current")).exists())
        .map(|size| HugetlbStats {
            usage: num_file(d, &format!("hugetlb.{size}.current")),
            max_usage: 0,
            failcnt: flat_keyed(&read_opt(&d.join(format!("hugetlb.{size}.events"))).unwrap_or_default()).get("max").copied().unwrap_or(0),
            limit: num_file(d, &format!("hugetlb.{size}.max")),
            pagesize: size,
        })
        .collect()
}

/// The v2 files of directory `d`.
pub fn read_v2(d: &Path) -> Stats {
    let mut s = Stats { version: CgroupVersion::V2, ..Default::default() };
    let cpu = flat_keyed(&read_opt(&d.join("cpu.stat")).unwrap_or_default());
    let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage_total = g("usage_usec") * 1000;
    s.cpu.usage_user = g("user_usec") * 1000;
    s.cpu.usage_kernel = g("system_usec") * 1000;
    s.cpu.periods = g("nr_periods");
    s.cpu.throttled_periods = g("nr_throttled");
    s.cpu.throttled_time = g("throttled_usec") * 1000;
    s.cpu.raw = cpu;
    let m = &mut s.memory;
    m.usage = num_file(d, "memory.current");
    m.max_usage = num_file(d, "memory.peak");
    m.limit = if d.join("memory.max").exists() { num_file(d, "memory.max") } else { u64::MAX };
    m.swap_usage = num_file(d, "memory.swap.current");
    m.swap_limit = if d.join("memory.swap.max").exists() { num_file(d, "memory.swap.max") } else { 0 };
    m.raw = flat_keyed(&read_opt(&d.join("memory.stat")).unwrap_or_default());
    m.events = flat_keyed(&read_opt(&d.join("memory.events")).unwrap_or_default());
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    m.rss = m.raw.get("anon").copied().unwrap_or(0);
    m.failcnt = m.events.get("max").copied().unwrap_or(0);
    s.pids = pids(d);
    s.blkio.io = parse_io_stat(&read_opt(&d.join("io.stat")).unwrap_or_default());
    for e in &s.blkio.io {
        let entry = |op: &str, value| BlkioEntry { major: e.major, minor: e.minor, op: op.into(), value };
        s.blkio.io_service_bytes_recursive.push(entry("Read", e.rbytes));
        s.blkio.io_service_bytes_recursive.push(entry("Write", e.wbytes));
        s.blkio.io_serviced_recursive.push(entry("Read", e.rios));
        s.blkio.io_serviced_recursive.push(entry("Write", e.wios));
    }
    s.hugetlb = hugetlb_v2(d);
    s
}

/// Huge page sizes the kernel offers, in the cgroup file spelling ("2MB", "1GB").
pub fn page_sizes() -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("hugepages-")).and_then(|kb| kb.strip_suffix("kB")).and_then(|kb| kb.parse::<u64>().ok())).map(size_name).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// 2048 (kB) → "2MB", 1048576 → "1GB" (the kernel's hugetlb cgroup file names).
pub fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testutil::dir;
    use super::super::Hierarchy;
    use super::*;
    use std::path::PathBuf;

    // Samples captured from a 6.1 kernel.
    const V1_MEMORY_STAT: &str = "cache 1589248\nrss 352256\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\npgpgin 1009\npgpgout 535\npgfault 1331\npgmajfault 0\ninactive_anon 339968\nactive_anon 12288\ninactive_file 1589248\nactive_file 0\nunevictable 0\nhierarchical_memory_limit 104857600\nhierarchical_memsw_limit 9223372036854771712\ntotal_cache 1589248\ntotal_rss 352256\n";
    const V1_BLKIO: &str = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n";
    const V2_CPU_STAT: &str = "usage_usec 23456\nuser_usec 12000\nsystem_usec 11456\ncore_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\nnr_bursts 0\nburst_usec 0\n";
    const V2_MEMORY_STAT: &str = "anon 4096000\nfile 2048000\nkernel 300000\nkernel_stack 16384\npagetables 40960\nsock 0\nshmem 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\npgfault 900\npgmajfault 1\n";
    const V2_MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n";
    const V2_IO_STAT: &str = "8:0 rbytes=1048576 wbytes=4096 rios=12 wios=1 dbytes=0 dios=0\n253:1 rbytes=0 wbytes=512 rios=0 wios=1 dbytes=0 dios=0\n";

    #[test]
    fn parses_flat_and_max() {
        let m = flat_keyed(V1_MEMORY_STAT);
        assert_eq!(m["cache"], 1589248);
        assert_eq!(m["hierarchical_memsw_limit"], 9223372036854771712);
        assert_eq!(parse_u64("max"), Some(u64::MAX));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("42\n"), Some(42));
    }

    #[test]
    fn parses_blkio_and_io_stat() {
        let b = parse_blkio_v1(V1_BLKIO);
        assert_eq!(b.len(), 6);
        assert_eq!(b[1], BlkioEntry { major: 8, minor: 0, op: "Write".into(), value: 8192 });
        let io = parse_io_stat(V2_IO_STAT);
        assert_eq!(io[0], IoEntry { major: 8, minor: 0, rbytes: 1048576, wbytes: 4096, rios: 12, wios: 1 });
        assert_eq!(io[1].major, 253);
    }

    #[test]
    fn reads_a_v2_directory() {
        let d = dir(&[
            ("cpu.stat", V2_CPU_STAT), ("memory.current", "6144000\n"), ("memory.max", "max\n"), ("memory.swap.current", "0\n"), ("memory.swap.max", "max\n"),
            ("memory.stat", V2_MEMORY_STAT), ("memory.events", V2_MEMORY_EVENTS), ("pids.current", "3\n"), ("pids.max", "max\n"), ("io.stat", V2_IO_STAT),
        ]);
        let s = read_v2(d.path());
        assert_eq!(s.version, CgroupVersion::V2);
        assert_eq!(s.cpu.usage_total, 23_456_000);
        assert_eq!(s.cpu.usage_kernel, 11_456_000);
        assert_eq!(s.cpu.throttled_time, 3_000_000);
        assert_eq!(s.memory.usage, 6144000);
        assert_eq!(s.memory.limit, u64::MAX);
        assert_eq!(s.memory.rss, 4096000);
        assert_eq!(s.memory.cache, 2048000);
        assert_eq!(s.memory.failcnt, 17);
        assert_eq!(s.memory.events["oom_kill"], 1);
        assert_eq!(s.pids, PidsStats { current: 3, limit: 0 });
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 4);
        assert_eq!(s.blkio.io_serviced_recursive[0].value, 12);
    }

    #[test]
    fn reads_v1_directories() {
        let mem = dir(&[
            ("memory.usage_in_bytes", "1941504\n"), ("memory.max_usage_in_bytes", "2899968\n"), ("memory.limit_in_bytes", "104857600\n"), ("memory.failcnt", "0\n"),
            ("memory.memsw.usage_in_bytes", "1941504\n"), ("memory.memsw.limit_in_bytes", "9223372036854771712\n"), ("memory.stat", V1_MEMORY_STAT),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
        ]);
        let acct = dir(&[("cpuacct.usage", "123456789\n"), ("cpuacct.usage_percpu", "100000000 23456789 \n"), ("cpuacct.stat", "user 7\nsystem 3\n")]);
        let cpu = dir(&[("cpu.stat", "nr_periods 5\nnr_throttled 1\nthrottled_time 999\n")]);
        let pids = dir(&[("pids.current", "2\n"), ("pids.max", "64\n")]);
        let blk = dir(&[("blkio.throttle.io_service_bytes_recursive", V1_BLKIO), ("blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n")]);
        let h = |c: &str| Hierarchy { mount: PathBuf::from("/x"), fstype: "cgroup".into(), controllers: vec![c.into()], root: PathBuf::from("/") };
        let p = Placement {
            dirs: vec![(h("memory"), mem.path().into()), (h("cpuacct"), acct.path().into()), (h("cpu"), cpu.path().into()), (h("pids"), pids.path().into()), (h("blkio"), blk.path().into())],
            created: vec![],
            systemd: None,
        };
        let s = read(&p).unwrap();
        assert_eq!(s.version, CgroupVersion::V1);
        assert_eq!(s.cpu.usage_total, 123456789);
        assert_eq!(s.cpu.per_cpu, vec![100000000, 23456789]);
        assert_eq!(s.cpu.usage_user, 70_000_000);
        assert_eq!(s.cpu.throttled_time, 999);
        assert_eq!(s.memory.usage, 1941504);
        assert_eq!(s.memory.limit, 104857600);
        assert_eq!(s.memory.cache, 1589248);
        assert_eq!(s.memory.rss, 352256);
        assert_eq!(s.memory.events["oom_kill"], 2);
        assert_eq!(s.pids, PidsStats { current: 2, limit: 64 });
        assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 4096);
        assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
    }

    #[test]
    fn size_names() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1048576), "1GB");
        assert_eq!(size_name(64), "64KB");
    }
}
