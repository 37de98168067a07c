//! The brisk shim beside containerd's runc shim (`io.containerd.runc.v2`) where containerd's own
//! Go client and test suite lean on runc-shim behaviour that `ctr` alone does not reach:
//! * exec with a terminal the way `task.Exec(.., cio.NewCreator(cio.WithTerminal))` asks for it:
//!   `ExecProcessRequest.terminal = true` with a process spec whose `terminal` is false (and a
//!   Create asking for a terminal the bundle's spec lacks, which both refuse);
//! * `ShimCgroup` (containerd's TestShimInCgroup): the shim server joins that cgroup at `start`;
//! * the old `containerd.linux.runc.CreateOptions` that the Go client (1.6, 1.7) sends runtimes whose
//!   name does not start with `io.containerd.runc` (`ctr run --no-pivot`; 2.x sends the runc type);
//! * the state layout `<Root>/<namespace>/<id>`: one Root holds the same id in two namespaces.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brisk_integration::containerd::{shim_socket_hash, Containerd, Version, RUNC};
use brisk_integration::ctr_matrix;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use containerd_shim_protos::shim::shim::{
    DeleteRequest, ExecProcessRequest, StartRequest, WaitRequest, WaitResponse,
};

/// The bundle containerd made for task `id`.
fn bundle(cd: &Containerd, ns: &str, id: &str) -> PathBuf {
    cd.state
        .join("io.containerd.runtime.v2.task")
        .join(ns)
        .join(id)
}

/// A ttrpc connection to the shim of task `id`: 1.x shims write the bundle's `address`,
/// containerd 2.x records the shim's reply in `bootstrap.json`.
fn shim_client(cd: &Containerd, id: &str) -> ttrpc::Client {
    let b = bundle(cd, &cd.namespace, id);
    let address = fs::read_to_string(b.join("address"))
        .ok()
        .or_else(|| {
            let v: serde_json::Value =
                serde_json::from_slice(&fs::read(b.join("bootstrap.json")).ok()?).ok()?;
            v["address"].as_str().map(str::to_string)
        })
        .expect("the shim address (bundle's address or bootstrap.json)");
    ttrpc::Client::connect(address.trim()).expect("connecting to the shim")
}

/// The task service name each containerd speaks to its shims (2.x: v3; the runc shims of 1.6 and
/// 1.7 serve only v2).
fn task_service(version: Version) -> &'static str {
    match version {
        Version::V1_6 | Version::V1_7 => "containerd.task.v2.Task",
        Version::V2_1 => "containerd.task.v3.Task",
    }
}

/// One unary ttrpc call, as containerd's client makes it.
fn call<Req: Message, Resp: Message>(
    client: &ttrpc::Client,
    service: &str,
    method: &str,
    req: &Req,
) -> Result<Resp, String> {
    let r = ttrpc::Request {
        service: service.to_string(),
        method: method.to_string(),
        payload: req.write_to_bytes().map_err(|e| e.to_string())?,
        timeout_nano: Duration::from_secs(60).as_nanos() as i64,
        ..Default::default()
    };
    let resp = client.request(r).map_err(|e| format!("{method}: {e}"))?;
    Resp::parse_from_bytes(&resp.payload).map_err(|e| format!("{method}: decoding reply: {e}"))
}

/// Reads a fifo (opened non-blocking before the writer exists) until `want` appears in it, the
/// deadline passes, or the writer closes after having written.
fn read_fifo_until(f: &mut fs::File, want: &str, limit: Duration) -> String {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit && !String::from_utf8_lossy(&out).contains(want) {
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16));
        match f.read(&mut buf) {
            Ok(0) if !out.is_empty() => break,
            Ok(0) => std::thread::sleep(Duration::from_millis(50)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// containerd's Go client: `task.Exec(ctx, id, pspec, cio.NewCreator(cio.WithTerminal))` sends
/// `terminal: true` and the process spec as given, whose `terminal` stays false. The runc shim
/// sets the spec's terminal from the request; the process must get a pty.
fn exec_terminal_flag_from_request(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("exectty");
    let mut args = cd.run_args(runtime, &["-d"], &image, &id);
    args.extend(["sleep", "1000"]);
    cd.ctr_ok(&args).expect("ctr run -d");
    cd.wait_task_status(&id, "RUNNING").expect("task running");

    let b = bundle(&cd, &cd.namespace, &id);
    let client = shim_client(&cd, &id);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("config.json")).expect("config.json"))
            .expect("config.json is JSON");
    let mut process = config["process"].clone();
    process["terminal"] = serde_json::Value::Bool(false);
    process["args"] = serde_json::json!(["sh", "-c", "tty; test -t 0 && echo STDIN_IS_A_TTY"]);

    let fifo = cd.fifo_dir.join(format!("{id}-exec-stdout"));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("opening the stdout fifo");
    let service = task_service(version);
    let exec = ExecProcessRequest {
        id: id.clone(),
        exec_id: "tty".into(),
        terminal: true,
        stdout: fifo.to_string_lossy().into_owned(),
        spec: Some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: serde_json::to_vec(&process).expect("process JSON"),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    let _: containerd_shim_protos::protobuf::well_known_types::empty::Empty =
        call(&client, service, "Exec", &exec).expect("Exec");
    let start = StartRequest {
        id: id.clone(),
        exec_id: "tty".into(),
        ..Default::default()
    };
    let started: Result<containerd_shim_protos::shim::shim::StartResponse, String> =
        call(&client, service, "Start", &start);
    if let Err(e) = &started {
        panic!("{runtime}: starting an exec with terminal=true failed: {e}");
    }
    let out = read_fifo_until(&mut reader, "STDIN_IS_A_TTY", Duration::from_secs(30));
    let wait = WaitRequest {
        id: id.clone(),
        exec_id: "tty".into(),
        ..Default::default()
    };
    let waited: WaitResponse = call(&client, service, "Wait", &wait).expect("Wait");
    let del = DeleteRequest {
        id: id.clone(),
        exec_id: "tty".into(),
        ..Default::default()
    };
    let _: Result<containerd_shim_protos::shim::shim::DeleteResponse, String> =
        call(&client, service, "Delete", &del);
    let _ = fs::remove_file(&fifo);
    assert!(
        out.contains("/dev/pts/") && out.contains("STDIN_IS_A_TTY"),
        "{runtime}: the exec has no terminal (exit {}): {out:?}",
        waited.exit_status
    );
    assert_eq!(waited.exit_status, 0, "{runtime}: {out:?}");
}

/// The cgroup v1 hierarchies (mount points) on this host; empty on a cgroup v2 host.
fn v1_hierarchies() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split(' ').next()? == "cgroup").then_some(())?;
            pre.split(' ').nth(4).map(PathBuf::from)
        })
        .collect()
}

/// containerd's TestShimInCgroup: a cgroup made by the test, passed as ShimCgroup in the runtime
/// options that containerd writes to the shim's `start` on stdin; the shim server's pid must be
/// in it. `ctr` has no flag for ShimCgroup (the Go client's WithShimCgroup sets it), so the test
/// runs `start` itself, exactly as each containerd release does (args, env, stdin, cwd = bundle).
fn shim_in_cgroup(version: Version, runtime: &str) {
    let cd = Containerd::start(version).expect("containerd");
    let id = cd.new_id("shimcg");
    // Under our namespace's cgroup, which Drop kills and removes.
    let rel = format!("{}/shim-{id}", cd.namespace);
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let dirs: Vec<PathBuf> = if unified {
        vec![Path::new("/sys/fs/cgroup").join(&rel)]
    } else {
        // Controllers with nothing to configure before a process may join (cpuset would need
        // cpus and mems copied down first).
        v1_hierarchies()
            .into_iter()
            .filter(|m| m.ends_with("pids") || m.ends_with("memory"))
            .map(|m| m.join(&rel))
            .collect()
    };
    assert!(
        !dirs.is_empty(),
        "no pids/memory cgroup v1 hierarchy on this host"
    );
    for d in &dirs {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    }
    let bundle = cd.dir.join(format!("bundle-{id}"));
    fs::create_dir_all(&bundle).expect("bundle dir");
    fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion":"1.0.2","annotations":{}}"#,
    )
    .expect("config.json");
    let opts = RuncOptions {
        shim_cgroup: format!("/{rel}"),
        ..Default::default()
    };
    let any = Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: opts.write_to_bytes().expect("options"),
        ..Default::default()
    };
    let shim = cd.path_dir.join(match runtime {
        RUNC => "containerd-shim-runc-v2",
        _ => "containerd-shim-brisk-v2",
    });
    let mut cmd = Command::new(&shim);
    cmd.args(["-namespace", &cd.namespace, "-address"])
        .arg(&cd.address)
        .arg("-publish-binary")
        .arg(version.containerd())
        .args(["-id", &id, "start"])
        .current_dir(&bundle)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("TTRPC_ADDRESS", &cd.ttrpc_address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if version != Version::V1_6 {
        cmd.env("GRPC_ADDRESS", &cd.address)
            .env("NAMESPACE", &cd.namespace)
            .env(
                "MAX_SHIM_VERSION",
                if version == Version::V1_7 { "2" } else { "3" },
            );
    }
    // containerd creates the bundle's `log` fifo and reads it before `start`; the runc shim's
    // server opens it for its stderr and exits without it.
    let log = bundle.join("log");
    nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o700)).expect("mkfifo log");
    let _log_reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&log)
        .expect("opening the log fifo");
    let mut child = cmd.spawn().expect("spawning the shim's start");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&any.write_to_bytes().expect("Any"))
            .expect("writing options");
    }
    let out = child.wait_with_output().expect("start");
    assert!(
        out.status.success(),
        "{runtime}: start failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = cd.shim_pid(&id).expect("the shim server of this id");
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the shim's cgroups");
    for d in &dirs {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "{runtime}: shim {pid} is not in {}: {cgroups}",
            d.display()
        );
    }
    // The shim has no task: Drop's leftover sweep (our address on its command line) ends it,
    // then removes the cgroups under our namespace.
}

/// containerd 1.6 and 1.7's Go client sends `containerd.linux.runc.CreateOptions` for task options
/// (`ctr run --no-pivot` → WithNoPivotRoot) to a runtime whose name does not start with
/// `io.containerd.runc`, and `containerd.runc.v1.Options` to the runc shim. The same command must
/// work on both. (The runc shim itself does not register the old type: under another runtime name
/// it fails with "type with url containerd.linux.runc.CreateOptions: not found".)
fn legacy_create_options(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("legacy");
    let mut args = cd.run_args(runtime, &["--no-pivot"], &image, &id);
    args.extend(["echo", "legacy-options-ok"]);
    let out = cd.ctr(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("legacy-options-ok"),
        "{runtime} with --no-pivot: {}\nstdout: {stdout}\nstderr: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        cd.log_tail(20)
    );
}

/// Removes what the second namespace left: its tasks and containers, and its shim socket.
struct SecondNamespace<'a> {
    cd: &'a Containerd,
    ns: String,
    id: String,
}

impl Drop for SecondNamespace<'_> {
    fn drop(&mut self) {
        let ns = self.ns.as_str();
        let _ = self
            .cd
            .ctr(&["--namespace", ns, "task", "kill", "-s", "KILL", &self.id]);
        let _ = brisk_integration::containerd::wait_for(
            "ns2 task stop",
            Duration::from_secs(20),
            || {
                let out = self.cd.ctr(&["--namespace", ns, "task", "ls"]);
                Ok(!String::from_utf8_lossy(&out.stdout).contains("RUNNING"))
            },
        );
        let _ = self
            .cd
            .ctr(&["--namespace", ns, "task", "delete", "-f", &self.id]);
        let _ = self
            .cd
            .ctr(&["--namespace", ns, "containers", "delete", &self.id]);
        let addr = self.cd.address.to_string_lossy().into_owned();
        let _ = fs::remove_file(
            Path::new("/run/containerd/s").join(shim_socket_hash(&addr, ns, &self.id)),
        );
    }
}

/// The runc shim keeps state at `<Root>/<namespace>/<id>`: the same container id runs in two
/// containerd namespaces under one Root.
fn same_id_two_namespaces_one_root(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let root = cd.dir.join("shared-root");
    let config = cd.dir.join("runtime.toml");
    fs::write(&config, format!("Root = \"{}\"\n", root.display())).expect("runtime config");
    let root_s = root.to_string_lossy().into_owned();
    let config_s = config.to_string_lossy().into_owned();
    let root_flag: Vec<&str> = if runtime == RUNC {
        vec!["--runc-root", &root_s]
    } else {
        vec!["--runtime-config-path", &config_s]
    };
    let id = cd.new_id("twins");
    let ns2 = format!("{}-b", cd.namespace);
    let _guard = SecondNamespace {
        cd: &cd,
        ns: ns2.clone(),
        id: id.clone(),
    };
    // The image lives per namespace; ns2 gets its own import.
    let img = brisk_integration::image::build_busybox_image(&cd.dir.join("busybox-ns2.tar"))
        .expect("busybox image");
    let archive = img.archive.to_string_lossy().into_owned();
    cd.ctr_ok(&["--namespace", &ns2, "images", "import", &archive])
        .expect("importing into the second namespace");

    let mut extra = vec!["-d"];
    extra.extend(root_flag.iter().copied());
    let mut args = cd.run_args(runtime, &extra, &image, &id);
    args.extend(["sleep", "1000"]);
    cd.ctr_ok(&args).expect("ctr run in the first namespace");
    // The second task's cgroup under the first namespace's, which Drop removes.
    let cg = format!("/{}/{id}-b", cd.namespace);
    let mut extra2 = vec!["-d", "--cgroup", &cg];
    extra2.extend(root_flag.iter().copied());
    let mut args2 = vec!["--namespace", ns2.as_str()];
    args2.extend(cd.run_args(runtime, &extra2, &image, &id));
    args2.extend(["sleep", "1000"]);
    let out = cd.ctr(&args2);
    assert!(
        out.status.success(),
        "{runtime}: the same id in a second namespace under one Root: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cd.log_tail(20)
    );
    cd.wait_task_status(&id, "RUNNING")
        .expect("first task running");
    let ls = cd
        .ctr_ok(&["--namespace", &ns2, "task", "ls"])
        .expect("task ls in ns2");
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{runtime}: second task not running: {ls}"
    );
    for ns in [cd.namespace.as_str(), ns2.as_str()] {
        let dir = root.join(ns).join(&id);
        assert!(dir.is_dir(), "{runtime}: no state at {}", dir.display());
    }
}

/// CreateTaskRequest.terminal is not copied into the bundle's spec by the runc shim (only the exec
/// path does that): it hands runc a console socket, and runc refuses one for a process without
/// `terminal` ("cannot use console socket if runc will not detach or allocate tty"). brisk refuses
/// the same request and says which setting disagrees.
fn create_terminal_needs_spec_terminal(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("host");
    let mut args = cd.run_args(runtime, &["-d"], &image, &id);
    args.extend(["sleep", "1000"]);
    cd.ctr_ok(&args).expect("ctr run -d");
    let client = shim_client(&cd, &id);
    // A second container in the same shim (as a pod's containers share one), from a plain
    // busybox bundle whose process.terminal is false.
    let extra = brisk_integration::bundle::Bundle::new().args(&["sleep", "1000"]);
    extra.write_config();
    let fifo = cd.fifo_dir.join(format!("{id}-create-stdout"));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let _reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("opening the stdout fifo");
    let cid = cd.new_id("ttycreate");
    let service = task_service(version);
    let req = containerd_shim_protos::shim::shim::CreateTaskRequest {
        id: cid.clone(),
        bundle: extra.path().to_string_lossy().into_owned(),
        terminal: true,
        stdout: fifo.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let res: Result<containerd_shim_protos::shim::shim::CreateTaskResponse, String> =
        call(&client, service, "Create", &req);
    if res.is_ok() {
        // Not expected; do not leave the container behind.
        let kill = containerd_shim_protos::shim::shim::KillRequest {
            id: cid.clone(),
            signal: 9,
            ..Default::default()
        };
        let _: Result<containerd_shim_protos::protobuf::well_known_types::empty::Empty, _> =
            call(&client, service, "Kill", &kill);
        let del = DeleteRequest {
            id: cid.clone(),
            ..Default::default()
        };
        let _: Result<containerd_shim_protos::shim::shim::DeleteResponse, _> =
            call(&client, service, "Delete", &del);
    }
    let _ = fs::remove_file(&fifo);
    let err = res.expect_err("a terminal without process.terminal was accepted");
    let want = if runtime == RUNC {
        "cannot use console socket"
    } else {
        "process.terminal false"
    };
    assert!(err.contains(want), "{runtime}: {err}");
}

ctr_matrix!(
    create_terminal_needs_spec_terminal,
    exec_terminal_flag_from_request,
    shim_in_cgroup,
    legacy_create_options,
    same_id_two_namespaces_one_root
);
