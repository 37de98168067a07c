//! `brisk features` (runtime-spec features.md), generated from the same tables the config parser
//! and the setup code use — never from a hand-kept list.
use crate::hooks::Kind;
use crate::namespaces::NAMESPACES;
use crate::security::{capability_names, seccomp_flag_supported, SECCOMP_ACTIONS, SECCOMP_ARCHS, SECCOMP_FLAGS, SECCOMP_OPERATORS};

/// The features document for this build on this host.
pub fn features() -> serde_json::Value {
    let (apparmor, selinux) = crate::spec::lsm_available();
    let supported_flags: Vec<&str> = SECCOMP_FLAGS
        .iter()
        .copied()
        .filter(|f| serde_json::from_value(serde_json::Value::from(*f)).is_ok_and(seccomp_flag_supported))
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "mountOptions": crate::rootfs::mount_option_names().collect::<Vec<_>>(),
        "linux": {
            "namespaces": NAMESPACES.iter().map(|n| n.1).collect::<Vec<_>>(),
            "capabilities": capability_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": SECCOMP_FLAGS,
                "supportedFlags": supported_flags,
            },
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "io.github.brisk.version": env!("CARGO_PKG_VERSION"),
            // Static, with runc 1.1.5's meaning for org.opencontainers.runc.checkpoint.enabled:
            // this build implements checkpoint/restore (crate::criu). Whether a working CRIU is
            // installed is a property of the moment, not of the runtime: `criu check` runs at
            // checkpoint/restore time and its failure is the error (features stays fast and
            // side-effect free, as runc's does).
            "io.github.brisk.checkpoint.enabled": "true",
            "io.github.seccomp.libseccomp.version": libseccomp_version(),
        }
    })
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_come_from_the_tables() {
        let f = features();
        assert_eq!(f["linux"]["namespaces"].as_array().map(Vec::len), Some(NAMESPACES.len()));
        assert!(f["mountOptions"].as_array().is_some_and(|m| m.iter().any(|o| o == "rro")));
        assert!(f["linux"]["capabilities"].as_array().is_some_and(|c| c.iter().any(|o| o == "CAP_SYS_ADMIN")));
        assert_eq!(f["linux"]["seccomp"]["actions"].as_array().map(Vec::len), Some(SECCOMP_ACTIONS.len()));
        assert_eq!(f["hooks"][1], "createRuntime");
        assert_eq!(f["annotations"]["io.github.brisk.checkpoint.enabled"], "true");
    }
}
