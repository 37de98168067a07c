//! `brisk validate`: lint a config.json before any container exists (issue 14).
//!
//! The checks are the runtime's own: [`spec::parse_checked`] and [`spec::check_config`], the code
//! `create` runs, given a collect-all [`Collector`] instead of `create`'s fail-fast one, so every
//! problem is reported instead of the first. This file only adds what `create` does not decide:
//! `--host` (what this machine can honour beyond create's own host checks) and `--seccomp-report`
//! (how the profile differs from brisk's default one), and prints.
//!
//! Exit status: 0 the config would be accepted; 1 it would not (or, with `--strict`, it draws a
//! warning); 2 the input is not a config at all (no such file, not JSON, too big).
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use brisk_runtime::spec::{self, Collector, Problem, Severity};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, Spec};

/// runc reads config.json with no limit; a config is a few KiB (containerd's with the default
/// seccomp profile ~20 KiB), so anything past this is not a config and is refused unread.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

pub const USAGE: &str = "usage: brisk validate [--bundle DIR | FILE] [--host] [--strict] [--format text|json] [--seccomp-report]";

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
}

struct Opts {
    target: PathBuf,
    bundle: bool,
    host: bool,
    strict: bool,
    json: bool,
    seccomp_report: bool,
}

fn parse_args(rest: &[String]) -> Result<Opts, ValidateError> {
    let mut o = Opts { target: PathBuf::from("."), bundle: true, host: false, strict: false, json: false, seccomp_report: false };
    let mut file = None;
    let mut bundle = None;
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i].as_str();
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with('-') => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let mut value = |what: &str| -> Result<String, ValidateError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            rest.get(i).cloned().ok_or_else(|| ValidateError::Usage(format!("flag {what} needs a value")))
        };
        match name {
            "-b" | "--bundle" => bundle = Some(PathBuf::from(value("--bundle")?)),
            "--format" | "-f" => {
                o.json = match value("--format")?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return Err(ValidateError::Usage(format!("--format: {other:?} is not text or json"))),
                }
            }
            "--host" => o.host = true,
            "--strict" => o.strict = true,
            "--seccomp-report" => o.seccomp_report = true,
            s if s.starts_with('-') && s != "-" => return Err(ValidateError::Usage(format!("unknown flag {s}"))),
            _ if file.is_none() => file = Some(PathBuf::from(a)),
            _ => return Err(ValidateError::Usage(format!("one FILE or --bundle DIR, not {a:?} as well"))),
        }
        i += 1;
    }
    match (bundle, file) {
        (Some(_), Some(_)) => return Err(ValidateError::Usage("give --bundle DIR or FILE, not both".into())),
        (Some(b), None) => o.target = b,
        // A directory given as FILE is a bundle, as `--bundle` would be.
        (None, Some(f)) => {
            o.bundle = f.is_dir();
            o.target = f;
        }
        (None, None) => {}
    }
    Ok(o)
}

/// Read the config: a bundle's config.json, or a file. Everything that makes it not a config at
/// all is an input error (exit 2), never a problem of the config.
fn read_input(o: &Opts) -> Result<(PathBuf, PathBuf, Vec<u8>), ValidateError> {
    let input = |path: &Path, reason: String| ValidateError::Input { path: path.to_path_buf(), reason };
    let (dir, path) = if o.bundle {
        let meta = fs::metadata(&o.target).map_err(|e| input(&o.target, format!("bundle: {e}")))?;
        if !meta.is_dir() {
            return Err(input(&o.target, "bundle: not a directory".into()));
        }
        let dir = fs::canonicalize(&o.target).map_err(|e| input(&o.target, e.to_string()))?;
        let path = dir.join("config.json");
        if !path.exists() {
            return Err(input(&dir, "directory has no config.json (run `brisk spec` in it to write a default one)".into()));
        }
        (dir, path)
    } else {
        let path = o.target.clone();
        let dir = path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
        (dir, path)
    };
    let f = fs::File::open(&path).map_err(|e| input(&path, e.to_string()))?;
    let meta = f.metadata().map_err(|e| input(&path, e.to_string()))?;
    if !meta.is_file() {
        return Err(input(&path, "not a regular file".into()));
    }
    if meta.len() > MAX_CONFIG_SIZE {
        return Err(input(&path, format!("{} bytes: larger than {} MiB, not a config", meta.len(), MAX_CONFIG_SIZE >> 20)));
    }
    let mut data = Vec::new();
    // The size is read again through the handle: a file that grows after the stat stops here.
    f.take(MAX_CONFIG_SIZE + 1).read_to_end(&mut data).map_err(|e| input(&path, e.to_string()))?;
    if data.len() as u64 > MAX_CONFIG_SIZE {
        return Err(input(&path, format!("larger than {} MiB, not a config", MAX_CONFIG_SIZE >> 20)));
    }
    match serde_json::from_slice::<serde_json::Value>(&data) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => return Err(input(&path, "not a JSON object".into())),
        Err(e) => return Err(input(&path, format!("not JSON: {e}"))),
    }
    Ok((dir, path, data))
}

/// Run `brisk validate`; returns the exit status.
pub fn run(rest: &[String]) -> Result<i32, ValidateError> {
    let o = parse_args(rest)?;
    let (dir, path, data) = read_input(&o)?;
    let problems = validate(&dir, &data, &o);
    let refused = problems.iter().any(|p| p.severity == Severity::Error || (o.strict && p.severity == Severity::Warning));
    if o.json {
        println!("{}", serde_json::to_string_pretty(&problems).unwrap_or_else(|_| "[]".into()));
    } else {
        let name = path.display();
        for p in &problems {
            let at = if p.line > 0 { format!("{}:{}:", p.line, p.column) } else { String::new() };
            let hint = if p.hint.is_empty() { String::new() } else { format!(" (hint: {})", p.hint) };
            println!("{name}:{at} {}: {}: {}{hint}", p.severity, p.path, p.message);
        }
        let count = |s: Severity| problems.iter().filter(|p| p.severity == s).count();
        let verdict = if refused { "refused" } else { "accepted" };
        println!("{name}: {verdict}: {} error(s), {} warning(s), {} note(s)", count(Severity::Error), count(Severity::Warning), count(Severity::Note));
    }
    Ok(if refused { 1 } else { 0 })
}

/// Every problem with the config in `data` (read from `dir`).
fn validate(dir: &Path, data: &[u8], o: &Opts) -> Vec<Problem> {
    let mut c = Collector::collect_all(o.host, o.bundle);
    if let Some((spec, _notes)) = spec::parse_checked(data, &mut c) {
        // Collect-all: a check never stops the run.
        let _ = spec::check_config(&spec, dir, &mut c);
        if !o.bundle {
            c.note("root.path", "not checked: a lone file has no bundle (give --bundle DIR to check the rootfs)", "");
        }
        if o.host {
            host_checks(&spec, &mut c);
        }
        if o.seccomp_report {
            seccomp_report(&spec, &mut c);
        }
    }
    c.into_problems()
}

// ---- --host ----

/// What this machine can honour, beyond the host checks `create` itself runs (namespace paths,
/// AppArmor/SELinux, seccomp flags), which ran already because the collector was told `host`.
fn host_checks(spec: &Spec, c: &mut Collector) {
    // Capabilities: one outside this process's bounding set cannot be granted; create skips it
    // with a warning (config.md "capabilities": SHOULD log a warning and continue).
    let bounding = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapBnd:").map(|v| u64::from_str_radix(v.trim(), 16).unwrap_or(0))));
    if let (Some(bnd), Some(caps)) = (bounding, spec.process().as_ref().and_then(|p| p.capabilities().clone())) {
        let sets = [("bounding", caps.bounding()), ("effective", caps.effective()), ("permitted", caps.permitted()), ("inheritable", caps.inheritable()), ("ambient", caps.ambient())];
        for (set, list) in sets {
            for (i, cap) in list.iter().flatten().enumerate() {
                let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                if brisk_runtime::security::capability_index(&name).is_some_and(|n| bnd & (1u64 << n) == 0) {
                    c.warn(format!("process.capabilities.{set}[{i}]"), format!("{name} is not in this host's bounding set: it will not be granted"), "");
                }
            }
        }
    }
    // cgroups: the mode, and a controller for every resource the config limits.
    let hs = brisk_runtime::cgroups::host_hierarchies().unwrap_or_default();
    let v2: Vec<_> = hs.iter().filter(|h| h.fstype == "cgroup2").collect();
    let v1 = hs.iter().any(|h| h.fstype == "cgroup");
    let mode = match (v1, !v2.is_empty()) {
        (true, true) => "hybrid (v1 controllers, cgroup2 alongside)",
        (true, false) => "v1",
        (false, true) => "unified (v2)",
        (false, false) => "none",
    };
    let has_controller = |name: &str| {
        hs.iter().any(|h| h.controllers.iter().any(|c| c == name))
            || v2.iter().any(|h| fs::read_to_string(h.mount.join("cgroup.controllers")).is_ok_and(|s| s.split_whitespace().any(|c| c == name)))
    };
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().clone()) {
        let wanted = [
            ("memory", r.memory().is_some(), "memory"),
            ("cpu", r.cpu().as_ref().is_some_and(|c| c.shares().is_some() || c.quota().is_some() || c.period().is_some() || c.realtime_runtime().is_some()), "cpu"),
            ("cpu", r.cpu().as_ref().is_some_and(|c| c.cpus().is_some() || c.mems().is_some()), "cpuset"),
            ("pids", r.pids().is_some(), "pids"),
            ("blockIO", r.block_io().is_some(), if v1 { "blkio" } else { "io" }),
            ("hugepageLimits", r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()), "hugetlb"),
            ("rdma", r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma"),
        ];
        for (field, used, controller) in wanted {
            if used && !has_controller(controller) {
                c.error(format!("linux.resources.{field}"), format!("this host (cgroup mode {mode}) has no {controller} controller"), "").ok();
            }
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) && v2.is_empty() {
            c.error("linux.resources.unified", format!("needs cgroup v2; this host's cgroup mode is {mode}"), "").ok();
        }
    }
    // seccomp: every action the profile uses must be one the kernel has
    // (/proc/sys/kernel/seccomp/actions_avail, seccomp(2)).
    if let (Some(s), Ok(avail)) = (spec.linux().as_ref().and_then(|l| l.seccomp().clone()), fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")) {
        let avail: Vec<&str> = avail.split_whitespace().collect();
        let mut check = |path: String, a: LinuxSeccompAction| {
            let k = kernel_action(a);
            if !avail.contains(&k) {
                c.error(path, format!("the kernel does not have the seccomp action {k}"), format!("this kernel has: {}", avail.join(", "))).ok();
            }
        };
        check("linux.seccomp.defaultAction".into(), s.default_action());
        for (i, call) in s.syscalls().iter().flatten().enumerate() {
            check(format!("linux.seccomp.syscalls[{i}].action"), call.action());
        }
        for (i, arch) in s.architectures().iter().flatten().enumerate() {
            let name = serde_json::to_value(arch).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            if !native_arches().contains(&name.as_str()) {
                c.warn(format!("linux.seccomp.architectures[{i}]"), format!("{name} is not an architecture this machine runs"), format!("this machine runs {}", native_arches().join(", ")));
            }
        }
    }
    // User namespaces: the kernel's limit (user_namespaces(7)).
    let wants_userns = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default().iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none());
    if wants_userns && fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|s| s.trim() == "0") {
        c.error("linux.namespaces", "this host allows no user namespaces (/proc/sys/user/max_user_namespaces is 0)", "").ok();
    }
}

/// The seccomp actions_avail spelling of an action.
fn kernel_action(a: LinuxSeccompAction) -> &'static str {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => "kill_thread",
        LinuxSeccompAction::ScmpActKillProcess => "kill_process",
        LinuxSeccompAction::ScmpActTrap => "trap",
        LinuxSeccompAction::ScmpActErrno => "errno",
        LinuxSeccompAction::ScmpActTrace => "trace",
        LinuxSeccompAction::ScmpActAllow => "allow",
        LinuxSeccompAction::ScmpActLog => "log",
        LinuxSeccompAction::ScmpActNotify => "user_notif",
    }
}

/// The seccomp architectures a process on this machine can be (native and its compat modes).
fn native_arches() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_NATIVE", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => &["SCMP_ARCH_NATIVE", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "riscv64" => &["SCMP_ARCH_NATIVE", "SCMP_ARCH_RISCV64"],
        "s390x" => &["SCMP_ARCH_NATIVE", "SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        _ => &["SCMP_ARCH_NATIVE"],
    }
}

// ---- --seccomp-report ----

/// The risk group of a syscall, for the report.
pub fn risk(name: &str) -> &'static str {
    match name {
        "unshare" | "setns" | "clone3" => "namespace creation",
        "init_module" | "finit_module" | "delete_module" | "create_module" | "query_module" => "module loading",
        "add_key" | "request_key" | "keyctl" => "kernel keyring",
        "ptrace" | "process_vm_readv" | "process_vm_writev" | "kcmp" | "pidfd_getfd" => "ptrace",
        "mount" | "umount" | "umount2" | "pivot_root" | "fsopen" | "fsconfig" | "fsmount" | "fspick" | "move_mount" | "open_tree" | "mount_setattr" => "mount",
        _ => "other",
    }
}

const RISK_ORDER: &[&str] = &["namespace creation", "module loading", "kernel keyring", "ptrace", "mount", "other"];

fn is_allow(a: LinuxSeccompAction) -> bool {
    matches!(a, LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog)
}

/// Whether a profile lets `name` through: the first rule naming it decides (an allow rule with
/// argument conditions counts as allowing: some calls pass); else the default action.
pub fn allows(s: &LinuxSeccomp, name: &str) -> bool {
    for call in s.syscalls().iter().flatten() {
        if call.names().iter().any(|n| n == name) {
            if is_allow(call.action()) {
                return true;
            }
            if call.args().as_ref().is_none_or(|a| a.is_empty()) {
                return false;
            }
        }
    }
    is_allow(s.default_action())
}

/// The config's profile against brisk's default (`security::default_seccomp()`, what `brisk spec`
/// writes), both ways, grouped by risk; and every syscall name libseccomp does not know for the
/// profile's architectures (runc and brisk skip such a rule silently). Reported as notes (the
/// differences) and warnings (unknown names), in the same shape as every other problem.
fn seccomp_report(spec: &Spec, c: &mut Collector) {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        c.note("linux.seccomp", "no seccomp profile: every syscall is allowed", "brisk spec writes the default profile");
        return;
    };
    let default = brisk_runtime::security::default_seccomp();
    let arches = profile.architectures().clone().unwrap_or_default();
    for (i, call) in profile.syscalls().iter().flatten().enumerate() {
        for (j, n) in call.names().iter().enumerate() {
            if !brisk_runtime::security::syscall_known(n, &arches) {
                let near = brisk_runtime::security::native_syscall_names().into_iter().filter(|k| brisk_runtime::spec::keys::edit_distance(n, k) <= 2).min_by_key(|k| brisk_runtime::spec::keys::edit_distance(n, k));
                c.warn(
                    format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                    format!("{n:?} is not a syscall libseccomp knows for this profile's architectures: the rule is skipped silently (runc does the same)"),
                    near.map(|k| format!("did you mean {k:?}?")).unwrap_or_default(),
                );
            }
        }
    }
    let mut universe: Vec<String> = brisk_runtime::security::native_syscall_names();
    universe.extend(profile.syscalls().iter().flatten().flat_map(|s| s.names().clone()));
    universe.extend(default.syscalls().iter().flatten().flat_map(|s| s.names().clone()));
    universe.sort();
    universe.dedup();
    let mut more: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut less: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for name in universe {
        let group = RISK_ORDER.iter().position(|r| *r == risk(&name)).unwrap_or(RISK_ORDER.len() - 1);
        match (allows(&profile, &name), allows(&default, &name)) {
            (true, false) => more.entry(group).or_default().push(name),
            (false, true) => less.entry(group).or_default().push(name),
            _ => {}
        }
    }
    for (g, names) in more {
        c.note("linux.seccomp", format!("allows {} syscall(s) brisk's default profile denies [{}]: {}", names.len(), RISK_ORDER[g], names.join(", ")), "");
    }
    for (g, names) in less {
        c.note("linux.seccomp", format!("denies {} syscall(s) brisk's default profile allows [{}]: {}", names.len(), RISK_ORDER[g], names.join(", ")), "");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_flag_in_the_help_table_parses() {
        // validate parses its own flags (a FILE may come before them); the help lists
        // args.rs's table entry: both must name the same flags.
        let c = crate::args::command("validate").expect("validate is in the command table");
        for f in c.flags {
            for n in f.names {
                let dash = if n.len() == 1 { "-" } else { "--" };
                let mut argv = vec![format!("{dash}{n}")];
                if f.value {
                    argv.push(if *n == "format" || *n == "f" { "json".into() } else { "/tmp".into() });
                }
                assert!(parse_args(&argv).is_ok(), "{argv:?} refused");
            }
        }
    }

    use super::*;

    #[test]
    fn default_profile_allows_what_it_says() {
        let d = brisk_runtime::security::default_seccomp();
        assert!(allows(&d, "read"));
        assert!(!allows(&d, "init_module"));
        assert_eq!(risk("unshare"), "namespace creation");
        assert_eq!(risk("read"), "other");
    }

    #[test]
    fn args_need_a_target() {
        assert!(parse_args(&["--bundle".into()]).is_err());
        assert!(parse_args(&["--format".into(), "xml".into()]).is_err());
        assert!(parse_args(&["a".into(), "b".into()]).is_err());
        let o = parse_args(&["--format=json".into(), "--strict".into(), "x.json".into()]).expect("valid");
        assert!(o.json && o.strict && !o.bundle);
    }
}
