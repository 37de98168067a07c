//! seccomp: validation, compilation to BPF (libseccomp), an on-disk cache of compiled programs,
//! loading with seccomp(2), and handing the notify fd to a seccomp agent.
//!
//! Compiling a profile with libseccomp is the slow part of starting a container (crun measured it
//! dominating its start-up; `examples/security_bench.rs` measures ours), and the result depends only
//! on the profile, the libseccomp version and the native architecture. So a profile is compiled
//! once, the BPF is kept in `cache_dir/<sha256>.bpf`, and every container with the same profile loads
//! that program directly with seccomp(SECCOMP_SET_MODE_FILTER).
//!
//! Every profile is loaded with the raw syscall, SCMP_ACT_NOTIFY included: the notify fd is what
//! seccomp(2) returns for SECCOMP_FILTER_FLAG_NEW_LISTENER, which is all libseccomp's
//! seccomp_load + seccomp_notify_fd does. One load path means notify profiles get the cache too and
//! the libseccomp-2.6-only WAIT_KILLABLE_RECV flag works with the libseccomp 2.5 Debian ships.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SecurityError;

/// Seccomp actions brisk accepts (runtime-spec config-linux.md "seccomp"). Used by validation and
/// by `brisk features`.
pub const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// Argument comparison operators.
pub const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Architectures the libseccomp brisk is built against (2.5.x) can compile for. LoongArch64, M68k
/// and SuperH need libseccomp 2.6 and are rejected by validation rather than failing at load.
pub const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

/// Filter flags (seccomp(2) SECCOMP_FILTER_FLAG_*). Support still depends on the kernel; see
/// [`seccomp_flag_supported`].
pub const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

// include/uapi/linux/seccomp.h
const FLAG_TSYNC: u32 = 1 << 0;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
/// BPF_MAXINSNS: the kernel refuses longer classic-BPF programs.
const BPF_MAXINSNS: usize = 4096;
const SOCK_FILTER_SIZE: usize = std::mem::size_of::<libc::sock_filter>();
/// Bumped whenever the meaning of a cached file changes, so old files are never reused.
const CACHE_FORMAT: u32 = 1;
/// Syscall arguments are numbered 0..=5.
const MAX_ARG_INDEX: usize = 5;
/// Syscalls the runtime itself makes between loading a NOTIFY filter and handing over its fd.
const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];
/// The name the seccomp agent protocol gives the notify fd (runtime-spec config-linux.md).
pub const SECCOMP_FD_NAME: &str = "seccompFd";

fn invalid(step: &'static str, reason: impl Into<String>) -> SecurityError {
    SecurityError::Invalid { step, reason: reason.into() }
}

fn scmp(step: &'static str, what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SecurityError {
    let what = what.into();
    move |source| SecurityError::Seccomp { step, what, source }
}

/// The JSON name oci-spec uses for a value (the `SCMP_*` / `SECCOMP_*` spelling).
fn json_name<T: Serialize + std::fmt::Debug>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{v:?}"))
}

fn scmp_arch(arch: Arch) -> Option<ScmpArch> {
    Some(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 | Arch::ScmpArchM68k | Arch::ScmpArchSh | Arch::ScmpArchSheb => return None,
    })
}

/// runc 1.1 (libcontainer/seccomp/seccomp_linux.go getAction): ERRNO and TRACE without errnoRet
/// return EPERM; SCMP_ACT_KILL is the historical name of KILL_THREAD.
fn scmp_action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let ret = errno_ret.unwrap_or(libc::EPERM as u32);
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn scmp_compare(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let index = arg.index() as u32;
    match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpArgCompare::new(index, ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => ScmpArgCompare::new(index, ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => ScmpArgCompare::new(index, ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => ScmpArgCompare::new(index, ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => ScmpArgCompare::new(index, ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => ScmpArgCompare::new(index, ScmpCompareOp::Greater, arg.value()),
        // runtime-spec: for MASKED_EQ `value` is the mask and `valueTwo` the value compared with.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(arg.value()), arg.value_two().unwrap_or(0))
        }
    }
}

fn kernel_flag(flag: LinuxSeccompFilterFlag) -> u32 {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
    }
}

/// Whether the running kernel accepts a filter flag. Probes seccomp(SECCOMP_SET_MODE_FILTER, flag,
/// NULL): the kernel checks flags before it reads the program, so a known flag gets EFAULT and an
/// unknown one EINVAL; nothing is installed either way (runc's features use the same probe).
pub fn seccomp_flag_supported(flag: LinuxSeccompFilterFlag) -> bool {
    let mut bits = kernel_flag(flag);
    if bits == FLAG_WAIT_KILLABLE_RECV {
        // Only valid together with NEW_LISTENER.
        bits |= FLAG_NEW_LISTENER;
    }
    // SAFETY: a NULL program pointer is never dereferenced by us; the kernel fails with EFAULT.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, bits as libc::c_ulong, std::ptr::null::<u8>()) };
    rc < 0 && nix::errno::Errno::last() == nix::errno::Errno::EFAULT
}

pub(crate) fn uses_notify(seccomp: &LinuxSeccomp) -> bool {
    seccomp.default_action() == LinuxSeccompAction::ScmpActNotify
        || seccomp.syscalls().iter().flatten().any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Checks on a typed seccomp section, failing at the first (what the filter compiler runs).
pub(crate) fn validate_seccomp(seccomp: &LinuxSeccomp) -> Result<(), SecurityError> {
    let mut c = crate::spec::Collector::fail_fast();
    let _ = check_seccomp(seccomp, &mut c);
    match c.first_error() {
        Some(p) => Err(invalid("validate seccomp", format!("{}: {}", p.path, p.message))),
        None => Ok(()),
    }
}

/// Checks on a typed seccomp section (names were checked by the parse; see [`validate_seccomp_json`]),
/// reporting into a collector. Whether the kernel knows a filter flag is a host check.
pub fn check_seccomp(seccomp: &LinuxSeccomp, c: &mut crate::spec::Collector) -> crate::spec::Flow {
    for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
        // The table, not the converter, decides: it is what `brisk features` advertises.
        if !SECCOMP_ARCHS.contains(&json_name(arch).as_str()) || scmp_arch(*arch).is_none() {
            c.unsupported(
                format!("linux.seccomp.architectures[{i}]"),
                format!("{} is not supported by this build's libseccomp", json_name(arch)),
                format!("one of {}", SECCOMP_ARCHS.join(", ")),
            )?;
        }
    }
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        // runc: the runtime itself keeps running syscalls after the load; they must not block
        // on an agent.
        c.error("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action", "")?;
    }
    if let Some(e) = seccomp.default_errno_ret() {
        if e > u32::from(u16::MAX) {
            c.error("linux.seccomp.defaultErrnoRet", format!("{e} does not fit in 16 bits"), "0-65535")?;
        }
    }
    for (i, call) in seccomp.syscalls().iter().flatten().enumerate() {
        check_syscall(i, call, c)?;
    }
    if uses_notify(seccomp) && !matches!(seccomp.listener_path(), Some(p) if !p.as_os_str().is_empty()) {
        c.error("linux.seccomp.listenerPath", "required when SCMP_ACT_NOTIFY is used", "the seccomp agent's socket path")?;
    }
    if c.host() {
        for (i, flag) in seccomp.flags().iter().flatten().enumerate() {
            if !seccomp_flag_supported(*flag) {
                c.error(format!("linux.seccomp.flags[{i}]"), format!("{} is not supported by this kernel", json_name(flag)), "")?;
            }
        }
    }
    Ok(())
}

fn check_syscall(i: usize, call: &LinuxSyscall, c: &mut crate::spec::Collector) -> crate::spec::Flow {
    if call.names().is_empty() {
        c.error(format!("linux.seccomp.syscalls[{i}].names"), "must not be empty", "")?;
    }
    if call.action() == LinuxSeccompAction::ScmpActNotify {
        // The process hands the notify fd to the runtime after loading the filter; if that call
        // were itself notified it would wait for an agent that does not have the fd yet. runc 1.1
        // refuses `write` (its init writes to the sync pipe); brisk's init passes the fd with
        // sendmsg(2), so that is refused as well.
        if let Some(n) = call.names().iter().find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str())) {
            c.error(format!("linux.seccomp.syscalls[{i}]"), format!("SCMP_ACT_NOTIFY cannot be used for the {n} syscall"), "")?;
        }
    }
    if let Some(e) = call.errno_ret() {
        if e > u32::from(u16::MAX) {
            c.error(format!("linux.seccomp.syscalls[{i}].errnoRet"), format!("{e} does not fit in 16 bits"), "0-65535")?;
        }
    }
    for (j, arg) in call.args().iter().flatten().enumerate() {
        if arg.index() > MAX_ARG_INDEX {
            c.error(
                format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                format!("{} is out of range 0..={MAX_ARG_INDEX}", arg.index()),
                format!("0-{MAX_ARG_INDEX}"),
            )?;
        }
    }
    Ok(())
}

/// Whether libseccomp knows the syscall `name` for any of `arches` (the native architecture when
/// the list is empty). runc and brisk skip a name libseccomp cannot resolve without a word (runc
/// 1.1.5 seccomp_linux.go matchCall: "ignore it"), so a misspelled name silently drops its rule;
/// `brisk validate --seccomp-report` uses this to say so.
pub fn syscall_known(name: &str, arches: &[Arch]) -> bool {
    let arches: Vec<ScmpArch> = if arches.is_empty() { vec![ScmpArch::native()] } else { arches.iter().filter_map(|a| scmp_arch(*a)).collect() };
    arches.into_iter().any(|a| ScmpSyscall::from_name_by_arch(name, a).is_ok())
}

/// Every syscall name libseccomp knows for the native architecture (numbers 0..1024).
pub fn native_syscall_names() -> Vec<String> {
    let arch = ScmpArch::native();
    let mut names: Vec<String> = (0..1024).filter_map(|n| ScmpSyscall::from(n).get_name_by_arch(arch).ok()).collect();
    names.sort();
    names.dedup();
    names
}

fn check_names(path: String, value: Option<&serde_json::Value>, table: &[&str], what: &str) -> Result<(), SecurityError> {
    let check = |p: &str, v: &serde_json::Value| match v.as_str() {
        Some(s) if table.contains(&s) => Ok(()),
        _ => Err(invalid("validate seccomp", format!("{p}: unknown {what} {v}"))),
    };
    match value {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::Array(items)) => {
            items.iter().enumerate().try_for_each(|(i, v)| check(&format!("{path}[{i}]"), v))
        }
        Some(v) => check(&path, v),
    }
}

/// Validate the names in a raw `linux.seccomp` object against the tables above, before the typed
/// parse turns an unknown name into a bare serde error.
pub fn validate_seccomp_json(seccomp: &serde_json::Value) -> Result<(), SecurityError> {
    let p = "linux.seccomp";
    check_names(format!("{p}.defaultAction"), seccomp.get("defaultAction"), SECCOMP_ACTIONS, "action")?;
    check_names(format!("{p}.architectures"), seccomp.get("architectures"), SECCOMP_ARCHS, "architecture")?;
    check_names(format!("{p}.flags"), seccomp.get("flags"), SECCOMP_FLAGS, "flag")?;
    if let Some(calls) = seccomp.get("syscalls").and_then(|v| v.as_array()) {
        for (i, call) in calls.iter().enumerate() {
            check_names(format!("{p}.syscalls[{i}].action"), call.get("action"), SECCOMP_ACTIONS, "action")?;
            if let Some(args) = call.get("args").and_then(|v| v.as_array()) {
                for (j, arg) in args.iter().enumerate() {
                    check_names(format!("{p}.syscalls[{i}].args[{j}].op"), arg.get("op"), SECCOMP_OPERATORS, "operator")?;
                }
            }
        }
    }
    Ok(())
}

/// Build the libseccomp filter for a profile, following runc 1.1's InitSeccomp/matchCall.
fn build_filter(seccomp: &LinuxSeccomp) -> Result<ScmpFilterContext, SecurityError> {
    let default = scmp_action(seccomp.default_action(), seccomp.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(scmp("seccomp_init", json_name(&seccomp.default_action())))?;
    for arch in seccomp.architectures().iter().flatten() {
        let a = scmp_arch(*arch)
            .ok_or_else(|| invalid("seccomp_arch_add", format!("{} is not supported", json_name(arch))))?;
        ctx.add_arch(a).map_err(scmp("seccomp_arch_add", json_name(arch)))?;
    }
    let calls = seccomp.syscalls().as_deref().unwrap_or_default();
    // runc: libseccomp's binary-tree optimisation pays off for long rule sets.
    if calls.len() > 400 {
        ctx.set_ctl_optimize(2).map_err(scmp("seccomp_attr_set", "SCMP_FLTATR_CTL_OPTIMIZE"))?;
    }
    for call in calls {
        let action = scmp_action(call.action(), call.errno_ret());
        if action == default {
            // libseccomp refuses a rule whose action is the default one; it would be a no-op anyway.
            continue;
        }
        let conditions: Vec<ScmpArgCompare> = call.args().iter().flatten().map(scmp_compare).collect();
        let mut per_index = [0usize; MAX_ARG_INDEX + 1];
        for arg in call.args().iter().flatten() {
            if let Some(n) = per_index.get_mut(arg.index()) {
                *n += 1;
            }
        }
        for name in call.names() {
            let syscall = match ScmpSyscall::from_name(name) {
                Ok(s) => s,
                Err(_) => {
                    // runc ignores names this libseccomp/arch does not know, so one profile can
                    // serve several kernels and architectures.
                    log::debug!("seccomp: unknown syscall {name:?} skipped");
                    continue;
                }
            };
            let what = || format!("{name} ({})", json_name(&call.action()));
            if conditions.is_empty() {
                ctx.add_rule(action, syscall).map_err(scmp("seccomp_rule_add", what()))?;
            } else if per_index.iter().any(|&n| n > 1) {
                // runc: several conditions on the same argument cannot be ANDed by libseccomp;
                // they become one rule each (ORed), the pre-1.0 runc behaviour profiles rely on.
                for c in &conditions {
                    ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c))
                        .map_err(scmp("seccomp_rule_add", what()))?;
                }
            } else {
                ctx.add_rule_conditional(action, syscall, &conditions).map_err(scmp("seccomp_rule_add", what()))?;
            }
        }
    }
    Ok(ctx)
}

/// A compiled classic-BPF seccomp program (an array of `struct sock_filter`, native endian).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bpf {
    bytes: Vec<u8>,
}

impl Bpf {
    fn from_bytes(bytes: Vec<u8>, origin: &Path) -> Result<Self, SecurityError> {
        #[allow(clippy::manual_is_multiple_of)] // rust-version 1.80 predates is_multiple_of
        let ragged = bytes.len() % SOCK_FILTER_SIZE != 0;
        if bytes.is_empty() || ragged || bytes.len() / SOCK_FILTER_SIZE > BPF_MAXINSNS {
            return Err(SecurityError::Invalid {
                step: "seccomp program",
                reason: format!(
                    "{}: {} bytes is not a BPF program of 1..={BPF_MAXINSNS} instructions",
                    origin.display(),
                    bytes.len()
                ),
            });
        }
        Ok(Bpf { bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn instructions(&self) -> usize {
        self.bytes.len() / SOCK_FILTER_SIZE
    }

    fn sock_filters(&self) -> Vec<libc::sock_filter> {
        self.bytes
            .chunks_exact(SOCK_FILTER_SIZE)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

fn export(ctx: &ScmpFilterContext, mut file: File, origin: &Path) -> Result<Bpf, SecurityError> {
    let io = |step: &'static str| {
        let path = origin.to_path_buf();
        move |source| SecurityError::Io { step, path, source }
    };
    ctx.export_bpf(&file).map_err(scmp("seccomp_export_bpf", origin.display().to_string()))?;
    file.seek(SeekFrom::Start(0)).map_err(io("rewind exported filter"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read exported filter"))?;
    Bpf::from_bytes(bytes, origin)
}

fn memfd() -> Result<File, SecurityError> {
    // SAFETY: the name is a valid NUL-terminated string; the returned fd is owned by us alone.
    let fd = unsafe { libc::memfd_create(c"brisk-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SecurityError::Sys { step: "memfd_create for the seccomp filter", source: nix::Error::last() });
    }
    // SAFETY: fd was just returned by memfd_create and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Compile a seccomp section to BPF with libseccomp (seccomp_export_bpf), without caching.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Bpf, SecurityError> {
    let ctx = build_filter(seccomp)?;
    export(&ctx, memfd()?, Path::new("memfd:brisk-seccomp"))
}

/// The cache key: SHA-256 of the canonical JSON (sorted keys) of everything the BPF depends on —
/// the rules, default action and architectures, plus the libseccomp version and the native
/// architecture. Flags and the listener fields are not part of the program, so they are left out.
pub fn cache_key(seccomp: &LinuxSeccomp) -> Result<String, SecurityError> {
    // Every input must be known exactly: a key computed from a defaulted part (an empty profile, an
    // unknown libseccomp version) could be shared by two different profiles, and the cache would
    // then hand one container another's filter. Callers compile without the cache on error.
    let invalid = |reason: String| SecurityError::Invalid { step: "seccomp cache key", reason };
    let v = serde_json::to_value(seccomp).map_err(|e| invalid(format!("serialise profile: {e}")))?;
    let lib = libseccomp::ScmpVersion::current().map_err(|e| invalid(format!("libseccomp version: {e}")))?;
    let canonical = serde_json::json!({
        "format": CACHE_FORMAT,
        "libseccomp": format!("{}.{}.{}", lib.major, lib.minor, lib.micro),
        "native": std::env::consts::ARCH,
        "defaultAction": v.get("defaultAction"),
        "defaultErrnoRet": v.get("defaultErrnoRet"),
        "architectures": v.get("architectures"),
        "syscalls": v.get("syscalls"),
    });
    // serde_json's map is a BTreeMap (no preserve_order feature), so to_vec sorts every key.
    let bytes = serde_json::to_vec(&canonical).map_err(|e| invalid(format!("serialise key: {e}")))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Compile `seccomp`, reusing `cache_dir/<cache_key>.bpf` when present. Cache files are written
/// atomically (temp file, fsync, rename) so a concurrent start never reads half a program, and a
/// cached file is only trusted if it is owned by us and not group/world-writable.
pub fn compile_cached(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Bpf, SecurityError> {
    let key = match cache_key(seccomp) {
        Ok(key) => key,
        // Fail closed: no key means no cache, never a shared default key.
        Err(e) => {
            log::warn!("{e}; compiling without the cache");
            return compile(seccomp);
        }
    };
    let path = cache_dir.join(format!("{key}.bpf"));
    match read_cached(&path) {
        Ok(Some(bpf)) => {
            log::debug!("seccomp: using cached filter {}", path.display());
            return Ok(bpf);
        }
        Ok(None) => {}
        // The cache only saves time: an unreadable entry is compiled again and replaced.
        Err(e) => log::warn!("seccomp: {e}; compiling instead"),
    }
    let bpf = compile(seccomp)?;
    if let Err(e) = store(cache_dir, &key, &path, &bpf) {
        log::warn!("seccomp: filter not cached: {e}");
    }
    Ok(bpf)
}

/// Write `bpf` to `path` atomically: private temp file in the same directory, fsync, rename.
fn store(cache_dir: &Path, key: &str, path: &Path, bpf: &Bpf) -> Result<(), SecurityError> {
    let io = |step: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| SecurityError::Io { step, path, source }
    };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(cache_dir).map_err(io("create seccomp cache dir", cache_dir))?;
    let tmp = cache_dir.join(format!(
        ".{key}.{}.{}.tmp",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io("create seccomp cache file", &tmp))?;
    let result = file
        .write_all(bpf.as_bytes())
        .map_err(io("write seccomp cache file", &tmp))
        .and_then(|()| file.sync_all().map_err(io("fsync seccomp cache file", &tmp)))
        .and_then(|()| fs::rename(&tmp, path).map_err(io("rename seccomp cache file", path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(dir) = File::open(cache_dir) {
        // Durability of the rename only; a lost entry is just compiled again.
        let _ = dir.sync_all();
    }
    Ok(())
}

fn read_cached(path: &Path) -> Result<Option<Bpf>, SecurityError> {
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SecurityError::Io { step: "open seccomp cache file", path: path.to_path_buf(), source }),
    };
    let meta = file
        .metadata()
        .map_err(|source| SecurityError::Io { step: "stat seccomp cache file", path: path.to_path_buf(), source })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        // Someone else could have written it; a filter is only as trustworthy as its file.
        log::warn!("seccomp: ignoring untrusted cache file {} (owner {}, mode {:o})", path.display(), meta.uid(), meta.mode());
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|source| SecurityError::Io { step: "read seccomp cache file", path: path.to_path_buf(), source })?;
    match Bpf::from_bytes(bytes, path) {
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            log::warn!("seccomp: recompiling, bad cache file: {e}");
            Ok(None)
        }
    }
}

/// What the process needs to install its filter: the program and the seccomp(2) flags. Built on
/// the runtime side (where the cache directory is reachable) and handed to the container init, which
/// after pivot_root can no longer see the host's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    pub bpf: Bpf,
    /// SECCOMP_FILTER_FLAG_* requested by the profile.
    pub flags: u32,
    /// The profile has SCMP_ACT_NOTIFY rules: load with NEW_LISTENER and return the fd.
    pub notify: bool,
}

impl SeccompProgram {
    /// Validate, then compile (through the cache when `cache_dir` is given).
    pub fn prepare(seccomp: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Self, SecurityError> {
        validate_seccomp(seccomp)?;
        let bpf = match cache_dir {
            Some(dir) => compile_cached(seccomp, dir)?,
            None => compile(seccomp)?,
        };
        let flags = seccomp.flags().iter().flatten().fold(0, |acc, f| acc | kernel_flag(*f));
        Ok(SeccompProgram { bpf, flags, notify: uses_notify(seccomp) })
    }

    /// The flags passed to seccomp(2).
    pub(crate) fn load_flags(&self) -> u32 {
        let mut flags = self.flags;
        if self.notify {
            flags |= FLAG_NEW_LISTENER;
            // The kernel rejects TSYNC with NEW_LISTENER unless TSYNC failures are reported as
            // ESRCH (they would otherwise be a tid, indistinguishable from the listener fd).
            if flags & FLAG_TSYNC != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            }
        } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
            // Meaningless without a listener and EINVAL from the kernel; libseccomp drops it too.
            log::debug!("seccomp: WAIT_KILLABLE_RECV ignored, the profile has no SCMP_ACT_NOTIFY");
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }
        flags
    }
}

/// Install `program` on the calling thread with seccomp(SECCOMP_SET_MODE_FILTER). Returns the
/// notify fd when the program uses SCMP_ACT_NOTIFY.
pub(crate) fn load(program: &SeccompProgram) -> Result<Option<OwnedFd>, SecurityError> {
    let filters = program.bpf.sock_filters();
    let fprog = libc::sock_fprog { len: filters.len() as libc::c_ushort, filter: filters.as_ptr().cast_mut() };
    let flags = program.load_flags();
    // SAFETY: fprog points at `filters`, which outlives the call; the kernel copies the program
    // and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags as libc::c_ulong, &fprog as *const libc::sock_fprog)
    };
    if rc < 0 {
        return Err(SecurityError::Sys { step: "seccomp(SECCOMP_SET_MODE_FILTER)", source: nix::Error::last() });
    }
    if program.notify {
        let fd = i32::try_from(rc).map_err(|_| invalid("seccomp(SECCOMP_SET_MODE_FILTER)", format!("bad listener fd {rc}")))?;
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 {
        // TSYNC without ESRCH: the id of a thread that could not be synchronised.
        return Err(invalid("seccomp(SECCOMP_SET_MODE_FILTER)", format!("TSYNC failed for thread {rc}")));
    }
    Ok(None)
}

/// runtime-spec `ContainerProcessState`: what a seccomp agent receives with the notify fd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerProcessState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub fds: Vec<String>,
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    pub state: serde_json::Value,
}

/// Send the notify fd to the seccomp agent at `listener_path`, as runc does: connect a stream
/// unix socket and send the `ContainerProcessState` JSON in one sendmsg with the fd attached via
/// SCM_RIGHTS. `state_json` is the container's state (runtime-spec state.md); its `pid` and
/// `ociVersion` fill the message. For an exec'd process use [`send_process_state`] with its pid.
pub fn send_to_listener(
    listener_path: &Path,
    notify_fd: BorrowedFd<'_>,
    state_json: &str,
    listener_metadata: Option<&str>,
) -> Result<(), SecurityError> {
    let state: serde_json::Value = serde_json::from_str(state_json)
        .map_err(|e| invalid("seccomp agent", format!("container state is not JSON: {e}")))?;
    let pid = state
        .get("pid")
        .and_then(|p| p.as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| invalid("seccomp agent", "container state has no pid"))?;
    let msg = ContainerProcessState {
        oci_version: state.get("ociVersion").and_then(|v| v.as_str()).unwrap_or(crate::spec::OCI_VERSION).to_owned(),
        fds: vec![SECCOMP_FD_NAME.to_owned()],
        pid,
        metadata: listener_metadata.filter(|m| !m.is_empty()).map(str::to_owned),
        state,
    };
    send_process_state(listener_path, notify_fd, &msg)
}

/// Send an explicit [`ContainerProcessState`] with the notify fd to the agent at `listener_path`.
pub fn send_process_state(
    listener_path: &Path,
    notify_fd: BorrowedFd<'_>,
    msg: &ContainerProcessState,
) -> Result<(), SecurityError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let path: PathBuf = listener_path.to_path_buf();
    let body = serde_json::to_vec(msg).map_err(|e| invalid("seccomp agent", format!("encode state: {e}")))?;
    let mut stream = UnixStream::connect(&path)
        .map_err(|source| SecurityError::Io { step: "failed to connect with seccomp agent specified in the seccomp profile", path: path.clone(), source })?;
    let fds = [notify_fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = loop {
        match sendmsg::<UnixAddr>(stream.as_raw_fd(), &[IoSlice::new(&body)], &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => return Err(SecurityError::Sys { step: "sendmsg to seccomp agent", source }),
            Ok(n) => break n,
        }
    };
    // The fd travelled with the first byte; a short send on a stream socket is completed plainly.
    stream
        .write_all(&body[sent..])
        .map_err(|source| SecurityError::Io { step: "write to seccomp agent", path, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("profile parses")
    }

    #[test]
    fn tables_match_oci_spec_names() {
        for a in SECCOMP_ACTIONS {
            let parsed: LinuxSeccompAction = serde_json::from_value(serde_json::json!(a)).expect(a);
            assert_eq!(json_name(&parsed), *a);
        }
        for o in SECCOMP_OPERATORS {
            let parsed: LinuxSeccompOperator = serde_json::from_value(serde_json::json!(o)).expect(o);
            assert_eq!(json_name(&parsed), *o);
        }
        for f in SECCOMP_FLAGS {
            let parsed: LinuxSeccompFilterFlag = serde_json::from_value(serde_json::json!(f)).expect(f);
            assert_eq!(json_name(&parsed), *f);
        }
        for a in SECCOMP_ARCHS {
            let parsed: Arch = serde_json::from_value(serde_json::json!(a)).expect(a);
            assert!(scmp_arch(parsed).is_some(), "{a} in the table but not mapped");
        }
        let loong: Arch = serde_json::from_value(serde_json::json!("SCMP_ARCH_LOONGARCH64")).expect("parse");
        assert!(scmp_arch(loong).is_none());
    }

    #[test]
    fn raw_json_names_are_checked_with_their_path() {
        let v = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]
        });
        let err = validate_seccomp_json(&v).expect_err("bad op").to_string();
        assert!(err.contains("linux.seccomp.syscalls[1].args[0].op") && err.contains("SCMP_CMP_BOGUS"), "{err}");
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_FOO"});
        assert!(validate_seccomp_json(&v).expect_err("bad action").to_string().contains("defaultAction"));
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]});
        assert!(validate_seccomp_json(&v).expect_err("bad arch").to_string().contains("architectures[0]"));
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]});
        assert!(validate_seccomp_json(&v).expect_err("bad flag").to_string().contains("flags[0]"));
    }

    #[test]
    fn notify_rules_need_a_listener_and_not_on_write() {
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#);
        assert!(validate_seccomp(&p).expect_err("no listener").to_string().contains("listenerPath"));
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(validate_seccomp(&p).expect_err("write").to_string().contains("write"));
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["mkdir","sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(validate_seccomp(&p).expect_err("sendmsg").to_string().contains("sendmsg"));
        let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#);
        assert!(validate_seccomp(&p).expect_err("default").to_string().contains("defaultAction"));
    }

    #[test]
    fn arg_index_out_of_range_is_rejected() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(validate_seccomp(&p).expect_err("index").to_string().contains("args[0].index"));
    }

    #[test]
    fn compile_skips_unknown_syscalls_and_default_action_rules() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["mkdir","no_such_syscall_brisk"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
                            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let bpf = compile(&p).expect("compiles");
        assert!(bpf.instructions() > 4);
        assert_eq!(bpf.as_bytes().len() % 8, 0);
    }

    #[test]
    fn cache_key_ignores_listener_and_flags_but_not_rules() {
        let a = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#);
        let b = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"x","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let c = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["rmdir"],"action":"SCMP_ACT_ERRNO"}]}"#);
        let key = |p| cache_key(p).expect("cache key");
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert_eq!(key(&a).len(), 64);
    }

    #[test]
    fn compile_cached_writes_then_reuses_the_file() {
        let dir = std::env::temp_dir().join(format!("brisk-seccomp-cache-unit-{}", std::process::id()));
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(dir.clone());
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#);
        let first = compile_cached(&p, &dir).expect("compile");
        let file = dir.join(format!("{}.bpf", cache_key(&p).expect("cache key")));
        assert_eq!(fs::read(&file).expect("cache file"), first.as_bytes());
        // Replace the cached program with a different valid one: a hit must return the file's content.
        let other = compile(&profile(r#"{"defaultAction":"SCMP_ACT_LOG"}"#)).expect("compile");
        fs::write(&file, other.as_bytes()).expect("overwrite");
        assert_eq!(compile_cached(&p, &dir).expect("hit"), other);
        // A truncated file is not trusted.
        fs::write(&file, [1u8, 2, 3]).expect("truncate");
        assert_eq!(compile_cached(&p, &dir).expect("recompile"), first);
        let leftovers: Vec<_> = fs::read_dir(&dir).expect("dir").flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn unusable_cache_dir_still_compiles() {
        let file = std::env::temp_dir().join(format!("brisk-seccomp-notadir-{}", std::process::id()));
        fs::write(&file, b"x").expect("file");
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#);
        let got = compile_cached(&p, &file.join("cache"));
        let _ = fs::remove_file(&file);
        assert_eq!(got.expect("compiled without cache"), compile(&p).expect("compile"));
    }

    #[test]
    fn notify_program_loads_with_new_listener() {
        let prog = SeccompProgram { bpf: Bpf { bytes: vec![0; 8] }, flags: FLAG_TSYNC | FLAG_WAIT_KILLABLE_RECV, notify: true };
        assert_eq!(prog.load_flags(), FLAG_TSYNC | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH);
        let prog = SeccompProgram { notify: false, ..prog };
        assert_eq!(prog.load_flags(), FLAG_TSYNC);
    }

    #[test]
    fn default_errno_is_eperm() {
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActErrno, None), ScmpAction::Errno(libc::EPERM));
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActErrno, Some(38)), ScmpAction::Errno(38));
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActKill, None), ScmpAction::KillThread);
    }
}
