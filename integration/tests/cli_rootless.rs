//! Rootless containers, as a new user of the host runs them (issue 11): every test runs as a fresh
//! ordinary user (with /etc/subuid and /etc/subgid ranges and its own XDG_RUNTIME_DIR) against
//! runc 1.1.5 and brisk, with the config `spec --rootless` generates. The host has hybrid cgroups
//! and the user has no delegated cgroup, so containers run without cgroups and limits are refused.

use std::path::{Path, PathBuf};

use brisk_integration::bundle::Bundle;
use brisk_integration::rootless::{brisk_bin, TestUser};
use brisk_integration::runtime_cli::{path_str, CmdResult, RUNC_DEFAULT};
use serde_json::{json, Value};

macro_rules! rootless_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn runc() {
                    super::$name(&super::runc_bin())
                }
                #[test]
                fn brisk() {
                    super::$name(&brisk_integration::rootless::brisk_bin())
                }
            }
        )*
    };
}

rootless_tests!(
    tutorial_run,
    lifecycle,
    detached_run_pid_file,
    multi_range_mapping_through_newuidmap,
    mapping_outside_subuid_is_refused,
    resources_without_cgroup_are_refused,
    no_xdg_runtime_dir,
    sysfs_without_netns,
    hooks_run_as_the_user,
    delegated_v1_cgroups_hold_limits
);

fn runc_bin() -> PathBuf {
    std::env::var_os("RUNC_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(RUNC_DEFAULT))
}

fn is_brisk(bin: &Path) -> bool {
    bin == brisk_bin()
}

/// `spec --rootless` as the user in a fresh bundle it owns, then `edit` applied to the config.
fn rootless_bundle(u: &TestUser, bin: &Path, edit: impl FnOnce(&mut Value)) -> Bundle {
    let b = u.bundle();
    let r = u.cmd_in(b.path(), true, bin, &["spec", "--rootless"]);
    assert!(r.status.success(), "{} failed: {}", r.cmdline, r.stderr);
    let p = b.path().join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("config.json")).expect("config.json is JSON");
    config["process"]["terminal"] = json!(false);
    edit(&mut config);
    // Written by root into the user's bundle: the file stays readable (0644) for the user.
    std::fs::write(&p, serde_json::to_string_pretty(&config).expect("serialise")).expect("write config.json");
    b
}

#[track_caller]
fn ok(r: CmdResult) -> CmdResult {
    assert!(r.status.success(), "{} failed ({}):\nstdout: {}\nstderr: {}", r.cmdline, r.status, r.stdout, r.stderr);
    r
}

#[track_caller]
fn failed(r: CmdResult) -> CmdResult {
    assert!(!r.status.success(), "{} succeeded but must fail:\nstdout: {}\nstderr: {}", r.cmdline, r.stdout, r.stderr);
    r
}

/// Nothing of container `id` is left on the host: no state entry, no cgroup directory in any
/// hierarchy, no mount of the bundle's rootfs.
#[track_caller]
fn nothing_left(u: &TestUser, bin: &Path, id: &str, bundle: &Bundle) {
    assert!(u.containers(bin).is_empty(), "state left under {}: {:?}", u.state_root(bin).display(), u.containers(bin));
    for e in std::fs::read_dir("/sys/fs/cgroup").expect("read /sys/fs/cgroup").flatten() {
        let d = e.path().join(id);
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mi.contains(path_str(bundle.path())), "mount of the bundle left on the host:\n{mi}");
    // A killed init may still be exiting (a zombie until its parent reaps it): wait, bounded.
    for _ in 0..500 {
        if u.processes().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(u.processes().is_empty(), "processes of {} left: {:?}", u.name, u.processes());
}

fn state(u: &TestUser, bin: &Path, id: &str) -> Value {
    let r = ok(u.cmd_in(Path::new("/"), true, bin, &["state", id]));
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", r.stdout))
}

/// runc's rootless tutorial: `spec --rootless && run ID` with no --root, as a new user. The
/// container is uid 0 of a user namespace that maps only the user's own uid.
fn tutorial_run(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| c["process"]["args"] = json!(["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map"]));
    let id = "tutorial";
    let r = ok(u.cmd_in(b.path(), true, bin, &["run", id]));
    assert!(r.stdout.contains("uid=0(root) gid=0(root)"), "container is not root in its namespace:\n{}", r.stdout);
    let maps: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| f.len() == 3 && f.iter().all(|x| x.parse::<u64>().is_ok())).collect();
    assert_eq!(maps, vec![vec!["0", &u.uid.to_string()[..], "1"], vec!["0", &u.gid.to_string()[..], "1"]], "uid_map and gid_map:\n{}", r.stdout);
    // The default root is $XDG_RUNTIME_DIR/<runtime>, and run removed the container from it.
    assert!(u.state_root(bin).is_dir(), "no state root at {}", u.state_root(bin).display());
    nothing_left(&u, bin, id, &b);
}

/// create, start, state, list, exec, kill, delete as the user; ps and pause are refused (no
/// cgroup could be created), as runc refuses them.
fn lifecycle(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| c["process"]["args"] = json!(["sleep", "600"]));
    let id = "life";
    let cwd = b.path();
    ok(u.cmd_in(cwd, true, bin, &["create", id]));
    assert_eq!(state(&u, bin, id)["status"], "created");
    ok(u.cmd_in(cwd, true, bin, &["start", id]));
    let st = state(&u, bin, id);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().expect("pid");
    // The init runs as the user on the host.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("init status");
    let host_uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()).expect("Uid line");
    assert_eq!(host_uid, u.uid.to_string());
    let list = ok(u.cmd_in(cwd, true, bin, &["list", "--format", "json"]));
    let list: Value = serde_json::from_str(&list.stdout).expect("list json");
    assert_eq!(list.as_array().map(|a| a.iter().map(|c| c["id"].clone()).collect::<Vec<_>>()), Some(vec![json!(id)]));
    // /dev/null is the host's node bind-mounted (no mknod in a user namespace), and usable.
    let ex = ok(u.cmd_in(cwd, true, bin, &["exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map; test -c /dev/null && echo x > /dev/null && echo null-ok"]));
    assert!(ex.stdout.contains("null-ok"), "/dev/null unusable: {}", ex.stdout);
    assert_eq!(ex.stdout.lines().next(), Some("0"), "exec: {}", ex.stdout);
    assert!(ex.stdout.contains(&format!(" {} ", u.uid)), "exec is not in the container's user namespace: {}", ex.stdout);
    // No cgroup: there is no process list and no freezer (runc: "cannot toggle freezer: cgroups
    // not configured for container").
    failed(u.cmd_in(cwd, true, bin, &["ps", id]));
    let p = failed(u.cmd_in(cwd, true, bin, &["pause", id]));
    assert!(p.stderr.contains("cgroups not configured"), "pause error: {}", p.stderr);
    ok(u.cmd_in(cwd, true, bin, &["kill", id, "KILL"]));
    for _ in 0..500 {
        if state(&u, bin, id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(state(&u, bin, id)["status"], "stopped");
    ok(u.cmd_in(cwd, true, bin, &["delete", id]));
    nothing_left(&u, bin, id, &b);
}

/// `run -d --pid-file` as the user: the pid file names the container's init.
fn detached_run_pid_file(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| c["process"]["args"] = json!(["sleep", "600"]));
    let id = "detached";
    let pid_file = b.path().join("pid");
    ok(u.cmd_in(b.path(), true, bin, &["run", "-d", "--pid-file", path_str(&pid_file), id]));
    let pid: i64 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid file holds a number");
    let st = state(&u, bin, id);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_i64(), Some(pid));
    ok(u.cmd_in(b.path(), true, bin, &["delete", "-f", id]));
    nothing_left(&u, bin, id, &b);
}

/// Several ranges (root inside is the user, 1.. are the user's subordinate ids) need the setuid
/// newuidmap/newgidmap: uid 1000 inside is subuid+999 on the host.
fn multi_range_mapping_through_newuidmap(bin: &Path) {
    let u = TestUser::create();
    let (su, sg) = (u.subuid, u.subgid);
    let (uid, gid) = (u.uid, u.gid);
    let b = rootless_bundle(&u, bin, |c| {
        c["process"]["args"] = json!(["sleep", "600"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": su.0, "size": su.1}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}, {"containerID": 1, "hostID": sg.0, "size": sg.1}]);
    });
    let id = "multi";
    ok(u.cmd_in(b.path(), true, bin, &["run", "-d", id]));
    let pid = state(&u, bin, id)["pid"].as_i64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("init status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).map(str::to_owned);
    assert_eq!(field("Uid:"), Some((su.0 + 999).to_string()), "host uid of container uid 1000");
    assert_eq!(field("Gid:"), Some((sg.0 + 999).to_string()), "host gid of container gid 1000");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
    assert_eq!(map.lines().count(), 2, "uid_map: {map}");
    ok(u.cmd_in(b.path(), true, bin, &["delete", "-f", id]));
    nothing_left(&u, bin, id, &b);
}

/// Host ids the user was not granted: newuidmap refuses, create fails and leaves nothing. brisk
/// names the mapping and the /etc/subuid line that would allow it.
fn mapping_outside_subuid_is_refused(bin: &Path) {
    let u = TestUser::create();
    let uid = u.uid;
    // Far above any range useradd hands out (SUB_UID_MAX is 600100000).
    let foreign = 3_000_000_000u32;
    let b = rootless_bundle(&u, bin, |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": foreign, "size": 1000}]);
    });
    let id = "foreign";
    let r = failed(u.cmd_in(b.path(), true, bin, &["run", id]));
    assert!(r.stderr.contains("newuidmap"), "error does not say newuidmap refused: {}", r.stderr);
    if is_brisk(bin) {
        assert!(r.stderr.contains("uidMappings"), "error does not name the field: {}", r.stderr);
        assert!(r.stderr.contains(&format!("{}:{foreign}:1000", u.name)), "error does not give the /etc/subuid line: {}", r.stderr);
    }
    nothing_left(&u, bin, id, &b);
}

/// A memory limit where the user cannot create the memory cgroup (v1 host, no delegation): both
/// refuse it, naming the limit; brisk names the config field.
fn resources_without_cgroup_are_refused(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| c["linux"]["resources"] = json!({"memory": {"limit": 104857600}}));
    let id = "limits";
    let r = failed(u.cmd_in(b.path(), true, bin, &["run", id]));
    assert!(r.stderr.contains("memory"), "error does not name the memory limit: {}", r.stderr);
    if is_brisk(bin) {
        assert!(r.stderr.contains("linux.resources.memory"), "error does not name the field: {}", r.stderr);
    }
    nothing_left(&u, bin, id, &b);
}

/// Without XDG_RUNTIME_DIR and --root there is no state dir the user may use: both fail and
/// nothing runs. runc falls back to /run/runc (permission denied); brisk says what to set.
fn no_xdg_runtime_dir(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| c["process"]["args"] = json!(["true"]));
    let r = failed(u.cmd_in(b.path(), false, bin, &["run", "noxdg"]));
    if is_brisk(bin) {
        assert!(r.stderr.contains("XDG_RUNTIME_DIR") && r.stderr.contains("--root"), "error does not say what to set: {}", r.stderr);
    } else {
        assert!(r.stderr.contains("permission denied"), "runc: {}", r.stderr);
    }
    // With --root it works (runc's tutorial passes --root /tmp/runc).
    let root = u.runtime_dir.join("explicit");
    ok(u.cmd_in(b.path(), false, bin, &["--root", path_str(&root), "run", "noxdg"]));
    nothing_left(&u, bin, "noxdg", &b);
}

/// A `sysfs` mount without a new network namespace: the kernel refuses a fresh sysfs (EPERM), so
/// brisk binds the host's /sys with the entry's flags, as runc 1.2 does; runc 1.1.5 fails (the
/// one place this test expects a different result from the reference, on purpose).
fn sysfs_without_netns(bin: &Path) {
    let u = TestUser::create();
    let b = rootless_bundle(&u, bin, |c| {
        c["process"]["args"] = json!(["sh", "-c", "grep ' /sys ' /proc/self/mountinfo; test -d /sys/class && echo sys-ok"]);
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| m["destination"] != "/sys");
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}));
    });
    let id = "sysfs";
    let r = u.cmd_in(b.path(), true, bin, &["run", id]);
    if is_brisk(bin) {
        let r = ok(r);
        assert!(r.stdout.contains("sys-ok"), "no /sys in the container: {}", r.stdout);
        let line = r.stdout.lines().find(|l| l.contains(" /sys ")).unwrap_or_default().to_string();
        assert!(line.split_whitespace().nth(5).is_some_and(|o| o.split(',').any(|f| f == "ro")), "/sys is not read-only: {line}");
    } else {
        let r = failed(r);
        assert!(r.stderr.contains("operation not permitted"), "runc: {}", r.stderr);
    }
    nothing_left(&u, bin, id, &b);
}

/// `spec --rootless` has the shape of runc's: the same mounts (the /sys rbind, the read-only
/// cgroup mount), namespaces (user, no network), mappings of the caller's own uid/gid, paths and
/// process settings. Deliberate differences, left out of the comparison: `ociVersion`, `hostname`,
/// `process.capabilities` and `linux.seccomp` (brisk's spec uses containerd CRI's default
/// capability set and seccomp profile, see README).
#[test]
fn spec_rootless_same_shape_as_runc() {
    let u = TestUser::create();
    let gen = |bin: &Path| -> Value {
        let b = u.bundle();
        ok(u.cmd_in(b.path(), true, bin, &["spec", "--rootless"]));
        serde_json::from_str(&std::fs::read_to_string(b.path().join("config.json")).expect("config.json")).expect("JSON")
    };
    let (runc, brisk) = (gen(&runc_bin()), gen(&brisk_bin()));
    for ptr in [
        "/mounts",
        "/root",
        "/linux/namespaces",
        "/linux/uidMappings",
        "/linux/gidMappings",
        "/linux/maskedPaths",
        "/linux/readonlyPaths",
        "/linux/resources",
        "/process/user",
        "/process/args",
        "/process/env",
        "/process/cwd",
        "/process/rlimits",
        "/process/noNewPrivileges",
        "/process/terminal",
    ] {
        assert_eq!(brisk.pointer(ptr), runc.pointer(ptr), "spec --rootless differs from runc's at {ptr}");
    }
    assert_eq!(runc.pointer("/linux/uidMappings/0/hostID"), Some(&json!(u.uid)));
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&brisk), keys(&runc), "top-level keys");
    let mut linux = keys(&brisk["linux"]);
    linux.retain(|k| k != "seccomp");
    assert_eq!(linux, keys(&runc["linux"]), "linux keys (brisk adds seccomp)");
}

/// prestart and poststop hooks run, as the user, in the runtime's namespace.
fn hooks_run_as_the_user(bin: &Path) {
    let u = TestUser::create();
    let out = std::env::temp_dir().join(format!("{}-hooks", u.name));
    std::fs::create_dir(&out).expect("hook output dir");
    std::os::unix::fs::chown(&out, Some(u.uid), Some(u.gid)).expect("chown hook output dir");
    let dir = out.clone();
    let b = rootless_bundle(&u, bin, move |c| {
        c["process"]["args"] = json!(["true"]);
        let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("id -u > {}/{name}", dir.display())]});
        c["hooks"] = json!({"prestart": [hook("prestart")], "poststop": [hook("poststop")]});
    });
    let id = "hooks";
    let r = u.cmd_in(b.path(), true, bin, &["run", id]);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default().trim().to_string();
    let (pre, post) = (read("prestart"), read("poststop"));
    let _ = std::fs::remove_dir_all(&out);
    ok(r);
    assert_eq!(pre, u.uid.to_string(), "prestart hook uid");
    assert_eq!(post, u.uid.to_string(), "poststop hook uid");
    nothing_left(&u, bin, id, &b);
}

/// v1 cgroup directories root made for the test and chowned to the user; removed on drop (after
/// the user's containers are gone: declare it before the [`TestUser`]).
struct Delegated(Vec<PathBuf>);

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// With a cgroup delegated to the user (a directory per v1 hierarchy it owns, named by
/// linux.cgroupsPath) the container runs in it, its memory limit is written, pause works, and no
/// device rule is written (the devices cgroup keeps the parent's "a *:* rwm"): runc skips the
/// devices controller in rootless mode. Before, brisk failed writing devices.allow.
fn delegated_v1_cgroups_hold_limits(bin: &Path) {
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("no v1 memory hierarchy on this host: this test is for v1/hybrid hosts");
        return;
    }
    let mut delegated = Delegated(Vec::new());
    let u = TestUser::create();
    for e in std::fs::read_dir("/sys/fs/cgroup").expect("read /sys/fs/cgroup").flatten() {
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir || e.file_name() == "unified" {
            continue;
        }
        let d = e.path().join(&u.name);
        std::fs::create_dir(&d).unwrap_or_else(|err| panic!("mkdir {}: {err}", d.display()));
        delegated.0.push(d.clone());
        // A delegated cpuset cgroup needs cpus and mems before any task can join (an admin
        // delegating one sets them; a new v1 cpuset directory starts empty).
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(e.path().join(f)) {
                std::fs::write(d.join(f), v.trim()).unwrap_or_else(|err| panic!("write {}/{f}: {err}", d.display()));
            }
        }
        for f in std::iter::once(d.clone()).chain(std::fs::read_dir(&d).expect("read cgroup dir").flatten().map(|f| f.path())) {
            std::os::unix::fs::chown(&f, Some(u.uid), Some(u.gid)).unwrap_or_else(|err| panic!("chown {}: {err}", f.display()));
        }
    }
    let cg = format!("/{}/c", u.name);
    let cg2 = cg.clone();
    let b = rootless_bundle(&u, bin, move |c| {
        c["process"]["args"] = json!(["sleep", "600"]);
        c["linux"]["cgroupsPath"] = json!(cg2);
        c["linux"]["resources"] = json!({"memory": {"limit": 104857600}, "devices": [{"allow": false, "access": "rwm"}]});
    });
    let id = "deleg";
    ok(u.cmd_in(b.path(), true, bin, &["run", "-d", id]));
    let pid = state(&u, bin, id)["pid"].as_i64().expect("pid");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init's cgroups");
    assert!(own.lines().any(|l| l.ends_with(&format!(":memory:{cg}"))), "init is not in {cg}:\n{own}");
    let mem = format!("/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes");
    assert_eq!(std::fs::read_to_string(&mem).expect("memory limit").trim(), "104857600");
    let devs = std::fs::read_to_string(format!("/sys/fs/cgroup/devices{cg}/devices.list")).expect("devices.list");
    assert_eq!(devs.trim(), "a *:* rwm", "device rules were written in rootless mode");
    ok(u.cmd_in(b.path(), true, bin, &["pause", id]));
    assert_eq!(state(&u, bin, id)["status"], "paused");
    ok(u.cmd_in(b.path(), true, bin, &["resume", id]));
    ok(u.cmd_in(b.path(), true, bin, &["delete", "-f", id]));
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{cg}")).exists(), "container cgroup left behind");
    nothing_left(&u, bin, id, &b);
}
