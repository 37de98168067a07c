//! checkpoint/restore with CRIU (issue 12), runc 1.1.5 and brisk side by side with the same CRIU.
//!
//! Needs a CRIU that passes `criu check` (`make criu` installs one; the make targets that run these
//! tests depend on it). Without one every test says so and returns: there is nothing to prove
//! either runtime against.
//!
//! The container counts in its own filesystem (`/tmp/c` in the rootfs), so a restore that goes on
//! from the dumped value, rather than from 0, proves the process state came back. Its stdio is
//! /dev/null: a host file on fd 1 cannot be dumped by CRIU, for runc as for brisk.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use brisk_integration::bundle::{cgroup_dirs, Bundle};
use brisk_integration::runtime_cli::{path_str, ConsoleSocket, RuntimeUnderTest};
use brisk_integration::runtime_tests;

runtime_tests!(
    checkpoint_stops_and_restore_continues,
    leave_running_keeps_counting,
    restore_into_new_id,
    pre_dump_then_dump,
    failed_dump_leaves_container_running,
    restore_from_missing_image_dir_leaves_nothing,
    missing_criu_is_named,
    failing_criu_check_is_named,
    tty_container_restores_with_new_console,
    stdout_pipe_is_handed_back_on_restore,
    restore_runs_prestart_hook_with_restored_pid,
);

const COUNTER: &str = "i=0; while :; do echo $i > /tmp/c; i=$((i+1)); sleep 0.1; done";

/// True when CRIU works here; otherwise prints why the test is skipped.
fn criu_works() -> bool {
    match std::process::Command::new("criu").arg("check").output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("SKIP: `criu check` fails on this machine (run `make criu`): {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            false
        }
        Err(e) => {
            eprintln!("SKIP: no criu on PATH (run `make criu`): {e}");
            false
        }
    }
}

/// Whether CRIU can track dirty memory here (what a pre-dump needs).
fn mem_dirty_track() -> bool {
    std::process::Command::new("criu").args(["check", "--feature", "mem_dirty_track"]).output().is_ok_and(|o| o.status.success())
}

fn counter_bundle() -> Bundle {
    Bundle::new().sh(COUNTER)
}

/// `run -d` with all stdio on /dev/null (the runtime reopens it on the container's /dev/null).
fn run_null(rt: &RuntimeUnderTest, id: &str, b: &Bundle) {
    rt.track(id);
    b.write_config();
    let st = rt
        .command()
        .args(["run", "-d", "--bundle", path_str(b.path()), id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawning run -d");
    assert!(st.success(), "run -d {id}: {st}");
}

/// The counter's current value (None while the file is being rewritten or not there yet).
fn count(b: &Bundle) -> Option<u64> {
    std::fs::read_to_string(b.rootfs().join("tmp/c")).ok()?.trim().parse().ok()
}

#[track_caller]
fn wait_count_at_least(rt: &RuntimeUnderTest, b: &Bundle, n: u64) -> u64 {
    let mut last = 0;
    rt.wait_until(&format!("the counter to reach {n}"), || {
        last = count(b).unwrap_or(0);
        last >= n
    });
    last
}

/// The counter no longer moves: read it, let the loop run several more iterations' worth, compare.
#[track_caller]
fn assert_stopped_at(b: &Bundle) -> u64 {
    let v = count(b).expect("counter readable");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(count(b), Some(v), "the counter still moves after the dump stopped the container");
    v
}

/// Right after a restore every value read is at least `from` (a fresh start would write 0, 1, ...)
/// and the counter passes `from` + 5, so it goes on from where it was dumped.
#[track_caller]
fn assert_continues_from(rt: &RuntimeUnderTest, b: &Bundle, from: u64) {
    rt.wait_until(&format!("the counter to go past {}", from + 5), || {
        let v = count(b);
        if let Some(v) = v {
            assert!(v >= from, "counter restarted: read {v} after restoring at {from}");
        }
        v.is_some_and(|v| v > from + 5)
    });
}

fn restore(rt: &RuntimeUnderTest, id: &str, b: &Bundle, images: &Path) {
    rt.track(id);
    rt.cmd(&["restore", "-d", "--image-path", path_str(images), "--bundle", path_str(b.path()), id]).ok();
}

fn images(b: &Bundle, name: &str) -> PathBuf {
    b.scratch(name)
}

fn checkpoint_stops_and_restore_continues(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("ckpt");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 10);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).ok();
    // runc's default: CRIU stops the tree and the runtime removes the container.
    assert!(img.join("inventory.img").is_file(), "no inventory.img in {}", img.display());
    rt.cmd(&["state", &id]).failed();
    let at = assert_stopped_at(&b);
    restore(rt, &id, &b, &img);
    assert_eq!(rt.status(&id), "running");
    assert_continues_from(rt, &b, at);
    // The restored tree is in the container's cgroup, so ps (which reads it) sees it.
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let ps = rt.cmd(&["ps", "--format", "json", &id]).ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).expect("ps json");
    assert!(pids.contains(&pid), "restored init {pid} not in the container's cgroup: {pids:?}");
    rt.delete_force(&id).ok();
    assert_nothing_left(rt, &id, &b);
}

fn leave_running_keeps_counting(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("ckleave");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 3);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--leave-running", "--image-path", path_str(&img), &id]).ok();
    assert!(img.join("inventory.img").is_file(), "no inventory.img in {}", img.display());
    assert_eq!(rt.status(&id), "running");
    let v = count(&b).unwrap_or(0);
    wait_count_at_least(rt, &b, v + 5);
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn restore_into_new_id(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("ckold");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 10);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).ok();
    let at = assert_stopped_at(&b);
    let new = rt.new_id("cknew");
    restore(rt, &new, &b, &img);
    assert_eq!(rt.status(&new), "running");
    assert_eq!(rt.state(&new)["id"], new.as_str());
    rt.cmd(&["state", &id]).failed();
    assert_continues_from(rt, &b, at);
    rt.delete_force(&new).ok();
    rt.assert_nothing_left(&new);
}

fn pre_dump_then_dump(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("ckpre");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 3);
    let parent = images(&b, "parent");
    let fin = images(&b, "final");
    if !mem_dirty_track() {
        // Without the kernel's soft-dirty bits (CONFIG_MEM_SOFT_DIRTY) runc refuses a pre-dump
        // ("CRIU is missing features"); so must brisk, with the container left running.
        let r = rt.cmd(&["checkpoint", "--pre-dump", "--image-path", path_str(&parent), &id]).failed();
        if !rt.is_runc() {
            assert!(r.stderr.contains("mem_dirty_track"), "brisk does not name the missing feature: {}", r.stderr);
        }
        assert_eq!(rt.status(&id), "running");
        let v = count(&b).unwrap_or(0);
        wait_count_at_least(rt, &b, v + 3);
        eprintln!("NOTE: no memory dirty tracking on this kernel: only the refusal of --pre-dump was tested");
        rt.delete_force(&id).ok();
        rt.assert_nothing_left(&id);
        return;
    }
    rt.cmd(&["checkpoint", "--pre-dump", "--image-path", path_str(&parent), &id]).ok();
    // A pre-dump leaves the container running and writes memory pages only.
    assert_eq!(rt.status(&id), "running");
    assert!(parent.join("pagemap-1.img").is_file() || std::fs::read_dir(&parent).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("pagemap"))), "no pagemap in the pre-dump {}", parent.display());
    let v = count(&b).unwrap_or(0);
    wait_count_at_least(rt, &b, v + 10);
    // CRIU takes the parent relative to the image directory.
    rt.cmd(&["checkpoint", "--parent-path", "../parent", "--image-path", path_str(&fin), &id]).ok();
    let link = std::fs::read_link(fin.join("parent")).expect("the final dump links its parent");
    assert_eq!(link, Path::new("../parent"));
    let at = assert_stopped_at(&b);
    restore(rt, &id, &b, &fin);
    assert_continues_from(rt, &b, at);
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn failed_dump_leaves_container_running(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    // An open, unlinked 2 MiB file: CRIU's ghost file limit is 1 MiB, so the dump fails.
    let b = Bundle::new().sh(&format!("dd if=/dev/zero of=/tmp/big bs=1M count=2 2>/dev/null; exec 3</tmp/big; rm /tmp/big; {COUNTER}"));
    let id = rt.new_id("ckfail");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 3);
    let img = images(&b, "img");
    let r = rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).failed();
    // Both name CRIU's log; the log says why.
    assert!(r.stderr.contains("dump.log"), "the error does not point at CRIU's log: {}", r.stderr);
    let log = std::fs::read_to_string(img.join("dump.log")).unwrap_or_default();
    assert!(log.contains("ghost"), "dump.log does not mention the ghost file:\n{log}");
    if !rt.is_runc() {
        // brisk also says why on stderr (runc prints only "criu failed: type NOTIFY errno 0").
        assert!(r.stderr.contains("ghost"), "brisk does not say why the dump failed: {}", r.stderr);
    }
    assert_eq!(rt.status(&id), "running");
    let v = count(&b).unwrap_or(0);
    wait_count_at_least(rt, &b, v + 5);
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn restore_from_missing_image_dir_leaves_nothing(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    b.write_config();
    let id = rt.new_id("cknoimg");
    let img = images(&b, "no-such-images");
    let r = rt.cmd(&["restore", "-d", "--image-path", path_str(&img), "--bundle", path_str(b.path()), &id]).failed();
    assert!(r.stderr.contains(path_str(&img)), "the error does not name {}: {}", img.display(), r.stderr);
    assert_nothing_left(rt, &id, &b);
}

fn missing_criu_is_named(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("cknocriu");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 2);
    let img = images(&b, "img");
    // A PATH without /usr/local/sbin (where `make criu` installs it) and without Debian's.
    let out = rt
        .command()
        .args(["checkpoint", "--image-path", path_str(&img), &id])
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("spawning checkpoint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "checkpoint without criu succeeded");
    assert!(stderr.contains("criu"), "the error does not name criu: {stderr}");
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn failing_criu_check_is_named(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let id = rt.new_id("ckbadcriu");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 2);
    // A criu that fails every check the way bookworm's 3.17 does on a 6.x kernel.
    let bin = b.scratch("fake-criu");
    std::fs::create_dir(&bin).expect("fake criu dir");
    let script = bin.join("criu");
    std::fs::write(&script, "#!/bin/sh\necho 'Error (criu/cr-check.c): fake vDSO check failed' >&2\nexit 1\n").expect("fake criu");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let img = images(&b, "img");
    let out = rt
        .command()
        .args(["checkpoint", "--image-path", path_str(&img), &id])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdin(Stdio::null())
        .output()
        .expect("spawning checkpoint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "checkpoint with a broken criu succeeded");
    if !rt.is_runc() {
        // runc only reports that CRIU failed; brisk names the binary and its failing check.
        assert!(stderr.contains("criu check") && stderr.contains("fake vDSO check failed"), "brisk does not name the failing check: {stderr}");
    }
    assert_eq!(rt.status(&id), "running");
    let v = count(&b).unwrap_or(0);
    wait_count_at_least(rt, &b, v + 3);
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn tty_container_restores_with_new_console(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    // The counter also prints each value on its terminal.
    let b = Bundle::new().terminal(true).sh("i=0; while :; do echo $i > /tmp/c; echo tick$i; i=$((i+1)); sleep 0.1; done");
    let id = rt.new_id("cktty");
    rt.track(&id);
    b.write_config();
    let cs = ConsoleSocket::listen(b.scratch("tty1.sock"));
    let st = rt
        .command()
        .args(["run", "-d", "--console-socket", path_str(cs.path()), "--bundle", path_str(b.path()), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawning run -d");
    assert!(st.success(), "run -d {id}: {st}");
    let first = cs.master();
    wait_count_at_least(rt, &b, 10);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).ok();
    drop(first);
    let at = assert_stopped_at(&b);
    // CRIU hands the restored pty's master back (orphan-pts-master); the runtime sends it to the
    // new console socket, and the restored process's output arrives there.
    let cs2 = ConsoleSocket::listen(b.scratch("tty2.sock"));
    rt.cmd(&["restore", "-d", "--console-socket", path_str(cs2.path()), "--image-path", path_str(&img), "--bundle", path_str(b.path()), &id]).ok();
    let master = cs2.master();
    assert_continues_from(rt, &b, at);
    let mut f = std::fs::File::from(master);
    let mut got = String::new();
    let mut buf = [0u8; 256];
    rt.wait_until("output on the restored console", || {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap_or(0);
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        got.contains("tick")
    });
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

/// Spawn `args` with stdout on a fresh pipe and wait for the runtime to exit (`-d`); the pipe's
/// read end stays with the test while the container holds the write end.
fn spawn_piped(rt: &RuntimeUnderTest, args: &[&str]) -> std::process::ChildStdout {
    let mut child = rt.command().args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawning the runtime");
    let out = child.stdout.take().expect("stdout pipe");
    let st = child.wait().expect("waiting for the runtime");
    assert!(st.success(), "{args:?}: {st}");
    out
}

fn read_until_tick(rt: &RuntimeUnderTest, r: &mut std::process::ChildStdout) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 256];
    rt.wait_until("the container's output on the pipe", || {
        let n = std::io::Read::read(r, &mut buf).unwrap_or(0);
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        got.contains("tick")
    });
    got
}

fn stdout_pipe_is_handed_back_on_restore(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = Bundle::new().sh("i=0; while :; do echo $i > /tmp/c; echo tick$i; i=$((i+1)); sleep 0.1; done");
    let id = rt.new_id("ckpipe");
    rt.track(&id);
    b.write_config();
    // The first pipe stays open until the container is dumped, as a caller's would.
    let mut first = spawn_piped(rt, &["run", "-d", "--bundle", path_str(b.path()), &id]);
    read_until_tick(rt, &mut first);
    wait_count_at_least(rt, &b, 10);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).ok();
    let at = assert_stopped_at(&b);
    drop(first);
    // The dumped fd 1 was a pipe: the restore maps it (by its old identity, descriptors.json) onto
    // the runtime's own stdout, a new pipe, as runc does with inherit_fd.
    let mut second = spawn_piped(rt, &["restore", "-d", "--image-path", path_str(&img), "--bundle", path_str(b.path()), &id]);
    assert_continues_from(rt, &b, at);
    let got = read_until_tick(rt, &mut second);
    assert!(got.contains("tick"), "{got}");
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

fn restore_runs_prestart_hook_with_restored_pid(rt: &RuntimeUnderTest) {
    if !criu_works() {
        return;
    }
    let b = counter_bundle();
    let out = b.scratch("prestart.json");
    let b = b.hook("prestart", "/bin/sh", &["sh", "-c", &format!("cat > {}", out.display())]);
    let id = rt.new_id("ckhook");
    run_null(rt, &id, &b);
    wait_count_at_least(rt, &b, 3);
    let img = images(&b, "img");
    rt.cmd(&["checkpoint", "--image-path", path_str(&img), &id]).ok();
    std::fs::remove_file(&out).expect("the prestart hook ran at run");
    restore(rt, &id, &b, &img);
    // runc runs prestart at CRIU's setup-namespaces callback, with the restored init's pid.
    let hook: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("the prestart hook ran at restore")).expect("state JSON");
    assert_eq!(hook["id"], id.as_str());
    assert_eq!(hook["pid"], rt.state(&id)["pid"]);
    rt.delete_force(&id).ok();
    rt.assert_nothing_left(&id);
}

/// No state dir of `id` and none of the bundle's cgroup directories are left.
fn assert_nothing_left(rt: &RuntimeUnderTest, id: &str, b: &Bundle) {
    rt.assert_nothing_left(id);
    for d in cgroup_dirs(&b.cgroups_path()) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}
