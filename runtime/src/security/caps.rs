//! Capability names and the five sets a process ends up with.
//!
//! The name table is the `caps` crate's set (one list for `validate` and `brisk features`); the
//! sets are computed here as plain bitmasks so the decisions (what to drop from the bounding set,
//! what may be ambient) are unit-tested without touching the process.

use std::collections::BTreeSet;

use oci_spec::runtime::{Capability as OciCapability, LinuxCapabilities};

use super::SecurityError;

/// Every capability name brisk knows, in kernel index order (`CAP_CHOWN` first). Derived from the
/// `caps` crate so that there is no second hand-kept list; `brisk features` prints the same list.
pub fn capability_names() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

/// Kernel index of a capability name (`CAP_` prefix optional, case-insensitive, as oci-spec and
/// Kubernetes accept), or `None` when the name is not a capability.
pub fn capability_index(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    full.parse::<caps::Capability>().ok().map(|c| c.index())
}

/// oci-spec's typed capability to its kernel index. oci-spec serializes a capability to its
/// `CAP_*` name; the caps crate parses that name, so both crates agree through the name only.
pub(crate) fn oci_index(set: &'static str, cap: &OciCapability) -> Result<u8, SecurityError> {
    let name = serde_json::to_value(cap)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{cap:?}"));
    capability_index(&name).ok_or_else(|| SecurityError::Invalid {
        step: "capabilities",
        reason: format!("process.capabilities.{set}: unknown capability {name:?}"),
    })
}

fn name_of(index: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == index)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("capability {index}"))
}

/// The five capability sets as bitmasks (bit n = capability index n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// What finalize will apply, plus the warnings to log for capabilities it had to skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapPlan {
    pub sets: CapSets,
    /// Capabilities to PR_CAPBSET_DROP, in index order: every capability the kernel knows
    /// (0..=last_cap) that is not in the requested bounding set.
    pub bounding_drop: Vec<u8>,
    pub warnings: Vec<String>,
}

pub(crate) fn mask_of(set: &'static str, caps: Option<&oci_spec::runtime::Capabilities>) -> Result<u64, SecurityError> {
    let mut mask = 0u64;
    for cap in caps.into_iter().flatten() {
        mask |= 1u64 << oci_index(set, cap)?;
    }
    Ok(mask)
}

/// Requested sets as masks, checked for the rules that make capset(2) fail (effective must be a
/// subset of permitted). Names were already checked by the typed parse; this reports which set.
pub(crate) fn requested(caps: Option<&LinuxCapabilities>) -> Result<CapSets, SecurityError> {
    let Some(caps) = caps else {
        // runc: no capabilities object means every set is empty (the bounding set included).
        return Ok(CapSets::default());
    };
    let sets = CapSets {
        bounding: mask_of("bounding", caps.bounding().as_ref())?,
        effective: mask_of("effective", caps.effective().as_ref())?,
        permitted: mask_of("permitted", caps.permitted().as_ref())?,
        inheritable: mask_of("inheritable", caps.inheritable().as_ref())?,
        ambient: mask_of("ambient", caps.ambient().as_ref())?,
    };
    let stray = sets.effective & !sets.permitted;
    if stray != 0 {
        return Err(SecurityError::Invalid {
            step: "capabilities",
            reason: format!(
                "process.capabilities.effective: {} not in process.capabilities.permitted (capset(2) would fail)",
                names(stray).join(", ")
            ),
        });
    }
    Ok(sets)
}

pub(crate) fn names(mask: u64) -> Vec<String> {
    (0..64u8).filter(|i| mask & (1u64 << i) != 0).map(name_of).collect()
}

/// Decide the sets to apply given what this host allows.
///
/// `available` is the calling process's bounding set (the host's, or the one the runtime itself
/// was started with) restricted to capabilities this kernel knows (`last_cap`). A requested
/// capability outside it cannot be granted: the runtime-spec (config.md, "capabilities") says the
/// runtime SHOULD log a warning and continue, not fail, so it is skipped in every set.
///
/// Ambient: the kernel only lets a capability be ambient if it is both permitted and inheritable
/// (capabilities(7), PR_CAP_AMBIENT_RAISE returns EPERM otherwise); such a request is skipped with a
/// warning too (runc 1.1's capability library also carries on; it just ignores the error).
pub(crate) fn plan(requested: CapSets, available: u64, last_cap: u8) -> CapPlan {
    let mut warnings = Vec::new();
    let all_requested =
        requested.bounding | requested.effective | requested.permitted | requested.inheritable | requested.ambient;
    let missing = all_requested & !available;
    if missing != 0 {
        warnings.push(format!(
            "capabilities not in this host's bounding set, skipped: {}",
            names(missing).join(", ")
        ));
    }
    let keep = |m: u64| m & available;
    let mut sets = CapSets {
        bounding: keep(requested.bounding),
        effective: keep(requested.effective),
        permitted: keep(requested.permitted),
        inheritable: keep(requested.inheritable),
        ambient: keep(requested.ambient),
    };
    let not_allowed_ambient = sets.ambient & !(sets.permitted & sets.inheritable);
    if not_allowed_ambient != 0 {
        warnings.push(format!(
            "ambient capabilities must also be permitted and inheritable, skipped: {}",
            names(not_allowed_ambient).join(", ")
        ));
        sets.ambient &= sets.permitted & sets.inheritable;
    }
    let bounding_drop = (0..=last_cap.min(63)).filter(|i| sets.bounding & (1u64 << i) == 0).collect();
    CapPlan { sets, bounding_drop, warnings }
}

/// Names in `caps` that are not capabilities, for validating raw JSON before the typed parse.
pub(crate) fn unknown_names<'a>(caps: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    caps.into_iter().filter(|n| capability_index(n).is_none()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(name: &str) -> u64 {
        1u64 << capability_index(name).expect("known capability")
    }

    #[test]
    fn names_come_from_caps_crate_in_index_order() {
        let names = capability_names();
        assert_eq!(names.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(names.iter().any(|n| n == "CAP_CHECKPOINT_RESTORE"));
        assert_eq!(names.len(), caps::all().len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(capability_index(n), Some(i as u8), "{n}");
        }
    }

    #[test]
    fn index_accepts_short_and_lowercase_names() {
        assert_eq!(capability_index("sys_admin"), Some(21));
        assert_eq!(capability_index("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(capability_index("CAP_NOPE"), None);
    }

    #[test]
    fn bounding_drop_lists_everything_not_requested_up_to_last_cap() {
        let req = CapSets { bounding: bit("CAP_CHOWN") | bit("CAP_KILL"), ..Default::default() };
        let p = plan(req, u64::MAX, 40);
        assert_eq!(p.bounding_drop.len(), 39);
        assert!(!p.bounding_drop.contains(&0));
        assert!(!p.bounding_drop.contains(&5));
        assert_eq!(p.bounding_drop.last(), Some(&40));
    }

    #[test]
    fn capability_outside_host_bounding_is_skipped_with_warning() {
        let sr = bit("CAP_SYS_RESOURCE");
        let req = CapSets { bounding: sr | bit("CAP_CHOWN"), permitted: sr, effective: sr, ..Default::default() };
        let p = plan(req, !sr, 40);
        assert_eq!(p.sets.bounding, bit("CAP_CHOWN"));
        assert_eq!(p.sets.permitted, 0);
        assert_eq!(p.sets.effective, 0);
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].contains("CAP_SYS_RESOURCE"), "{:?}", p.warnings);
        assert!(p.bounding_drop.contains(&capability_index("CAP_SYS_RESOURCE").unwrap_or(0)));
    }

    #[test]
    fn ambient_requires_permitted_and_inheritable() {
        let (a, b, c) = (bit("CAP_NET_RAW"), bit("CAP_NET_BIND_SERVICE"), bit("CAP_KILL"));
        let req = CapSets {
            bounding: a | b | c,
            permitted: a | b,
            inheritable: a | c,
            ambient: a | b | c,
            effective: 0,
        };
        let p = plan(req, u64::MAX, 40);
        assert_eq!(p.sets.ambient, a);
        assert!(p.warnings.iter().any(|w| w.contains("CAP_NET_BIND_SERVICE") && w.contains("CAP_KILL")));
    }

    #[test]
    fn effective_outside_permitted_is_rejected_naming_the_set() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":[],"inheritable":[],"ambient":[]}"#,
        )
        .expect("parse");
        let err = requested(Some(&caps)).expect_err("must fail").to_string();
        assert!(err.contains("effective") && err.contains("CAP_KILL"), "{err}");
    }

    #[test]
    fn no_capabilities_object_means_empty_sets() {
        let p = plan(requested(None).expect("ok"), u64::MAX, 40);
        assert_eq!(p.sets, CapSets::default());
        assert_eq!(p.bounding_drop.len(), 41);
    }
}
