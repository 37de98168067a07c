//! Bad input: every case exits non-zero, says what was wrong, and leaves nothing behind (no state
//! dir under --root, no cgroup, nothing outside the root).
//!
//! INTENDED_DIFFERENCES: where runc 1.1.5's message does not name the offending field, path or id
//! (malformed JSON: "unexpected EOF"; bad id: "invalid container ID format"; overlapping id maps:
//! "failed to update /proc/N/uid_map"), the runc variant only checks the exit status and cleanup,
//! and the brisk variant additionally requires the message to name the culprit.

use brisk_integration::bundle::{cgroup_dirs, Bundle};
use brisk_integration::runtime_cli::{CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;

runtime_tests!(
    malformed_config_json,
    missing_config_json,
    unknown_namespace_type,
    missing_rootfs,
    user_namespace_without_mappings,
    overlapping_id_mappings,
    duplicate_container_id,
    malformed_container_id,
    unknown_signal,
    unknown_container,
);

/// `shared`: substrings both runc and brisk print. `brisk_only`: what brisk must also name.
#[track_caller]
fn expect_message(rt: &RuntimeUnderTest, r: &CmdResult, shared: &[&str], brisk_only: &[&str]) {
    let err = r.stderr.to_lowercase();
    let mut want: Vec<&str> = shared.to_vec();
    if !rt.is_runc() {
        want.extend_from_slice(brisk_only);
    }
    for w in want {
        assert!(
            err.contains(&w.to_lowercase()),
            "`{}`: stderr does not mention {w:?}:\n{}",
            r.cmdline,
            r.stderr
        );
    }
}

#[track_caller]
fn assert_no_cgroup(b: &Bundle) {
    let left: Vec<_> = cgroup_dirs(&b.cgroups_path())
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroup dirs left behind: {left:?}");
}

/// A bundle whose process would leave a mark in `<bundle>/ctl` if it ever ran.
fn marked_bundle() -> Bundle {
    let b = Bundle::new();
    let ctl = b.scratch("ctl");
    std::fs::create_dir(&ctl).expect("ctl");
    b.bind(&ctl, "/ctl", &[]).sh("touch /ctl/ran")
}

#[track_caller]
fn create_fails(rt: &RuntimeUnderTest, b: &Bundle, id: &str) -> CmdResult {
    let r = rt.create(id, b).failed();
    rt.assert_nothing_left(id);
    assert_no_cgroup(b);
    assert!(!b.scratch("ctl/ran").exists(), "the container process ran");
    r
}

fn malformed_config_json(rt: &RuntimeUnderTest) {
    let b = marked_bundle();
    let id = rt.new_id("badjson");
    rt.track(&id);
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .expect("write");
    // Bypass create() (which rewrites config.json).
    let r = rt
        .cmd_to_files(
            &["create", "--bundle", b.path().to_str().expect("utf-8"), &id],
            &b,
            &id,
        )
        .failed();
    rt.assert_nothing_left(&id);
    assert_no_cgroup(&b);
    expect_message(rt, &r, &[], &["config.json"]);

    // Well-formed JSON with a wrongly typed field: brisk names the field.
    let id = rt.new_id("badfield");
    std::fs::write(
        b.path().join("config.json"),
        r#"{"ociVersion": "1.0.2", "process": {"args": "not-a-list"}}"#,
    )
    .expect("write");
    let r = rt
        .cmd_to_files(
            &["create", "--bundle", b.path().to_str().expect("utf-8"), &id],
            &b,
            &id,
        )
        .failed();
    rt.assert_nothing_left(&id);
    expect_message(rt, &r, &[], &["args"]);
}

fn missing_config_json(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let id = rt.new_id("noconfig");
    let r = rt
        .cmd_to_files(
            &["create", "--bundle", b.path().to_str().expect("utf-8"), &id],
            &b,
            &id,
        )
        .failed();
    rt.assert_nothing_left(&id);
    expect_message(rt, &r, &["config.json"], &[]);
}

fn unknown_namespace_type(rt: &RuntimeUnderTest) {
    let b = marked_bundle().namespace("bogusns", None);
    let id = rt.new_id("badns");
    let r = create_fails(rt, &b, &id);
    expect_message(rt, &r, &["bogusns"], &["namespace"]);
}

fn missing_rootfs(rt: &RuntimeUnderTest) {
    let b = marked_bundle().root_path("no-such-rootfs");
    let id = rt.new_id("norootfs");
    let r = create_fails(rt, &b, &id);
    expect_message(rt, &r, &["no-such-rootfs"], &[]);
}

fn user_namespace_without_mappings(rt: &RuntimeUnderTest) {
    let b = marked_bundle().namespace("user", None);
    let id = rt.new_id("nomap");
    let r = create_fails(rt, &b, &id);
    expect_message(rt, &r, &["uid"], &["uidMappings"]);
}

fn overlapping_id_mappings(rt: &RuntimeUnderTest) {
    let b = marked_bundle().user_namespace(&[(0, 100000, 10), (5, 200000, 10)], &[(0, 100000, 10)]);
    let id = rt.new_id("overlap");
    let r = create_fails(rt, &b, &id);
    expect_message(rt, &r, &["uid"], &["uidMappings"]);
}

fn duplicate_container_id(rt: &RuntimeUnderTest) {
    let first = Bundle::new();
    let ctl = first.scratch("ctl");
    std::fs::create_dir(&ctl).expect("ctl");
    let first = first.bind(&ctl, "/ctl", &[]).sh("echo first-ran");
    let id = rt.new_id("dup");
    rt.create(&id, &first).ok();
    let pid = rt.state(&id)["pid"].clone();

    let second = marked_bundle();
    second.write_config();
    let r = rt.cmd_to_files(
        &[
            "create",
            "--bundle",
            second.path().to_str().expect("utf-8"),
            &id,
        ],
        &second,
        "dup2",
    );
    let r = r.failed();
    expect_message(rt, &r, &["exists"], &[&id]);
    assert_no_cgroup(&second);
    assert!(!second.scratch("ctl/ran").exists());

    // The first container is untouched and still runs.
    let s = rt.state(&id);
    assert_eq!(s["pid"], pid);
    assert_eq!(s["status"], "created");
    assert_eq!(
        s["bundle"],
        std::fs::canonicalize(first.path())
            .expect("canon")
            .to_str()
            .expect("utf-8")
    );
    rt.start(&id).ok();
    rt.wait_output(&id, &first, "first-ran");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
}

fn malformed_container_id(rt: &RuntimeUnderTest) {
    for bad in ["../x", "a/b", "..", ""] {
        let b = marked_bundle();
        b.write_config();
        let r = rt
            .cmd_to_files(
                &["create", "--bundle", b.path().to_str().expect("utf-8"), bad],
                &b,
                "badid",
            )
            .failed();
        if !bad.is_empty() {
            expect_message(rt, &r, &[], &[bad]);
        }
        assert!(!b.scratch("ctl/ran").exists());
        assert_no_cgroup(&b);
        // Nothing in the root, nor next to it (where "../x" would land).
        let in_root: Vec<_> = std::fs::read_dir(rt.root())
            .expect("root")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(in_root.is_empty(), "id {bad:?} left {in_root:?}");
        let beside: Vec<_> = std::fs::read_dir(rt.root_parent())
            .expect("root parent")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p != rt.root())
            .collect();
        assert!(beside.is_empty(), "id {bad:?} escaped the root: {beside:?}");
    }
}

fn unknown_signal(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh(
        "trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.05 & wait $!; done",
    );
    let id = rt.new_id("badsig");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "ready");
    let r = rt.kill(&id, Some("SIGFOO")).failed();
    expect_message(rt, &r, &["SIGFOO"], &[]);
    rt.kill(&id, Some("999")).failed();
    assert_eq!(rt.status(&id), "running");
    // The container got nothing from the bad attempts, and a good signal still works.
    assert_eq!(rt.container_stdout(&id, &b), "ready\n");
    rt.kill(&id, Some("TERM")).ok();
    rt.wait_output(&id, &b, "got-TERM");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
}

fn unknown_container(rt: &RuntimeUnderTest) {
    for cmd in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope", "TERM"],
        &["delete", "nope"],
        &["exec", "nope", "true"],
        &["ps", "nope"],
    ] {
        let r = rt.cmd(cmd).failed();
        expect_message(rt, &r, &["not exist"], &["nope"]);
    }
    // delete -f of a missing container is not an error (runc: idempotent cleanup).
    rt.cmd(&["delete", "-f", "nope"]).ok();
}
