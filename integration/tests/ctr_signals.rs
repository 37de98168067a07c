//! The shim's Kill with real-time signals (issue 17): containerd passes the number its client gave
//! (`ctr task kill -s 64`, podman's `kill -s 64`); every number 1..64 must reach the process, as
//! with containerd-shim-runc-v2.

use std::fs;
use std::time::Duration;

use brisk_integration::containerd::{wait_for, Containerd, Version};
use brisk_integration::ctr_matrix;

fn realtime_signals_reach_the_task(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("rtsig");
    let log = cd.dir.join("rtsig.log");
    let log_uri = format!("file://{}", log.display());
    let mut args = cd.run_args(runtime, &["-d", "--log-uri", &log_uri], &image, &id);
    args.extend([
        "sh",
        "-c",
        "for s in 34 50 64; do trap \"echo got-$s\" $s; done; echo ready; while :; do sleep 0.05 & wait $!; done",
    ]);
    cd.ctr_ok(&args).unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    let has = |what: &str| fs::read_to_string(&log).is_ok_and(|t| t.lines().any(|l| l == what));
    wait_for("ready", Duration::from_secs(60), || Ok(has("ready"))).expect("ready");
    for n in ["64", "34", "50"] {
        cd.ctr_ok(&["task", "kill", "-s", n, &id]).unwrap_or_else(|e| panic!("kill -s {n}: {e}"));
        let want = format!("got-{n}");
        wait_for(&want, Duration::from_secs(60), || Ok(has(&want))).unwrap_or_else(|e| panic!("{e}: log:\n{}", fs::read_to_string(&log).unwrap_or_default()));
    }
    cd.ctr_ok(&["task", "kill", "-s", "SIGKILL", &id]).expect("kill");
    cd.wait_task_status(&id, "STOPPED").expect("stopped");
    cd.ctr_ok(&["task", "delete", &id]).expect("task delete");
    cd.ctr_ok(&["containers", "delete", &id]).expect("container delete");
}

ctr_matrix!(realtime_signals_reach_the_task);
