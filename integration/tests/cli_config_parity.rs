//! Real-world configs that runc 1.1.5 runs (or refuses), side by side with brisk (issue 17):
//! key spelling as Go's decoder reads it, deprecated kernel memory limits, a config without a mount
//! namespace, a hostname in a joined uts namespace, relative hook paths, a symlinked rootfs, the
//! bundle path `state` reports, Docker's exec process.json, and create-time errors that say what
//! to do (with the words podman and containerd turn into exit codes 126 and 127).
//!
//! INTENDED_DIFFERENCES: `capability_spelling`: runc 1.1.5 ignores a capability not spelled
//! `CAP_*` (with a warning), so the process silently gets fewer capabilities than the config says;
//! brisk refuses the config and names the field and the spelling to use. Where runc's message does
//! not name the field (relative hook path, symlinked rootfs), only brisk's is required to.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::{Child, Command, Stdio};

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{path_str, CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;
use serde_json::json;

runtime_tests!(
    key_spelling_like_go,
    unknown_key_suggests_nearest,
    kernel_memory_is_ignored,
    no_mount_namespace,
    hostname_in_joined_uts_namespace,
    capability_spelling,
    relative_hook_path_is_refused,
    symlinked_rootfs_is_refused,
    bundle_path_is_clean,
    exec_process_json_with_oom_score_adj,
    missing_config_suggests_spec,
    missing_program_says_no_such_file,
    directory_program_is_permission_denied,
    program_without_execute_bit_is_permission_denied,
    program_on_noexec_mount_is_permission_denied,
);

/// stderr (lower-cased) mentions every one of `shared`, and for brisk also `brisk_only`.
#[track_caller]
fn expect_message(rt: &RuntimeUnderTest, r: &CmdResult, shared: &[&str], brisk_only: &[&str]) {
    let err = r.stderr.to_lowercase();
    let mut want = shared.to_vec();
    if !rt.is_runc() {
        want.extend_from_slice(brisk_only);
    }
    for w in want {
        assert!(err.contains(&w.to_lowercase()), "`{}`: stderr does not mention {w:?}:\n{}", r.cmdline, r.stderr);
    }
}

/// `create` must fail (the create-time check, not a failure after `start`) and leave nothing.
#[track_caller]
fn create_fails(rt: &RuntimeUnderTest, b: &Bundle, prefix: &str) -> CmdResult {
    let id = rt.new_id(prefix);
    let r = rt.create(&id, b).failed();
    rt.assert_nothing_left(&id);
    r
}

/// The widely copied tutorial's spellings: `"postStop"` and `"readOnly"`. runc (Go's
/// encoding/json) reads them as `poststop` and `readonly`: the rootfs is read-only and the hook
/// runs at delete. Map keys (annotations) are data and keep their case.
fn key_spelling_like_go(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let marker = b.scratch("poststop-ran");
    let b = b
        .set("/root", json!({"path": "rootfs", "readOnly": true}))
        .set(
            "/hooks",
            json!({"postStop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}]}),
        )
        .set("/annotations", json!({"readOnly": "data"}))
        .sh("if touch /probe 2>/dev/null; then echo writable; else echo read-only; fi");
    let id = rt.new_id("keycase");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.lines(), ["read-only"], "root.readOnly was not applied");
    assert!(!b.rootfs().join("probe").exists());
    assert!(marker.exists(), "hooks.postStop did not run at delete:\n{}", r.stderr);
}

/// A truly unknown key is still ignored (config.md "Extensibility"); brisk's warning suggests the
/// nearest known key.
fn unknown_key_suggests_nearest(rt: &RuntimeUnderTest) {
    let b = Bundle::new().set("/process/cwdd", json!("/tmp")).sh("pwd");
    let id = rt.new_id("unknownkey");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.lines(), ["/"], "an unknown key changed something");
    expect_message(rt, &r, &[], &["process.cwdd", "did you mean process.cwd?"]);
}

/// `linux.resources.memory.kernel` / `kernelTCP` are deprecated: runc 1.1.5 warns and ignores
/// them, at create and at `update --kernel-memory`.
fn kernel_memory_is_ignored(rt: &RuntimeUnderTest) {
    let b = Bundle::new()
        .set("/linux/resources/memory", json!({"limit": 268435456, "kernel": 67108864, "kernelTCP": 33554432}))
        .sh("echo started; exec sleep 1000");
    let id = rt.new_id("kmem");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    rt.cmd(&["update", "--kernel-memory", "64M", &id]).ok();
    rt.cmd(&["update", "--kernel-memory-tcp", "32M", &id]).ok();
    rt.delete_force(&id).ok();
}

/// Run a runtime command inside a private mount namespace of its own. Without a mount namespace
/// in the config runc makes its mounts (and `/` rslave) in the namespace it runs in; this keeps
/// that off the host and drops whatever it mounted when the command exits.
fn in_private_mntns(rt: &RuntimeUnderTest, args: &[&str]) -> CmdResult {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--"]).arg(rt.bin()).arg("--root").arg(rt.root()).args(args);
    let out = cmd.stdin(Stdio::null()).output().expect("spawning unshare");
    CmdResult {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        cmdline: format!("unshare -m {} {}", rt.bin().display(), args.join(" ")),
    }
}

/// No namespace at all in the config (everything inherited, the mount namespace too): runc runs
/// it, entering the rootfs with chroot (rootfs_linux.go). The process sees the bundle's rootfs
/// as `/`.
fn no_mount_namespace(rt: &RuntimeUnderTest) {
    let b = Bundle::new()
        .set("/linux/namespaces", json!([]))
        // runc needs a /proc in the rootfs (it closes fds through /proc/self/fd).
        .set("/mounts", json!([{"destination": "/proc", "type": "proc", "source": "proc"}]))
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths")
        .remove("/hostname")
        .sh("grep '^test:' /etc/passwd && test -x /bin/busybox && echo in-rootfs");
    b.write_config();
    let id = rt.new_id("nomntns");
    let r = in_private_mntns(rt, &["run", "--bundle", path_str(b.path()), &id]);
    assert!(r.status.success(), "`{}` failed:\n{}", r.cmdline, r.stderr);
    assert!(r.stdout.contains("in-rootfs"), "the process did not run in the rootfs:\n{}", r.stdout);
    rt.assert_nothing_left(&id);
}

/// A process in a uts namespace of its own, killed on drop.
struct UtsHolder(Child);

impl Drop for UtsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A uts namespace joined by path plus `hostname`: runc accepts it and sets the hostname in the
/// joined namespace (configs/validate asks only for a uts entry).
fn hostname_in_joined_uts_namespace(rt: &RuntimeUnderTest) {
    let holder = UtsHolder(
        Command::new("unshare")
            .args(["--uts", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning unshare --uts"),
    );
    let pid = holder.0.id();
    let ns = format!("/proc/{pid}/ns/uts");
    rt.wait_until("the holder's uts namespace", || {
        fs::read_link(&ns).ok() != fs::read_link("/proc/self/ns/uts").ok()
    });
    let b = Bundle::new().namespace("uts", Some(&ns)).hostname("joined-uts").sh("hostname");
    let id = rt.new_id("utsjoin");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.lines(), ["joined-uts"]);
    let seen = Command::new("nsenter").args(["-t", &pid.to_string(), "-u", "hostname"]).output().expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), "joined-uts", "the joined namespace's hostname was not set");
}

/// CAP_NET_ADMIN is bit 12 of CapBnd.
fn has_net_admin(status_line: &str) -> bool {
    u64::from_str_radix(status_line.trim(), 16).is_ok_and(|m| m & (1 << 12) != 0)
}

/// `"net_admin"` / `"NET_ADMIN"` are not the spec's spelling. runc 1.1.5 ignores them with a
/// warning (the process lacks the capability); brisk refuses the config (INTENDED_DIFFERENCES).
fn capability_spelling(rt: &RuntimeUnderTest) {
    for spelling in ["net_admin", "NET_ADMIN"] {
        let mut caps: Vec<&str> = brisk_integration::bundle::DEFAULT_CAPS.to_vec();
        caps.push(spelling);
        let b = Bundle::new().capabilities(&caps).sh("grep CapBnd /proc/self/status | cut -f2");
        if rt.is_runc() {
            let id = rt.new_id("capname");
            let r = rt.run(&id, &b).ok();
            assert!(!has_net_admin(&r.stdout), "{spelling:?} granted CAP_NET_ADMIN: {}", r.stdout);
            expect_message(rt, &r, &["ignoring unknown or unavailable capabilities"], &[]);
        } else {
            let r = create_fails(rt, &b, "capname");
            expect_message(rt, &r, &[], &["process.capabilities.bounding[3]", "\"CAP_NET_ADMIN\""]);
        }
    }
}

/// config.md: a hook's path is absolute. runc execs `"touch"` relative to the bundle (and fails);
/// it never searches PATH. brisk refuses before anything runs, naming the field.
fn relative_hook_path_is_refused(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let marker = b.scratch("hook-ran");
    let b = b.hook("prestart", "touch", &["touch", path_str(&marker)]);
    let r = create_fails(rt, &b, "relhook");
    assert!(!marker.exists(), "the relative hook path was run through PATH");
    expect_message(rt, &r, &[], &["hooks.prestart[0].path", "not an absolute path"]);
}

/// runc (configs/validate rootfs): "invalid rootfs: not an absolute path, or a symlink".
fn symlinked_rootfs_is_refused(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    symlink("rootfs", b.scratch("rootlink")).expect("symlink");
    let b = b.root_path("rootlink");
    let r = create_fails(rt, &b, "rootlink");
    expect_message(rt, &r, &["not an absolute path, or a symlink"], &["root.path"]);
}

/// `create --bundle ./` from inside the bundle: runc records the clean absolute path (os.Getwd
/// after chdir), which `state` prints.
fn bundle_path_is_clean(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("exec sleep 1000");
    b.write_config();
    let id = rt.new_id("bundlepath");
    let err = fs::File::create(b.scratch("create.err")).expect("stderr file");
    let st = rt
        .command()
        .current_dir(b.path())
        .args(["create", "--bundle", "./", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .expect("spawning create");
    assert!(st.success(), "create --bundle ./ failed: {}", fs::read_to_string(b.scratch("create.err")).unwrap_or_default());
    let want = fs::canonicalize(b.path()).expect("canonical bundle");
    assert_eq!(rt.state(&id)["bundle"], path_str(&want));
    rt.delete_force(&id).ok();
}

/// Docker's exec process.json carries `oomScoreAdj`; runc accepts it and gives the exec'd process
/// the container's value (bootstrapData is built from the container's config).
fn exec_process_json_with_oom_score_adj(rt: &RuntimeUnderTest) {
    let b = Bundle::new().set("/process/oomScoreAdj", json!(3)).sh("echo started; exec sleep 1000");
    let id = rt.new_id("execoom");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "started");
    let process = json!({
        "args": ["cat", "/proc/self/oom_score_adj"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
        "oomScoreAdj": 7
    });
    let p = b.scratch("process.json");
    fs::write(&p, serde_json::to_vec(&process).expect("json")).expect("write process.json");
    let r = rt.cmd(&["exec", "-p", path_str(&p), &id]).ok();
    assert_eq!(r.lines(), ["3"]);
    rt.delete_force(&id).ok();
}

/// runc: "JSON specification file config.json not found"; brisk also says how to get one.
fn missing_config_suggests_spec(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let id = rt.new_id("noconfig");
    let r = rt.cmd(&["create", "--bundle", path_str(b.path()), &id]).failed();
    rt.assert_nothing_left(&id);
    expect_message(rt, &r, &["config.json not found"], &["brisk spec"]);
}

/// runc: `exec: "/nonexistent": stat /nonexistent: no such file or directory`, at create.
fn missing_program_says_no_such_file(rt: &RuntimeUnderTest) {
    let b = Bundle::new().args(&["/nonexistent"]);
    let r = create_fails(rt, &b, "noprog");
    expect_message(rt, &r, &["/nonexistent", "no such file or directory"], &[]);
    assert!(!r.stderr.contains("$PATH"), "a path was looked up in $PATH:\n{}", r.stderr);
}

/// A directory is not executable: "permission denied" at create (podman/containerd: 126).
fn directory_program_is_permission_denied(rt: &RuntimeUnderTest) {
    let b = Bundle::new().args(&["/etc"]);
    let r = create_fails(rt, &b, "dirprog");
    expect_message(rt, &r, &["/etc", "permission denied"], &[]);
}

fn program_without_execute_bit_is_permission_denied(rt: &RuntimeUnderTest) {
    let b = Bundle::new().args(&["/plain"]);
    fs::write(b.rootfs().join("plain"), "#!/bin/sh\necho ran\n").expect("write");
    fs::set_permissions(b.rootfs().join("plain"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let r = create_fails(rt, &b, "noxprog");
    expect_message(rt, &r, &["/plain", "permission denied"], &[]);
}

/// An executable file on a `noexec` mount: runc's faccessat2 check fails it at create.
fn program_on_noexec_mount_is_permission_denied(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let dir = b.scratch("bin2");
    fs::create_dir(&dir).expect("dir");
    fs::write(dir.join("prog"), "#!/bin/sh\necho ran\n").expect("write");
    fs::set_permissions(dir.join("prog"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let b = b.bind(&dir, "/mnt", &["noexec"]).args(&["/mnt/prog"]);
    let r = create_fails(rt, &b, "noexecprog");
    expect_message(rt, &r, &["/mnt/prog", "permission denied"], &[]);
}
