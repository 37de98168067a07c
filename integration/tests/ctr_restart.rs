//! containerd killed and restarted under a running container: the shim keeps
//! the container alive, containerd reconnects, output keeps flowing and the
//! later exit is recorded.

use std::fs;
use std::time::Duration;

use brisk_integration::containerd::{wait_for, Containerd, Version};
use brisk_integration::ctr_matrix;

/// Highest "tick N" in the log.
fn last_tick(log: &std::path::Path) -> Option<u64> {
    fs::read_to_string(log)
        .ok()?
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
        .max()
}

fn restart_keeps_task(version: Version, runtime: &str) {
    let (mut cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("rst");
    let log = cd.dir.join("counter.log");
    let log_uri = format!("file://{}", log.display());
    let mut args = cd.run_args(runtime, &["-d", "--log-uri", &log_uri], &image, &id);
    args.extend([
        "sh",
        "-c",
        "trap 'exit 3' USR1; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    cd.ctr_ok(&args)
        .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    cd.wait_task_status(&id, "RUNNING").expect("running");
    let pid_before = cd
        .task(&id)
        .expect("ls")
        .map(|t| t.1)
        .expect("listed");
    wait_for("counter output", Duration::from_secs(60), || {
        Ok(last_tick(&log).is_some_and(|n| n >= 2))
    })
    .expect("ticks");
    let shim_before = cd.shim_pid(&id).expect("shim pid");

    let old_daemon = cd.pid();
    cd.restart().expect("restart containerd");
    assert_ne!(cd.pid(), old_daemon, "a new containerd process runs");
    let at_restart = last_tick(&log).expect("ticks at restart");

    let row = cd
        .task(&id)
        .expect("ls after restart")
        .expect("task still listed after restart");
    assert_eq!(
        (row.1, row.2.as_str()),
        (pid_before, "RUNNING"),
        "task after restart"
    );
    assert_eq!(
        cd.shim_pid(&id).expect("shim after restart"),
        shim_before,
        "same shim serves the task"
    );
    wait_for(
        "output to keep flowing after restart",
        Duration::from_secs(60),
        || Ok(last_tick(&log).is_some_and(|n| n > at_restart + 2)),
    )
    .expect("ticks after restart");

    // The restarted containerd still drives the task: an exec runs and
    // reports its output, a signal stops the loop, and the init's exit status
    // is recorded. (Stopping the loop from the exec itself would race: the
    // init can exit and take the exec down before it reports.)
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        "--fifo-dir",
        cd.fifo_dir_str(),
        &id,
        "sh",
        "-c",
        "echo alive; sleep 0.5",
    ]);
    assert!(
        out.status.success(),
        "exec after restart: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
    cd.ctr_ok(&["task", "kill", "-s", "SIGUSR1", &id])
        .expect("signal after restart");
    cd.wait_task_status(&id, "STOPPED")
        .expect("stopped after restart");
    let del = cd.ctr(&["task", "delete", &id]);
    assert!(
        del.status.success(),
        "task delete: {}",
        String::from_utf8_lossy(&del.stderr)
    );
    assert!(
        String::from_utf8_lossy(&del.stderr).contains("exit code 3"),
        "exit recorded: {}",
        String::from_utf8_lossy(&del.stderr)
    );
    cd.ctr_ok(&["containers", "delete", &id])
        .expect("container delete");
    let gone = wait_for("shim exit after delete", Duration::from_secs(60), || {
        Ok(cd.shim_pids().is_empty())
    });
    assert!(gone.is_ok(), "shim left: {:?}", cd.shim_pids());
}

ctr_matrix!(restart_keeps_task);
