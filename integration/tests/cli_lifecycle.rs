//! create/start/state/kill/delete/list/ps and their observable effects.

use std::path::Path;

use brisk_integration::bundle::{cgroup_dirs, Bundle};
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;
use serde_json::Value;

runtime_tests!(
    create_start_split,
    state_json_fields,
    pid_file_written,
    list_table_and_json,
    ps_lists_container_processes,
    signals_by_name_and_number,
    kill_all,
    delete_after_init_sigkilled,
    delete_force_running,
);

/// A bundle whose process prints `started`, waits for `<bundle>/ctl/go` (bind-mounted at /ctl),
/// then prints `done`.
fn gated_bundle() -> Bundle {
    let b = Bundle::new();
    let ctl = b.scratch("ctl");
    std::fs::create_dir(&ctl).expect("ctl dir");
    b.bind(&ctl, "/ctl", &[])
        .sh("echo started; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo done")
}

fn open_gate(b: &Bundle) {
    std::fs::write(b.scratch("ctl/go"), "").expect("opening gate");
}

fn create_start_split(rt: &RuntimeUnderTest) {
    let b = gated_bundle();
    let id = rt.new_id("split");
    rt.create(&id, &b).ok();
    assert_eq!(rt.status(&id), "created");
    // The user process has not run yet.
    assert_eq!(rt.container_stdout(&id, &b), "");
    rt.start(&id).ok();
    rt.wait_output(&id, &b, "started");
    assert_eq!(rt.status(&id), "running");
    // A second start of a running container is refused.
    rt.start(&id).failed();
    open_gate(&b);
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.container_stdout(&id, &b), "started\ndone\n");
    rt.delete(&id).ok();
    rt.cmd(&["state", &id]).failed();
    rt.assert_nothing_left(&id);
}

fn state_json_fields(rt: &RuntimeUnderTest) {
    let b = gated_bundle().set("/annotations", serde_json::json!({"org.brisk.test": "yes"}));
    let id = rt.new_id("state");
    rt.create(&id, &b).ok();
    let s = rt.state(&id);
    assert!(
        s["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "ociVersion: {s}"
    );
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "created");
    let pid = s["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "pid: {s}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "state pid {pid} is not a live process"
    );
    let bundle = std::fs::canonicalize(b.path()).expect("canonical bundle");
    assert_eq!(s["bundle"], bundle.to_str().expect("utf-8"));
    assert_eq!(s["rootfs"], bundle.join("rootfs").to_str().expect("utf-8"));
    assert!(
        s["created"]
            .as_str()
            .is_some_and(|c| c.contains('T') && c.len() >= 20),
        "created: {s}"
    );
    assert!(s.get("owner").is_some(), "owner missing: {s}");
    assert_eq!(s["annotations"]["org.brisk.test"], "yes");

    rt.start(&id).ok();
    rt.wait_output(&id, &b, "started");
    let s = rt.state(&id);
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"].as_i64(), Some(pid), "pid changed across start");
    open_gate(&b);
    rt.wait_status(&id, "stopped");
    let s = rt.state(&id);
    // runc reports pid 0 once the init is gone.
    assert_eq!(
        s["pid"].as_i64().unwrap_or(0),
        0,
        "stopped container still has a pid: {s}"
    );
    rt.delete(&id).ok();
}

fn pid_file_written(rt: &RuntimeUnderTest) {
    let b = gated_bundle();
    let id = rt.new_id("pidfile");
    let pid_file = b.scratch("init.pid");
    rt.create_with(&id, &b, &["--pid-file", pid_file.to_str().expect("utf-8")])
        .ok();
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    let pid: i64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file content {text:?}"));
    assert_eq!(rt.state(&id)["pid"].as_i64(), Some(pid));
    // The pid file names the process that runs the container's program.
    rt.start(&id).ok();
    rt.wait_output(&id, &b, "started");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline of pid-file pid");
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("sh\0-c\0"),
        "pid {pid} runs {cmdline:?}"
    );
    open_gate(&b);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();

    // run -d writes it too.
    let b = gated_bundle();
    let id = rt.new_id("pidfile-run");
    let pid_file = b.scratch("run.pid");
    b.write_config();
    rt.cmd_to_files(
        &[
            "run",
            "-d",
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            "--bundle",
            b.path().to_str().expect("utf-8"),
            &id,
        ],
        &b,
        &id,
    )
    .ok();
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(rt.state(&id)["pid"].as_i64(), Some(pid));
    rt.wait_output(&id, &b, "started");
    open_gate(&b);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
}

fn list_table_and_json(rt: &RuntimeUnderTest) {
    assert!(rt.list_json().is_empty(), "fresh root lists containers");
    let b1 = gated_bundle();
    let b2 = gated_bundle();
    let id1 = rt.new_id("lista");
    let id2 = rt.new_id("listb");
    rt.create(&id1, &b1).ok();
    rt.create(&id2, &b2).ok();
    rt.start(&id2).ok();
    rt.wait_output(&id2, &b2, "started");

    let table = rt.cmd(&["list"]).ok().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("{id} not in:\n{table}"))
            .clone()
    };
    assert_eq!(row(&id1)[2], "created");
    assert_eq!(row(&id2)[2], "running");
    assert_eq!(row(&id1)[1], rt.state(&id1)["pid"].to_string());

    let quiet = rt.cmd(&["list", "-q"]).ok();
    let mut ids = quiet.lines();
    ids.sort();
    let mut want = vec![id1.clone(), id2.clone()];
    want.sort();
    assert_eq!(ids, want);

    let json = rt.list_json();
    assert_eq!(json.len(), 2, "{json:?}");
    let entry = |id: &str| {
        json.iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let e1 = entry(&id1);
    assert_eq!(e1["status"], "created");
    assert_eq!(e1["pid"], rt.state(&id1)["pid"]);
    assert_eq!(
        e1["bundle"],
        std::fs::canonicalize(b1.path())
            .expect("canon")
            .to_str()
            .expect("utf-8")
    );
    assert!(
        e1["created"].is_string() && e1.get("owner").is_some(),
        "{e1}"
    );
    assert_eq!(entry(&id2)["status"], "running");

    open_gate(&b1);
    open_gate(&b2);
    rt.delete_force(&id1).ok();
    rt.wait_status(&id2, "stopped");
    rt.delete(&id2).ok();
    assert!(rt.list_json().is_empty());
}

fn ps_lists_container_processes(rt: &RuntimeUnderTest) {
    let b = gated_bundle();
    let id = rt.new_id("ps");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    let init = rt.state(&id)["pid"].as_i64().expect("pid");

    let pids = |rt: &RuntimeUnderTest| -> Vec<i64> {
        let r = rt.cmd(&["ps", "--format", "json", &id]).ok();
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("ps json ({e}): {}", r.stdout));
        v.as_array()
            .expect("array")
            .iter()
            .map(|p| p.as_i64().expect("pid"))
            .collect()
    };
    let before = pids(rt);
    assert!(before.contains(&init), "{before:?} lacks init {init}");

    // An exec'd process shows up too, and it is the one that prints its marker from inside.
    let mark = b.scratch("ctl/exec-started");
    rt.cmd_to_files(
        &[
            "exec",
            "-d",
            &id,
            "sh",
            "-c",
            "echo in > /ctl/exec-started; exec sleep 1000",
        ],
        &b,
        "exec",
    )
    .ok();
    rt.wait_until("exec'd process to start", || mark.exists());
    let mut after = Vec::new();
    rt.wait_until("ps to show the exec'd process", || {
        after = pids(rt);
        after.len() > before.len()
    });
    assert!(after.contains(&init));

    let table = rt.cmd(&["ps", &id]).ok().stdout;
    let header = table.lines().next().unwrap_or("");
    assert!(header.contains("PID"), "ps header: {header}");
    assert!(
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&init.to_string())),
        "ps table lacks init {init}:\n{table}"
    );
    rt.delete_force(&id).ok();
}

fn signals_by_name_and_number(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh(concat!(
        "trap 'echo got-TERM' TERM; trap 'echo got-USR1' USR1; trap 'echo got-HUP; exit 3' HUP; ",
        "echo ready; while :; do sleep 0.05 & wait $!; done"
    ));
    let id = rt.new_id("sig");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "ready");
    // Default signal is SIGTERM.
    rt.kill(&id, None).ok();
    rt.wait_output(&id, &b, "got-TERM");
    rt.kill(&id, Some("10")).ok(); // SIGUSR1 on x86_64 and arm64
    rt.wait_output(&id, &b, "got-USR1");
    assert_eq!(rt.status(&id), "running");
    rt.kill(&id, Some("SIGHUP")).ok();
    rt.wait_status(&id, "stopped");
    assert_eq!(
        rt.container_stdout(&id, &b),
        "ready\ngot-TERM\ngot-USR1\ngot-HUP\n"
    );
    // Killing a stopped container fails.
    rt.kill(&id, Some("KILL")).failed();
    rt.delete(&id).ok();
}

fn kill_all(rt: &RuntimeUnderTest) {
    // A child with its own TERM trap; init waits for it so both markers are printed before the
    // namespace is torn down.
    let b = Bundle::new().sh(concat!(
        "(trap 'echo child-TERM; exit 0' TERM; echo child-ready; while :; do sleep 0.05 & wait $!; done) & ",
        "CHILD=$!; trap 'wait $CHILD; echo init-TERM; exit 0' TERM; ",
        "while :; do sleep 0.05 & wait $!; done"
    ));
    let id = rt.new_id("killall");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "child-ready");
    rt.cmd(&["kill", "--all", &id, "TERM"]).ok();
    rt.wait_status(&id, "stopped");
    let out = rt.container_stdout(&id, &b);
    assert!(out.contains("child-TERM"), "child got no TERM:\n{out}");
    assert!(out.contains("init-TERM"), "init got no TERM:\n{out}");
    rt.delete(&id).ok();
}

fn assert_cgroups(b: &Bundle, exist: bool) {
    let dirs = cgroup_dirs(&b.cgroups_path());
    let present: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    if exist {
        // Every v1 hierarchy (pids among them), or the one cgroup2 directory of a v2 host.
        assert!(
            present.iter().any(|d| d.join("pids.max").exists()),
            "no cgroup with the pids controller among {dirs:?}"
        );
    } else {
        assert!(present.is_empty(), "cgroup dirs left behind: {present:?}");
    }
}

fn delete_after_init_sigkilled(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("echo up; exec sleep 1000");
    let id = rt.new_id("sigkilled");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "up");
    assert_cgroups(&b, true);
    assert!(
        rt.root().join(&id).exists() || rt.leftovers(&id).len() == 1,
        "no state recorded for {id}"
    );
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    // The container init is a process this test started (through the runtime).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL init");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.cmd(&["state", &id]).failed();
    rt.assert_nothing_left(&id);
    assert_cgroups(&b, false);
}

fn delete_force_running(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("echo up; exec sleep 1000");
    let id = rt.new_id("forcedel");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "up");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    // Plain delete refuses a running container.
    rt.delete(&id).failed();
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
    assert_cgroups(&b, false);
    rt.wait_until("init to be gone", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    == Some("Z")
            })
            .unwrap_or(true)
    });
}

/// The harness itself: a test that panics with a running container leaves no process, cgroup or
/// state behind (RuntimeUnderTest's Drop force-deletes it).
#[test]
fn harness_cleans_up_after_panic_runc() {
    harness_cleans_up_after_panic(RuntimeUnderTest::runc);
}

#[test]
fn harness_cleans_up_after_panic_brisk() {
    harness_cleans_up_after_panic(RuntimeUnderTest::brisk);
}

fn harness_cleans_up_after_panic(make: fn() -> RuntimeUnderTest) {
    let b = Bundle::new().sh("echo up; exec sleep 1000");
    let cg = b.cgroups_path();
    let bundle_dir = b.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let rt = make();
        let id = rt.new_id("panicky");
        rt.run_detached(&id, &b).ok();
        rt.wait_output(&id, &b, "up");
        let pid = rt.state(&id)["pid"].as_i64().expect("pid");
        tx.send((pid, rt.root().to_path_buf())).expect("send");
        panic!("deliberate failure with a running container");
    })
    .join();
    assert!(joined.is_err(), "the inner test should have panicked");
    let (pid, root) = rx.recv().expect("inner test reported its container");
    assert!(!root.exists(), "state root {} left behind", root.display());
    assert!(
        !bundle_dir.exists(),
        "bundle {} left behind",
        bundle_dir.display()
    );
    let left: Vec<_> = cgroup_dirs(&cg)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    // The init is gone (or at most a zombie awaiting its reaper).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false);
    assert!(!alive, "container init {pid} still running");
}
