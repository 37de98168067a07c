//! `brisk features` (runtime-spec features.md), generated from the same tables the config parser
//! and the setup code use, never from a hand-kept list.
use crate::namespaces::NAMESPACES;

pub fn features() -> serde_json::Value {
    let (apparmor, selinux) = crate::spec::lsm_available();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "linux": {
            "namespaces": NAMESPACES.iter().map(|n| n.1).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
        },
        "annotations": {"io.github.brisk.version": env!("CARGO_PKG_VERSION")}
    })
}
