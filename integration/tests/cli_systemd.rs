//! The systemd cgroup driver (`--systemd-cgroup`, cgroupsPath `slice:prefix:name`), side by side
//! with `runc --systemd-cgroup`: the container runs in a transient scope holding its processes,
//! the same resources give the same cgroup file values, and delete (also after a SIGKILL of the
//! init, also `delete --force`) stops the unit and leaves nothing.
//!
//! Where systemd is not PID 1 (this project's build host) both runtimes must refuse the request:
//! each test then asserts that refusal (brisk's error names cgroupsPath and why) and that nothing
//! was left behind. The systemd guest lane (`make test-systemd`) runs the real thing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use brisk_integration::bundle::{unique_name, Bundle};
use brisk_integration::runtime_cli::{path_str, CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;
use serde_json::json;

runtime_tests!(
    scope_holds_the_container,
    same_values_as_runc,
    delete_stops_the_unit,
    sigkill_then_delete_leaves_nothing,
    delete_force_running_stops_the_unit,
    update_records_limits_in_the_unit,
);

/// sd_booted(3).
fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A container placed by the systemd driver: its unit, and a guard that stops the unit if the
/// test fails before the runtime did (only this test's unit, by name).
struct Scope {
    unit: String,
    cgroups_path: String,
}

impl Scope {
    fn new() -> Scope {
        let name = unique_name("sd");
        Scope { unit: format!("brisk-it-{name}.scope"), cgroups_path: format!("system.slice:brisk-it:{name}") }
    }

    /// The unit's directory for v1 controller `ctrl` (the unified one on a v2 host).
    fn dir(&self, ctrl: &str) -> PathBuf {
        let rel = Path::new("system.slice").join(&self.unit);
        if unified() {
            Path::new("/sys/fs/cgroup").join(rel)
        } else {
            Path::new("/sys/fs/cgroup").join(ctrl).join(rel)
        }
    }

    /// Every directory the unit may have (all v1 hierarchies, or the unified one).
    fn all_dirs(&self) -> Vec<PathBuf> {
        if unified() {
            return vec![self.dir("")];
        }
        let rel = Path::new("system.slice").join(&self.unit);
        fs::read_dir("/sys/fs/cgroup").map(|rd| rd.flatten().map(|e| e.path().join(&rel)).collect()).unwrap_or_default()
    }

    /// `systemctl show -p PROP --value UNIT`.
    fn show(&self, prop: &str) -> String {
        let out = Command::new("systemctl").args(["show", "-p", prop, "--value", &self.unit]).output().expect("running systemctl show");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[track_caller]
    fn assert_gone(&self) {
        assert_eq!(self.show("LoadState"), "not-found", "unit {} still loaded (ActiveState {})", self.unit, self.show("ActiveState"));
        for d in self.all_dirs() {
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if systemd_booted() && self.show("LoadState") == "loaded" {
            let _ = Command::new("systemctl").args(["stop", &self.unit]).status();
            let _ = Command::new("systemctl").args(["reset-failed", &self.unit]).status();
        }
    }
}

/// `--systemd-cgroup run -d` of `b` placed in `s`.
fn run_detached(rt: &RuntimeUnderTest, id: &str, b: &Bundle) -> CmdResult {
    rt.track(id);
    b.write_config();
    rt.cmd_to_files(&["--systemd-cgroup", "run", "-d", "--bundle", path_str(b.path()), id], b, id)
}

/// Without systemd as PID 1 the request must fail, clearly, and leave nothing. Returns true when
/// that was checked (the caller stops there).
fn refused_without_systemd(rt: &RuntimeUnderTest, s: &Scope, b: &Bundle, id: &str) -> bool {
    if systemd_booted() {
        return false;
    }
    let r = run_detached(rt, id, b).failed();
    if rt.is_runc() {
        // runc 1.1.5: "systemd not running on this host, cannot use systemd cgroups manager".
        assert!(r.stderr.contains("systemd"), "runc's refusal should mention systemd: {}", r.stderr);
    } else {
        assert!(r.stderr.contains("linux.cgroupsPath") && r.stderr.contains("systemd is not PID 1") && r.stderr.contains("/run/systemd/system"), "brisk's refusal should name cgroupsPath and why: {}", r.stderr);
    }
    rt.assert_nothing_left(id);
    for d in s.all_dirs() {
        assert!(!d.exists(), "{} created although the request was refused", d.display());
    }
    true
}

/// Run `b` detached under the systemd driver and wait for its "ready"; None (after checking the
/// refusal) where systemd is not PID 1.
fn started(rt: &RuntimeUnderTest, s: &Scope, b: &Bundle, prefix: &str) -> Option<String> {
    let id = rt.new_id(prefix);
    if refused_without_systemd(rt, s, b, &id) {
        return None;
    }
    run_detached(rt, &id, b).ok();
    rt.wait_output(&id, b, "ready");
    Some(id)
}

fn sleeper(s: &Scope) -> Bundle {
    Bundle::new().cgroups_path_override(&s.cgroups_path).sh("echo ready; exec sleep 1000")
}

fn procs(dir: &Path) -> Vec<i32> {
    let f = dir.join("cgroup.procs");
    fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display())).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn scope_holds_the_container(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    let b = sleeper(&s);
    let Some(id) = started(rt, &s, &b, "sdscope") else { return };
    assert_eq!(s.show("ActiveState"), "active");
    assert_eq!(s.show("ControlGroup"), format!("/system.slice/{}", s.unit));
    assert_eq!(s.show("Delegate"), "yes");
    assert_eq!(s.show("Slice"), "system.slice");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    let dir = s.dir("pids");
    assert!(procs(&dir).contains(&pid), "init {pid} not in {}: {:?}", dir.display(), procs(&dir));
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init's /proc/pid/cgroup");
    assert!(host_view.contains(&format!("/system.slice/{}", s.unit)), "{host_view}");
    // An exec'd process joins the same scope.
    let pid_file = b.scratch("exec.pid");
    rt.cmd_to_files(&["exec", "-d", "--pid-file", path_str(&pid_file), &id, "sleep", "1000"], &b, "exec").ok();
    let exec_pid: i32 = fs::read_to_string(&pid_file).expect("exec pid file").trim().parse().expect("exec pid");
    assert!(procs(&dir).contains(&exec_pid), "exec'd {exec_pid} not in {}: {:?}", dir.display(), procs(&dir));
    rt.delete_force(&id).ok();
    s.assert_gone();
    rt.assert_nothing_left(&id);
}

fn same_values_as_runc(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    let b = sleeper(&s).set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}],
            "memory": {"limit": 67108864},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 77}
        }),
    );
    let Some(id) = started(rt, &s, &b, "sdvalues") else { return };
    let read = |p: PathBuf| fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())).trim().to_owned();
    if unified() {
        let d = s.dir("");
        assert_eq!(read(d.join("memory.max")), "67108864");
        assert_eq!(read(d.join("cpu.weight")), "20");
        assert_eq!(read(d.join("cpu.max")), "50000 100000");
        assert_eq!(read(d.join("pids.max")), "77");
    } else {
        assert_eq!(read(s.dir("memory").join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(s.dir("cpu").join("cpu.shares")), "512");
        assert_eq!(read(s.dir("cpu").join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(s.dir("cpu").join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(s.dir("pids").join("pids.max")), "77");
        let list = read(s.dir("devices").join("devices.list"));
        assert!(list.contains("c 1:11 r") && list.contains("c 1:3 rwm") && !list.contains("a *:* rwm"), "devices.list: {list}");
    }
    // systemd's own record of the limits (what it would re-apply on a reload).
    assert_eq!(s.show("TasksMax"), "77");
    assert_eq!(s.show("CPUQuotaPerSecUSec"), "500ms");
    // An allowed device stays usable under both device filters (systemd's DevicePolicy=strict +
    // DeviceAllow and the runtime's own rules).
    let r = rt.exec(&id, &["sh", "-c", "echo x > /dev/null && echo null-ok"]).ok();
    assert!(r.stdout.contains("null-ok"));
    rt.delete_force(&id).ok();
    s.assert_gone();
}

fn delete_stops_the_unit(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    let b = sleeper(&s);
    let Some(id) = started(rt, &s, &b, "sddelete") else { return };
    // Through the runtime (the pid-namespace init ignores TERM without a handler).
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    s.assert_gone();
    rt.assert_nothing_left(&id);
}

fn sigkill_then_delete_leaves_nothing(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    let b = sleeper(&s);
    let Some(id) = started(rt, &s, &b, "sdkill") else { return };
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    // The container init is a process this test started (through the runtime).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("SIGKILL init");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    s.assert_gone();
    rt.assert_nothing_left(&id);
}

fn delete_force_running_stops_the_unit(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    // A second process in the scope that is not the init: delete must not leave it running.
    let b = Bundle::new().cgroups_path_override(&s.cgroups_path).sh("sleep 1000 & echo ready; exec sleep 1000");
    let Some(id) = started(rt, &s, &b, "sdforce") else { return };
    assert_eq!(procs(&s.dir("pids")).len(), 2);
    rt.delete_force(&id).ok();
    s.assert_gone();
    rt.assert_nothing_left(&id);
}

fn update_records_limits_in_the_unit(rt: &RuntimeUnderTest) {
    let s = Scope::new();
    let b = sleeper(&s).set("/linux/resources/pids", json!({"limit": 77}));
    let Some(id) = started(rt, &s, &b, "sdupdate") else { return };
    rt.cmd(&["update", "--pids-limit", "55", &id]).ok();
    // In the cgroup file, and in the unit (which systemd re-applies on its own).
    assert_eq!(fs::read_to_string(s.dir("pids").join("pids.max")).expect("pids.max").trim(), "55");
    assert_eq!(s.show("TasksMax"), "55");
    rt.delete_force(&id).ok();
    s.assert_gone();
}
