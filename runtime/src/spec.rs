//! Loading and validating a bundle's config.json: the one place that knows the OCI config.
//!
//! Validation happens here, before any side effect, so that bad input fails with a message naming
//! the field and leaves nothing behind. Everything the rest of the runtime reads from the spec has
//! been checked here first.
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::namespaces;

pub mod keys;
pub use keys::{KeyKind, KeyNote, Schema};

/// The runtime-spec version brisk implements (what `state` and `features` report).
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {path}: {source}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("{path}: JSON specification file config.json not found (run `brisk spec` in the bundle directory to write a default one)")]
    Missing { path: PathBuf },
    #[error("{path}: {field}: {message}")]
    Parse { path: PathBuf, field: String, message: String },
    #[error("{path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: String, reason: String },
    #[error("{path}: {field}: not supported by brisk on this host: {reason}")]
    Unsupported { path: PathBuf, field: String, reason: String },
}

/// A parsed and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    /// Properties brisk does not know; the spec says to ignore them (config.md "Extensibility"), so
    /// they are reported as warnings, never errors.
    pub unknown_fields: Vec<String>,
}

/// Read `<bundle>/config.json`, parse it, and validate it (see [`validate`]).
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    // runc chdirs into the bundle and records os.Getwd(): a clean, symlink-free path (no
    // trailing "/" from `--bundle ./`), which is what `state` then prints.
    let dir = fs::canonicalize(bundle).map_err(|source| SpecError::Read { path: bundle.to_path_buf(), source })?;
    let path = dir.join("config.json");
    let data = fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing { path: path.clone() },
        _ => SpecError::Read { path: path.clone(), source },
    })?;
    let (spec, notes) = parse(&data).map_err(|(field, message)| SpecError::Parse { path: path.clone(), field, message })?;
    log_notes(&path, &notes);
    let unknown_fields = notes.iter().filter(|n| matches!(n.kind, KeyKind::Unknown { .. })).map(|n| n.path.clone()).collect();
    let rootfs = validate(&spec, &dir, &path)?;
    Ok(Bundle { dir, spec, rootfs, unknown_fields })
}

/// Log what [`parse`] noticed about keys: a respelled key at debug level (runc reads it the same
/// way), an unknown one as a warning with the nearest known key.
pub fn log_notes(path: &Path, notes: &[KeyNote]) {
    for n in notes {
        match n.kind {
            KeyKind::Respelled { .. } => log::debug!("{}: {n}", path.display()),
            KeyKind::Unknown { .. } => log::warn!("{}: {n} (config.md \"Extensibility\")", path.display()),
        }
    }
}

fn spec_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(Schema::of::<Spec>)
}

fn process_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(Schema::of::<oci_spec::runtime::Process>)
}

/// Parse config.json bytes; on error return (field path, message with line and column). Keys are
/// matched to fields as runc's Go decoder does (see [`keys`]); the notes say which keys were
/// respelled and which are unknown (with a suggestion), for the caller to log or report.
pub fn parse(data: &[u8]) -> Result<(Spec, Vec<KeyNote>), (String, String)> {
    check_capability_spellings(data, "")?;
    parse_as::<Spec>(data, spec_schema())
}

/// Parse an `exec --process` file (a bare process object) by the same rules as config.json.
pub fn parse_process(data: &[u8]) -> Result<(oci_spec::runtime::Process, Vec<KeyNote>), (String, String)> {
    check_capability_spellings(data, "process")?;
    // runc decodes into a Go struct whose `user` is a value, so a process.json without it means
    // uid 0, gid 0; oci-spec's Process requires the field.
    // The member is appended before the closing brace, so every position before it (all of
    // the file's own text) stays where it was for error messages.
    let (folded, _) = keys::fold(data, process_schema(), "");
    let with_user = match serde_json::from_slice::<serde_json::Value>(&folded) {
        Ok(serde_json::Value::Object(obj)) if !obj.contains_key("user") => {
            let end = data.iter().rposition(|b| *b == b'}').unwrap_or(data.len());
            let mut d = data[..end].to_vec();
            d.extend_from_slice(if obj.is_empty() { b"\"user\":{\"uid\":0,\"gid\":0}" } else { b",\"user\":{\"uid\":0,\"gid\":0}" });
            d.extend_from_slice(&data[end..]);
            Some(d)
        }
        _ => None,
    };
    parse_as(with_user.as_deref().unwrap_or(data), process_schema())
}

fn parse_as<T: serde::de::DeserializeOwned>(data: &[u8], schema: &'static Schema) -> Result<(T, Vec<KeyNote>), (String, String)> {
    let (folded, mut notes) = keys::fold(data, schema, "");
    let mut ignored = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let mut jd = serde_json::Deserializer::from_slice(&folded);
    let pd = serde_path_to_error::Deserializer::new(&mut jd, &mut track);
    // serde_ignored renders Option layers as "?"; drop them so the path reads like the JSON.
    let res: Result<T, _> = serde_ignored::deserialize(pd, |p| ignored.push(p.to_string().replace(".?", "").trim_start_matches("?.").to_string()));
    let value = match res.and_then(|s| jd.end().map(|_| s)) {
        Ok(v) => v,
        Err(e) => {
            let field = track.path().to_string();
            let field = if field == "." || field.is_empty() { "config.json".to_string() } else { field };
            return Err((field, e.to_string()));
        }
    };
    // serde decides what was ignored (a key the scanner could not place in a struct is still
    // reported); the scanner's note adds the position and the suggestion when it has one.
    let ignored: Vec<String> = ignored.iter().map(|p| bracket_path(p)).collect();
    notes.retain(|n| matches!(n.kind, KeyKind::Respelled { .. }) || ignored.iter().any(|p| p.eq_ignore_ascii_case(&n.path)));
    for p in ignored {
        if !notes.iter().any(|n| n.path.eq_ignore_ascii_case(&p)) {
            let (pattern, key) = keys::pattern_of(&p);
            let suggestion = schema.fields(&pattern).and_then(|f| keys::suggest(&key, f));
            notes.push(KeyNote { path: p, line: 0, column: 0, kind: KeyKind::Unknown { suggestion } });
        }
    }
    Ok((value, notes))
}

/// `hooks.prestart.0.foo` (serde_ignored) as `hooks.prestart[0].foo` (how JSON paths read).
fn bracket_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p.split('.') {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Capability names must be spelled as the spec spells them (`CAP_NET_ADMIN`). runc 1.1.5 looks
/// names up in a table of `CAP_*` names and ignores (with a warning) any other spelling, so
/// `"net_admin"` silently loses the capability; oci-spec's parser instead accepts it and grants it.
/// brisk refuses both readings: a config that quietly gets fewer or more capabilities than it
/// says is a security surprise (README "Differences from runc").
fn check_capability_spellings(data: &[u8], prefix: &str) -> Result<(), (String, String)> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return Ok(()) };
    let (caps, field) = if prefix.is_empty() {
        (v.get("process").and_then(|p| find_ci(p, "capabilities")), "process.capabilities")
    } else {
        (find_ci(&v, "capabilities"), "capabilities")
    };
    let Some(caps) = caps else { return Ok(()) };
    for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
        let Some(items) = find_ci(caps, set).and_then(|l| l.as_array()) else { continue };
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.as_str() else { continue };
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
            let known = crate::security::capability_index(&full).is_some();
            if known && name == full {
                continue;
            }
            let msg = if known {
                format!("{name:?} is not a capability name: write {full:?} (runc 1.1.5 would ignore {name:?}, brisk refuses it)")
            } else {
                format!("unknown capability {name:?}")
            };
            return Err((format!("{field}.{set}[{i}]"), msg));
        }
    }
    Ok(())
}

/// A member of a JSON object by Go's key rule (exact, else ignoring ASCII case).
fn find_ci<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// filepath.Clean: drop "." and empty components and resolve ".." lexically.
fn lexical_clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("/");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn invalid(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid { path: path.to_path_buf(), field: field.into(), reason: reason.into() }
}

fn unsupported(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Unsupported { path: path.to_path_buf(), field: field.into(), reason: reason.into() }
}

/// Check everything that can be checked without side effects. Returns the canonical rootfs.
pub fn validate(spec: &Spec, bundle: &Path, path: &Path) -> Result<PathBuf, SpecError> {
    if spec.version().is_empty() {
        return Err(invalid(path, "ociVersion", "missing"));
    }
    if !spec.version().starts_with("1.") {
        return Err(invalid(path, "ociVersion", format!("{:?} is not a 1.x runtime-spec version", spec.version())));
    }
    let root = spec.root().as_ref().ok_or_else(|| invalid(path, "root", "missing"))?;
    let given = lexical_clean(&bundle.join(root.path()));
    let rootfs = fs::canonicalize(&given)
        .map_err(|e| invalid(path, "root.path", format!("{}: {e}", given.display())))?;
    // runc 1.1.5 (configs/validate rootfs): the rootfs must be reachable without a symlink;
    // "invalid rootfs: not an absolute path, or a symlink" otherwise.
    if rootfs != given {
        return Err(invalid(path, "root.path", format!("{} is not an absolute path, or a symlink (it resolves to {}; use that path)", given.display(), rootfs.display())));
    }
    if !rootfs.is_dir() {
        return Err(invalid(path, "root.path", format!("{} is not a directory", rootfs.display())));
    }
    let process = spec.process().as_ref().ok_or_else(|| invalid(path, "process", "missing"))?;
    validate_process(process, path, "process")?;
    if let Some(hooks) = spec.hooks() {
        for kind in crate::hooks::Kind::ALL {
            for (i, h) in kind.select(hooks).iter().enumerate() {
                // config.md "POSIX-platform Hooks": path is absolute. A bare name would otherwise
                // be looked up in the runtime's PATH, which runc never does (it fails the hook).
                if !h.path().is_absolute() {
                    return Err(invalid(path, format!("hooks.{}[{i}].path", kind.name()), format!("{:?} is not an absolute path", h.path().display().to_string())));
                }
            }
        }
    }

    for field in ["vm", "zos"] {
        let present = match field {
            "vm" => spec.vm().is_some(),
            _ => spec.zos().is_some(),
        };
        if present {
            return Err(unsupported(path, field, "brisk runs Linux containers only"));
        }
    }

    let linux = spec.linux().as_ref().ok_or_else(|| invalid(path, "linux", "missing (brisk runs Linux containers)"))?;
    let nss = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in nss.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(path, format!("linux.namespaces[{i}].type"), format!("duplicate namespace {:?}", namespaces::name(ns.typ()))));
        }
        if let Some(p) = ns.path() {
            namespaces::check_path(p, ns.typ())
                .map_err(|e| invalid(path, format!("linux.namespaces[{i}].path"), e.to_string()))?;
        }
    }
    let has = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t);
    let creates = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t && n.path().is_none());
    if !has(LinuxNamespaceType::Mount) {
        // runc 1.1.5 runs such a container (see rootfs::prepare for what it does then) but refuses
        // masked and read-only paths, which cannot be applied without a private mount namespace
        // (configs/validate security: "unable to restrict sys entries without a private MNT
        // namespace").
        if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid(path, "linux.maskedPaths", "needs a mount namespace in linux.namespaces"));
        }
        if linux.readonly_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid(path, "linux.readonlyPaths", "needs a mount namespace in linux.namespaces"));
        }
    }
    // Id mappings belong to a user namespace brisk creates (config-linux.md "User namespace mappings").
    let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
    let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
    if creates(LinuxNamespaceType::User) {
        if uid_maps.is_empty() || gid_maps.is_empty() {
            return Err(invalid(path, "linux.uidMappings", "a new user namespace needs uidMappings and gidMappings"));
        }
    } else if !uid_maps.is_empty() || !gid_maps.is_empty() {
        return Err(invalid(path, "linux.uidMappings", "id mappings need a new user namespace in linux.namespaces"));
    }
    check_mappings(&uid_maps, path, "linux.uidMappings")?;
    check_mappings(&gid_maps, path, "linux.gidMappings")?;

    if let Some(offsets) = linux.time_offsets() {
        if !creates(LinuxNamespaceType::Time) {
            return Err(invalid(path, "linux.timeOffsets", "needs a new time namespace in linux.namespaces"));
        }
        for k in offsets.keys() {
            if k != "monotonic" && k != "boottime" {
                return Err(invalid(path, format!("linux.timeOffsets.{k}"), "only \"monotonic\" and \"boottime\" clocks can be offset"));
            }
        }
    }
    // runc 1.1.5 (configs/validate hostname) asks for a uts entry in linux.namespaces, new or
    // joined by path, and sets the hostname in whichever it is.
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(path, "hostname", "setting the hostname needs a uts namespace in linux.namespaces"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(path, "domainname", "setting the domainname needs a uts namespace in linux.namespaces"));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &has, path)?;
        }
    }
    if let Some(cg) = linux.cgroups_path() {
        crate::cgroups::check_path(cg).map_err(|reason| invalid(path, "linux.cgroupsPath", reason))?;
    }
    if let Some(r) = linux.resources() {
        crate::cgroups::validate_resources(r).map_err(|(field, reason)| unsupported(path, format!("linux.resources.{field}"), reason))?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(p.as_str(), "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable") {
            return Err(invalid(path, "linux.rootfsPropagation", format!("unknown propagation {p:?}")));
        }
    }
    if linux.intel_rdt().is_some() {
        return Err(unsupported(path, "linux.intelRdt", "resctrl is not supported"));
    }
    if linux.memory_policy().is_some() {
        return Err(unsupported(path, "linux.memoryPolicy", "set_mempolicy is not supported yet"));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(unsupported(path, "linux.netDevices", "moving network devices is not supported yet"));
    }
    if let Some(label) = linux.mount_label() {
        if !label.is_empty() && !selinux_enabled() {
            return Err(unsupported(path, "linux.mountLabel", "SELinux is not enabled on this host"));
        }
    }
    if let Some(p) = linux.personality() {
        use oci_spec::runtime::LinuxPersonalityDomain as D;
        if !matches!(p.domain(), D::PerLinux | D::PerLinux32) {
            return Err(invalid(path, "linux.personality.domain", "only LINUX and LINUX32 are defined"));
        }
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(unsupported(path, "linux.personality.flags", "no personality flags are supported (runc supports none either)"));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::security::validate(process, Some(seccomp)).map_err(|e| invalid(path, "linux.seccomp", e.to_string()))?;
    }
    Ok(rootfs)
}

/// Checks shared by a container's process and an exec'd process.
pub fn validate_process(process: &oci_spec::runtime::Process, path: &Path, field: &str) -> Result<(), SpecError> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid(path, format!("{field}.args"), "must name the program to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(path, format!("{field}.cwd"), format!("{} is not absolute", process.cwd().display())));
    }
    for (i, e) in process.env().as_deref().unwrap_or_default().iter().enumerate() {
        if !e.contains('=') {
            return Err(invalid(path, format!("{field}.env[{i}]"), format!("{e:?} is not KEY=VALUE")));
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().as_deref().unwrap_or_default().iter().enumerate() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(invalid(path, format!("{field}.rlimits[{i}]"), format!("duplicate {:?}", r.typ())));
        }
        if r.soft() > r.hard() {
            return Err(invalid(path, format!("{field}.rlimits[{i}]"), "soft limit above the hard limit"));
        }
    }
    if process.apparmor_profile().as_deref().is_some_and(|p| !p.is_empty()) && !apparmor_enabled() {
        return Err(unsupported(path, format!("{field}.apparmorProfile"), "AppArmor is not enabled on this host"));
    }
    if process.selinux_label().as_deref().is_some_and(|p| !p.is_empty()) && !selinux_enabled() {
        return Err(unsupported(path, format!("{field}.selinuxLabel"), "SELinux is not enabled on this host"));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(unsupported(path, format!("{field}.execCPUAffinity"), "not supported yet"));
    }
    if let Some(s) = process.scheduler() {
        if s.flags().as_ref().is_some_and(|f| !f.is_empty()) || s.runtime().is_some() || s.deadline().is_some() || s.period().is_some() {
            return Err(unsupported(path, format!("{field}.scheduler"), "only policy, nice and priority are supported (SCHED_DEADLINE needs sched_setattr, not supported yet)"));
        }
    }
    crate::security::validate(process, None).map_err(|e| invalid(path, format!("{field}.capabilities"), e.to_string()))?;
    Ok(())
}

fn check_mappings(maps: &[LinuxIdMapping], path: &Path, field: &str) -> Result<(), SpecError> {
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(invalid(path, format!("{field}[{i}].size"), "must be greater than 0"));
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b.saturating_add(o.size()) && b < a.saturating_add(m.size());
            if overlap(m.container_id(), o.container_id()) {
                return Err(invalid(path, format!("{field}[{i}]"), format!("containerID range overlaps {field}[{j}]")));
            }
            if overlap(m.host_id(), o.host_id()) {
                return Err(invalid(path, format!("{field}[{i}]"), format!("hostID range overlaps {field}[{j}]")));
            }
        }
    }
    if maps.len() > 340 {
        return Err(invalid(path, field, "the kernel accepts at most 340 ranges"));
    }
    Ok(())
}

/// runc's sysctl rules (libcontainer/configs/validate): IPC sysctls need a new ipc namespace, net.*
/// a new net namespace, kernel.{hostname,domainname} a uts namespace; everything else is refused
/// because it is not namespaced and would change the host.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool, path: &Path) -> Result<(), SpecError> {
    let field = format!("linux.sysctl.{key}");
    const IPC: &[&str] = &["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has(LinuxNamespaceType::Ipc) { Ok(()) } else { Err(invalid(path, field, "needs an ipc namespace")) };
    }
    if key.starts_with("net.") {
        return if has(LinuxNamespaceType::Network) { Ok(()) } else { Err(invalid(path, field, "needs a network namespace")) };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has(LinuxNamespaceType::Uts) { Ok(()) } else { Err(invalid(path, field, "needs a uts namespace")) };
    }
    Err(invalid(path, field, "not a namespaced sysctl: setting it would change the host"))
}

fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Whether the host has AppArmor/SELinux (the init applies labels only when validation let them through).
pub fn lsm_available() -> (bool, bool) {
    (apparmor_enabled(), selinux_enabled())
}

/// The config.json `brisk spec` writes: runc's default spec, with the capability set and seccomp
/// profile containerd's CRI uses (config/). `rootless` maps the caller's uid/gid to root in a user
/// namespace and drops what an unprivileged user cannot set up (runc's `spec --rootless`).
/// `cgroupns` adds a cgroup namespace: runc's `spec` does so only on a cgroup v2 host
/// (libcontainer/specconv/example.go), since on v1 a container's /proc/self/cgroup then hides the
/// path that tools (and runc's own tests) compare with the host's view.
pub fn example(rootless: bool, uid: u32, gid: u32, cgroupns: bool) -> serde_json::Value {
    let caps = crate::security::default_capabilities();
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "brisk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "seccomp": crate::security::default_seccomp(),
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let linux = &mut v["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        let mounts = v["mounts"].as_array_mut().map(std::mem::take).unwrap_or_default();
        v["mounts"] = mounts
            .into_iter()
            .map(|mut m| {
                if m["destination"] == "/sys" {
                    m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["destination"] == "/dev/pts" {
                    m["options"] = serde_json::json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
                }
                m
            })
            .collect();
    }
    if cgroupns {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.push(serde_json::json!({"type": "cgroup"}));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cgroupns_only_when_asked() {
        let types = |v: &serde_json::Value| v["linux"]["namespaces"].as_array().expect("namespaces").iter().map(|n| n["type"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
        for rootless in [false, true] {
            assert!(!types(&example(rootless, 1000, 1000, false)).contains(&"cgroup".to_string()), "rootless={rootless}");
            assert!(types(&example(rootless, 1000, 1000, true)).contains(&"cgroup".to_string()), "rootless={rootless}");
        }
        assert_eq!(types(&example(true, 1000, 1000, true)), ["pid", "ipc", "uts", "mount", "user", "cgroup"]);
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<PathBuf, SpecError> {
        let (spec, _) = parse(&serde_json::to_vec(&v).expect("json")).map_err(|(f, m)| SpecError::Parse { path: "c".into(), field: f, message: m })?;
        validate(&spec, Path::new("/"), Path::new("config.json"))
    }

    #[test]
    fn accepts_minimal() {
        check(base()).expect("valid");
    }

    #[test]
    fn unknown_namespace_type_names_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = check(v).expect_err("invalid").to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]);
        let e = check(v).expect_err("dup").to_string();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn unknown_fields_are_reported_not_fatal() {
        let mut v = base();
        v["frobnicate"] = 1.into();
        v["process"]["wibble"] = true.into();
        v["process"]["cwdd"] = "/".into();
        let (_, notes) = parse(&serde_json::to_vec(&v).expect("json")).expect("parses");
        assert!(notes.iter().any(|u| u.path == "frobnicate" && u.kind == KeyKind::Unknown { suggestion: None }), "{notes:?}");
        assert!(notes.iter().any(|u| u.path == "process.wibble"), "{notes:?}");
        assert!(notes.iter().any(|u| u.path == "process.cwdd" && u.kind == KeyKind::Unknown { suggestion: Some("cwd") }), "{notes:?}");
    }

    #[test]
    fn keys_match_fields_ignoring_case_like_go() {
        let mut v = base();
        v["Hooks"] = serde_json::json!({"postStop": [{"path": "/bin/true"}]});
        v["root"] = serde_json::json!({"path": "/", "readOnly": true});
        v["annotations"] = serde_json::json!({"readOnly": "data"});
        let text = serde_json::to_vec_pretty(&v).expect("json");
        let (spec, notes) = parse(&text).expect("parses");
        assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
        #[allow(deprecated)]
        let post = spec.hooks().as_ref().and_then(|h| h.poststop().clone()).unwrap_or_default();
        assert_eq!(post.len(), 1);
        assert_eq!(spec.annotations().as_ref().and_then(|a| a.get("readOnly")).map(String::as_str), Some("data"));
        assert!(notes.iter().all(|n| matches!(n.kind, KeyKind::Respelled { .. })), "{notes:?}");
        assert!(notes.iter().any(|n| n.path == "root.readOnly" && n.line > 1), "{notes:?}");
    }

    #[test]
    fn errors_keep_field_path_and_position_after_folding() {
        let text = b"{\"ociVersion\": \"1.0.2\",\n \"Process\": {\"Cwd\": 5}}";
        let (field, msg) = parse(text).expect_err("bad cwd");
        assert_eq!(field, "process.cwd");
        assert!(msg.contains("line 2 column"), "{msg}");
    }

    #[test]
    fn process_json_defaults_user_and_folds_keys() {
        let (p, notes) = parse_process(b"{\"Args\": [\"true\"], \"cwd\": \"/\"}").expect("parses");
        assert_eq!(p.user().uid(), 0);
        assert_eq!(p.args().as_deref(), Some(&["true".to_string()][..]));
        assert!(notes.iter().any(|n| n.path == "Args"), "{notes:?}");
        let (field, msg) = parse_process(b"{\"args\": [\"true\"],\n \"cwd\": 5}").expect_err("bad cwd");
        assert_eq!(field, "cwd");
        assert!(msg.contains("line 2 column"), "{msg}");
    }

    #[test]
    fn capability_spelling_must_be_the_specs() {
        for bad in ["net_admin", "NET_ADMIN", "cap_net_admin"] {
            let mut v = base();
            v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL", bad]});
            let (field, msg) = parse(&serde_json::to_vec(&v).expect("json")).expect_err(bad);
            assert_eq!(field, "process.capabilities.bounding[1]");
            assert!(msg.contains("\"CAP_NET_ADMIN\""), "{msg}");
        }
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_BOGUS"]});
        let e = parse(&serde_json::to_vec(&v).expect("json")).expect_err("unknown");
        assert!(e.1.contains("unknown capability"), "{e:?}");
    }

    #[test]
    fn malformed_json_names_position() {
        let e = parse(b"{\"ociVersion\": \"1.0.2\", \"root\": ").expect_err("bad");
        assert!(e.1.contains("line 1"), "{e:?}");
    }

    #[test]
    fn mappings_need_userns_and_must_not_overlap() {
        let mut v = base();
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        v["linux"]["gidMappings"] = v["linux"]["uidMappings"].clone();
        assert!(check(v.clone()).expect_err("no userns").to_string().contains("user namespace"));
        v["linux"]["namespaces"].as_array_mut().expect("array").push(serde_json::json!({"type": "user"}));
        check(v.clone()).expect("valid with userns");
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 5000, "size": 10}]);
        assert!(check(v.clone()).expect_err("overlap").to_string().contains("overlaps"));
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
        assert!(check(v).expect_err("zero").to_string().contains("size"));
    }

    #[test]
    fn time_offsets_need_time_namespace() {
        let mut v = base();
        v["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 10, "nanosecs": 0}});
        assert!(check(v.clone()).expect_err("no timens").to_string().contains("time namespace"));
        v["linux"]["namespaces"].as_array_mut().expect("array").push(serde_json::json!({"type": "time"}));
        check(v.clone()).expect("valid");
        v["linux"]["timeOffsets"] = serde_json::json!({"realtime": {"secs": 10}});
        assert!(check(v).expect_err("realtime").to_string().contains("realtime"));
    }

    #[test]
    fn sysctl_rules() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v.clone()).expect_err("no netns").to_string().contains("network namespace"));
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v).expect_err("host sysctl").to_string().contains("not a namespaced sysctl"));
    }

    #[test]
    fn missing_rootfs_names_path() {
        let mut v = base();
        v["root"]["path"] = "/nonexistent-rootfs-xyz".into();
        let e = check(v).expect_err("missing").to_string();
        assert!(e.contains("root.path") && e.contains("/nonexistent-rootfs-xyz"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "x".into();
        assert!(check(v).expect_err("uts").to_string().contains("uts"));
    }
}
