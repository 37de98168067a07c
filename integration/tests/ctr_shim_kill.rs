//! The shim SIGKILLed under a running container: containerd notices, and
//! `ctr task delete` / `ctr container delete` clean up everything.

use std::time::Duration;

use brisk_integration::containerd::{wait_for, Containerd, Pidfd, Version};
use brisk_integration::ctr_matrix;

fn shim_killed_cleanup(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("sk");
    let mut args = cd.run_args(runtime, &["-d"], &image, &id);
    args.extend(["sh", "-c", "while :; do sleep 0.1; done"]);
    cd.ctr_ok(&args)
        .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    cd.wait_task_status(&id, "RUNNING").expect("running");
    let init = cd
        .task(&id)
        .expect("ls")
        .map(|t| t.1)
        .expect("listed");
    let init_fd = Pidfd::open(init).expect("pidfd of the container init");
    assert!(
        cd.mounts().contains(&cd.rootfs(&id)),
        "rootfs mounted while running"
    );

    cd.kill_shim(&id).expect("SIGKILL shim");
    wait_for(
        "containerd to notice the dead shim",
        Duration::from_secs(60),
        || Ok(cd.task_status(&id)?.as_deref() != Some("RUNNING")),
    )
    .expect("task no longer RUNNING");

    // containerd may already have deleted the task when it cleaned up after the
    // shim; then ctr reports it missing. Either way no task may remain.
    let del = cd.ctr(&["task", "delete", &id]);
    let stderr = String::from_utf8_lossy(&del.stderr).to_lowercase();
    assert!(
        del.status.success() || stderr.contains("not found"),
        "task delete: {} {stderr}",
        del.status
    );
    assert_eq!(
        cd.task_status(&id).expect("ls"),
        None,
        "task remains after delete"
    );
    cd.ctr_ok(&["containers", "delete", &id])
        .expect("container delete");

    assert!(
        init_fd.wait_exit(Duration::from_secs(60)),
        "container init {init} still alive"
    );
    // containerd unmounts the rootfs in its dead-shim cleanup (a `shim delete`
    // run), which can still be in flight when ctr returns.
    let unmounted = wait_for("rootfs unmount", Duration::from_secs(60), || {
        Ok(!cd.mounts().contains(&cd.rootfs(&id)))
    });
    assert!(unmounted.is_ok(), "rootfs still mounted: {:?}", cd.mounts());
    assert!(
        cd.cgroup_pids().is_empty(),
        "processes left in container cgroups: {:?}",
        cd.cgroup_pids()
    );
    // The cleanup `shim delete` (and 1.6's `containerd publish`) run briefly
    // after the delete returns; they must finish by themselves.
    let left = wait_for(
        "shim helper processes to exit",
        Duration::from_secs(60),
        || Ok(cd.shim_pids().is_empty()),
    );
    assert!(
        left.is_ok(),
        "shim processes left: {:?}",
        cd.shim_pids()
            .iter()
            .map(|&p| (
                p,
                std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default()
            ))
            .collect::<Vec<_>>()
    );
}

ctr_matrix!(shim_killed_cleanup);
