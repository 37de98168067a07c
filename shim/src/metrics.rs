//! Task Stats: the runtime's cgroup figures packed as the metrics type containerd expects on this
//! host — `io.containerd.cgroups.v1.Metrics` on v1/hybrid hosts, `io.containerd.cgroups.v2.Metrics`
//! on unified ones. containerd's metrics collector (and CRI's ContainerStats) decode by type URL and
//! fail on a mismatch, so the runtime's `Stats::version` decides, not a guess here.
use brisk_runtime::cgroups::{CgroupVersion, Stats};
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;

pub const V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
pub const V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// The stats as the Any that StatsResponse carries.
pub fn to_any(s: &Stats) -> Any {
    match s.version {
        CgroupVersion::V1 => crate::events::to_any(V1_TYPE, &to_v1(s)),
        CgroupVersion::V2 => crate::events::to_any(V2_TYPE, &to_v2(s)),
    }
}

fn raw(map: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

fn to_v1(s: &Stats) -> v1::Metrics {
    let m = &s.memory;
    let r = &m.raw;
    let entry = |usage, max, limit, failcnt| MessageField::some(v1::MemoryEntry { usage, max, limit, failcnt, ..Default::default() });
    let blk = |list: &[brisk_runtime::cgroups::stats::BlkioEntry]| {
        list.iter().map(|e| v1::BlkIOEntry { op: e.op.clone(), major: e.major, minor: e.minor, value: e.value, ..Default::default() }).collect()
    };
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|h| v1::HugetlbStat { usage: h.usage, max: h.max_usage, failcnt: h.failcnt, pagesize: h.pagesize.clone(), ..Default::default() })
            .collect(),
        pids: MessageField::some(v1::PidsStat { current: s.pids.current, limit: s.pids.limit, ..Default::default() }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: s.cpu.usage_total,
                kernel: s.cpu.usage_kernel,
                user: s.cpu.usage_user,
                per_cpu: s.cpu.per_cpu.clone(),
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: s.cpu.periods,
                throttled_periods: s.cpu.throttled_periods,
                throttled_time: s.cpu.throttled_time,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(v1::MemoryStat {
            cache: m.cache,
            rss: m.rss,
            rss_huge: raw(r, "rss_huge"),
            mapped_file: raw(r, "mapped_file"),
            dirty: raw(r, "dirty"),
            writeback: raw(r, "writeback"),
            pg_pg_in: raw(r, "pgpgin"),
            pg_pg_out: raw(r, "pgpgout"),
            pg_fault: raw(r, "pgfault"),
            pg_maj_fault: raw(r, "pgmajfault"),
            inactive_anon: raw(r, "inactive_anon"),
            active_anon: raw(r, "active_anon"),
            inactive_file: raw(r, "inactive_file"),
            active_file: raw(r, "active_file"),
            unevictable: raw(r, "unevictable"),
            hierarchical_memory_limit: raw(r, "hierarchical_memory_limit"),
            hierarchical_swap_limit: raw(r, "hierarchical_memsw_limit"),
            total_cache: raw(r, "total_cache"),
            total_rss: raw(r, "total_rss"),
            total_rss_huge: raw(r, "total_rss_huge"),
            total_mapped_file: raw(r, "total_mapped_file"),
            total_dirty: raw(r, "total_dirty"),
            total_writeback: raw(r, "total_writeback"),
            total_pg_pg_in: raw(r, "total_pgpgin"),
            total_pg_pg_out: raw(r, "total_pgpgout"),
            total_pg_fault: raw(r, "total_pgfault"),
            total_pg_maj_fault: raw(r, "total_pgmajfault"),
            total_inactive_anon: raw(r, "total_inactive_anon"),
            total_active_anon: raw(r, "total_active_anon"),
            total_inactive_file: raw(r, "total_inactive_file"),
            total_active_file: raw(r, "total_active_file"),
            total_unevictable: raw(r, "total_unevictable"),
            usage: entry(m.usage, m.max_usage, m.limit, m.failcnt),
            swap: entry(m.swap_usage, m.swap_max_usage, m.swap_limit, m.swap_failcnt),
            kernel: entry(m.kernel_usage, m.kernel_max_usage, m.kernel_limit, m.kernel_failcnt),
            ..Default::default()
        }),
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blk(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blk(&s.blkio.io_serviced_recursive),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(v1::MemoryOomControl { oom_kill: raw(&m.events, "oom_kill"), ..Default::default() }),
        ..Default::default()
    }
}

fn to_v2(s: &Stats) -> v2::Metrics {
    let m = &s.memory;
    let r = &m.raw;
    let c = &s.cpu.raw;
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat { current: s.pids.current, limit: s.pids.limit, ..Default::default() }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu.usage_total / 1000,
            user_usec: s.cpu.usage_user / 1000,
            system_usec: s.cpu.usage_kernel / 1000,
            nr_periods: s.cpu.periods,
            nr_throttled: s.cpu.throttled_periods,
            throttled_usec: s.cpu.throttled_time / 1000,
            nr_bursts: raw(c, "nr_bursts"),
            burst_usec: raw(c, "burst_usec"),
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: m.rss,
            file: m.cache,
            kernel_stack: raw(r, "kernel_stack"),
            slab: raw(r, "slab"),
            sock: raw(r, "sock"),
            shmem: raw(r, "shmem"),
            file_mapped: raw(r, "file_mapped"),
            file_dirty: raw(r, "file_dirty"),
            file_writeback: raw(r, "file_writeback"),
            anon_thp: raw(r, "anon_thp"),
            inactive_anon: raw(r, "inactive_anon"),
            active_anon: raw(r, "active_anon"),
            inactive_file: raw(r, "inactive_file"),
            active_file: raw(r, "active_file"),
            unevictable: raw(r, "unevictable"),
            slab_reclaimable: raw(r, "slab_reclaimable"),
            slab_unreclaimable: raw(r, "slab_unreclaimable"),
            pgfault: raw(r, "pgfault"),
            pgmajfault: raw(r, "pgmajfault"),
            workingset_refault: raw(r, "workingset_refault"),
            workingset_activate: raw(r, "workingset_activate"),
            workingset_nodereclaim: raw(r, "workingset_nodereclaim"),
            pgrefill: raw(r, "pgrefill"),
            pgscan: raw(r, "pgscan"),
            pgsteal: raw(r, "pgsteal"),
            pgactivate: raw(r, "pgactivate"),
            pgdeactivate: raw(r, "pgdeactivate"),
            pglazyfree: raw(r, "pglazyfree"),
            pglazyfreed: raw(r, "pglazyfreed"),
            thp_fault_alloc: raw(r, "thp_fault_alloc"),
            thp_collapse_alloc: raw(r, "thp_collapse_alloc"),
            usage: m.usage,
            usage_limit: m.limit,
            swap_usage: m.swap_usage,
            swap_limit: m.swap_limit,
            max_usage: m.max_usage,
            swap_max_usage: m.swap_max_usage,
            ..Default::default()
        }),
        io: MessageField::some(v2::IOStat {
            usage: s
                .blkio
                .io
                .iter()
                .map(|e| v2::IOEntry { major: e.major, minor: e.minor, rbytes: e.rbytes, wbytes: e.wbytes, rios: e.rios, wios: e.wios, ..Default::default() })
                .collect(),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|h| v2::HugeTlbStat { current: h.usage, max: h.limit, pagesize: h.pagesize.clone(), failcnt: h.failcnt, ..Default::default() })
            .collect(),
        memory_events: MessageField::some(v2::MemoryEvents {
            low: raw(&m.events, "low"),
            high: raw(&m.events, "high"),
            max: raw(&m.events, "max"),
            oom: raw(&m.events, "oom"),
            oom_kill: raw(&m.events, "oom_kill"),
            oom_group_kill: raw(&m.events, "oom_group_kill"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    #[test]
    fn type_follows_the_hierarchy_version() {
        let mut s = Stats::default();
        s.memory.usage = 4096;
        s.pids.current = 3;
        let a = to_any(&s);
        assert_eq!(a.type_url, V1_TYPE);
        let m = v1::Metrics::parse_from_bytes(&a.value).expect("v1 decodes");
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.pids.current, 3);
        s.version = CgroupVersion::V2;
        s.cpu.usage_total = 5_000_000;
        let a = to_any(&s);
        assert_eq!(a.type_url, V2_TYPE);
        let m = v2::Metrics::parse_from_bytes(&a.value).expect("v2 decodes");
        assert_eq!(m.memory.usage, 4096);
        assert_eq!(m.cpu.usage_usec, 5000);
    }
}
