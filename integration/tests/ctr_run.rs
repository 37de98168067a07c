//! `ctr run` basics through each shim on each containerd release.

use brisk_integration::containerd::{Containerd, Version};
use brisk_integration::ctr_matrix;

fn echo_hi(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("echo");
    let mut args = cd.run_args(runtime, &["--rm"], &image, &id);
    args.extend(["echo", "hi"]);
    let out = cd.ctr(&args);
    assert!(
        out.status.success(),
        "ctr run failed: {}\nstderr: {}\ncontainerd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        cd.log_tail(30)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // --rm removed both task and container.
    assert!(cd.tasks().expect("task ls").is_empty());
    assert_eq!(
        cd.ctr_ok(&["containers", "ls", "-q"])
            .expect("containers ls")
            .trim(),
        ""
    );
    assert!(
        cd.mounts().iter().all(|m| !m.starts_with(cd.rootfs(&id))),
        "rootfs still mounted: {:?}",
        cd.mounts()
    );
}

fn exit_code(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("exit");
    let mut args = cd.run_args(runtime, &["--rm"], &image, &id);
    args.extend(["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let out = cd.ctr(&args);
    assert_eq!(
        out.status.code(),
        Some(7),
        "ctr run status {}\nstderr: {}\ncontainerd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        cd.log_tail(30)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err\n"));
}

ctr_matrix!(echo_hi, exit_code);
