//! Process credentials and confinement: capabilities, user/group switch, noNewPrivileges, seccomp.
//!
//! [`finalize_process`] is the last step of both the container init and an exec'd process before
//! execve: it owns the order of these calls, because that order is where the bugs live (seccomp needs
//! CAP_SYS_ADMIN unless noNewPrivileges is set; setuid drops capabilities unless KEEPCAPS is set; the
//! filter must be loaded as late as possible so that the runtime's own syscalls are not filtered).
//!
//! The order is runc 1.1's (libcontainer standard_init_linux.go / setns_init_linux.go, with
//! finalizeNamespace and setupUser inlined):
//!
//! 1. PR_SET_NO_NEW_PRIVS, if asked (runc sets it before anything else).
//! 2. seccomp, if noNewPrivileges is false: without NNP, loading a filter needs CAP_SYS_ADMIN, which
//!    is about to be dropped (seccomp(2), EACCES).
//! 3. drop the bounding set (needs CAP_SETPCAP, so while still root).
//! 4. PR_SET_KEEPCAPS=1, so the uid switch keeps the permitted set (capabilities(7)).
//! 5. setgroups (unless /proc/self/setgroups is "deny"), setresgid, setresuid — groups first, since
//!    after setresgid/setresuid to non-root we may no longer have CAP_SETGID.
//! 6. PR_SET_KEEPCAPS=0; restore the parent-death signal, which a credential change clears.
//! 7. capset effective/permitted/inheritable in one call, then the ambient set (the kernel requires
//!    each ambient capability to be permitted and inheritable already).
//! 8. seccomp, if noNewPrivileges is true: as late as possible, so the filter sees few runtime calls.
//!
//! The process must be single-threaded: the raw setres*id/setgroups syscalls used here change the
//! calling thread only (glibc's wrappers would broadcast to other threads; there are none).

mod caps;
mod ops;
mod seccomp;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, Process};

pub use self::caps::{capability_index, capability_names};
pub use self::seccomp::{
    cache_key, compile, compile_cached, send_process_state, send_to_listener, seccomp_flag_supported,
    validate_seccomp_json, syscall_known, native_syscall_names, Bpf, ContainerProcessState, SeccompProgram, SECCOMP_ACTIONS, SECCOMP_ARCHS,
    SECCOMP_FD_NAME, SECCOMP_FLAGS, SECCOMP_OPERATORS,
};
use self::ops::{Ops, RealOps};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("security: {step}: {source}")]
    Sys { step: &'static str, #[source] source: nix::Error },
    /// A failed syscall together with the argument it was given (a uid, a capability name, ...).
    #[error("security: {step} {what}: {source}")]
    SysArg { step: &'static str, what: String, #[source] source: nix::Error },
    #[error("security: {step}: {reason}")]
    Invalid { step: &'static str, reason: String },
    #[error("security: {step} {what}: {source}")]
    Seccomp { step: &'static str, what: String, #[source] source: libseccomp::error::SeccompError },
    #[error("security: {step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
}

/// The known capability nearest to a misspelled `CAP_*` name, for a hint.
pub fn suggest_capability(name: &str) -> Option<String> {
    capability_names()
        .into_iter()
        .map(|c| (crate::spec::keys::edit_distance(name, &c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The capability checks of a process, reporting into a collector at `field` (a config's
/// `process.capabilities`). A capability in the bounding set that the default set
/// ([`default_capabilities`], what `brisk spec` and containerd grant) leaves out is a warning: it
/// is allowed, but usually more than a container needs.
pub fn check_capabilities(process: &Process, field: &str, c: &mut crate::spec::Collector) -> crate::spec::Flow {
    if let Err(e) = caps::requested(process.capabilities().as_ref()) {
        let reason = match e {
            SecurityError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        c.error(field, reason, "effective must be a subset of permitted")?;
    }
    let typical = default_capabilities();
    let bounding = process.capabilities().as_ref().and_then(|c| c.bounding().clone()).unwrap_or_default();
    // oci-spec keeps each set as a hash set: the file's order (and index) is gone, so the warning
    // names the capability, in name order.
    let mut names: Vec<String> = bounding.iter().map(|cap| serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()).collect();
    names.sort();
    for name in names.into_iter().filter(|n| !typical.contains(n)) {
        c.warn(format!("{field}.bounding"), format!("{name} is outside the typical bounding set"), "the default set is what `brisk spec` writes");
    }
    Ok(())
}

/// The seccomp checks, reporting into a collector (see [`validate`]).
pub fn check_seccomp(s: &LinuxSeccomp, c: &mut crate::spec::Collector) -> crate::spec::Flow {
    seccomp::check_seccomp(s, c)
}

/// Validate the security-relevant parts of a process before any side effect (capability sets that
/// capset(2) would reject, seccomp architectures this libseccomp cannot compile, NOTIFY without a
/// listener, argument indexes, errno values, flags the kernel lacks).
///
/// Unknown capability/action/arch/operator/flag *names* cannot reach this function: oci-spec's typed
/// parse rejects them. Run [`validate_config_json`] / [`validate_process_json`] on the raw JSON
/// first to get an error that names the field.
pub fn validate(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<(), SecurityError> {
    caps::requested(process.capabilities().as_ref())?;
    if let Some(s) = seccomp {
        seccomp::validate_seccomp(s)?;
    }
    Ok(())
}

/// Check the names in a raw `process` object (config.json's, or `exec --process`'s file): every
/// capability must be one of [`capability_names`]; the error names the set.
pub fn validate_process_json(process: &serde_json::Value) -> Result<(), SecurityError> {
    let Some(capabilities) = process.get("capabilities") else { return Ok(()) };
    for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
        let Some(list) = capabilities.get(set) else { continue };
        let Some(items) = list.as_array() else {
            if list.is_null() {
                continue;
            }
            return Err(SecurityError::Invalid {
                step: "validate capabilities",
                reason: format!("process.capabilities.{set}: must be a list of capability names"),
            });
        };
        let names: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
        if names.len() != items.len() {
            return Err(SecurityError::Invalid {
                step: "validate capabilities",
                reason: format!("process.capabilities.{set}: must be a list of capability names"),
            });
        }
        let unknown = caps::unknown_names(names);
        if !unknown.is_empty() {
            return Err(SecurityError::Invalid {
                step: "validate capabilities",
                reason: format!(
                    "process.capabilities.{set}: unknown capability {}",
                    unknown.into_iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// [`validate_process_json`] and [`validate_seccomp_json`] over a whole raw config.json.
pub fn validate_config_json(config: &serde_json::Value) -> Result<(), SecurityError> {
    if let Some(p) = config.get("process") {
        validate_process_json(p)?;
    }
    if let Some(s) = config.get("linux").and_then(|l| l.get("seccomp")) {
        if !s.is_null() {
            validate_seccomp_json(s)?;
        }
    }
    Ok(())
}

/// Switch to the process's user, apply the five capability sets, noNewPrivileges and seccomp, in the
/// order the kernel requires. Returns the seccomp notify fd when the profile uses SCMP_ACT_NOTIFY.
///
/// Compiles the profile in-process. Callers that can reach the filter cache should build a
/// [`SeccompProgram`] with [`SeccompProgram::prepare`] before pivot_root (or on the runtime side)
/// and call [`finalize_process_with`] instead.
pub fn finalize_process(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Option<OwnedFd>, SecurityError> {
    let program = seccomp.map(|s| SeccompProgram::prepare(s, None)).transpose()?;
    finalize_process_with(process, program.as_ref())
}

/// [`finalize_process`] with an already compiled seccomp program.
pub fn finalize_process_with(
    process: &Process,
    seccomp: Option<&SeccompProgram>,
) -> Result<Option<OwnedFd>, SecurityError> {
    apply(&mut RealOps, process, seccomp)
}

fn apply(ops: &mut dyn Ops, process: &Process, seccomp: Option<&SeccompProgram>) -> Result<Option<OwnedFd>, SecurityError> {
    let requested = caps::requested(process.capabilities().as_ref())?;
    let (host_bounding, last_cap) = ops.bounding_set()?;
    let plan = caps::plan(requested, host_bounding, last_cap);
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    let mut notify_fd = None;

    if nnp {
        ops.set_no_new_privs()?;
    }
    // Queries before the filter: without NNP it is loaded next, before the credential switch, and
    // a SCMP_ACT_NOTIFY filter on open/read/close would then park this process in reading
    // /proc/self/setgroups while the notify fd the agent needs to answer is still here (runc's
    // seccomp-notify.bats "important syscalls" hung).
    let setgroups_denied = ops.setgroups_denied()?;
    let pdeathsig = ops.pdeathsig()?;
    if let (Some(program), false) = (seccomp, nnp) {
        notify_fd = ops.load_seccomp(program)?;
    }

    for cap in &plan.bounding_drop {
        ops.drop_bounding(*cap)?;
    }
    ops.set_keepcaps(true)?;
    let user = process.user();
    let additional = user.additional_gids().as_deref().unwrap_or_default();
    if setgroups_denied {
        if !additional.is_empty() {
            log::warn!("user.additionalGids {additional:?} ignored: setgroups is denied in this user namespace");
        }
    } else {
        // Also when empty: the runtime's own supplementary groups must not leak into the container.
        ops.setgroups(additional)?;
    }
    ops.setresgid(user.gid())?;
    ops.setresuid(user.uid())?;
    ops.set_keepcaps(false)?;
    if pdeathsig != 0 {
        ops.set_pdeathsig(pdeathsig)?;
    }

    let s = plan.sets;
    ops.capset(s.effective, s.permitted, s.inheritable)?;
    ops.clear_ambient()?;
    for cap in (0..64u8).filter(|c| s.ambient & (1u64 << c) != 0) {
        ops.raise_ambient(cap)?;
    }

    if let (Some(program), true) = (seccomp, nnp) {
        notify_fd = ops.load_seccomp(program)?;
    }
    Ok(notify_fd)
}

/// containerd CRI's default capability set (config/capabilities/default.json), for `brisk spec`.
pub fn default_capabilities() -> Vec<String> {
    const JSON: &str = include_str!("../../../config/capabilities/default.json");
    // The file is part of the build and checked by a unit test; an unparsable file is a build bug.
    serde_json::from_str(JSON).unwrap_or_default()
}

/// containerd's default seccomp profile for [`default_capabilities`] (config/seccomp/default.json),
/// with the architecture list containerd's `arches()` picks for the build's architecture.
pub fn default_seccomp() -> LinuxSeccomp {
    use oci_spec::runtime::Arch;
    const JSON: &str = include_str!("../../../config/seccomp/default.json");
    let mut profile: LinuxSeccomp = serde_json::from_str(JSON).unwrap_or_default();
    let arches = match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchArm, Arch::ScmpArchAarch64],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        "s390x" => vec![Arch::ScmpArchS390, Arch::ScmpArchS390x],
        _ => Vec::new(),
    };
    profile.set_architectures(Some(arches));
    profile
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        Nnp,
        DropBounding(u8),
        KeepCaps(bool),
        SetGroups(Vec<u32>),
        SetResGid(u32),
        SetResUid(u32),
        SetPdeathsig(i32),
        Capset(u64, u64, u64),
        ClearAmbient,
        RaiseAmbient(u8),
        Seccomp,
        QuerySetgroups,
        QueryPdeathsig,
    }

    struct Fake {
        calls: Vec<Call>,
        bounding: u64,
        setgroups_denied: bool,
        pdeathsig: i32,
    }

    impl Fake {
        fn new() -> Self {
            Fake { calls: Vec::new(), bounding: (1u64 << 41) - 1, setgroups_denied: false, pdeathsig: 9 }
        }
        fn pos(&self, c: &Call) -> usize {
            self.calls.iter().position(|x| x == c).unwrap_or_else(|| panic!("{c:?} not called: {:?}", self.calls))
        }
    }

    impl Ops for Fake {
        fn bounding_set(&mut self) -> Result<(u64, u8), SecurityError> {
            Ok((self.bounding, 40))
        }
        fn set_no_new_privs(&mut self) -> Result<(), SecurityError> {
            self.calls.push(Call::Nnp);
            Ok(())
        }
        fn drop_bounding(&mut self, cap: u8) -> Result<(), SecurityError> {
            self.calls.push(Call::DropBounding(cap));
            Ok(())
        }
        fn set_keepcaps(&mut self, keep: bool) -> Result<(), SecurityError> {
            self.calls.push(Call::KeepCaps(keep));
            Ok(())
        }
        fn setgroups_denied(&mut self) -> Result<bool, SecurityError> {
            self.calls.push(Call::QuerySetgroups);
            Ok(self.setgroups_denied)
        }
        fn setgroups(&mut self, gids: &[u32]) -> Result<(), SecurityError> {
            self.calls.push(Call::SetGroups(gids.to_vec()));
            Ok(())
        }
        fn setresgid(&mut self, gid: u32) -> Result<(), SecurityError> {
            self.calls.push(Call::SetResGid(gid));
            Ok(())
        }
        fn setresuid(&mut self, uid: u32) -> Result<(), SecurityError> {
            self.calls.push(Call::SetResUid(uid));
            Ok(())
        }
        fn capset(&mut self, e: u64, p: u64, i: u64) -> Result<(), SecurityError> {
            self.calls.push(Call::Capset(e, p, i));
            Ok(())
        }
        fn clear_ambient(&mut self) -> Result<(), SecurityError> {
            self.calls.push(Call::ClearAmbient);
            Ok(())
        }
        fn raise_ambient(&mut self, cap: u8) -> Result<(), SecurityError> {
            self.calls.push(Call::RaiseAmbient(cap));
            Ok(())
        }
        fn pdeathsig(&mut self) -> Result<i32, SecurityError> {
            self.calls.push(Call::QueryPdeathsig);
            Ok(self.pdeathsig)
        }
        fn set_pdeathsig(&mut self, sig: i32) -> Result<(), SecurityError> {
            self.calls.push(Call::SetPdeathsig(sig));
            Ok(())
        }
        fn load_seccomp(&mut self, _program: &SeccompProgram) -> Result<Option<OwnedFd>, SecurityError> {
            self.calls.push(Call::Seccomp);
            Ok(None)
        }
    }

    fn process(json: &str) -> Process {
        serde_json::from_str(json).expect("process parses")
    }

    fn program() -> SeccompProgram {
        serde_json::from_value(serde_json::json!({"bpf": {"bytes": [6,0,0,0,0,0,255,127]}, "flags": 0, "notify": false}))
            .expect("program")
    }

    fn bit(name: &str) -> u64 {
        1u64 << capability_index(name).expect("cap")
    }

    const USER_1000: &str = r#"{"cwd":"/","user":{"uid":1000,"gid":1001,"additionalGids":[5,6]},
        "capabilities":{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"],
                        "inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]}}"#;

    #[test]
    fn without_nnp_seccomp_is_loaded_before_caps_drop_and_setuid() {
        let mut fake = Fake::new();
        apply(&mut fake, &process(USER_1000), Some(&program())).expect("apply");
        let seccomp = fake.pos(&Call::Seccomp);
        assert!(!fake.calls.contains(&Call::Nnp));
        assert!(seccomp < fake.pos(&Call::DropBounding(1)));
        assert!(seccomp < fake.pos(&Call::SetResUid(1000)));
        assert_eq!(fake.calls.iter().filter(|c| **c == Call::Seccomp).count(), 1);
    }

    #[test]
    fn without_nnp_no_query_runs_under_the_filter() {
        // A notify filter on read/openat would block a query until the agent has the notify fd,
        // which is sent only after this returns.
        let mut fake = Fake::new();
        apply(&mut fake, &process(USER_1000), Some(&program())).expect("apply");
        let seccomp = fake.pos(&Call::Seccomp);
        assert!(fake.pos(&Call::QuerySetgroups) < seccomp, "{:?}", fake.calls);
        assert!(fake.pos(&Call::QueryPdeathsig) < seccomp, "{:?}", fake.calls);
    }

    #[test]
    fn with_nnp_seccomp_is_the_last_call() {
        let mut fake = Fake::new();
        let p = process(&USER_1000.replacen(r#""cwd":"/","#, r#""cwd":"/","noNewPrivileges":true,"#, 1));
        apply(&mut fake, &p, Some(&program())).expect("apply");
        assert_eq!(fake.calls.first(), Some(&Call::Nnp));
        assert_eq!(fake.calls.last(), Some(&Call::Seccomp));
        assert_eq!(fake.calls.iter().filter(|c| **c == Call::Seccomp).count(), 1);
    }

    #[test]
    fn kernel_order_bounding_keepcaps_groups_gid_uid_caps_ambient() {
        let mut fake = Fake::new();
        apply(&mut fake, &process(USER_1000), None).expect("apply");
        let order = [
            fake.pos(&Call::DropBounding(40)),
            fake.pos(&Call::KeepCaps(true)),
            fake.pos(&Call::SetGroups(vec![5, 6])),
            fake.pos(&Call::SetResGid(1001)),
            fake.pos(&Call::SetResUid(1000)),
            fake.pos(&Call::KeepCaps(false)),
            fake.pos(&Call::Capset(bit("CAP_KILL"), bit("CAP_KILL"), bit("CAP_KILL"))),
            fake.pos(&Call::ClearAmbient),
            fake.pos(&Call::RaiseAmbient(5)),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", fake.calls);
        // The parent-death signal is re-armed after the uid switch cleared it.
        assert!(fake.pos(&Call::SetPdeathsig(9)) > fake.pos(&Call::SetResUid(1000)));
        // Bounding: everything but CHOWN (0) and KILL (5) is dropped.
        let dropped: Vec<u8> =
            fake.calls.iter().filter_map(|c| if let Call::DropBounding(n) = c { Some(*n) } else { None }).collect();
        assert_eq!(dropped.len(), 39);
        assert!(!dropped.contains(&0) && !dropped.contains(&5));
    }

    #[test]
    fn ambient_not_inheritable_is_not_raised() {
        let mut fake = Fake::new();
        let p = process(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL","CAP_NET_RAW"],
               "permitted":["CAP_KILL","CAP_NET_RAW"],"inheritable":["CAP_NET_RAW"],"ambient":["CAP_KILL","CAP_NET_RAW"]}}"#,
        );
        apply(&mut fake, &p, None).expect("apply");
        assert!(fake.calls.contains(&Call::RaiseAmbient(13)));
        assert!(!fake.calls.contains(&Call::RaiseAmbient(5)));
    }

    #[test]
    fn capability_missing_from_host_bounding_is_skipped_not_fatal() {
        let mut fake = Fake::new();
        let sr = bit("CAP_SYS_RESOURCE");
        fake.bounding &= !sr;
        let p = process(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"],
               "effective":["CAP_SYS_RESOURCE","CAP_KILL"],"permitted":["CAP_SYS_RESOURCE","CAP_KILL"]}}"#,
        );
        apply(&mut fake, &p, None).expect("not fatal");
        assert!(fake.calls.contains(&Call::Capset(bit("CAP_KILL"), bit("CAP_KILL"), 0)));
    }

    #[test]
    fn setgroups_denied_skips_setgroups_but_still_switches_ids() {
        let mut fake = Fake::new();
        fake.setgroups_denied = true;
        apply(&mut fake, &process(USER_1000), None).expect("apply");
        assert!(!fake.calls.iter().any(|c| matches!(c, Call::SetGroups(_))));
        assert!(fake.calls.contains(&Call::SetResUid(1000)));
    }

    #[test]
    fn empty_additional_gids_still_clears_groups() {
        let mut fake = Fake::new();
        apply(&mut fake, &process(r#"{"cwd":"/","user":{"uid":0,"gid":0}}"#), None).expect("apply");
        assert!(fake.calls.contains(&Call::SetGroups(vec![])));
        // No capabilities object: everything dropped, nothing kept.
        assert!(fake.calls.contains(&Call::Capset(0, 0, 0)));
    }

    #[test]
    fn validate_json_names_the_unknown_capability_and_its_set() {
        let v = serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_FLY"]}}});
        let err = validate_config_json(&v).expect_err("unknown").to_string();
        assert!(err.contains("process.capabilities.ambient") && err.contains("CAP_FLY"), "{err}");
        let ok = serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_KILL", "net_raw"]}},
                                    "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}});
        validate_config_json(&ok).expect("valid");
    }

    #[test]
    fn validate_typed_rejects_effective_outside_permitted() {
        let p = process(r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"effective":["CAP_KILL"]}}"#);
        assert!(validate(&p, None).is_err());
    }

    #[test]
    fn error_is_send_sync_for_the_shim() {
        fn check<T: Send + Sync + 'static>() {}
        check::<SecurityError>();
    }

    #[test]
    fn default_capabilities_are_containerds() {
        let caps = default_capabilities();
        assert_eq!(caps.len(), 14);
        for c in &caps {
            assert!(capability_index(c).is_some(), "{c}");
        }
        assert!(caps.contains(&"CAP_AUDIT_WRITE".to_owned()) && !caps.contains(&"CAP_SYS_ADMIN".to_owned()));
    }

    #[test]
    fn default_seccomp_parses_validates_and_compiles() {
        let raw: serde_json::Value =
            serde_json::from_str(include_str!("../../../config/seccomp/default.json")).expect("json");
        validate_seccomp_json(&raw).expect("names");
        let profile = default_seccomp();
        assert!(profile.syscalls().as_ref().is_some_and(|s| s.len() > 5));
        seccomp::validate_seccomp(&profile).expect("valid");
        let bpf = compile(&profile).expect("compiles");
        assert!(bpf.instructions() > 100);
        // Spot checks against containerd 1.6.20's generated profile for the default capabilities.
        let rules = profile.syscalls().clone().unwrap_or_default();
        let allowed = |n: &str| {
            rules.iter().any(|r| {
                r.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
                    && r.args().as_ref().is_none_or_empty()
                    && r.names().iter().any(|x| x == n)
            })
        };
        assert_eq!(rules[0].names().len(), 349);
        for n in ["pkey_alloc", "chroot", "ptrace", "arch_prctl", "io_uring_setup"] {
            assert!(allowed(n), "{n} should be allowed");
        }
        for n in ["mount", "unshare", "setns", "bpf", "syslog", "reboot", "clone"] {
            assert!(!allowed(n), "{n} must not be allowed unconditionally");
        }
        let clone3 = rules.iter().find(|r| r.names().iter().any(|x| x == "clone3")).expect("clone3 rule");
        assert_eq!(clone3.errno_ret(), Some(38));
        assert_eq!(profile.default_action(), oci_spec::runtime::LinuxSeccompAction::ScmpActErrno);
    }

    trait NoneOrEmpty {
        fn is_none_or_empty(&self) -> bool;
    }

    impl<T> NoneOrEmpty for Option<&Vec<T>> {
        fn is_none_or_empty(&self) -> bool {
            !matches!(self, Some(v) if !v.is_empty())
        }
    }
}
