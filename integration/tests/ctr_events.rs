//! The task event stream as `ctr events` sees it.

use std::time::Duration;

use brisk_integration::containerd::{Containerd, Version};
use brisk_integration::ctr_matrix;
use brisk_integration::events::{check_in_order, Events};

/// Attempts per scenario. containerd 2.x's runc shim sends /tasks/delete
/// through its async event forwarder and is shut down right after Delete
/// returns, so that one event is occasionally lost (seen ~1 run in 10 on
/// 2.1.9). There, a scenario whose only miss is /tasks/delete is re-run on a
/// fresh container; every other miss fails at once, and a shim that never
/// sends /tasks/delete still fails every attempt.
fn attempts(version: Version) -> usize {
    match version {
        Version::V2_1 => 3,
        _ => 1,
    }
}

fn check_events(
    version: Version,
    attempt: usize,
    events: &[(String, String)],
    want: &[(&str, &str)],
) -> bool {
    match check_in_order(events, want) {
        Ok(()) => true,
        Err(e) => {
            let without_delete: Vec<(&str, &str)> = want
                .iter()
                .copied()
                .filter(|(t, _)| *t != "/tasks/delete")
                .collect();
            let only_delete_lost = check_in_order(events, &without_delete).is_ok()
                && !events.iter().any(|(t, _)| t == "/tasks/delete");
            if only_delete_lost && attempt + 1 < attempts(version) {
                eprintln!("containerd {version}: /tasks/delete lost (attempt {attempt}); retrying");
                return false;
            }
            panic!("{e}");
        }
    }
}

fn run_rm_events(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let mut ev = Events::subscribe(&cd);
    for attempt in 0..attempts(version) {
        let id = cd.new_id("ev");
        let mut args = cd.run_args(runtime, &["--rm"], &image, &id);
        args.extend(["sh", "-c", "exit 9"]);
        let out = cd.ctr(&args);
        assert_eq!(
            out.status.code(),
            Some(9),
            "ctr run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // containerd itself publishes /containers/delete, after the task is gone.
        let barrier = format!("\"id\":\"{id}\"");
        assert!(
            ev.wait_for(Duration::from_secs(60), |l| l
                .contains("/containers/delete")
                && l.contains(&barrier)),
            "no /containers/delete: {:#?}",
            ev.lines
        );
        let want = [
            ("/containers/create", ""),
            ("/tasks/create", ""),
            ("/tasks/start", ""),
            ("/tasks/exit", "\"exit_status\":9"),
            ("/tasks/delete", "\"exit_status\":9"),
            ("/containers/delete", ""),
        ];
        if check_events(version, attempt, &ev.for_container(&id), &want) {
            return;
        }
    }
}

fn exec_events(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let mut ev = Events::subscribe(&cd);
    for attempt in 0..attempts(version) {
        let id = cd.new_id("evx");
        let mut args = cd.run_args(runtime, &["-d"], &image, &id);
        args.extend([
            "sh",
            "-c",
            "trap 'exit 143' TERM; while :; do sleep 0.1; done",
        ]);
        cd.ctr_ok(&args).expect("ctr run -d");
        let out = cd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            "ex1",
            "--fifo-dir",
            cd.fifo_dir_str(),
            &id,
            "sh",
            "-c",
            "exit 2",
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "exec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cd.ctr_ok(&["task", "kill", "-s", "SIGTERM", &id])
            .expect("kill");
        cd.wait_task_status(&id, "STOPPED").expect("stopped");
        cd.ctr_ok(&["task", "delete", &id]).expect("task delete");
        cd.ctr_ok(&["containers", "delete", &id])
            .expect("container delete");
        let barrier = format!("\"id\":\"{id}\"");
        assert!(
            ev.wait_for(Duration::from_secs(60), |l| l
                .contains("/containers/delete")
                && l.contains(&barrier)),
            "no /containers/delete: {:#?}\ncontainerd log:\n{}",
            ev.lines,
            cd.log_tail(80)
        );
        let events = ev.for_container(&id);
        let init_exit = format!("\"id\":\"{id}\"");
        let want = [
            ("/tasks/create", ""),
            ("/tasks/start", ""),
            ("/tasks/exec-added", "\"exec_id\":\"ex1\""),
            ("/tasks/exec-started", "\"exec_id\":\"ex1\""),
            ("/tasks/exit", "\"id\":\"ex1\""),
            ("/tasks/exit", init_exit.as_str()),
            ("/tasks/delete", "\"exit_status\":143"),
            ("/containers/delete", ""),
        ];
        let exec_exit = events
            .iter()
            .find(|(t, j)| t == "/tasks/exit" && j.contains("\"id\":\"ex1\""))
            .expect("exec exit");
        assert!(
            exec_exit.1.contains("\"exit_status\":2"),
            "exec exit status: {}",
            exec_exit.1
        );
        if check_events(version, attempt, &events, &want) {
            return;
        }
    }
}

ctr_matrix!(run_rm_events, exec_events);
