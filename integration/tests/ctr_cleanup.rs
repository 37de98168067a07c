//! The harness's own guarantee: a test that fails mid-way (a paused task with
//! a running exec, a container whose shim was SIGKILLed) leaves no process,
//! mount, cgroup or directory behind once its Containerd is dropped.

use std::path::PathBuf;
use std::time::Duration;

use brisk_integration::containerd::{mounts_under, Containerd, Pidfd, Version};
use brisk_integration::ctr_matrix;

struct Leftovers {
    dir: PathBuf,
    cgroups: Vec<PathBuf>,
    processes: Vec<Pidfd>,
    runtime_roots: Vec<PathBuf>,
}

fn panic_mid_test(version: Version, runtime: &str) {
    let mut seen: Option<Leftovers> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (cd, image) = Containerd::with_busybox(version).expect("containerd with busybox");
        let paused = cd.new_id("paused");
        let mut a = cd.run_args(runtime, &["-d"], &image, &paused);
        a.extend(["sleep", "1000"]);
        cd.ctr_ok(&a).expect("run paused");
        let _exec = brisk_integration::containerd::ChildGuard(
            cd.ctr_command(&[
                "task",
                "exec",
                "--exec-id",
                "x",
                "--fifo-dir",
                cd.fifo_dir_str(),
                &paused,
                "sleep",
                "1000",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("exec"),
        );
        brisk_integration::containerd::wait_for("exec running", Duration::from_secs(60), || {
            Ok(cd.ctr_ok(&["task", "ps", &paused])?.lines().count() >= 3)
        })
        .expect("exec in ps");
        cd.ctr_ok(&["task", "pause", &paused]).expect("pause");
        let orphan = cd.new_id("orphan");
        let mut a = cd.run_args(runtime, &["-d"], &image, &orphan);
        a.extend(["sleep", "1000"]);
        cd.ctr_ok(&a).expect("run orphan");
        cd.kill_shim(&orphan).expect("kill shim");

        let mut procs: Vec<u32> = cd.cgroup_pids();
        procs.extend(cd.shim_pids());
        assert!(
            procs.len() >= 3,
            "expected container processes and a shim, got {procs:?}"
        );
        seen = Some(Leftovers {
            dir: cd.dir.clone(),
            cgroups: cd.cgroup_dirs(),
            processes: procs
                .into_iter()
                .filter_map(|p| Pidfd::open(p).ok())
                .collect(),
            runtime_roots: ["/run/containerd/runc", "/run/containerd/brisk"]
                .iter()
                .map(|r| PathBuf::from(r).join(&cd.namespace))
                .collect(),
        });
        panic!("deliberate failure with live containers");
    }));
    assert!(r.is_err(), "the body was meant to panic");
    let l = seen.expect("body ran to the deliberate panic");
    assert!(!l.cgroups.is_empty(), "containers had cgroups");
    for p in &l.processes {
        assert!(!p.is_alive(), "a process of the failed test survived");
    }
    assert!(
        mounts_under(&l.dir).is_empty(),
        "mounts left under {}",
        l.dir.display()
    );
    assert!(!l.dir.exists(), "{} left behind", l.dir.display());
    for c in &l.cgroups {
        assert!(!c.exists(), "cgroup {} left behind", c.display());
    }
    for r in &l.runtime_roots {
        assert!(!r.exists(), "{} left behind", r.display());
    }
}

ctr_matrix!(panic_mid_test);
