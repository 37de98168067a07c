//! Docker as the client (issue 17): Debian's docker.io 20.10 drives the runtime binary through
//! containerd's runc shim (`BinaryName`), brisk registered in daemon.json `runtimes`. Every scenario
//! runs `--runtime runc` (runc 1.1.5, the reference) and `--runtime brisk`, each on its own private
//! dockerd (integration/src/docker.rs). `make test-docker` runs this file.

use std::fs;
use std::path::{Path, PathBuf};

use brisk_integration::docker::{brisk_bin, Dockerd, IMAGE};

fn daemon() -> Dockerd {
    Dockerd::start(&brisk_bin()).unwrap_or_else(|e| panic!("{e}"))
}

/// `docker run -d --network none --runtime RT [extra...] IMAGE cmd...`; the container id.
fn run_detached(d: &Dockerd, rt: &str, extra: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--network", "none", "--runtime", rt];
    args.extend_from_slice(extra);
    args.push(IMAGE);
    args.extend_from_slice(cmd);
    d.docker_ok(&args)
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .to_string()
}

fn inspect(d: &Dockerd, id: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, id])
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .to_string()
}

/// A container that says "started" and then idles; SIGTERM ends it with status 0 (sh as pid 1 ignores
/// signals it has no trap for).
const IDLE: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; echo started; while :; do sleep 1; done",
];

/// The container's cgroup directory in the v1 `controller` hierarchy, from its init's
/// /proc/PID/cgroup; it must be <cgroup-parent>/<id> (the cgroupfs driver's path).
fn cgroup_dir(d: &Dockerd, controller: &str, id: &str) -> PathBuf {
    let pid = inspect(d, id, "{{.State.Pid}}");
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let path = cg
        .lines()
        // "hierarchy-ID:controller-list:path" (cgroups(7)).
        .filter_map(|l| l.split_once(':').and_then(|(_, rest)| rest.split_once(':')))
        .find(|(ctrls, _)| ctrls.split(',').any(|c| c == controller))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup:\n{cg}"));
    assert_eq!(
        path,
        format!("{}/{id}", d.cgroup_parent()),
        "{controller} cgroup of the container"
    );
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn run_exit_code(rt: &str) {
    let d = daemon();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        rt,
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", d.error(&["run"], &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err\n"),
        "{}",
        d.error(&["run"], &out)
    );
    // --rm: nothing left.
    assert_eq!(
        d.docker_ok(&["ps", "-aq"])
            .unwrap_or_else(|e| panic!("{e}"))
            .trim(),
        ""
    );
}

fn run_user(rt: &str) {
    let d = daemon();
    for (user, want) in [
        ("65534:65534", "65534 65534 65534"),
        ("nobody", "65534 65534 65534"),
        ("1234:5678", "1234 5678 5678"),
    ] {
        let args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            rt,
            "--user",
            user,
            IMAGE,
            "sh",
            "-c",
            "echo $(id -u) $(id -g) $(id -G)",
        ];
        let out = d.docker(&args);
        assert!(out.status.success(), "{}", d.error(&args, &out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "--user {user}"
        );
    }
}

fn run_init(rt: &str) {
    // Debian's docker.io ships docker-init (tini); `--init` makes it the container's pid 1.
    assert!(
        Path::new("/usr/bin/docker-init").is_file(),
        "/usr/bin/docker-init missing (docker.io)"
    );
    let d = daemon();
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        rt,
        "--init",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/comm; exit 3",
    ];
    let out = d.docker(&args);
    // tini passes the child's exit status on.
    assert_eq!(out.status.code(), Some(3), "{}", d.error(&args, &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "docker-init");
}

fn logs(rt: &str) {
    let d = daemon();
    let id = run_detached(
        &d,
        rt,
        &[],
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 4"],
    );
    let code = d
        .docker_ok(&["wait", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code.trim(), "4");
    let out = d.docker(&["logs", &id]);
    assert!(out.status.success(), "{}", d.error(&["logs"], &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-stdout\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
}

fn exec(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &[], IDLE);
    let args = ["exec", &id, "sh", "-c", "echo exec-ok; exit 5"];
    let out = d.docker(&args);
    assert_eq!(out.status.code(), Some(5), "{}", d.error(&args, &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-ok\n");
    let args = [
        "exec",
        "--user",
        "65534",
        "-e",
        "X=y",
        "-w",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $(id -u) $X $(pwd)",
    ];
    let out = d.docker(&args);
    assert!(out.status.success(), "{}", d.error(&args, &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534 y /tmp");
}

fn update_memory(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &[], IDLE);
    let args = ["update", "--memory", "64m", "--memory-swap", "128m", &id];
    let out = d.docker(&args);
    assert!(out.status.success(), "{}", d.error(&args, &out));
    assert_eq!(inspect(&d, &id, "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(
        read_trim(&cgroup_dir(&d, "memory", &id).join("memory.limit_in_bytes")),
        "67108864"
    );
}

fn pause_unpause(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &[], IDLE);
    let freezer = cgroup_dir(&d, "freezer", &id).join("freezer.state");
    d.docker_ok(&["pause", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inspect(&d, &id, "{{.State.Status}}"), "paused");
    assert_eq!(read_trim(&freezer), "FROZEN");
    d.docker_ok(&["unpause", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inspect(&d, &id, "{{.State.Status}}"), "running");
    assert_eq!(read_trim(&freezer), "THAWED");
}

fn stats(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &["--memory", "64m"], IDLE);
    let out = d
        .docker_ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}}|{{.PIDs}}",
            &id,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    let (mem, pids) = out
        .trim()
        .split_once('|')
        .unwrap_or_else(|| panic!("stats output {out:?}"));
    // The limit Docker reads back from the container's memory cgroup.
    assert!(mem.ends_with("/ 64MiB"), "MemUsage {mem:?}");
    let pids: u32 = pids
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("PIDs {pids:?}: {e}"));
    assert!(pids >= 1, "PIDs {pids}");
}

fn stop(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &[], IDLE);
    let cgroup = cgroup_dir(&d, "pids", &id);
    d.docker_ok(&["stop", "-t", "30", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inspect(&d, &id, "{{.State.Status}}"), "exited");
    // 0: the container's own SIGTERM trap ran (not SIGKILL after the grace period, which is 137).
    assert_eq!(inspect(&d, &id, "{{.State.ExitCode}}"), "0");
    assert!(
        !cgroup.exists(),
        "cgroup {} left behind after stop",
        cgroup.display()
    );
}

fn restart(rt: &str) {
    let d = daemon();
    let id = run_detached(&d, rt, &[], IDLE);
    let pid1 = inspect(&d, &id, "{{.State.Pid}}");
    d.docker_ok(&["restart", "-t", "30", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inspect(&d, &id, "{{.State.Status}}"), "running");
    let pid2 = inspect(&d, &id, "{{.State.Pid}}");
    assert_ne!(pid1, pid2, "restart kept the same init process");
    // Both runs logged; the first ended through its SIGTERM trap.
    let logs = d
        .docker_ok(&["logs", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(logs, "started\nstarted\n");
}

macro_rules! docker_matrix {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test] fn runc() { super::$name(brisk_integration::docker::RUNC) }
            #[test] fn brisk() { super::$name(brisk_integration::docker::BRISK) }
        }
    )+};
}

docker_matrix!(
    run_exit_code,
    run_user,
    run_init,
    logs,
    exec,
    update_memory,
    pause_unpause,
    stats,
    stop,
    restart
);
