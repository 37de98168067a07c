//! `exec` and `--console-socket`, observed from inside the container.

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{read_pty, ConsoleSocket, RuntimeUnderTest};
use brisk_integration::runtime_tests;

runtime_tests!(
    exec_joins_namespaces,
    exec_process_json,
    exec_cwd_env_user_flags,
    exec_detached,
    exec_exit_code,
    exec_into_stopped_container_fails,
    console_socket_run,
    console_socket_create_start,
);

const NS: &str = "for n in pid net ipc uts mnt; do echo $n $(readlink /proc/self/ns/$n); done";

/// A long-running container with /ctl bind-mounted from `<bundle>/ctl`; init prints its namespace
/// links, then `started`, then waits to be killed.
fn running(rt: &RuntimeUnderTest, prefix: &str) -> (Bundle, String) {
    let b = Bundle::new().hostname("exec-host");
    let ctl = b.scratch("ctl");
    std::fs::create_dir(&ctl).expect("ctl dir");
    std::fs::set_permissions(&ctl, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod ctl");
    let b = b
        .bind(&ctl, "/ctl", &[])
        .sh(&format!("{NS}; echo started; exec sleep 1000"));
    let id = rt.new_id(prefix);
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    (b, id)
}

fn exec_joins_namespaces(rt: &RuntimeUnderTest) {
    let (b, id) = running(rt, "execns");
    let init_out = rt.container_stdout(&id, &b);
    let init_ns: Vec<&str> = init_out.lines().take(5).collect();
    let r = rt
        .exec(
            &id,
            &["sh", "-c", &format!("{NS}; hostname; cat /proc/1/comm")],
        )
        .ok();
    let l = r.lines();
    assert_eq!(
        l[..5],
        init_ns[..],
        "exec'd process is in different namespaces than init"
    );
    assert_eq!(l[5], "exec-host");
    assert_eq!(
        l[6], "sleep",
        "pid 1 seen by exec is not the container's init"
    );
    rt.delete_force(&id).ok();
}

fn exec_process_json(rt: &RuntimeUnderTest) {
    let (b, id) = running(rt, "execp");
    let process = serde_json::json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo A=$A; pwd; id -u; id -g; grep CapEff /proc/self/status"],
        "env": ["PATH=/bin", "A=from-process-json"],
        "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
        "noNewPrivileges": true
    });
    let p = b.scratch("process.json");
    std::fs::write(&p, serde_json::to_vec(&process).expect("json")).expect("write process.json");
    let r = rt
        .cmd(&["exec", "-p", p.to_str().expect("utf-8"), &id])
        .ok();
    let l = r.lines();
    assert_eq!(l[..4], ["A=from-process-json", "/tmp", "1000", "1000"]);
    assert_eq!(
        l[4].split_whitespace().nth(1),
        Some("0000000000000000"),
        "{}",
        l[4]
    );
    rt.delete_force(&id).ok();
}

fn exec_cwd_env_user_flags(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "execflags");
    let r = rt
        .cmd(&[
            "exec",
            "--cwd",
            "/home/test",
            "--env",
            "X=from flag",
            "--env",
            "Y=2",
            "--user",
            "1000:1000",
            &id,
            "sh",
            "-c",
            "pwd; echo \"$X\"; echo $Y; id -u; id -g",
        ])
        .ok();
    assert_eq!(r.lines(), ["/home/test", "from flag", "2", "1000", "1000"]);
    // Without flags: the config's process defaults (root, cwd /).
    let r = rt.exec(&id, &["sh", "-c", "pwd; id -u"]).ok();
    assert_eq!(r.lines(), ["/", "0"]);
    rt.delete_force(&id).ok();
}

fn exec_detached(rt: &RuntimeUnderTest) {
    let (b, id) = running(rt, "execd");
    let r = rt.cmd_to_files(
        &[
            "exec",
            "-d",
            &id,
            "sh",
            "-c",
            "echo detached-$$ > /ctl/out.tmp; mv /ctl/out.tmp /ctl/out; exec sleep 1000",
        ],
        &b,
        "execd",
    );
    r.ok();
    let out = b.scratch("ctl/out");
    rt.wait_until("detached exec to write its marker", || out.exists());
    let text = std::fs::read_to_string(&out).expect("marker");
    assert!(text.starts_with("detached-"), "{text}");
    // Its pid inside the container is not 1 (it joined, rather than became, the pid namespace).
    assert_ne!(text.trim(), "detached-1");
    rt.delete_force(&id).ok();
}

fn exec_exit_code(rt: &RuntimeUnderTest) {
    let (_b, id) = running(rt, "execexit");
    let r = rt.exec(&id, &["sh", "-c", "echo out; exit 5"]);
    assert_eq!(r.code(), 5, "stderr: {}", r.stderr);
    assert_eq!(r.stdout.trim(), "out");
    assert_eq!(rt.exec(&id, &["true"]).code(), 0);
    // A missing binary is an error, not exit 0.
    let r = rt.exec(&id, &["/no/such/binary"]);
    assert_ne!(r.code(), 0);
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).ok();
}

fn exec_into_stopped_container_fails(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("echo bye");
    let id = rt.new_id("execstopped");
    rt.run_detached(&id, &b).ok();
    rt.wait_status(&id, "stopped");
    let r = rt.exec(&id, &["echo", "should-not-run"]).failed();
    assert!(!r.stdout.contains("should-not-run"));
    rt.delete(&id).ok();
    rt.exec(&id, &["true"]).failed();
}

const TTY_SCRIPT: &str =
    "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; echo TERM=$TERM";

fn check_tty_output(out: &str) {
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first().is_some_and(
            |l| l.starts_with("/dev/pts/") && l["/dev/pts/".len()..].parse::<u32>().is_ok()
        ),
        "tty output: {out:?}"
    );
    assert_eq!(
        lines[1..],
        ["stdin-tty", "stdout-tty", "TERM=xterm"],
        "tty output: {out:?}"
    );
}

fn console_socket_run(rt: &RuntimeUnderTest) {
    let b = Bundle::new().terminal(true).sh(TTY_SCRIPT);
    let sock = ConsoleSocket::listen(b.scratch("console.sock"));
    let id = rt.new_id("console");
    b.write_config();
    rt.track(&id);
    rt.cmd_to_files(
        &[
            "run",
            "-d",
            "--console-socket",
            sock.path().to_str().expect("utf-8"),
            "--bundle",
            b.path().to_str().expect("utf-8"),
            &id,
        ],
        &b,
        &id,
    )
    .ok();
    let master = sock.master();
    let out = read_pty(master);
    check_tty_output(&out);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
}

fn console_socket_create_start(rt: &RuntimeUnderTest) {
    let b = Bundle::new().terminal(true).sh(TTY_SCRIPT);
    let sock = ConsoleSocket::listen(b.scratch("console.sock"));
    let id = rt.new_id("console-cs");
    rt.create_with(
        &id,
        &b,
        &["--console-socket", sock.path().to_str().expect("utf-8")],
    )
    .ok();
    let master = sock.master();
    assert_eq!(rt.status(&id), "created");
    rt.start(&id).ok();
    let out = read_pty(master);
    check_tty_output(&out);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();

    // terminal: true without a console socket is refused for detached containers.
    let b = Bundle::new().terminal(true).sh(TTY_SCRIPT);
    let id = rt.new_id("console-none");
    rt.create(&id, &b).failed();
    rt.assert_nothing_left(&id);
}
