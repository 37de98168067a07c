//! `ctr run -t` driven through a real pty pair.

use std::time::Duration;

use brisk_integration::containerd::{Containerd, Pty, Version};
use brisk_integration::ctr_matrix;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_tty(version: Version, runtime: &str) {
    let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
    let id = cd.new_id("tty");
    let mut args = cd.run_args(runtime, &["-t", "--rm"], &image, &id);
    args.push("sh");
    let pty = Pty::open().expect("openpty");
    let mut child = pty.spawn(cd.ctr_command(&args)).expect("spawn ctr run -t");
    // The echoed command line shows "$((6*7))"; only the shell's output has 42,
    // so seeing it proves input went in and output came back.
    pty.write(b"echo pty-$((6*7)); tty\n")
        .expect("write command");
    let mut buf = Vec::new();
    let seen = pty.read_until(&mut buf, Duration::from_secs(60), |b| {
        let t = text(b);
        t.contains("pty-42") && t.contains("/dev/pts/")
    });
    assert!(
        seen,
        "no shell output through the pty: {:?}\ncontainerd log:\n{}",
        text(&buf),
        cd.log_tail(30)
    );
    pty.write(b"exit 5\n").expect("write exit");
    let status = child.wait_timeout(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(5),
        "ctr run -t exit; output {:?}",
        text(&buf)
    );
    assert!(cd.tasks().expect("task ls").is_empty(), "--rm left a task");
}

ctr_matrix!(run_tty);
