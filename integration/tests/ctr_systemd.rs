//! The systemd cgroup driver through containerd 1.6 (`ctr run --cgroup slice:prefix:name`): runc's
//! shim with `--runc-systemd-cgroup`, brisk's shim with `SystemdCgroup = true` from a runtime
//! config file (ctr allows `--runc-systemd-cgroup` only for the runc runtime). The task runs in
//! the scope; killing and deleting it stops the unit. Where systemd is not PID 1 both must refuse
//! the task. The systemd guest lane runs it with SYSTEMD_CLI_TESTS=ctr_systemd.

use std::path::Path;
use std::process::Command;

use brisk_integration::containerd::{Containerd, Version, BRISK, RUNC};

fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemctl show -p PROP --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl").args(["show", "-p", prop, "--value", unit]).output().expect("running systemctl show");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Stops the unit if the test failed before the shim did (only this test's unit, by name).
struct UnitGuard(String);

impl Drop for UnitGuard {
    fn drop(&mut self) {
        if systemd_booted() && show(&self.0, "LoadState") == "loaded" {
            let _ = Command::new("systemctl").args(["stop", &self.0]).status();
        }
    }
}

fn task_in_a_scope(runtime: &str) {
    let (cd, image) = Containerd::with_busybox(Version::V1_6).expect("containerd with busybox");
    let id = cd.new_id("sd");
    let unit = format!("brisk-ctr-{id}.scope");
    let _guard = UnitGuard(unit.clone());
    let cgroup = format!("system.slice:brisk-ctr:{id}");
    let config = cd.dir.join("brisk-systemd.toml");
    std::fs::write(&config, "SystemdCgroup = true\n").expect("writing the runtime config");
    let driver: Vec<&str> = if runtime == RUNC { vec!["--runc-systemd-cgroup"] } else { vec!["--runtime-config-path", config.to_str().expect("utf-8")] };
    let mut extra = vec!["-d", "--cgroup", cgroup.as_str()];
    extra.extend(driver);
    let mut args = cd.run_args(runtime, &extra, &image, &id);
    args.extend(["sleep", "1000"]);
    let out = cd.ctr(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !systemd_booted() {
        assert!(!out.status.success(), "{runtime}: a systemd cgroup without systemd as PID 1 was accepted");
        if runtime == BRISK {
            assert!(stderr.contains("systemd is not PID 1"), "brisk's refusal should say why: {stderr}");
        }
        assert_eq!(show_nothing(&cd, &id), "", "{runtime}: task left behind");
        return;
    }
    assert!(out.status.success(), "ctr run failed: {}\nstderr: {stderr}\ncontainerd log:\n{}", out.status, cd.log_tail(30));
    let (_, pid, _) = cd.task(&id).expect("task ls").expect("the task is listed");
    assert_eq!(show(&unit, "ActiveState"), "active");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the task's /proc/pid/cgroup");
    assert!(cg.contains(&format!("/system.slice/{unit}")), "task {pid} is not in {unit}: {cg}");
    cd.ctr_ok(&["task", "kill", "-s", "KILL", &id]).expect("task kill");
    cd.wait_task_status(&id, "STOPPED").expect("the task stops");
    cd.ctr_ok(&["task", "delete", &id]).expect("task delete");
    cd.ctr_ok(&["containers", "delete", &id]).expect("container delete");
    assert_eq!(show(&unit, "LoadState"), "not-found", "{unit} still loaded after delete");
}

/// The task list line for `id` ("" when there is none).
fn show_nothing(cd: &Containerd, id: &str) -> String {
    cd.task(id).ok().flatten().map(|t| format!("{t:?}")).unwrap_or_default()
}

#[test]
fn task_in_a_scope_runc() {
    task_in_a_scope(RUNC)
}

#[test]
fn task_in_a_scope_brisk() {
    task_in_a_scope(BRISK)
}
