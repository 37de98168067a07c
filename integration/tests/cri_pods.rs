//! Pods through containerd's CRI plugin with a real CRI gRPC client, for each
//! containerd release × runtime handler (`runc`, `brisk`): the same test body
//! runs on both handlers, so a difference is a brisk bug.
//!
//! Needs root, `--features cri` (protoc at build time), gcc (static pause),
//! containernetworking-plugins; `make test-cri`.

use std::path::PathBuf;

use brisk_integration::cni;
use brisk_integration::containerd::Version;
use brisk_integration::cri::{self as cri_env, v1 as cri, CriEnv, CriError, Settings, Trace};
use brisk_integration::cri_matrix;
use brisk_integration::propagation::{mount_of, SharedVolume};

fn start(version: Version) -> CriEnv {
    CriEnv::start(version)
        .unwrap_or_else(|e| panic!("CRI environment on containerd {version}: {e}"))
}

/// Unwraps a CRI result, adding containerd's log on failure.
fn ok<T>(env: &CriEnv, what: &str, r: Result<T, CriError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}\n--- containerd log ---\n{}", env.log_tail(40)))
}

fn finish(env: CriEnv) {
    let left = env.finish();
    assert!(
        left.is_empty(),
        "left behind after the test:\n{}",
        left.join("\n")
    );
}

fn log_path(pod: &cri::PodSandboxConfig, c: &cri::ContainerConfig) -> PathBuf {
    PathBuf::from(&pod.log_directory).join(&c.log_path)
}

fn stdout(r: &cri::ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

fn net_ns_of(env: &CriEnv, cid: &str) -> String {
    let r = ok(
        env,
        "ExecSync readlink",
        env.cri
            .exec_sync(cid, &["readlink", "/proc/self/ns/net"], 30),
    );
    assert_eq!(r.exit_code, 0, "readlink failed: {r:?}");
    stdout(&r).trim().to_string()
}

/// One shim per pod, and it is the handler's (`containerd-shim-<handler>-v2`).
fn assert_one_shim(env: &CriEnv, handler: &str) {
    let shims = env.shims();
    let want = format!("containerd-shim-{handler}-v2");
    assert!(
        shims.len() == 1 && shims[0].1 == want,
        "expected exactly one {want} process, found {shims:?}"
    );
}

/// The pod config for `name` (host network or not) and the id of its sandbox, run with `handler`.
fn run_pod(env: &CriEnv, name: &str, host_network: bool, handler: &str) -> (cri::PodSandboxConfig, String) {
    let pod = ok(env, "pod config", env.pod_config(name, host_network));
    let pod_id = ok(env, &format!("RunPodSandbox handler {handler}"), env.run_pod(&pod, handler));
    (pod, pod_id)
}

fn stop_and_remove_pod(env: &CriEnv, pod_id: &str) {
    ok(env, "StopPodSandbox", env.cri.stop_pod_sandbox(pod_id));
    let st = ok(
        env,
        "PodSandboxStatus after stop",
        env.cri.pod_sandbox_status(pod_id),
    );
    assert_eq!(
        st.state,
        cri::PodSandboxState::SandboxNotready as i32,
        "{st:?}"
    );
    ok(env, "RemovePodSandbox", env.cri.remove_pod_sandbox(pod_id));
    let pods = ok(env, "ListPodSandbox", env.cri.list_pod_sandbox());
    assert!(
        pods.iter().all(|p| p.id != pod_id),
        "pod still listed: {pods:?}"
    );
}

/// A hostNetwork pod through its whole life: Version, RunPodSandbox,
/// Create/StartContainer, CRI logs, ExecSync, streaming exec,
/// ContainerStatus, StopContainer with a grace period then SIGKILL,
/// StopPodSandbox, RemovePodSandbox, nothing left behind.
fn host_network_pod(version: Version, handler: &str) {
    let env = start(version);
    let v = ok(&env, "Version", env.cri.version());
    assert_eq!(v.runtime_name, "containerd", "{v:?}");
    assert_eq!(v.runtime_api_version, "v1", "{v:?}");
    assert!(
        v.runtime_version.contains(version.release()),
        "runtime_version {:?} is not {}",
        v.runtime_version,
        version.release()
    );

    let (pod, pod_id) = run_pod(&env, "hostnet", true, handler);
    let st = ok(
        &env,
        "PodSandboxStatus",
        env.cri.pod_sandbox_status(&pod_id),
    );
    assert_eq!(
        st.state,
        cri::PodSandboxState::SandboxReady as i32,
        "{st:?}"
    );
    let mode = st
        .linux
        .as_ref()
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .map(|o| o.network);
    assert_eq!(mode, Some(cri::NamespaceMode::Node as i32), "{st:?}");
    let listed = ok(&env, "ListPodSandbox", env.cri.list_pod_sandbox());
    let item = listed.iter().find(|p| p.id == pod_id).expect("pod listed");
    assert_eq!(item.runtime_handler, handler, "{item:?}");

    // Traps SIGTERM and keeps running, so StopContainer must escalate to SIGKILL.
    let c = env.container_config(
        "main",
        &[
            "sh",
            "-c",
            // `wait` (unlike a foreground sleep) returns as soon as the
            // trapped signal arrives, so the trap runs at once.
            "echo out-line; echo err-line >&2; trap 'echo got-TERM' TERM; echo ready; \
             while true; do sleep 1 & wait $!; done",
        ],
        &pod,
    );
    let cid = ok(
        &env,
        "Create/StartContainer",
        env.start_container(&pod_id, &c, &pod),
    );
    assert_one_shim(&env, handler);
    let log = log_path(&pod, &c);
    let lines = ok(&env, "container log", env.wait_log_line(&log, "ready"));
    let find = |content: &str| lines.iter().find(|l| l.content == content).cloned();
    let out = find("out-line").unwrap_or_else(|| panic!("no out-line in {lines:?}"));
    assert_eq!((out.stream.as_str(), out.tag.as_str()), ("stdout", "F"));
    let err = find("err-line").unwrap_or_else(|| panic!("no err-line in {lines:?}"));
    assert_eq!((err.stream.as_str(), err.tag.as_str()), ("stderr", "F"));

    let cs = ok(&env, "ContainerStatus", env.cri.container_status(&cid));
    assert_eq!(
        cs.state,
        cri::ContainerState::ContainerRunning as i32,
        "{cs:?}"
    );
    assert_eq!(cs.metadata.as_ref().map(|m| m.name.as_str()), Some("main"));
    assert!(cs.started_at > 0, "{cs:?}");
    assert_eq!(PathBuf::from(&cs.log_path), log, "{cs:?}");

    let r = ok(
        &env,
        "ExecSync",
        env.cri.exec_sync(
            &cid,
            &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 3"],
            30,
        ),
    );
    assert_eq!(
        (
            stdout(&r).as_str(),
            String::from_utf8_lossy(&r.stderr).as_ref(),
            r.exit_code
        ),
        ("exec-out\n", "exec-err\n", 3)
    );
    // hostNetwork: the container shares containerd's (our private) netns.
    let host_ns = format!("net:[{}]", env.netns.inode().expect("netns inode"));
    assert_eq!(net_ns_of(&env, &cid), host_ns);

    let s = ok(
        &env,
        "streaming Exec",
        env.exec_stream(
            &cid,
            &["sh", "-c", "echo stream-out; echo stream-err >&2; exit 5"],
        ),
    );
    assert_eq!(String::from_utf8_lossy(&s.stdout), "stream-out\n", "{s:?}");
    assert_eq!(String::from_utf8_lossy(&s.stderr), "stream-err\n", "{s:?}");
    assert_eq!(s.exit_code(), Some(5), "{s:?}");

    ok(&env, "StopContainer", env.cri.stop_container(&cid, 5));
    let cs = ok(
        &env,
        "ContainerStatus after stop",
        env.cri.container_status(&cid),
    );
    assert_eq!(
        cs.state,
        cri::ContainerState::ContainerExited as i32,
        "{cs:?}"
    );
    assert_eq!(
        cs.exit_code, 137,
        "SIGTERM is trapped, so SIGKILL ends it: {cs:?}"
    );
    ok(
        &env,
        "log after SIGTERM",
        env.wait_log_line(&log, "got-TERM"),
    );

    stop_and_remove_pod(&env, &pod_id);
    finish(env);
}

/// A pod on the CNI bridge with a shared PID namespace: two containers share
/// the pod's network, IPC, UTS and PID namespaces (the pause process is PID
/// 1); one serves HTTP, the other reaches it on the pod IP and on localhost.
fn cni_pod(version: Version, handler: &str) {
    let env = start(version);
    let pod = ok(
        &env,
        "pod config",
        env.pod_config_with("cni", false, cri::NamespaceMode::Pod),
    );
    let pod_id = ok(
        &env,
        &format!("RunPodSandbox handler {handler}"),
        env.run_pod(&pod, handler),
    );
    let st = ok(
        &env,
        "PodSandboxStatus",
        env.cri.pod_sandbox_status(&pod_id),
    );
    let ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert!(
        cni::in_subnet(&ip),
        "pod IP {ip:?} not in {}: {st:?}",
        cni::SUBNET
    );
    let veths = env.netns.veths().expect("veths");
    assert_eq!(veths.len(), 1, "one veth per CNI pod: {veths:?}");

    let server = env.container_config(
        "server",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
        &pod,
    );
    let client = env.container_config(
        "client",
        &["sh", "-c", "while true; do sleep 1; done"],
        &pod,
    );
    let sid = ok(
        &env,
        "start server",
        env.start_container(&pod_id, &server, &pod),
    );
    let cid = ok(
        &env,
        "start client",
        env.start_container(&pod_id, &client, &pod),
    );
    assert_one_shim(&env, handler);

    let pod_ns = net_ns_of(&env, &cid);
    assert_eq!(
        net_ns_of(&env, &sid),
        pod_ns,
        "containers of a pod share its netns"
    );
    let host_ns = format!("net:[{}]", env.netns.inode().expect("netns inode"));
    assert_ne!(pod_ns, host_ns, "a CNI pod has its own netns");
    let addr = ok(
        &env,
        "ExecSync ip addr",
        env.cri
            .exec_sync(&cid, &["ip", "-o", "-4", "addr", "show", "eth0"], 30),
    );
    assert!(
        stdout(&addr).contains(&format!("inet {ip}/")),
        "eth0 lacks {ip}: {addr:?}"
    );

    for host in [ip.as_str(), "127.0.0.1"] {
        // The server may still be starting: retry inside the container
        // (bounded). No `wget -T`: Debian's busybox-static 1.35 wget
        // segfaults with it.
        let script = format!(
            "for i in $(seq 1 300); do wget -q -O - http://{host}:8080/index.html && exit 0; \
             sleep 0.1; done; exit 1"
        );
        let r = ok(
            &env,
            "ExecSync wget",
            env.cri.exec_sync(&cid, &["sh", "-c", &script], 60),
        );
        assert_eq!(
            (stdout(&r).as_str(), r.exit_code),
            ("pong\n", 0),
            "client -> {host}:8080: {r:?}"
        );
    }

    // The leftover checks of `finish` must see a live pod, or their silence
    // after removal would prove nothing.
    let traces = env.pod_traces();
    for kind in [
        Trace::ShimProcess,
        Trace::Netns,
        Trace::Veth,
        Trace::CniCache,
        Trace::Lease,
        Trace::Mount,
        Trace::Cgroup,
        Trace::ShimBundle,
        Trace::ShimSocket,
        Trace::RuntimeState,
    ] {
        assert!(
            traces.iter().any(|(k, _)| *k == kind),
            "no {kind:?} trace of the live pod: {traces:?}"
        );
    }

    for id in [&sid, &cid] {
        ok(&env, "StopContainer", env.cri.stop_container(id, 2));
        let cs = ok(&env, "ContainerStatus", env.cri.container_status(id));
        assert_eq!(
            cs.state,
            cri::ContainerState::ContainerExited as i32,
            "{cs:?}"
        );
    }
    ok(&env, "StopPodSandbox", env.cri.stop_pod_sandbox(&pod_id));
    assert_eq!(
        env.netns.veths().expect("veths"),
        Vec::<String>::new(),
        "CNI DEL on stop"
    );
    assert!(
        env.net.leases().is_empty(),
        "lease released on stop: {:?}",
        env.net.leases()
    );
    ok(
        &env,
        "RemovePodSandbox",
        env.cri.remove_pod_sandbox(&pod_id),
    );
    finish(env);
}

/// ContainerStats and PodSandboxStats of a running hostNetwork pod (all three
/// releases implement PodSandboxStats on Linux), then UpdateContainerResources.
fn stats(version: Version, handler: &str) {
    let env = start(version);
    let (pod, pod_id) = run_pod(&env, "stats", true, handler);
    let c = env.container_config(
        "busy",
        &["sh", "-c", "echo ready; while true; do sleep 1; done"],
        &pod,
    );
    let cid = ok(
        &env,
        "Create/StartContainer",
        env.start_container(&pod_id, &c, &pod),
    );
    ok(
        &env,
        "container log",
        env.wait_log_line(&log_path(&pod, &c), "ready"),
    );
    // Both RPCs are checked before failing, so a report names every gap.
    let mut problems = Vec::new();
    match env.cri.container_stats(&cid) {
        Err(e) => problems.push(format!("ContainerStats: {e}")),
        Ok(stats) => {
            if stats.attributes.as_ref().map(|a| a.id.as_str()) != Some(cid.as_str()) {
                problems.push(format!("ContainerStats for another container: {stats:?}"));
            }
            let mem = stats.memory.as_ref();
            let ws = mem
                .and_then(|m| m.working_set_bytes.as_ref())
                .map_or(0, |v| v.value);
            let usage = mem
                .and_then(|m| m.usage_bytes.as_ref())
                .map_or(0, |v| v.value);
            if ws == 0 && usage == 0 {
                problems.push(format!("ContainerStats without memory usage: {stats:?}"));
            }
            if stats.cpu.is_none() {
                problems.push(format!("ContainerStats without cpu: {stats:?}"));
            }
        }
    }
    match env.cri.pod_sandbox_stats(&pod_id) {
        Err(e) => problems.push(format!("PodSandboxStats: {e}")),
        Ok(ps) => {
            if ps.attributes.as_ref().map(|a| a.id.as_str()) != Some(pod_id.as_str()) {
                problems.push(format!("PodSandboxStats for another pod: {ps:?}"));
            }
            match ps.linux.as_ref() {
                None => problems.push(format!("PodSandboxStats without linux stats: {ps:?}")),
                Some(l) => {
                    if l.cpu.is_none() || l.memory.is_none() {
                        problems.push(format!("PodSandboxStats without cpu/memory: {ps:?}"));
                    }
                    if !l
                        .containers
                        .iter()
                        .any(|c| c.attributes.as_ref().is_some_and(|a| a.id == cid))
                    {
                        problems.push(format!("container {cid} missing from pod stats: {ps:?}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // A live update reaches the shim (Task Update with OCI LinuxResources) and the container sees
    // its new limits.
    let limits = [
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ];
    let read_limits = || {
        let r = ok(&env, "ExecSync cat limits", env.cri.exec_sync(&cid, &[&["cat"][..], &limits[..]].concat(), 30));
        stdout(&r).split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_ne!(read_limits(), ["100663296", "30000"], "the limits were already the updated ones");
    let res = cri::LinuxContainerResources {
        memory_limit_in_bytes: 100_663_296,
        cpu_quota: 30_000,
        cpu_period: 100_000,
        ..Default::default()
    };
    ok(&env, "UpdateContainerResources", env.cri.update_container_resources(&cid, res));
    assert_eq!(read_limits(), ["100663296", "30000"], "limits inside the container after UpdateContainerResources");

    ok(&env, "StopContainer", env.cri.stop_container(&cid, 0));
    stop_and_remove_pod(&env, &pod_id);
    finish(env);
}

/// A container over its memory limit is OOM-killed and says so.
fn oom_killed(version: Version, handler: &str) {
    let env = start(version);
    let (pod, pod_id) = run_pod(&env, "oom", true, handler);
    let mut c = env.container_config(
        "hog",
        &[
            "sh",
            "-c",
            "x=0123456789abcdef; while true; do x=$x$x; done",
        ],
        &pod,
    );
    if let Some(l) = c.linux.as_mut() {
        l.resources = Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            ..Default::default()
        });
    }
    let cid = ok(
        &env,
        "Create/StartContainer",
        env.start_container(&pod_id, &c, &pod),
    );
    let cs = ok(
        &env,
        "container exit",
        env.wait_container(&cid, "exited", |s| {
            s.state == cri::ContainerState::ContainerExited as i32
        }),
    );
    assert_one_shim(&env, handler);
    assert_eq!(cs.reason, "OOMKilled", "{cs:?}");
    assert_eq!(cs.exit_code, 137, "{cs:?}");
    stop_and_remove_pod(&env, &pod_id);
    finish(env);
}

/// Without restrict_oom_score_adj, CRI asks for oom_score_adj -998 for the
/// sandbox. Where that cannot be set (no CAP_SYS_RESOURCE, as on this host)
/// RunPodSandbox must fail and say why; elsewhere the pod just runs. Either
/// way nothing is left behind.
fn sandbox_failure_says_why(version: Version, handler: &str) {
    let env = CriEnv::start_with(
        version,
        Settings {
            restrict_oom_score_adj: false,
            ..Settings::default()
        },
    )
    .unwrap_or_else(|e| panic!("CRI environment on containerd {version}: {e}"));
    let pod = ok(&env, "pod config", env.pod_config("unrestricted", true));
    let res = env.run_pod(&pod, handler);
    if cri_env::can_lower_oom_score_adj() {
        let pod_id = ok(&env, "RunPodSandbox with CAP_SYS_RESOURCE", res);
        stop_and_remove_pod(&env, &pod_id);
    } else {
        let err = match res {
            Ok(id) => {
                panic!("RunPodSandbox {id} succeeded though oom_score_adj -998 cannot be set")
            }
            Err(e) => e,
        };
        let msg = err
            .status()
            .map(|s| s.message().to_string())
            .unwrap_or_else(|| err.to_string());
        // brisk must name the setting. runc 1.1.5 does not: its init dies and
        // runc reports "can't get final child's PID from pipe: EOF", so for
        // the runc handler only the failure itself is checked.
        let lower = msg.to_lowercase();
        assert!(
            handler != cri_env::BRISK
                || lower.contains("oom_score_adj")
                || lower.contains("oomscoreadj"),
            "RunPodSandbox error does not say why (no mention of oom_score_adj): {msg}"
        );
        let pods = ok(&env, "ListPodSandbox", env.cri.list_pod_sandbox());
        assert!(pods.is_empty(), "failed sandbox still listed: {pods:?}");
    }
    finish(env);
}

/// critest's "mount with 'rshared' should support propagation from host to container and vice
/// versa" (Kubernetes' `mountPropagation: Bidirectional`, which every CSI node plugin needs): a
/// host path that is a shared mount, mounted PROPAGATION_BIDIRECTIONAL into a privileged
/// container. A mount the host makes under it after the start must show in the container, and a
/// mount the container makes under it must show on the host. runc: both ways on every version;
/// brisk before its init helper stopped using a private mount namespace: host → container only.
fn mount_propagation_bidirectional(version: Version, handler: &str) {
    // Declared first, dropped last: the containers are gone before its mounts are detached.
    let vol = SharedVolume::new();
    let env = start(version);
    let mut pod = ok(&env, "pod config", env.pod_config("propagation", true));
    // CRI refuses a privileged container in an unprivileged sandbox.
    if let Some(sc) = pod.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let pod_id = ok(&env, &format!("RunPodSandbox handler {handler}"), env.run_pod(&pod, handler));
    let host = vol.path().to_string_lossy().into_owned();
    let mut c = env.container_config("csi", &["sh", "-c", "echo ready; exec sleep 1000"], &pod);
    c.mounts = vec![cri::Mount {
        container_path: host.clone(),
        host_path: host.clone(),
        propagation: cri::MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    }];
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let cid = ok(&env, "Create/StartContainer", env.start_container(&pod_id, &c, &pod));
    let cs = ok(&env, "ContainerStatus", env.cri.container_status(&cid));
    let props: Vec<i32> = cs.mounts.iter().filter(|m| m.container_path == host).map(|m| m.propagation).collect();
    assert_eq!(props, vec![cri::MountPropagation::PropagationBidirectional as i32], "{cs:?}");

    vol.host_mount("from-host", "host-marker", "from-host\n");
    let r = ok(&env, "ExecSync cat", env.cri.exec_sync(&cid, &["cat", &format!("{host}/from-host/host-marker")], 30));
    assert_eq!((r.exit_code, stdout(&r).as_str()), (0, "from-host\n"), "a mount made on the host after the start is not in the container: {r:?}");

    let mount_inside = format!("mkdir -p {host}/from-ctr && mount -t tmpfs -o size=1m brisk-prop-ctr {host}/from-ctr && echo from-container > {host}/from-ctr/ctr-marker");
    let r = ok(&env, "ExecSync mount", env.cri.exec_sync(&cid, &["sh", "-c", &mount_inside], 30));
    assert_eq!(r.exit_code, 0, "mounting inside the privileged container failed: {r:?}");
    let from_ctr = vol.path().join("from-ctr");
    let seen = std::fs::read_to_string(from_ctr.join("ctr-marker")).ok();
    eprintln!("RESULT {version} {handler}: container -> host: {seen:?}, host mount there: {:?}", mount_of(&from_ctr));
    assert!(mount_of(&from_ctr).is_some(), "a mount made in the container under the Bidirectional volume is not on the host");
    assert_eq!(seen.as_deref(), Some("from-container\n"), "the host does not see the container's tmpfs at {}", from_ctr.display());

    stop_and_remove_pod(&env, &pod_id);
    finish(env);
    drop(vol);
}

cri_matrix!(
    host_network_pod,
    cni_pod,
    stats,
    oom_killed,
    sandbox_failure_says_why,
    mount_propagation_bidirectional
);
