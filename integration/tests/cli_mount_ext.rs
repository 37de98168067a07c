//! runc's mount extensions that real clients put in their configs: `tmpcopyup` (podman adds it to
//! every `--tmpfs` mount and to /tmp, /var/tmp and /run under `--read-only`).
//!
//! A tmpfs with `tmpcopyup` starts with a copy of what the image holds at its destination: content,
//! modes (set-uid included), owners, symlinks (as symlinks) and subdirectories; the tmpfs root takes
//! the image directory's mode but not its owner (runc 1.1.5 does not copy it). Writes land in the
//! tmpfs, never in the image.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::Path;

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;

runtime_tests!(tmpcopyup_copies_the_image_dir, tmpcopyup_read_only, tmpcopyup_symlinked_destination_stays_in_rootfs);

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// rootfs/data: f (0646, 1000:1000), suid (04755, 0:0, after its chown), sub/ (0705, 1000:1000)
/// holding g, link -> f (owned 1000:1000), abs -> /etc/passwd. /data itself 0750, owned 1000:1000.
/// The bundle's process is root without CAP_DAC_OVERRIDE, hence the world bits it needs.
fn populate(rootfs: &Path) {
    let data = rootfs.join("data");
    fs::create_dir_all(data.join("sub")).expect("mkdir data/sub");
    fs::write(data.join("f"), "hello\n").expect("write f");
    chown(data.join("f"), Some(1000), Some(1000)).expect("chown f");
    chmod(&data.join("f"), 0o646);
    fs::write(data.join("suid"), "s\n").expect("write suid");
    chmod(&data.join("suid"), 0o4755);
    fs::write(data.join("sub/g"), "deep\n").expect("write g");
    chown(data.join("sub"), Some(1000), Some(1000)).expect("chown sub");
    chmod(&data.join("sub"), 0o705);
    symlink("f", data.join("link")).expect("symlink link");
    lchown(data.join("link"), Some(1000), Some(1000)).expect("lchown link");
    symlink("/etc/passwd", data.join("abs")).expect("symlink abs");
    chown(&data, Some(1000), Some(1000)).expect("chown data");
    chmod(&data, 0o750);
}

const LISTING: &str = "stat -c '%n %a %u:%g %F' /data /data/f /data/suid /data/sub /data/sub/g /data/link /data/abs; \
                       readlink /data/link; readlink /data/abs; cat /data/f /data/sub/g; \
                       awk '$5 == \"/data\"' /proc/self/mountinfo | grep -c ' - tmpfs '";

const WANT: &str = "/data 750 0:0 directory\n\
                    /data/f 646 1000:1000 regular file\n\
                    /data/suid 4755 0:0 regular file\n\
                    /data/sub 705 1000:1000 directory\n\
                    /data/sub/g 644 0:0 regular file\n\
                    /data/link 777 1000:1000 symbolic link\n\
                    /data/abs 777 0:0 symbolic link\n\
                    f\n/etc/passwd\nhello\ndeep\n1\n";

/// Same tree as the image in both runtimes; writes stay in the tmpfs.
fn tmpcopyup_copies_the_image_dir(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    populate(&b.rootfs());
    let b = b
        .mount("/data", "tmpfs", "tmpfs", &["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"])
        .sh(&format!("{LISTING}; echo changed > /data/f && echo new > /data/new && rm /data/link && echo wrote"));
    let id = rt.new_id("copyup");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.stdout, format!("{WANT}wrote\n"), "stderr: {}", r.stderr);
    let data = b.rootfs().join("data");
    assert_eq!(fs::read_to_string(data.join("f")).expect("image f"), "hello\n", "a write reached the image");
    assert!(!data.join("new").exists(), "a new file reached the image");
    assert!(fs::symlink_metadata(data.join("link")).is_ok(), "a removal reached the image");
}

/// `ro` with `tmpcopyup`: the copy happens first, then the tmpfs goes read-only.
fn tmpcopyup_read_only(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    populate(&b.rootfs());
    let b = b
        .mount("/data", "tmpfs", "tmpfs", &["tmpcopyup", "ro", "size=1m"])
        .sh(&format!("{LISTING}; if (echo x > /data/new) 2>/dev/null; then echo writable; else echo read-only; fi"));
    let id = rt.new_id("copyup-ro");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.stdout, format!("{WANT}read-only\n"), "stderr: {}", r.stderr);
}

/// A destination that is an absolute symlink to a host directory is resolved inside the rootfs
/// (as every mount destination is): the copy never reads the host directory.
fn tmpcopyup_symlinked_destination_stays_in_rootfs(rt: &RuntimeUnderTest) {
    let host = tempfile::Builder::new().prefix("brisk-copyup-host-").tempdir().expect("host dir");
    fs::write(host.path().join("host-secret"), "secret\n").expect("host file");
    let b = Bundle::new();
    symlink(host.path(), b.rootfs().join("evil")).expect("symlink evil");
    // What the symlink means inside the rootfs: a directory the image does have.
    let inside = b.rootfs().join(host.path().strip_prefix("/").expect("absolute tempdir"));
    fs::create_dir_all(&inside).expect("mkdir inside");
    fs::write(inside.join("image-file"), "image\n").expect("image file");
    let b = b.mount("/evil", "tmpfs", "tmpfs", &["tmpcopyup"]).sh("ls /evil; cat /evil/*");
    let id = rt.new_id("copyup-link");
    let r = rt.run(&id, &b).ok();
    assert_eq!(r.stdout, "image-file\nimage\n", "stderr: {}", r.stderr);
    let names: Vec<_> = fs::read_dir(host.path()).expect("read host dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("host-secret")], "the host directory changed");
}
