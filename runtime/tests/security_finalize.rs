//! Real (root) tests of security::finalize_process: each case runs the `security_helper` example in
//! a fresh process, which finalizes and then execs busybox; the test inspects what busybox saw.
//!
//! The helper is the `security_helper` example; the first test that needs it builds it with cargo.

use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn helper() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/security_finalize-<hash> -> target/<profile>/examples/security_helper
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
            let helper = profile_dir.join("examples").join("security_helper");
            // `cargo test` does not build examples for a filtered run, so build it here (cargo has
            // released the build lock by the time tests run). Up to date => no-op.
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-q", "-p", "brisk-runtime", "--example", "security_helper"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            if let Some(target) = profile_dir.parent() {
                cmd.env("CARGO_TARGET_DIR", target);
            }
            let status = cmd.status().expect("run cargo build for the helper");
            assert!(status.success(), "building the security_helper example failed");
            assert!(helper.exists(), "{} missing after build", helper.display());
            helper
        })
        .clone()
}

/// A scratch directory removed on drop, also when the test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("brisk-security-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Kills the helper (only the pid we started) if the test fails before it exits.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait(mut self) -> Output {
        self.0.take().expect("child").wait_with_output().expect("wait helper")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(scratch: &Scratch, name: &str, config: serde_json::Value) -> ChildGuard {
    let path = scratch.0.join(format!("{name}.json"));
    fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write config");
    let child = Command::new(helper())
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helper");
    ChildGuard(Some(child))
}

fn run(scratch: &Scratch, name: &str, config: serde_json::Value) -> (i32, String, String) {
    let out = spawn(scratch, name, config).wait();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{key} missing in:\n{status}"))
}

fn cap_mask(status: &str, key: &str) -> u64 {
    u64::from_str_radix(status_field(status, key), 16).expect("hex cap mask")
}

fn bit(name: &str) -> u64 {
    1u64 << brisk_runtime::security::capability_index(name).expect("capability")
}

#[test]
fn security_capabilities_are_dropped_and_unavailable_ones_warned() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("caps");
    let keep = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"];
    let mut requested: Vec<&str> = keep.to_vec();
    requested.push("CAP_SYS_RESOURCE"); // not in this host's bounding set: warning, not failure
    let host_has_sys_resource = fs::read_to_string("/proc/self/status")
        .map(|st| cap_mask(&st, "CapBnd") & bit("CAP_SYS_RESOURCE") != 0)
        .unwrap_or(true);
    let (code, out, err) = run(
        &s,
        "caps",
        serde_json::json!({
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": requested, "effective": requested, "permitted": requested}},
            "argv": [BUSYBOX, "cat", "/proc/self/status"],
        }),
    );
    assert_eq!(code, 0, "stderr: {err}");
    let want = keep.iter().map(|c| bit(c)).fold(0, |a, b| a | b);
    let extra = if host_has_sys_resource { bit("CAP_SYS_RESOURCE") } else { 0 };
    assert_eq!(cap_mask(&out, "CapBnd"), want | extra, "{out}");
    assert_eq!(cap_mask(&out, "CapEff"), want | extra, "{out}");
    assert_eq!(cap_mask(&out, "CapEff") & bit("CAP_SYS_ADMIN"), 0);
    assert_eq!(cap_mask(&out, "CapInh"), 0);
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    if !host_has_sys_resource {
        assert!(err.contains("CAP_SYS_RESOURCE"), "expected a warning naming CAP_SYS_RESOURCE, stderr: {err}");
    }
}

#[test]
fn security_user_groups_nnp_and_ambient() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("user");
    let nbs = ["CAP_NET_BIND_SERVICE"];
    let (code, out, err) = run(
        &s,
        "user",
        serde_json::json!({
            "process": {"cwd": "/", "noNewPrivileges": true,
                        "user": {"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]},
                        "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": nbs,
                                         "permitted": nbs, "inheritable": nbs, "ambient": nbs}},
            "argv": [BUSYBOX, "cat", "/proc/self/status"],
        }),
    );
    assert_eq!(code, 0, "stderr: {err}");
    let ids = |k: &str| status_field(&out, k).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(ids("Uid"), ["1000"; 4]);
    assert_eq!(ids("Gid"), ["1001"; 4]);
    assert_eq!(ids("Groups"), ["2000", "2001"]);
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    // A non-root program keeps only its ambient capabilities across execve.
    assert_eq!(cap_mask(&out, "CapAmb"), bit("CAP_NET_BIND_SERVICE"));
    assert_eq!(cap_mask(&out, "CapEff"), bit("CAP_NET_BIND_SERVICE"));
    assert_eq!(cap_mask(&out, "CapBnd"), bit("CAP_NET_BIND_SERVICE") | bit("CAP_KILL"));
}

fn mkdir_profile() -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall_is_skipped"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })
}

fn assert_mkdir_denied(code: i32, out: &str, err: &str, target: &Path) {
    assert_eq!(code, 0, "stderr: {err}");
    // mkdir failed with EPERM (errnoRet 1) while the shell, echo and stat kept working.
    assert!(out.contains("mkdir=1"), "stdout: {out} stderr: {err}");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
    assert!(out.contains("stat=ok"), "stdout: {out}");
    assert!(!target.exists());
}

fn mkdir_argv(target: &Path) -> serde_json::Value {
    let script = format!("mkdir {}; echo mkdir=$?; stat / >/dev/null && echo stat=ok", target.display());
    serde_json::json!([BUSYBOX, "sh", "-c", script])
}

#[test]
fn security_seccomp_errno_rule_with_and_without_nnp() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("errno");
    for nnp in [true, false] {
        let target = s.0.join(format!("denied-{nnp}"));
        let (code, out, err) = run(
            &s,
            &format!("errno-{nnp}"),
            serde_json::json!({
                "process": {"cwd": "/", "noNewPrivileges": nnp, "user": {"uid": 0, "gid": 0},
                            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
                "seccomp": mkdir_profile(),
                "argv": mkdir_argv(&target),
            }),
        );
        assert_mkdir_denied(code, &out, &err, &target);
        assert!(err.contains("no_such_syscall_is_skipped"), "unknown syscall not logged: {err}");
    }
}

#[test]
fn security_seccomp_cached_filter_is_created_and_reused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("cache");
    let cache = s.0.join("cache");
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(mkdir_profile()).expect("profile");
    let file = cache.join(format!("{}.bpf", brisk_runtime::security::cache_key(&profile).expect("cache key")));
    let mut inodes = Vec::new();
    for round in 0..2 {
        let target = s.0.join(format!("denied-{round}"));
        let (code, out, err) = run(
            &s,
            &format!("cache-{round}"),
            serde_json::json!({
                "process": {"cwd": "/", "noNewPrivileges": true, "user": {"uid": 0, "gid": 0}},
                "seccomp": mkdir_profile(),
                "cacheDir": cache,
                "argv": mkdir_argv(&target),
            }),
        );
        assert_mkdir_denied(code, &out, &err, &target);
        let meta = fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(meta.mode() & 0o077, 0, "cache file must be private");
        inodes.push((meta.ino(), meta.mtime_nsec(), meta.mtime()));
        if round == 1 {
            assert!(err.contains("using cached filter"), "second run did not hit the cache: {err}");
        }
    }
    // Reused, not rewritten (a rewrite renames a new inode into place).
    assert_eq!(inodes[0], inodes[1]);
    let entries: Vec<_> = fs::read_dir(&cache).expect("cache dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

#[test]
fn security_seccomp_notify_fd_reaches_the_agent() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("notify");
    let sock = s.0.join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind agent socket");
    let target = s.0.join("notified");
    let child = spawn(
        &s,
        "notify",
        serde_json::json!({
            "process": {"cwd": "/", "noNewPrivileges": true, "user": {"uid": 0, "gid": 0}},
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock, "listenerMetadata": "hello-agent",
                        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]},
            "state": {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 4242, "bundle": "/b"},
            "argv": mkdir_argv(&target),
        }),
    );
    let (conn, _) = listener.accept().expect("helper connects");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
            .expect("recvmsg");
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        (msg.bytes, fds)
    };
    assert_eq!(fds.len(), 1, "exactly one fd over SCM_RIGHTS");
    // SAFETY: the fd was just received via SCM_RIGHTS and is owned by nobody else.
    let notify_fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let msg: serde_json::Value = serde_json::from_slice(&buf[..len]).expect("ContainerProcessState JSON");
    assert_eq!(msg["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "hello-agent");
    assert_eq!(msg["pid"], 4242);
    assert_eq!(msg["ociVersion"], "1.2.0");
    assert_eq!(msg["state"]["id"], "c1");

    // Act as the agent: the mkdir the helper's busybox runs must arrive here; answer EACCES.
    let req = ScmpNotifReq::receive(notify_fd.as_raw_fd()).expect("notification");
    let name = req.data.syscall.get_name().expect("syscall name");
    assert!(name == "mkdir" || name == "mkdirat", "unexpected notified syscall {name}");
    ScmpNotifResp::new_error(req.id, -libc::EACCES, ScmpNotifRespFlags::empty())
        .respond(notify_fd.as_raw_fd())
        .expect("respond");
    let out = child.wait();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stdout.contains("mkdir=1") && stderr.contains("Permission denied"), "stdout: {stdout} stderr: {stderr}");
    assert!(!target.exists());
}

#[test]
fn security_unknown_capability_is_rejected_naming_the_set() {
    let s = Scratch::new("unknown");
    let (code, _out, err) = run(
        &s,
        "unknown",
        serde_json::json!({
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "capabilities": {"inheritable": ["CAP_TELEPORT"]}},
            "argv": [BUSYBOX, "true"],
        }),
    );
    assert_eq!(code, 121);
    assert!(err.contains("process.capabilities.inheritable") && err.contains("CAP_TELEPORT"), "{err}");
}

#[test]
fn security_default_profile_and_capabilities_run_a_shell() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let s = Scratch::new("default");
    let caps = brisk_runtime::security::default_capabilities();
    let target = s.0.join("allowed");
    let script = format!(
        "mkdir {} && echo mkdir=ok; {BUSYBOX} unshare -U {BUSYBOX} true; echo unshare=$?; cat /proc/self/status",
        target.display()
    );
    let (code, out, err) = run(
        &s,
        "default",
        serde_json::json!({
            "process": {"cwd": "/", "noNewPrivileges": true, "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps}},
            "seccomp": brisk_runtime::security::default_seccomp(),
            "argv": [BUSYBOX, "sh", "-c", script],
        }),
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("mkdir=ok") && target.is_dir(), "stdout: {out} stderr: {err}");
    // A user namespace needs no capability, so only the filter can refuse it: unshare(2) is not in
    // containerd's allow list without CAP_SYS_ADMIN.
    assert!(!out.contains("unshare=0"), "stdout: {out}");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    let want = caps.iter().map(|c| bit(c)).fold(0, |a, b| a | b);
    assert_eq!(cap_mask(&out, "CapBnd"), want);
}
