//! Device access rules: `linux.resources.devices`, then runc's default allow list, then one allow
//! per `linux.devices` entry (runc 1.1.5 libcontainer/specconv order).
//!
//! v1: the rules are written in order to devices.allow / devices.deny; the kernel's own list logic
//! gives the result. v2 has no device files: the same rules are reduced to what v1 would hold (a
//! default plus exceptions, like runc's devices emulator) and compiled into an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup directory (kernel
//! Documentation/admin-guide/cgroup-v2.rst "Device controller").
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::{field, write, CgroupError, Placement};

/// Rules appended after the spec's: runc 1.1.5's list (libcontainer/specconv AllowedDevices) —
/// mknod of any character device, the standard character devices, the pty devices, tun/tap —
/// except runc's `b *:* m`. Not /dev/console (5:1): runc's list does not have it (checked side by
/// side in integration/tests/cli_cgroups.rs).
///
/// Deliberately unlike runc: runc lets every container create any block device node and relies on
/// the r/w rules to stop it being used (its own specconv comment calls mknod of any device
/// "questionable" and "arguably insecure", kept for compatibility). A block node is a raw disk one device-rule mistake (or one
/// `update` granting `b *:* rw`) away from the host's data, and no ordinary image needs to create
/// one, so brisk allows mknod of a block device only when the config's rules allow that device
/// (issue 4: "mknod of a block device fails unless the device is allowed"). Character nodes keep
/// runc's behaviour: package installs and debootstrap create /dev/null and friends.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
];

/// One device rule. `typ` is 'a', 'b' or 'c'; `None` major/minor is the wildcard; `access` is a
/// subset of "rwm" (in that order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: String,
}

fn norm_access(a: &str) -> Result<String, String> {
    if a.is_empty() {
        return Ok("rwm".into());
    }
    if let Some(c) = a.chars().find(|c| !"rwm".contains(*c)) {
        return Err(format!("access {a:?} has {c:?}; only r, w and m are allowed"));
    }
    Ok("rwm".chars().filter(|c| a.contains(*c)).collect())
}

fn num(n: Option<i64>, what: &str) -> Result<Option<u32>, String> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| format!("{what} {n} is out of range")),
    }
}

impl Rule {
    pub fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule, String> {
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => return Err("type \"p\" (fifo) is not controlled by the device cgroup".into()),
        };
        Ok(Rule { allow: d.allow(), typ, major: num(d.major(), "major")?, minor: num(d.minor(), "minor")?, access: norm_access(d.access().as_deref().unwrap_or(""))? })
    }

    /// Parse "c 1:3 rwm" (allowed).
    pub fn parse_allow(s: &str) -> Option<Rule> {
        let mut it = s.split_whitespace();
        let typ = it.next()?.chars().next()?;
        let (maj, min) = it.next()?.split_once(':')?;
        let access = it.next()?.to_string();
        let p = |x: &str| if x == "*" { Some(None) } else { x.parse().ok().map(Some) };
        Some(Rule { allow: true, typ, major: p(maj)?, minor: p(min)?, access })
    }

    /// The devices.allow / devices.deny line.
    pub fn v1_line(&self) -> String {
        if self.typ == 'a' {
            return "a".into();
        }
        let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        format!("{} {}:{} {}", self.typ, n(self.major), n(self.minor), self.access)
    }

    fn same_device(&self, o: &Rule) -> bool {
        self.typ == o.typ && self.major == o.major && self.minor == o.minor
    }
}

/// The device node each default rule stands for: runc drops a default rule when `linux.devices`
/// has an entry at the same path (specconv createDevices: "the spec one takes priority").
const DEFAULT_PATHS: &[(&str, &str)] = &[
    ("c 1:3 rwm", "/dev/null"),
    ("c 1:8 rwm", "/dev/random"),
    ("c 1:7 rwm", "/dev/full"),
    ("c 5:0 rwm", "/dev/tty"),
    ("c 1:5 rwm", "/dev/zero"),
    ("c 1:9 rwm", "/dev/urandom"),
];

/// The full rule list for a container: the spec's rules, then the default allow list minus the
/// entries whose device node `linux.devices` redefines.
///
/// A `linux.devices` entry grants no access of its own: runc 1.1.5 creates the node but leaves
/// read/write to `resources.devices` (dev.bats "device cgroup deny"); containerd and the CRI add an
/// allow rule next to every device they add. A block device entry does get `m` for exactly that
/// device, so its node can be created without runc's `b *:* m` (see [`DEFAULT_ALLOWED`]).
pub fn full_list(spec: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::new();
    for (i, d) in spec.iter().enumerate() {
        out.push(Rule::from_spec(d).map_err(|r| field(format!("devices[{i}]"), r))?);
    }
    let redefined = |rule: &str| DEFAULT_PATHS.iter().any(|(r, path)| *r == rule && devices.iter().any(|d| d.path().as_os_str() == *path));
    out.extend(DEFAULT_ALLOWED.iter().filter(|r| !redefined(r)).filter_map(|s| Rule::parse_allow(s)));
    for dev in devices.iter().filter(|d| d.typ() == LinuxDeviceType::B) {
        let n = |x: i64| u32::try_from(x).ok();
        out.push(Rule { allow: true, typ: 'b', major: n(dev.major()), minor: n(dev.minor()), access: "m".into() });
    }
    Ok(out)
}

/// Apply the rules to the container's cgroup (v1 files, or the v2 eBPF program).
pub fn apply(p: &Placement, spec: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<(), CgroupError> {
    let rules = full_list(spec, devices)?;
    if let Some(d) = p.v1_dir("devices") {
        let current = std::fs::read_to_string(d.join("devices.list")).unwrap_or_default();
        for (file, line) in v1_writes(&current, &rules) {
            write(&d.join(file), &line)?;
        }
        return Ok(());
    }
    if p.is_unified() {
        let d = p.unified_dir().ok_or_else(|| CgroupError::Invalid { reason: "no cgroup2 directory in the placement".into() })?;
        let (default_allow, exceptions) = reduce(&rules);
        return attach_filter(d, &program(default_allow, &exceptions));
    }
    if spec.is_empty() {
        // No rules asked for and nothing to enforce them with: the defaults only allow.
        return Ok(());
    }
    Err(field("devices", "no v1 devices hierarchy is mounted on this host"))
}

/// The devices.allow / devices.deny writes that take a v1 device cgroup whose devices.list reads
/// `current` to the state `rules` describe. When both are allow lists (the usual case, and every
/// live update of a runc-style config) only the differences are written, new allows first, so a
/// device allowed before and after is never denied in between (runc's devices emulator
/// transition). Otherwise the rules are written in order from a reset.
pub fn v1_writes(current: &str, rules: &[Rule]) -> Vec<(&'static str, String)> {
    let (default_allow, target) = reduce(rules);
    let cur: Vec<Rule> = current.lines().filter_map(Rule::parse_allow).collect();
    let cur_is_allow_list = !current.trim().is_empty() && !cur.iter().any(|r| r.typ == 'a');
    if default_allow || !cur_is_allow_list {
        return rules.iter().map(|r| (if r.allow { "devices.allow" } else { "devices.deny" }, r.v1_line())).collect();
    }
    let mut out = Vec::new();
    for t in &target {
        let have = cur.iter().find(|c| c.same_device(t)).map(|c| c.access.as_str()).unwrap_or("");
        if t.access.chars().any(|a| !have.contains(a)) {
            out.push(("devices.allow", t.v1_line()));
        }
    }
    for c in &cur {
        let keep = target.iter().find(|t| t.same_device(c)).map(|t| t.access.as_str()).unwrap_or("");
        let drop: String = c.access.chars().filter(|a| !keep.contains(*a)).collect();
        if !drop.is_empty() {
            out.push(("devices.deny", Rule { access: drop, allow: false, ..c.clone() }.v1_line()));
        }
    }
    out
}

/// What a v1 device cgroup would hold after writing `rules` to a fresh (allow-all) group: the
/// default behaviour and the exceptions to it (kernel security/device_cgroup.c semantics).
pub fn reduce(rules: &[Rule]) -> (bool, Vec<Rule>) {
    let mut default_allow = true;
    let mut ex: Vec<Rule> = Vec::new();
    for r in rules {
        if r.typ == 'a' {
            default_allow = r.allow;
            ex.clear();
            continue;
        }
        if r.allow == default_allow {
            // Same as the default: narrows any exception for exactly this device.
            for e in ex.iter_mut().filter(|e| e.same_device(r)) {
                e.access.retain(|c| !r.access.contains(c));
            }
            ex.retain(|e| !e.access.is_empty());
        } else if let Some(e) = ex.iter_mut().find(|e| e.same_device(r)) {
            e.access = "rwm".chars().filter(|c| e.access.contains(*c) || r.access.contains(*c)).collect();
        } else {
            ex.push(Rule { allow: !default_allow, ..r.clone() });
        }
    }
    (default_allow, ex)
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0xf), off, imm }
}
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV32_REG: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const AND32_IMM: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_IMM: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JNE_IMM: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_REG: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// The filter program. Context (struct bpf_cgroup_dev_ctx): access_type (access << 16 | type),
/// major, minor. A request matches an exception when type and numbers match and every requested
/// access bit is in the exception (runc's devicefilter semantics); the first match returns the
/// exception's verdict, otherwise the default.
pub fn program(default_allow: bool, exceptions: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_IMM, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_IMM, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for e in exceptions {
        // (opcode, dst, src, imm) with the jump target "end of this block" filled in below.
        let mut block: Vec<(u8, u8, u8, i32, bool)> = Vec::new();
        let typ = if e.typ == 'b' { 1 } else { 2 }; // BPF_DEVCG_DEV_BLOCK / _CHAR
        block.push((JNE_IMM, 2, 0, typ, true));
        let acc: i32 = e.access.chars().map(|c| match c {
            'm' => 1, // BPF_DEVCG_ACC_MKNOD
            'r' => 2, // BPF_DEVCG_ACC_READ
            _ => 4,   // BPF_DEVCG_ACC_WRITE
        }).sum();
        if acc != 7 {
            block.push((MOV32_REG, 1, 3, 0, false));
            block.push((AND32_IMM, 1, 0, acc, false));
            block.push((JNE_REG, 1, 3, 0, true));
        }
        if let Some(m) = e.major {
            block.push((JNE_IMM, 4, 0, m as i32, true));
        }
        if let Some(m) = e.minor {
            block.push((JNE_IMM, 5, 0, m as i32, true));
        }
        block.push((MOV64_IMM, 0, 0, i32::from(e.allow), false));
        block.push((EXIT, 0, 0, 0, false));
        let len = block.len();
        for (k, (code, dst, src, imm, jump)) in block.into_iter().enumerate() {
            let off = if jump { (len - k - 1) as i16 } else { 0 };
            p.push(insn(code, dst, src, off, imm));
        }
    }
    p.push(insn(MOV64_IMM, 0, 0, 0, i32::from(default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with an attr struct of type T.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, properly sized #[repr(C)] prefix of union bpf_attr for `cmd`; the
    // kernel reads (and for QUERY writes) at most size_of::<T>() bytes of it, and every pointer it
    // holds points at memory the caller keeps alive for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn bpf_err(step: &'static str) -> impl FnOnce(std::io::Error) -> CgroupError {
    move |source| CgroupError::Bpf { step, source }
}

/// Load `insns` and attach them to the cgroup directory `dir`, then detach whatever device
/// programs were attached there before (ours, from create or an earlier update: the directory is
/// the container's own). The new program is attached first so there is no window without a filter.
pub fn attach_filter(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let cg = File::open(dir).map_err(super::io_err("open", dir))?;
    let raw: Vec<u8> = insns.iter().flat_map(|i| {
        let mut b = [0u8; 8];
        b[0] = i.code;
        b[1] = i.regs;
        b[2..4].copy_from_slice(&i.off.to_le_bytes());
        b[4..8].copy_from_slice(&i.imm.to_le_bytes());
        b
    }).collect();
    let license = CString::new("Apache").unwrap_or_default();
    let mut log = vec![0u8; 1 << 16];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: raw.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..11].copy_from_slice(b"brisk_devcg");
    let prog = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => owned(fd),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) => {
            // Load again with the verifier log, to say why.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let again = bpf(BPF_PROG_LOAD, &mut attr);
            let msg = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
            return Err(CgroupError::Bpf { step: "load", source: std::io::Error::new(e.kind(), format!("{e}: verifier: {msg} ({again:?})")) });
        }
        Err(e) => return Err(bpf_err("load")(e)),
    };
    let mut ids = [0u32; 64];
    let mut q = QueryAttr { target_fd: cg.as_raw_fd() as u32, attach_type: BPF_CGROUP_DEVICE, prog_ids: ids.as_mut_ptr() as u64, prog_cnt: ids.len() as u32, ..Default::default() };
    bpf(BPF_PROG_QUERY, &mut q).map_err(bpf_err("query attached programs"))?;
    let old: Vec<u32> = ids[..(q.prog_cnt as usize).min(ids.len())].to_vec();
    let mut a = AttachAttr { target_fd: cg.as_raw_fd() as u32, attach_bpf_fd: prog.as_raw_fd() as u32, attach_type: BPF_CGROUP_DEVICE, attach_flags: BPF_F_ALLOW_MULTI, ..Default::default() };
    bpf(BPF_PROG_ATTACH, &mut a).map_err(bpf_err("attach"))?;
    for id in old {
        let mut g = GetFdAttr { prog_id: id, ..Default::default() };
        let fd = owned(bpf(BPF_PROG_GET_FD_BY_ID, &mut g).map_err(bpf_err("get old program"))?);
        let mut d = AttachAttr { target_fd: cg.as_raw_fd() as u32, attach_bpf_fd: fd.as_raw_fd() as u32, attach_type: BPF_CGROUP_DEVICE, ..Default::default() };
        bpf(BPF_PROG_DETACH, &mut d).map_err(bpf_err("detach old program"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(allow: bool, typ: char, major: Option<u32>, minor: Option<u32>, access: &str) -> Rule {
        Rule { allow, typ, major, minor, access: access.into() }
    }

    #[test]
    fn parses_and_formats_rules() {
        let d: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":false,"type":"c","major":1,"minor":-1,"access":"wr"}"#).unwrap();
        let rule = Rule::from_spec(&d).unwrap();
        assert_eq!(rule, r(false, 'c', Some(1), None, "rw"));
        assert_eq!(rule.v1_line(), "c 1:* rw");
        let d: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":false}"#).unwrap();
        assert_eq!(Rule::from_spec(&d).unwrap().v1_line(), "a");
        assert_eq!(Rule::parse_allow("c 136:* rwm").unwrap(), r(true, 'c', Some(136), None, "rwm"));
        let d: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":true,"type":"p"}"#).unwrap();
        assert!(Rule::from_spec(&d).is_err());
    }

    #[test]
    fn reduces_like_the_v1_kernel_list() {
        // runc spec default: deny all, then the default allows, then a deny of /dev/null writes.
        let mut rules = vec![r(false, 'a', None, None, "rwm")];
        rules.extend(DEFAULT_ALLOWED.iter().filter_map(|s| Rule::parse_allow(s)));
        rules.push(r(false, 'c', Some(1), Some(3), "w"));
        let (default_allow, ex) = reduce(&rules);
        assert!(!default_allow);
        assert_eq!(ex.len(), DEFAULT_ALLOWED.len());
        assert_eq!(ex.iter().find(|e| e.major == Some(1) && e.minor == Some(3)).unwrap().access, "rm");
        // Allow-all resets the list.
        let (default_allow, ex) = reduce(&[r(false, 'c', Some(1), Some(3), "rwm"), r(true, 'a', None, None, "rwm")]);
        assert!(default_allow && ex.is_empty());
    }

    #[test]
    fn linux_devices_add_no_rules_and_replace_defaults_at_their_path() {
        let dev = |j: &str| -> LinuxDevice { serde_json::from_str(j).unwrap() };
        let kmsg = dev(r#"{"path":"/dev/kmsg","type":"c","major":1,"minor":11}"#);
        let null = dev(r#"{"path":"/dev/null","type":"c","major":1,"minor":3}"#);
        let deny: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let loop0 = dev(r#"{"path":"/dev/loop0","type":"b","major":7,"minor":0}"#);
        let rules = full_list(&[deny], &[kmsg, null, loop0]).unwrap();
        let text: Vec<String> = rules.iter().skip(1).map(Rule::v1_line).collect();
        assert_eq!(rules.len(), 1 + DEFAULT_ALLOWED.len() - 1 + 1, "{text:?}");
        assert!(!text.iter().any(|l| l.starts_with("c 1:11")), "an allow rule for /dev/kmsg: {text:?}");
        assert!(!text.iter().any(|l| l == "c 1:3 rwm"), "the /dev/null default survived its redefinition: {text:?}");
        // The listed block device may be created, not read or written.
        assert_eq!(text.last().map(String::as_str), Some("b 7:0 m"), "{text:?}");
    }

    #[test]
    fn v1_transitions() {
        let mut rules = vec![r(false, 'a', None, None, "rwm")];
        rules.extend(DEFAULT_ALLOWED.iter().filter_map(|s| Rule::parse_allow(s)));
        // A fresh cgroup (allow all): the rules in order, starting with the reset.
        let w = v1_writes("a *:* rwm\n", &rules);
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w.len(), rules.len());
        // The same allow list again: nothing to write.
        let list: String = DEFAULT_ALLOWED.iter().map(|l| format!("{l}\n")).collect();
        assert!(v1_writes(&list, &rules).is_empty());
        // Adding /dev/kmsg read and dropping tun/tap: one allow, then one deny, no reset.
        let mut more = rules.clone();
        more.push(r(true, 'c', Some(1), Some(11), "r"));
        more.push(r(false, 'c', Some(10), Some(200), "rwm"));
        assert_eq!(v1_writes(&list, &more), vec![("devices.allow", "c 1:11 r".to_string()), ("devices.deny", "c 10:200 rwm".to_string())]);
    }

    #[test]
    fn program_shape() {
        let p = program(false, &[r(true, 'c', Some(1), Some(3), "rw"), r(true, 'b', None, None, "m")]);
        // Prologue 6, block1: type + 3 access + major + minor + 2 = 8, block2: type + 3 + 2 = 6, epilogue 2.
        assert_eq!(p.len(), 6 + 8 + 6 + 2);
        // The first jump of block 1 skips to block 2.
        assert_eq!(p[6], insn(JNE_IMM, 2, 0, 7, 2));
        assert_eq!(p[p.len() - 2], insn(MOV64_IMM, 0, 0, 0, 0));
        assert_eq!(p[p.len() - 1].code, EXIT);
    }
}
