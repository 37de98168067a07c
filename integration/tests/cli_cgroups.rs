//! linux.resources end to end, side by side with runc 1.1.5: the same config gives the same values
//! in the host's cgroup files; limits have their effect inside (pids, devices, memory/OOM);
//! pause/resume freeze and thaw every process; `update` changes limits live; `events --stats`
//! reports usage. Works on v1/hybrid hosts and on a pure v2 host (the v2 guest lane), reading the
//! interface the host has.

use std::fs;
use std::path::{Path, PathBuf};

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{path_str, RuntimeUnderTest};
use brisk_integration::runtime_tests;
use serde_json::{json, Value};

runtime_tests!(
    same_values_in_cgroup_files,
    pids_limit_makes_fork_fail,
    device_rules_decide_open,
    pause_freezes_every_process,
    update_changes_limits_live,
    update_from_resources_file,
    memory_limit_oom_kills,
    events_stats_reports_usage,
    events_stream_reports_oom,
);

/// True on a pure cgroup v2 host.
fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// True when a v1 hierarchy for `ctrl` is mounted at /sys/fs/cgroup/<ctrl>.
fn v1_mounted(ctrl: &str) -> bool {
    !unified() && Path::new("/sys/fs/cgroup").join(ctrl).join("cgroup.procs").exists()
}

/// The v1 cpu controller has realtime budgets (CONFIG_RT_GROUP_SCHED: this host's kernel, not
/// Debian's stock one in the guest lanes).
fn realtime_group_sched() -> bool {
    Path::new("/sys/fs/cgroup/cpu/cpu.rt_period_us").exists()
}

/// Whether v1 blkio has a weight: CFQ's blkio.weight (at the root too), or BFQ registered as an
/// I/O scheduler (its blkio.bfq.weight exists in child cgroups only, never at the root).
fn blkio_weight_supported() -> bool {
    Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| fs::read_to_string(e.path().join("queue/scheduler")).is_ok_and(|s| s.contains("bfq")))
}

fn hugepages_2mb() -> bool {
    Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
}

/// The host directory of the container's cgroup for v1 controller `ctrl` (ignored on v2).
fn host_dir(b: &Bundle, ctrl: &str) -> PathBuf {
    let rel = b.cgroups_path();
    let rel = rel.trim_start_matches('/');
    if unified() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(ctrl).join(rel)
    }
}

#[track_caller]
fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())).trim().to_owned()
}

/// A bundle whose process prints `ready` and sleeps (a long-running container to inspect).
fn sleeper() -> Bundle {
    Bundle::new().sh("echo ready; exec sleep 1000")
}

fn run_sleeper(rt: &RuntimeUnderTest, b: &Bundle, prefix: &str) -> String {
    let id = rt.new_id(prefix);
    rt.run_detached(&id, b).ok();
    rt.wait_output(&id, b, "ready");
    id
}

/// A block device of this host (major, minor) to put I/O throttles on: a disk if there is one, else
/// a loop device (the v2 guest has only those).
fn block_device() -> (u32, u32) {
    let mut devs: Vec<(bool, String, (u32, u32))> = fs::read_dir("/sys/block")
        .expect("reading /sys/block")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = fs::read_to_string(e.path().join("dev")).ok()?;
            let (maj, min) = dev.trim().split_once(':')?;
            Some((name.starts_with("loop") || name.starts_with("zram"), name, (maj.parse().ok()?, min.parse().ok()?)))
        })
        .collect();
    devs.sort();
    devs.first().map(|d| d.2).expect("no block device on this host to throttle")
}

fn same_values_in_cgroup_files(rt: &RuntimeUnderTest) {
    let (maj, min) = block_device();
    let b = sleeper().set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}],
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 30},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 77},
            "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 100}]}
        }),
    );
    let b = if unified() {
        // v2 has no swappiness, OOM-killer switch or realtime budget (brisk refuses them by name
        // there).
        let b = b.set("/linux/resources/memory", json!({"limit": 67108864, "reservation": 33554432, "swap": 134217728}));
        // `unified` keys are written verbatim, after the converted fields.
        let b = b.set("/linux/resources/unified", json!({"memory.high": "50331648"}));
        // hugetlb is a v2 controller here (on the hybrid host it is not enabled below the root).
        if hugepages_2mb() {
            b.set("/linux/resources/hugepageLimits", json!([{"pageSize": "2MB", "limit": 4194304}]))
        } else {
            b
        }
    } else {
        let b = b.set("/linux/resources/memory/disableOOMKiller", json!(true));
        // No proportional-weight I/O scheduler (CFQ/BFQ) means no blkio weight file: runc and brisk
        // both refuse the weight then.
        let b = if blkio_weight_supported() { b } else { b.remove("/linux/resources/blockIO/weight") };
        let b = if realtime_group_sched() {
            b.set("/linux/resources/cpu/realtimePeriod", json!(1000000)).set("/linux/resources/cpu/realtimeRuntime", json!(10000))
        } else {
            b
        };
        // v1 hierarchies this hybrid CI host does not mount; the v1 guest (`make test-v1-guest`)
        // mounts them.
        let b = if v1_mounted("net_cls") {
            b.set("/linux/resources/network", json!({"classID": 1048577, "priorities": [{"name": "lo", "priority": 7}]}))
        } else {
            b
        };
        if v1_mounted("hugetlb") && hugepages_2mb() {
            b.set("/linux/resources/hugepageLimits", json!([{"pageSize": "2MB", "limit": 4194304}]))
        } else {
            b
        }
    };
    let id = run_sleeper(rt, &b, "values");
    if unified() {
        let d = host_dir(&b, "");
        assert_eq!(read(&d.join("memory.max")), "67108864");
        assert_eq!(read(&d.join("memory.low")), "33554432");
        if d.join("memory.swap.max").exists() {
            assert_eq!(read(&d.join("memory.swap.max")), "67108864");
        }
        assert_eq!(read(&d.join("cpu.weight")), "20"); // runc's conversion of 512 shares
        assert_eq!(read(&d.join("cpu.max")), "50000 100000");
        assert_eq!(read(&d.join("cpuset.cpus")), "0");
        assert_eq!(read(&d.join("pids.max")), "77");
        if hugepages_2mb() {
            assert_eq!(read(&d.join("hugetlb.2MB.max")), "4194304");
        }
        assert_eq!(read(&d.join("memory.high")), "50331648");
        let io_max = read(&d.join("io.max"));
        assert!(io_max.contains(&format!("{maj}:{min} rbps=1048576 wbps=max riops=max wiops=100")), "io.max: {io_max}");
    } else {
        let m = host_dir(&b, "memory");
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&m.join("memory.soft_limit_in_bytes")), "33554432");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "134217728");
        assert_eq!(read(&m.join("memory.swappiness")), "30");
        assert!(read(&m.join("memory.oom_control")).contains("oom_kill_disable 1"));
        let c = host_dir(&b, "cpu");
        assert_eq!(read(&c.join("cpu.shares")), "512");
        assert_eq!(read(&c.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&c.join("cpu.cfs_period_us")), "100000");
        if realtime_group_sched() {
            assert_eq!(read(&c.join("cpu.rt_period_us")), "1000000");
            assert_eq!(read(&c.join("cpu.rt_runtime_us")), "10000");
        }
        let s = host_dir(&b, "cpuset");
        assert_eq!(read(&s.join("cpuset.cpus")), "0");
        assert_eq!(read(&s.join("cpuset.mems")), "0");
        assert_eq!(read(&host_dir(&b, "pids").join("pids.max")), "77");
        if v1_mounted("net_cls") {
            assert_eq!(read(&host_dir(&b, "net_cls").join("net_cls.classid")), "1048577");
            let map = read(&host_dir(&b, "net_prio").join("net_prio.ifpriomap"));
            assert!(map.lines().any(|l| l == "lo 7"), "net_prio.ifpriomap: {map:?}");
        }
        if v1_mounted("hugetlb") && hugepages_2mb() {
            assert_eq!(read(&host_dir(&b, "hugetlb").join("hugetlb.2MB.limit_in_bytes")), "4194304");
        }
        let bl = host_dir(&b, "blkio");
        assert_eq!(read(&bl.join("blkio.throttle.read_bps_device")), format!("{maj}:{min} 1048576"));
        assert_eq!(read(&bl.join("blkio.throttle.write_iops_device")), format!("{maj}:{min} 100"));
        if blkio_weight_supported() {
            let weight = if bl.join("blkio.weight").exists() { "blkio.weight" } else { "blkio.bfq.weight" };
            let w = read(&bl.join(weight));
            assert!(w == "300" || w.ends_with(" 300") || w.contains("default 300"), "{weight}: {w:?}");
        }
        // The device list: the spec's rules, then runc's default allow list (sorted: the kernel
        // keeps insertion order, which is not part of the contract). The one deliberate
        // difference: runc lets every container mknod any block device (`b *:* m`), brisk does
        // not (runtime/src/cgroups/devices.rs DEFAULT_ALLOWED says why).
        let mut list: Vec<String> = read(&host_dir(&b, "devices").join("devices.list")).lines().map(str::to_owned).collect();
        list.sort();
        let block_mknod: &[&str] = if rt.is_runc() { &["b *:* m"] } else { &[] };
        let mut want: Vec<String> = block_mknod.iter().chain([
            "c *:* m", "c 1:11 r", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 10:200 rwm", "c 136:* rwm",
            "c 5:0 rwm", "c 5:2 rwm",
        ]
        .iter())
        .map(|s| s.to_string())
        .collect();
        want.sort();
        assert_eq!(list, want, "devices.list");
    }
    rt.delete_force(&id).ok();
}

fn pids_limit_makes_fork_fail(rt: &RuntimeUnderTest) {
    let b = Bundle::new()
        .set("/linux/resources/pids", json!({"limit": 4}))
        .sh("i=0; while [ $i -lt 8 ]; do sleep 100 & i=$((i+1)); done; echo spawned");
    let id = rt.new_id("pids");
    let r = rt.run(&id, &b);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("can't fork") || all.contains("Resource temporarily unavailable"), "fork did not fail:\n{all}");
    rt.delete_force(&id);
}

/// Open a character device node (c 10:237, /dev/loop-control: not in runc's default allow list,
/// opening it has no effect) made with mknod inside the container, under different rules.
fn device_rules_decide_open(rt: &RuntimeUnderTest) {
    let script = "mknod /dev/k c 10 237 && if (exec 3</dev/k); then echo OPENED; else echo DENIED; fi";
    let mut caps: Vec<&str> = brisk_integration::bundle::DEFAULT_CAPS.to_vec();
    caps.push("CAP_MKNOD");
    for (rules, want) in [
        (json!([{"allow": false, "access": "rwm"}]), "DENIED"),
        (json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "r"}]), "OPENED"),
        (json!([{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 10, "minor": 237, "access": "rw"}]), "DENIED"),
        (json!([{"allow": true, "access": "rwm"}]), "OPENED"),
    ] {
        let b = Bundle::new().capabilities(&caps).set("/linux/resources/devices", rules.clone()).sh(script);
        let id = rt.new_id("dev");
        let r = rt.run(&id, &b);
        assert!(r.stdout.contains(want), "rules {rules}: want {want}, got:\n{}\n{}", r.stdout, r.stderr);
        rt.delete_force(&id);
    }
}

/// Process states (field 3 of /proc/<pid>/stat) of every pid in the container's cgroup.
fn states(b: &Bundle) -> Vec<(i32, char)> {
    let procs = read(&host_dir(b, "freezer").join("cgroup.procs"));
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = stat.rsplit_once(')')?.1;
            Some((pid, after.trim_start().chars().next()?))
        })
        .collect()
}

fn frozen_flag(b: &Bundle) -> String {
    if unified() {
        let ev = read(&host_dir(b, "").join("cgroup.events"));
        ev.lines().find_map(|l| l.strip_prefix("frozen ")).unwrap_or("?").to_owned()
    } else {
        read(&host_dir(b, "freezer").join("freezer.state"))
    }
}

fn pause_freezes_every_process(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("sleep 1000 & sleep 1000 & echo ready; wait");
    let id = run_sleeper(rt, &b, "pause");
    rt.wait_until("three processes", || states(&b).len() == 3);
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(frozen_flag(&b), if unified() { "1" } else { "FROZEN" });
    let st = states(&b);
    assert_eq!(st.len(), 3);
    if !unified() {
        // The v1 freezer parks tasks in TASK_FROZEN, which /proc shows as D.
        assert!(st.iter().all(|(_, s)| *s == 'D'), "not all frozen: {st:?}");
    }
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.status(&id), "running");
    assert_eq!(frozen_flag(&b), if unified() { "0" } else { "THAWED" });
    rt.wait_until("thawed processes to sleep", || states(&b).iter().all(|(_, s)| *s == 'S'));
    rt.delete_force(&id).ok();
}

/// The limit file as the container sees it under its /sys/fs/cgroup (v1: its own cgroup bound at
/// memory/; v2 without a cgroup namespace: its own cgroup at the top or the host's tree).
fn inside_memory_limit(rt: &RuntimeUnderTest, id: &str, b: &Bundle) -> String {
    let script = if unified() {
        format!(
            "for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup{}/memory.max; do [ -f $f ] && exec cat $f; done; \
             echo not found; ls /sys/fs/cgroup; cat /proc/self/cgroup; grep cgroup /proc/self/mountinfo; exit 1",
            b.cgroups_path()
        )
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes".to_string()
    };
    rt.exec(id, &["sh", "-c", &script]).ok().stdout.trim().to_owned()
}

fn update_changes_limits_live(rt: &RuntimeUnderTest) {
    let b = sleeper().set("/linux/resources/memory", json!({"limit": 67108864})).set("/linux/resources/pids", json!({"limit": 50}));
    let id = run_sleeper(rt, &b, "update");
    assert_eq!(inside_memory_limit(rt, &id, &b), "67108864");
    rt.cmd(&["update", "--memory", "134217728", "--pids-limit", "60", "--cpu-share", "256", "--cpu-quota", "30000", "--cpu-period", "100000", &id]).ok();
    assert_eq!(inside_memory_limit(rt, &id, &b), "134217728");
    if unified() {
        let d = host_dir(&b, "");
        assert_eq!(read(&d.join("pids.max")), "60");
        assert_eq!(read(&d.join("cpu.max")), "30000 100000");
        assert_eq!(read(&d.join("cpu.weight")), "10");
    } else {
        assert_eq!(read(&host_dir(&b, "pids").join("pids.max")), "60");
        assert_eq!(read(&host_dir(&b, "cpu").join("cpu.shares")), "256");
        assert_eq!(read(&host_dir(&b, "cpu").join("cpu.cfs_quota_us")), "30000");
    }
    // The container still runs and was not restarted.
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).ok();
}

fn update_from_resources_file(rt: &RuntimeUnderTest) {
    let b = sleeper();
    let id = run_sleeper(rt, &b, "updr");
    let f = b.scratch("resources.json");
    fs::write(&f, json!({"memory": {"limit": 100663296}, "pids": {"limit": 33}}).to_string()).expect("writing resources.json");
    rt.cmd(&["update", "-r", path_str(&f), &id]).ok();
    assert_eq!(inside_memory_limit(rt, &id, &b), "100663296");
    let pids = if unified() { host_dir(&b, "").join("pids.max") } else { host_dir(&b, "pids").join("pids.max") };
    assert_eq!(read(&pids), "33");
    rt.delete_force(&id).ok();
}

fn memory_limit_oom_kills(rt: &RuntimeUnderTest) {
    // memory+swap equal to memory: no swap to escape to.
    let b = Bundle::new()
        .set("/linux/resources/memory", json!({"limit": 33554432, "swap": 33554432}))
        .args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"]);
    let id = rt.new_id("oom");
    let r = rt.run(&id, &b);
    assert_eq!(r.code(), 137, "dd was not OOM-killed:\n{}\n{}", r.stdout, r.stderr);
    rt.delete_force(&id);
}

fn events_stats_reports_usage(rt: &RuntimeUnderTest) {
    let b = Bundle::new().set("/linux/resources/pids", json!({"limit": 40})).sh("sleep 1000 & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; wait");
    let id = run_sleeper(rt, &b, "stats");
    let r = rt.cmd(&["events", "--stats", &id]).ok();
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("events --stats printed invalid JSON ({e}):\n{}", r.stdout));
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    let d = &v["data"];
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "cpu usage: {d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0, "memory usage: {d}");
    assert_eq!(d["pids"]["current"].as_u64(), Some(2), "pids: {d}");
    assert_eq!(d["pids"]["limit"].as_u64(), Some(40), "pids: {d}");
    rt.delete_force(&id).ok();
}

/// brisk-only: fields runc 1.1.5 ignores are applied (cpu.burst, cpu.idle) on this host's
/// interface.
#[test]
fn brisk_applies_burst_and_idle() {
    let rt = RuntimeUnderTest::brisk();
    let b = sleeper().set("/linux/resources/cpu", json!({"quota": 50000, "period": 100000, "burst": 20000, "idle": 1}));
    let id = run_sleeper(&rt, &b, "burst");
    if unified() {
        let d = host_dir(&b, "");
        assert_eq!(read(&d.join("cpu.max.burst")), "20000");
        assert_eq!(read(&d.join("cpu.idle")), "1");
    } else {
        let d = host_dir(&b, "cpu");
        assert_eq!(read(&d.join("cpu.cfs_burst_us")), "20000");
        assert_eq!(read(&d.join("cpu.idle")), "1");
    }
    rt.delete_force(&id).ok();
}

/// brisk-only: a field the host cannot honour is a create error naming it, and nothing is left.
#[test]
fn brisk_refuses_what_it_cannot_honour() {
    let rt = RuntimeUnderTest::brisk();
    let cases = if unified() {
        vec![
            (json!({"memory": {"swappiness": 10}}), "memory.swappiness"),
            (json!({"memory": {"disableOOMKiller": true}}), "memory.disableOOMKiller"),
            (json!({"cpu": {"realtimeRuntime": 1000}}), "cpu.realtimeRuntime"),
        ]
    } else {
        vec![(json!({"unified": {"memory.high": "1000000"}}), "unified")]
    };
    let mut cases = cases;
    if !v1_mounted("net_cls") {
        // Where net_cls is mounted (the v1 guest), classID is honoured instead.
        cases.push((json!({"network": {"classID": 7}}), "network.classID"));
    }
    // A value the kernel refuses (no such device) is named too.
    cases.push((json!({"blockIO": {"throttleReadBpsDevice": [{"major": 4000, "minor": 0, "rate": 1}]}}), "blockIO.throttleReadBpsDevice[0]"));
    cases.push((json!({"cpu": {"shares": 1}}), "cpu.shares"));
    for (res, field) in cases {
        let b = sleeper().set("/linux/resources", res.clone());
        let id = rt.new_id("refuse");
        let r = rt.create(&id, &b).failed();
        assert!(r.stderr.contains(field), "{res}: stderr does not name {field}:\n{}", r.stderr);
        for d in brisk_integration::bundle::cgroup_dirs(&b.cgroups_path()) {
            assert!(!d.exists(), "{} left behind", d.display());
        }
        rt.assert_nothing_left(&id);
    }
}

/// `events` (streaming) reports an OOM kill inside a running container as an `oom` event.
fn events_stream_reports_oom(rt: &RuntimeUnderTest) {
    use std::io::BufRead;
    let b = Bundle::new();
    let ctl = b.scratch("ctl");
    fs::create_dir(&ctl).expect("ctl dir");
    let b = b
        .bind(&ctl, "/ctl", &[])
        .set("/linux/resources/memory", json!({"limit": 33554432, "swap": 33554432}))
        .sh("echo ready; while [ ! -e /ctl/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=128M count=1; echo dd-done; exec sleep 1000");
    let id = run_sleeper(rt, &b, "evoom");
    let mut ev = rt
        .command()
        .args(["events", "--interval", "1s", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning events");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = ev.stdout.take().expect("events stdout");
    let _guard = Kill(ev);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first stats event proves the stream is up before the OOM happens.
    let first = rx.recv_timeout(brisk_integration::runtime_cli::WAIT_LIMIT).expect("no event from `events`");
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("invalid event JSON ({e}): {first}"));
    assert_eq!(v["type"], "stats", "{first}");
    fs::write(b.scratch("ctl/go"), "").expect("opening gate");
    rt.wait_output(&id, &b, "dd-done");
    let deadline = std::time::Instant::now() + brisk_integration::runtime_cli::WAIT_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("no oom event before the time limit");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("invalid event JSON ({e}): {line}"));
        if v["type"] == "oom" {
            assert_eq!(v["id"], id.as_str());
            break;
        }
    }
    rt.delete_force(&id).ok();
}

/// brisk-only (runc 1.1.5's `update` leaves device rules alone): `update -r` with device rules
/// changes what the running container may open, without restarting it.
#[test]
fn brisk_update_changes_device_rules() {
    let rt = RuntimeUnderTest::brisk();
    let mut caps: Vec<&str> = brisk_integration::bundle::DEFAULT_CAPS.to_vec();
    caps.push("CAP_MKNOD");
    let b = sleeper().capabilities(&caps);
    let id = run_sleeper(&rt, &b, "updev");
    let open = "[ -e /dev/k ] || mknod /dev/k c 10 237; if (exec 3</dev/k); then echo OPENED; else echo DENIED; fi";
    assert!(rt.exec(&id, &["sh", "-c", open]).ok().stdout.contains("DENIED"));
    let f = b.scratch("devices.json");
    let rules = json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "r"}]});
    fs::write(&f, rules.to_string()).expect("writing devices.json");
    rt.cmd(&["update", "-r", path_str(&f), &id]).ok();
    assert!(rt.exec(&id, &["sh", "-c", open]).ok().stdout.contains("OPENED"));
    // The default devices stayed usable throughout.
    assert!(rt.exec(&id, &["sh", "-c", "echo x > /dev/null && echo NULL_OK"]).ok().stdout.contains("NULL_OK"));
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).ok();
}
