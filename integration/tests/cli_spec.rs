//! `spec`, `spec --rootless`, `features`, pause/resume: the generated documents are valid and usable.

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;
use serde_json::{json, Value};

runtime_tests!(
    spec_default_runs,
    spec_rootless,
    spec_refuses_to_overwrite,
    features_json,
    pause_resume
);

fn ns_types(config: &Value) -> Vec<String> {
    config["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn generate(rt: &RuntimeUnderTest, dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec!["spec", "--bundle", dir.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let r = rt.cmd(&args).ok();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap_or_else(|e| {
        panic!(
            "`{}` wrote no config.json ({e}); stdout: {}",
            r.cmdline, r.stdout
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("spec output is not JSON ({e}):\n{text}"))
}

fn spec_default_runs(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let spec = generate(rt, b.path(), &[]);
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{spec}"
    );
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(spec["root"]["path"], "rootfs");
    let mut ns = ns_types(&spec);
    ns.sort();
    // runc 1.1.5 lists exactly these five; a cgroup namespace (runc 1.2's default) is also fine.
    ns.retain(|n| n != "cgroup");
    assert_eq!(ns, ["ipc", "mount", "network", "pid", "uts"]);
    let dests: Vec<&str> = spec["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for d in ["/proc", "/dev", "/dev/pts", "/sys"] {
        assert!(dests.contains(&d), "spec mounts lack {d}: {dests:?}");
    }

    // The generated spec is usable as is, apart from being made non-interactive.
    let mut b = b;
    let cg = b.cgroups_path();
    b.config = spec;
    let b = b
        .terminal(false)
        .sh("echo spec-ok; hostname")
        .set("/linux/cgroupsPath", json!(cg));
    let r = rt.run(&rt.new_id("spec"), &b).ok();
    assert_eq!(r.lines()[0], "spec-ok");
}

fn spec_rootless(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let spec = generate(rt, b.path(), &["--rootless"]);
    let ns = ns_types(&spec);
    assert!(
        ns.contains(&"user".to_owned()),
        "rootless spec lacks a user namespace: {ns:?}"
    );
    // Without privileges there is no way to configure a new network namespace.
    assert!(
        !ns.contains(&"network".to_owned()),
        "rootless spec has a network namespace: {ns:?}"
    );
    let uid = nix::unistd::getuid().as_raw();
    for key in ["uidMappings", "gidMappings"] {
        let maps = spec["linux"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}: {spec}"));
        assert_eq!(maps.len(), 1, "{key}: {maps:?}");
        assert_eq!(maps[0]["containerID"], 0, "{key}");
        assert_eq!(maps[0]["size"], 1, "{key}");
        if key == "uidMappings" {
            assert_eq!(maps[0]["hostID"], uid, "{key}");
        }
    }
    // It runs (here as root, which the mapping covers), and inside it we are root of our own userns.
    let mut b = b;
    b.config = spec;
    let b = b.terminal(false).sh("cat /proc/self/uid_map; id -u");
    let r = rt.run(&rt.new_id("rootless"), &b).ok();
    let l: Vec<String> = r
        .lines()
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(l, [format!("0 {uid} 1"), "0".to_owned()]);
}

fn spec_refuses_to_overwrite(rt: &RuntimeUnderTest) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), "precious").expect("write");
    let r = rt
        .cmd(&["spec", "--bundle", dir.path().to_str().expect("utf-8")])
        .failed();
    assert!(r.stderr.contains("config.json"), "stderr: {}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.json")).expect("read"),
        "precious"
    );
}

// INTENDED_DIFFERENCES: runc 1.1.5 does not list the "time" namespace (it has none); brisk does.
fn features_json(rt: &RuntimeUnderTest) {
    let r = rt.cmd(&["features"]).ok();
    let f: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("features is not JSON ({e}):\n{}", r.stdout));
    assert!(
        f["ociVersionMin"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{f}"
    );
    assert!(
        f["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{f}"
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let hooks = strings(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            hooks.contains(&h.to_owned()),
            "features.hooks lacks {h}: {hooks:?}"
        );
    }
    let opts = strings(&f["mountOptions"]);
    for o in ["ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind"] {
        assert!(
            opts.contains(&o.to_owned()),
            "features.mountOptions lacks {o}"
        );
    }
    let ns = strings(&f["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(
            ns.contains(&n.to_owned()),
            "features.linux.namespaces lacks {n}: {ns:?}"
        );
    }
    assert_eq!(
        ns.contains(&"time".to_owned()),
        !rt.is_runc(),
        "time namespace in features: {ns:?}"
    );
    let caps = strings(&f["linux"]["capabilities"]);
    for c in ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"] {
        assert!(
            caps.contains(&c.to_owned()),
            "features.linux.capabilities lacks {c}"
        );
    }
    assert_eq!(f["linux"]["cgroup"]["v1"], true, "{f}");
}

fn pause_resume(rt: &RuntimeUnderTest) {
    let b = Bundle::new();
    let ctl = b.scratch("ctl");
    std::fs::create_dir(&ctl).expect("ctl");
    // Counts while it runs; a frozen container's counter stands still.
    let b = b.bind(&ctl, "/ctl", &[]).sh(
        "i=0; while :; do i=$((i+1)); echo $i > /ctl/n.tmp; mv /ctl/n.tmp /ctl/n; sleep 0.02; done",
    );
    let id = rt.new_id("pause");
    rt.run_detached(&id, &b).ok();
    let n = b.scratch("ctl/n");
    rt.wait_until("counter to start", || n.exists());
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.status(&id), "paused");
    let frozen = std::fs::read_to_string(&n).expect("counter");
    // A frozen container takes no new processes.
    rt.exec(&id, &["true"]).failed();
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.status(&id), "running");
    rt.wait_until("counter to move after resume", || {
        std::fs::read_to_string(&n)
            .map(|v| v != frozen)
            .unwrap_or(false)
    });
    rt.delete_force(&id).ok();
}
