//! The Task API through `ctr task`: exec (with and without a tty), ps, kill,
//! pause/resume and delete of a detached container.

use std::time::Duration;

use brisk_integration::containerd::{wait_for, Containerd, Pty, Version};
use brisk_integration::ctr_matrix;

/// A pid 1 that exits 143 on SIGTERM (pid 1 has no default signal action).
const TRAP_LOOP: &str = "trap 'exit 143' TERM; while :; do sleep 0.1; done";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn task_lifecycle(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("life");
    let mut args = cd.run_args(runtime, &["-d"], &image, &id);
    args.extend(["sh", "-c", TRAP_LOOP]);
    cd.ctr_ok(&args)
        .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", cd.log_tail(30)));
    cd.wait_task_status(&id, "RUNNING").expect("task running");
    let init_pid = cd
        .task(&id)
        .expect("task ls")
        .map(|t| t.1)
        .expect("task listed");
    assert!(init_pid > 0);

    // exec without a tty: output and exit status come back through ctr.
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "plain",
        "--fifo-dir",
        cd.fifo_dir_str(),
        &id,
        "sh",
        "-c",
        // The sleep works around a ctr race, not a shim one: on exit ctr's
        // deferred process.Delete cancels its FIFO copy before draining it, so
        // output written right before exit is sometimes dropped (seen on 1.6
        // with the runc shim).
        "echo exec-out; echo exec-err >&2; sleep 0.5; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exec status; stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "exec-out\n");
    assert!(text(&out.stderr).contains("exec-err"));

    // exec with a tty: ctr insists its stdio is a terminal.
    let pty = Pty::open().expect("openpty");
    let mut child = pty
        .spawn(cd.ctr_command(&[
            "task",
            "exec",
            "-t",
            "--exec-id",
            "tty",
            "--fifo-dir",
            cd.fifo_dir_str(),
            &id,
            "sh",
            "-c",
            "tty; [ -t 0 ] && echo is-a-tty; exit 4",
        ]))
        .expect("spawn ctr task exec -t");
    let mut buf = Vec::new();
    let seen = pty.read_until(&mut buf, Duration::from_secs(60), |b| {
        text(b).contains("is-a-tty")
    });
    let status = child.wait_timeout(Duration::from_secs(60));
    assert!(seen, "exec -t output: {:?}", text(&buf));
    assert!(
        text(&buf).contains("/dev/pts/"),
        "tty inside the exec: {:?}",
        text(&buf)
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(4),
        "exec -t status; output {:?}",
        text(&buf)
    );

    // ps lists the init and a long-running exec.
    let mut sleeper = brisk_integration::containerd::ChildGuard(
        cd.ctr_command(&[
            "task",
            "exec",
            "--exec-id",
            "sleeper",
            "--fifo-dir",
            cd.fifo_dir_str(),
            &id,
            "sleep",
            "1000",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn exec sleeper"),
    );
    let mut ps_pids = Vec::new();
    wait_for(
        "exec to appear in ctr task ps",
        Duration::from_secs(60),
        || {
            let out = cd.ctr_ok(&["task", "ps", &id])?;
            ps_pids = out
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next()?.parse::<u32>().ok())
                .collect();
            Ok(ps_pids.len() >= 2)
        },
    )
    .expect("ps shows init and exec");
    assert!(
        ps_pids.contains(&init_pid),
        "ps {ps_pids:?} lacks init {init_pid}"
    );
    // The exec's process shows in ps (it is in the cgroup) slightly before
    // containerd marks the exec started; until then kill is refused
    // ("process ... is not running"/"not started"), so retry within a bound.
    let mut last_err = String::new();
    let killed = wait_for("exec kill accepted", Duration::from_secs(60), || {
        let out = cd.ctr(&["task", "kill", "--exec-id", "sleeper", "-s", "SIGKILL", &id]);
        last_err = String::from_utf8_lossy(&out.stderr).into_owned();
        Ok(out.status.success())
    });
    assert!(killed.is_ok(), "kill exec: {last_err}");
    let st = sleeper
        .wait_timeout(Duration::from_secs(60))
        .expect("exec ctr exits after SIGKILL");
    assert_eq!(st.code(), Some(137), "exec killed by SIGKILL reports 128+9");

    // pause / resume.
    cd.ctr_ok(&["task", "pause", &id]).expect("pause");
    assert_eq!(cd.task_status(&id).expect("ls").as_deref(), Some("PAUSED"));
    cd.ctr_ok(&["task", "resume", &id]).expect("resume");
    assert_eq!(cd.task_status(&id).expect("ls").as_deref(), Some("RUNNING"));

    // SIGTERM reaches the init's trap; delete reports its status.
    cd.ctr_ok(&["task", "kill", "-s", "SIGTERM", &id])
        .expect("kill SIGTERM");
    cd.wait_task_status(&id, "STOPPED").expect("task stopped");
    let del = cd.ctr(&["task", "delete", &id]);
    // ctr (1.6 to 2.x) exits 0 and reports a non-zero status as a warning.
    assert!(
        del.status.success(),
        "ctr task delete: {} {}",
        del.status,
        text(&del.stderr)
    );
    assert!(
        text(&del.stderr).contains("exit code 143"),
        "delete reports the trap's status: {}",
        text(&del.stderr)
    );
    assert_eq!(cd.task_status(&id).expect("ls"), None);
    assert!(
        !cd.mounts().contains(&cd.rootfs(&id)),
        "rootfs still mounted after task delete"
    );
    cd.ctr_ok(&["containers", "delete", &id])
        .expect("container delete");
    assert!(
        cd.cgroup_pids().is_empty(),
        "processes left in the container cgroups: {:?}",
        cd.cgroup_pids()
    );
}

ctr_matrix!(task_lifecycle);
