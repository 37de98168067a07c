//! Checkpoint and restore with CRIU, driven over its RPC socket as runc does (`criu swrk 3` with a
//! SOCK_SEQPACKET socketpair; one `criu_req` per message, `criu_resp` back, and `NOTIFY` callbacks
//! answered until the final response).
//!
//! The messages are CRIU's images/rpc.proto (MIT-licensed, unlike the rest of CRIU's tree), encoded
//! here field by field with the `protobuf` crate's wire streams: brisk needs a dozen fields of three
//! messages, and generated code would put protoc or a codegen step into every build.
//!
//! What follows runc 1.1.5 (libcontainer's Checkpoint/Restore), so that images and behaviour match:
//! - dump: the init's pid, the rootfs as CRIU's root, the freezer cgroup for CRIU to freeze with,
//!   every bind mount of the config (and the cgroup v1 bind mounts, masked files and device nodes)
//!   marked as an external mount under its destination, namespaces joined by path marked external
//!   (`net[inode]:extRootNetNS`), and `descriptors.json` (what the init's fds 0-2 were) in the image
//!   directory, so a restore can hand pipes back with `inherit_fd`;
//! - restore: the container's cgroups created and CRIU put in them before it restores (the tasks
//!   land in them; `cg_root` per controller), the rootfs bind-mounted at `<state>/criu-root` (CRIU
//!   wants a mount point as root), the external mounts mapped back to their sources,
//!   `rst_sibling` so the restored init becomes the caller's child, prestart and createRuntime
//!   hooks at the `setup-namespaces` callback, the state written at `post-restore`, and a tty's
//!   master (`orphan-pts-master`) sent to the console socket.
use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use oci_spec::runtime::Spec;

use crate::container::{ConsoleSocket, Container, Stdio};
use crate::error::Error;
use crate::hooks::{self, Kind};
use crate::state::{State, Status};
use crate::{cgroups, namespaces, spec, sys};

/// The CRIU binary used when none is given: whatever `criu` is on PATH, as runc's default.
pub const DEFAULT_CRIU: &str = "criu";
/// runc's file in the image directory: the link targets of the init's fds 0, 1 and 2 at dump.
pub const DESCRIPTORS: &str = "descriptors.json";
/// CRIU's log level as runc sets it (4: debug), so the log says why a dump failed.
const LOG_LEVEL: i32 = 4;
/// CRIU's socket plus the namespace fds of a restore.
const MAX_SWRK_FDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("criu binary {bin:?}: {source} (install CRIU >= 3.0; `make criu` builds one)")]
    Spawn { bin: PathBuf, #[source] source: std::io::Error },
    #[error("criu binary {bin:?} fails `criu check`, so checkpoint/restore cannot work on this host: {output}")]
    Check { bin: PathBuf, output: String },
    #[error("criu binary {bin:?} lacks {feature}, which {what} needs: {output}")]
    MissingFeature { bin: PathBuf, feature: &'static str, what: &'static str, output: String },
    #[error("{step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("talking to criu ({step}): {source}")]
    Rpc { step: &'static str, #[source] source: nix::Error },
    #[error("criu RPC ({step}): {reason}")]
    Protocol { step: &'static str, reason: String },
    #[error("criu {op} failed: {detail} (log: {log})")]
    Failed { op: &'static str, detail: String, log: PathBuf },
    #[error("restore: image directory {path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("{what} is not supported by brisk's checkpoint/restore")]
    Unsupported { what: &'static str },
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CriuError + 'a {
    move |source| CriuError::Io { step, path: path.to_path_buf(), source }
}

/// CRIU's `criu_cg_mode` (rpc.proto): what CRIU does with the cgroups of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    /// Not in runc 1.1.5 (added in runc 1.2): CRIU leaves cgroups alone.
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
}

impl std::str::FromStr for CgMode {
    type Err = String;
    fn from_str(s: &str) -> Result<CgMode, String> {
        match s {
            "soft" => Ok(CgMode::Soft),
            "full" => Ok(CgMode::Full),
            "strict" => Ok(CgMode::Strict),
            "ignore" => Ok(CgMode::Ignore),
            other => Err(format!("invalid manage cgroups mode {other:?} (soft, full, strict or ignore)")),
        }
    }
}

/// Options shared by checkpoint and restore (runc's criuOptions).
#[derive(Debug, Default, Clone)]
pub struct CriuFlags {
    /// The CRIU binary (runc's global `--criu`); [`DEFAULT_CRIU`] when `None`.
    pub criu: Option<PathBuf>,
    /// Where CRIU writes its log (and other work files); the image directory when `None`.
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// CLONE_NEW* bits of namespaces created empty on restore (runc's `--empty-ns network`).
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    /// Lazy migration needs a page server and `criu lazy-pages`; refused with a clear error.
    pub lazy_pages: bool,
}

/// `brisk checkpoint` (runc's checkpoint flags).
#[derive(Debug, Default, Clone)]
pub struct CheckpointOpts {
    pub image_path: PathBuf,
    /// A previous (pre-)dump, relative to `image_path` as CRIU takes it.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub flags: CriuFlags,
}

/// `brisk restore` (runc's restore flags).
#[derive(Debug, Default)]
pub struct RestoreOpts {
    pub image_path: PathBuf,
    pub bundle: PathBuf,
    /// The restored tree's stdio comes from CRIU's, which is this: `None` inherits the caller's.
    pub stdio: Stdio,
    pub console_socket: Option<ConsoleSocket>,
    /// Accepted for runc compatibility: CRIU restores the mount namespace itself, so there is no
    /// pivot_root to skip.
    pub no_pivot: bool,
    pub flags: CriuFlags,
}

// ---------------------------------------------------------------------------------------------
// rpc.proto, the fields brisk uses.

const REQ_DUMP: i32 = 1;
const REQ_RESTORE: i32 = 2;
const REQ_PRE_DUMP: i32 = 4;
const REQ_NOTIFY: i32 = 6;

/// `criu_opts` (field numbers from rpc.proto).
#[derive(Debug, Default)]
struct Opts {
    images_dir_fd: i32,
    pid: Option<i32>,
    leave_running: bool,
    ext_unix_sk: bool,
    tcp_established: bool,
    evasive_devices: bool,
    shell_job: bool,
    file_locks: bool,
    log_file: String,
    notify_scripts: bool,
    root: Option<String>,
    parent_img: Option<String>,
    track_mem: bool,
    auto_dedup: bool,
    work_dir_fd: Option<i32>,
    ext_mnt: Vec<(String, String)>,
    manage_cgroups: bool,
    cg_root: Vec<(Option<String>, String)>,
    rst_sibling: bool,
    inherit_fd: Vec<(String, i32)>,
    manage_cgroups_mode: Option<i32>,
    external: Vec<String>,
    empty_ns: u32,
    freeze_cgroup: Option<String>,
    orphan_pts_master: bool,
    config_file: Option<String>,
}

type PbResult<T> = protobuf::Result<T>;

fn sub_message(f: impl FnOnce(&mut protobuf::CodedOutputStream<'_>) -> PbResult<()>) -> PbResult<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut os = protobuf::CodedOutputStream::vec(&mut buf);
        f(&mut os)?;
        os.flush()?;
    }
    Ok(buf)
}

impl Opts {
    fn encode(&self, os: &mut protobuf::CodedOutputStream<'_>) -> PbResult<()> {
        os.write_int32(1, self.images_dir_fd)?;
        if let Some(p) = self.pid {
            os.write_int32(2, p)?;
        }
        for (n, b) in [(3, self.leave_running), (4, self.ext_unix_sk), (5, self.tcp_established), (6, self.evasive_devices), (7, self.shell_job), (8, self.file_locks)] {
            if b {
                os.write_bool(n, true)?;
            }
        }
        os.write_int32(9, LOG_LEVEL)?;
        os.write_string(10, &self.log_file)?;
        if self.notify_scripts {
            os.write_bool(12, true)?;
        }
        if let Some(r) = &self.root {
            os.write_string(13, r)?;
        }
        if let Some(p) = &self.parent_img {
            os.write_string(14, p)?;
        }
        if self.track_mem {
            os.write_bool(15, true)?;
        }
        if self.auto_dedup {
            os.write_bool(16, true)?;
        }
        if let Some(w) = self.work_dir_fd {
            os.write_int32(17, w)?;
        }
        for (k, v) in &self.ext_mnt {
            os.write_bytes(23, &sub_message(|m| {
                m.write_string(1, k)?;
                m.write_string(2, v)
            })?)?;
        }
        if self.manage_cgroups {
            os.write_bool(24, true)?;
        }
        for (ctrl, path) in &self.cg_root {
            os.write_bytes(25, &sub_message(|m| {
                if let Some(c) = ctrl {
                    m.write_string(1, c)?;
                }
                m.write_string(2, path)
            })?)?;
        }
        if self.rst_sibling {
            os.write_bool(26, true)?;
        }
        for (k, fd) in &self.inherit_fd {
            os.write_bytes(27, &sub_message(|m| {
                m.write_string(1, k)?;
                m.write_int32(2, *fd)
            })?)?;
        }
        if let Some(m) = self.manage_cgroups_mode {
            os.write_enum(34, m)?;
        }
        for e in &self.external {
            os.write_string(37, e)?;
        }
        if self.empty_ns != 0 {
            os.write_uint32(38, self.empty_ns)?;
        }
        if let Some(f) = &self.freeze_cgroup {
            os.write_string(44, f)?;
        }
        if self.orphan_pts_master {
            os.write_bool(50, true)?;
        }
        if let Some(c) = &self.config_file {
            os.write_string(51, c)?;
        }
        Ok(())
    }
}

/// `criu_req`: type, opts, notify_success.
fn encode_req(typ: i32, opts: Option<&Opts>, notify_success: bool) -> PbResult<Vec<u8>> {
    sub_message(|os| {
        os.write_enum(1, typ)?;
        if let Some(o) = opts {
            os.write_bytes(2, &sub_message(|m| o.encode(m))?)?;
        }
        if notify_success {
            os.write_bool(3, true)?;
        }
        Ok(())
    })
}

/// The parts of `criu_resp` brisk reads.
#[derive(Debug, Default, PartialEq)]
struct Resp {
    typ: i32,
    success: bool,
    restore_pid: Option<i32>,
    notify_script: Option<String>,
    notify_pid: Option<i32>,
    cr_errno: Option<i32>,
    cr_errmsg: Option<String>,
}

fn each_field(data: &[u8], mut f: impl FnMut(u32, &mut protobuf::CodedInputStream<'_>) -> PbResult<bool>) -> PbResult<()> {
    let mut is = protobuf::CodedInputStream::from_bytes(data);
    while let Some(tag) = is.read_raw_tag_or_eof()? {
        let (field, wire) = (tag >> 3, tag & 7);
        if !f(field, &mut is)? {
            let wt = protobuf::rt::WireType::new(wire).ok_or_else(|| protobuf::Error::from(std::io::Error::other(format!("wire type {wire}"))))?;
            is.skip_field(wt)?;
        }
    }
    Ok(())
}

fn decode_resp(data: &[u8]) -> PbResult<Resp> {
    let mut r = Resp::default();
    each_field(data, |field, is| {
        match field {
            1 => r.typ = is.read_int32()?,
            2 => r.success = is.read_bool()?,
            4 => {
                let b = is.read_bytes()?;
                each_field(&b, |f, is| Ok(f == 1 && { r.restore_pid = Some(is.read_int32()?); true }))?;
            }
            5 => {
                let b = is.read_bytes()?;
                each_field(&b, |f, is| {
                    match f {
                        1 => r.notify_script = Some(is.read_string()?),
                        2 => r.notify_pid = Some(is.read_int32()?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
            }
            7 => r.cr_errno = Some(is.read_int32()?),
            9 => r.cr_errmsg = Some(is.read_string()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Running criu.

fn criu_bin(flags: &CriuFlags) -> PathBuf {
    flags.criu.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CRIU))
}

/// `criu check` before anything is changed: a CRIU that cannot work here (bookworm's 3.17 on a 6.x
/// kernel fails on the vDSO) would otherwise fail half-way through a dump. runc only asks for the
/// version; the check costs a few milliseconds and turns a failed dump into a clear message.
pub fn check(bin: &Path) -> Result<(), CriuError> {
    let out = std::process::Command::new(bin)
        .arg("check")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| CriuError::Spawn { bin: bin.to_path_buf(), source })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("; ");
    Err(CriuError::Check { bin: bin.to_path_buf(), output: format!("{} ({})", tail, out.status) })
}

/// `criu check --feature NAME`, as runc's checkCriuFeatures asks CRIU over RPC before a pre-dump.
fn check_feature(bin: &Path, feature: &'static str, what: &'static str) -> Result<(), CriuError> {
    let out = std::process::Command::new(bin)
        .args(["check", "--feature", feature])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| CriuError::Spawn { bin: bin.to_path_buf(), source })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let output = text.lines().filter(|l| !l.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join("; ");
    Err(CriuError::MissingFeature { bin: bin.to_path_buf(), feature, what, output })
}

/// The last error lines of a CRIU log, to say why it failed without sending the user to the file.
fn log_errors(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let errs: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
    errs[errs.len().saturating_sub(3)..].iter().map(|l| l.trim()).collect::<Vec<_>>().join("; ")
}

/// What a NOTIFY callback handler gets: the script name, the pid CRIU reports, and any fd that came
/// with the message (orphan-pts-master).
type Notify<'a> = dyn FnMut(&str, i32, Option<OwnedFd>) -> Result<(), Error> + 'a;

/// One `criu swrk` session: spawn, send `req`, answer notifications, return the final response.
/// `extra_fds` become fds 4, 5, ... in CRIU (for `inherit_fd`). `before_req` runs with CRIU's pid
/// before the request is sent (restore puts CRIU into the container's cgroups there).
#[allow(clippy::too_many_arguments)]
fn swrk(
    bin: &Path,
    op: &'static str,
    typ: i32,
    opts: &mut Opts,
    stdio: Stdio,
    extra_fds: &[BorrowedFd<'_>],
    log: &Path,
    before_req: &mut dyn FnMut(i32, &mut Opts) -> Result<(), Error>,
    notify: &mut Notify<'_>,
) -> Result<Resp, Error> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(|source| CriuError::Rpc { step: "socketpair", source })?;
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["swrk", "3"]);
    match stdio.stdin {
        Some(f) => cmd.stdin(f),
        None if typ == REQ_RESTORE => cmd.stdin(std::process::Stdio::inherit()),
        None => cmd.stdin(std::process::Stdio::null()),
    };
    match stdio.stdout {
        Some(f) => cmd.stdout(f),
        None if typ == REQ_RESTORE => cmd.stdout(std::process::Stdio::inherit()),
        None => cmd.stdout(std::process::Stdio::null()),
    };
    match stdio.stderr {
        Some(f) => cmd.stderr(f),
        None if typ == REQ_RESTORE => cmd.stderr(std::process::Stdio::inherit()),
        None => cmd.stderr(std::process::Stdio::null()),
    };
    let mut raw: Vec<i32> = vec![theirs.as_raw_fd()];
    raw.extend(extra_fds.iter().map(|f| f.as_raw_fd()));
    if raw.len() > MAX_SWRK_FDS {
        return Err(CriuError::Protocol { step: "spawn", reason: format!("{} fds for criu, at most {MAX_SWRK_FDS}", raw.len()) }.into());
    }
    let mut fds = [-1i32; MAX_SWRK_FDS];
    fds[..raw.len()].copy_from_slice(&raw);
    let count = raw.len();
    // SAFETY: the closure runs between fork and exec, allocates nothing and only calls fcntl(2)
    // and dup2(2), which are async-signal-safe. Every source is first copied above the target
    // range 3..3+count, so placing one cannot clobber another that still has to be placed; dup2
    // clears close-on-exec on the placed copies only, so nothing else leaks into CRIU.
    unsafe {
        cmd.pre_exec(move || {
            let mut lifted = [-1i32; MAX_SWRK_FDS];
            for i in 0..count {
                let n = libc::fcntl(fds[i], libc::F_DUPFD_CLOEXEC, 3 + count as i32);
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lifted[i] = n;
            }
            for (i, fd) in lifted.iter().enumerate().take(count) {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let (mut child, _own) = sys::spawn_own(&mut cmd).map_err(|source| CriuError::Spawn { bin: bin.to_path_buf(), source })?;
    drop(theirs);
    drop(cmd);
    let res = (|| -> Result<Resp, Error> {
        before_req(child.id() as i32, opts)?;
        let req = encode_req(typ, Some(opts), false).map_err(|e| CriuError::Protocol { step: "encode request", reason: e.to_string() })?;
        send(ours.as_raw_fd(), &req, MsgFlags::empty()).map_err(|source| CriuError::Rpc { step: "send request", source })?;
        loop {
            let (resp, fd) = recv_resp(ours.as_fd())?;
            let Some(resp) = resp else {
                return Err(CriuError::Failed { op, detail: format!("criu exited without answering: {}", log_errors(log)), log: log.to_path_buf() }.into());
            };
            if !resp.success {
                // The log's last errors say why; CRIU's cr_errmsg is its *first* error, often a
                // harmless one (no CAP_SYS_RESOURCE for RLIMIT_NOFILE), so it is only the fallback.
                let errs = log_errors(log);
                let detail = match (&resp.cr_errmsg, resp.cr_errno) {
                    _ if !errs.is_empty() => errs,
                    (Some(m), _) if !m.trim().is_empty() => m.trim().to_string(),
                    (_, Some(e)) if e != 0 => format!("errno {e} ({})", nix::errno::Errno::from_raw(e).desc()),
                    _ => "no reason given".to_string(),
                };
                return Err(CriuError::Failed { op, detail, log: log.to_path_buf() }.into());
            }
            if resp.typ != REQ_NOTIFY {
                return Ok(resp);
            }
            let script = resp.notify_script.clone().unwrap_or_default();
            let r = notify(&script, resp.notify_pid.unwrap_or(0), fd);
            // A failed callback is answered with notify_success false, so CRIU aborts and
            // cleans up the half-restored (or frozen) tree itself.
            let ack = encode_req(REQ_NOTIFY, None, r.is_ok()).map_err(|e| CriuError::Protocol { step: "encode notify ack", reason: e.to_string() })?;
            send(ours.as_raw_fd(), &ack, MsgFlags::empty()).map_err(|source| CriuError::Rpc { step: "acknowledge notify", source })?;
            r?;
        }
    })();
    // CRIU exits once the socket is closed (a pre-dump session would wait for more requests).
    // On an aborted session CRIU sees the EOF and undoes its own changes (it kills a half-restored
    // tree, thaws a frozen one): wait for that rather than killing it half-way.
    drop(ours);
    let _ = child.wait();
    res
}

/// One `criu_resp` and the fd that may come with it; `None` at EOF.
fn recv_resp(sock: BorrowedFd<'_>) -> Result<(Option<Resp>, Option<OwnedFd>), Error> {
    // runc reads with a 10-page buffer; a response is far smaller.
    let mut buf = vec![0u8; 10 * 4096];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fd) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => return Err(CriuError::Rpc { step: "receive response", source }.into()),
            Ok(msg) => {
                let mut fd = None;
                for c in msg.cmsgs().map_err(|source| CriuError::Rpc { step: "receive response", source })? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for raw in fds {
                            // SAFETY: SCM_RIGHTS just installed this fd in our table; we own it.
                            let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
                            fd.get_or_insert(owned);
                        }
                    }
                }
                break (msg.bytes, fd);
            }
        }
    };
    if n == 0 {
        return Ok((None, fd));
    }
    let resp = decode_resp(&buf[..n]).map_err(|e| CriuError::Protocol { step: "decode response", reason: e.to_string() })?;
    Ok((Some(resp), fd))
}

// ---------------------------------------------------------------------------------------------
// Shared option building.

fn open_dir(path: &Path, step: &'static str) -> Result<fs::File, CriuError> {
    fs::File::open(path).map_err(io(step, path))
}

fn mkdir_p(path: &Path) -> Result<(), CriuError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io("create directory", path))
}

fn common_opts(flags: &CriuFlags, images: &fs::File, work: Option<&fs::File>, log_file: &str) -> Opts {
    Opts {
        images_dir_fd: images.as_raw_fd(),
        work_dir_fd: work.map(|w| w.as_raw_fd()),
        log_file: log_file.to_string(),
        tcp_established: flags.tcp_established,
        ext_unix_sk: flags.ext_unix_sk,
        shell_job: flags.shell_job,
        file_locks: flags.file_locks,
        empty_ns: flags.empty_ns,
        auto_dedup: flags.auto_dedup,
        manage_cgroups: true,
        manage_cgroups_mode: flags.manage_cgroups_mode.map(|m| m as i32),
        notify_scripts: true,
        orphan_pts_master: true,
        ..Default::default()
    }
}

/// runc's handleCriuConfigurationFile: the annotation `org.criu.config` names a CRIU configuration
/// file (empty disables it); without it /etc/criu/runc.conf is used if present. brisk honours the
/// same file so a host configured for runc behaves the same.
fn config_file(spec: &Spec) -> Option<String> {
    match spec.annotations().as_ref().and_then(|a| a.get("org.criu.config")) {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p.clone()),
        None => Path::new("/etc/criu/runc.conf").exists().then(|| "/etc/criu/runc.conf".to_string()),
    }
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind") || m.options().as_deref().unwrap_or_default().iter().any(|o| o == "bind" || o == "rbind")
}

/// The default device nodes every container gets (runc's AllowedDevices with a path): bind-mounted
/// from the host in a user namespace, so external mounts there.
const DEFAULT_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

/// (destination in the container, source on the host) of every mount CRIU must treat as external:
/// config bind mounts, the cgroup v1 per-hierarchy binds, device nodes. Masked files are added by
/// the callers (they differ between dump and restore, as in runc).
fn external_mounts(spec: &Spec, bundle_dir: &Path, placement: &cgroups::Placement) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        if is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_relative() { bundle_dir.join(src) } else { src };
            out.push((dest, src.to_string_lossy().into_owned()));
        } else if m.typ().as_deref() == Some("cgroup") && !placement.is_unified() && !creates_cgroupns(spec) {
            // v1/hybrid without a cgroup namespace: a tmpfs with one bind per hierarchy
            // (rootfs::mount_cgroup), each from the container's own cgroup directory.
            for (name, _, host) in cgroups::mounts_for_rootfs(placement) {
                out.push((format!("{}/{name}", dest.trim_end_matches('/')), host.to_string_lossy().into_owned()));
            }
        }
    }
    let devices = spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
    for d in devices.iter().map(|d| d.path().to_string_lossy().into_owned()).chain(DEFAULT_DEVICES.iter().map(|s| s.to_string())) {
        if !out.iter().any(|(k, _)| *k == d) {
            out.push((d.clone(), d));
        }
    }
    out
}

fn creates_cgroupns(spec: &Spec) -> bool {
    crate::process::creates(spec, oci_spec::runtime::LinuxNamespaceType::Cgroup)
}

/// CRIU's name for the namespaces runc marks external when joined by path.
const EXTERNAL_NS: &[(oci_spec::runtime::LinuxNamespaceType, &str, &str)] = &[
    (oci_spec::runtime::LinuxNamespaceType::Network, "net", "extRootNetNS"),
    (oci_spec::runtime::LinuxNamespaceType::Pid, "pid", "extRootPidNS"),
];

// ---------------------------------------------------------------------------------------------
// Checkpoint.

pub(crate) fn checkpoint(c: &Container, o: &CheckpointOpts) -> Result<(), Error> {
    if o.flags.lazy_pages {
        return Err(CriuError::Unsupported { what: "--lazy-pages (lazy migration needs a page server)" }.into());
    }
    let status = c.status();
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(Error::WrongStatus { id: c.id().into(), status: status.to_string(), op: "checkpoint" });
    }
    if o.image_path.as_os_str().is_empty() {
        return Err(CriuError::Image { path: o.image_path.clone(), reason: "no image path given".into() }.into());
    }
    let bin = criu_bin(&o.flags);
    check(&bin)?;
    if o.pre_dump {
        // Iterative dumps rely on the kernel's soft-dirty bits (CONFIG_MEM_SOFT_DIRTY); runc
        // refuses a pre-dump without them ("CRIU is missing features") and so does brisk, naming
        // the feature.
        check_feature(&bin, "mem_dirty_track", "--pre-dump (the kernel's soft-dirty memory tracking)")?;
    }
    let bundle = spec::load(c.bundle())?;
    let spec = &bundle.spec;

    mkdir_p(&o.image_path)?;
    let images = open_dir(&o.image_path, "open image directory")?;
    let work = match &o.flags.work_path {
        Some(w) => {
            mkdir_p(w)?;
            Some(open_dir(w, "open work directory")?)
        }
        None => None,
    };
    let log_file = if o.pre_dump { "pre-dump.log" } else { "dump.log" };
    let log = o.flags.work_path.as_deref().unwrap_or(&o.image_path).join(log_file);
    let mut opts = common_opts(&o.flags, &images, work.as_ref(), log_file);
    opts.pid = Some(c.pid());
    opts.root = Some(c.state.rootfs.to_string_lossy().into_owned());
    opts.leave_running = o.leave_running || o.pre_dump;
    // CRIU freezes the tree with the freezer cgroup (v1 freezer or the v2 directory), as runc asks,
    // so no task can fork away while it is collected.
    let p = &c.state.cgroup;
    opts.freeze_cgroup = p.v1_dir("freezer").or_else(|| p.unified_dir().filter(|_| p.is_unified())).map(|d| d.to_string_lossy().into_owned());
    if let Some(parent) = &o.parent_path {
        opts.parent_img = Some(parent.to_string_lossy().into_owned());
        opts.track_mem = true;
    }
    if o.pre_dump {
        // Iterative migration: memory changes are tracked from this pre-dump on.
        opts.track_mem = true;
    }
    opts.config_file = config_file(spec);
    if !o.pre_dump {
        // Dump-side names: each external mount is recorded under its destination, which the
        // restore maps back to a source; masked files are all one bind of /dev/null (runc's
        // addMaskPaths: only files, directories are masked with a tmpfs CRIU dumps itself).
        for (dest, _) in external_mounts(spec, &bundle.dir, p) {
            opts.ext_mnt.push((dest.clone(), dest));
        }
        for m in spec.linux().as_ref().and_then(|l| l.masked_paths().clone()).unwrap_or_default() {
            let inside = PathBuf::from(format!("/proc/{}/root{}", c.pid(), m));
            match fs::metadata(&inside) {
                Ok(md) if !md.is_dir() => opts.ext_mnt.push((m.clone(), "/dev/null".into())),
                _ => {}
            }
        }
        for (t, crname, key) in EXTERNAL_NS {
            let joined = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).and_then(|ns| ns.iter().find(|n| n.typ() == *t)).and_then(|n| n.path().clone());
            if let Some(path) = joined {
                let md = fs::metadata(&path).map_err(io("stat namespace", &path))?;
                opts.external.push(format!("{crname}[{}]:{key}", md.ino()));
            }
        }
        // What the init's stdio was, so a restore can hand pipes back (runc's descriptors.json,
        // same format: a JSON array of the /proc/<pid>/fd/N link targets).
        let fds: Vec<String> = (0..3).map(|i| fs::read_link(format!("/proc/{}/fd/{i}", c.pid())).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        let path = o.image_path.join(DESCRIPTORS);
        fs::write(&path, serde_json::to_vec(&fds).unwrap_or_default()).map_err(io("write", &path))?;
    }
    let typ = if o.pre_dump { REQ_PRE_DUMP } else { REQ_DUMP };
    let op = if o.pre_dump { "pre-dump" } else { "dump" };
    let state_dir = State::dir(&c.root, c.id());
    swrk(&bin, op, typ, &mut opts, Stdio::default(), &[], &log, &mut |_, _| Ok(()), &mut |script, _, _| {
        // runc leaves a "checkpoint" marker in the state dir after a dump; nothing reads it
        // but it tells an operator a checkpoint of this container exists.
        if script == "post-dump" {
            let _ = fs::write(state_dir.join("checkpoint"), b"");
        }
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Restore.

/// Undo a failed restore: the criu-root bind, the cgroups and the state directory.
struct RestoreGuard<'a> {
    dir: &'a Path,
    placement: Option<cgroups::Placement>,
    mounted: Option<PathBuf>,
    pid: Option<(i32, u64)>,
    armed: bool,
}

impl Drop for RestoreGuard<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        if !self.armed {
            return;
        }
        if let Some((pid, start)) = self.pid {
            if let Ok(fd) = sys::pidfd_verified(pid, start) {
                let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                let _ = sys::pidfd_wait(fd.as_fd(), false);
            }
        }
        if let Some(p) = &self.placement {
            let _ = cgroups::remove(p);
        }
        let _ = fs::remove_dir_all(self.dir);
    }
}

/// Check the image directory before anything is created: a restore from a missing or foreign
/// directory must fail naming it and change nothing.
fn check_images(path: &Path) -> Result<Vec<String>, CriuError> {
    let bad = |reason: String| CriuError::Image { path: path.to_path_buf(), reason };
    let md = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !md.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if !path.join("inventory.img").is_file() {
        return Err(bad("no inventory.img: not a CRIU checkpoint".into()));
    }
    let d = path.join(DESCRIPTORS);
    let data = fs::read(&d).map_err(|e| bad(format!("{DESCRIPTORS}: {e} (not a runc/brisk checkpoint)")))?;
    serde_json::from_slice(&data).map_err(|e| bad(format!("{DESCRIPTORS}: {e}")))
}

pub(crate) fn restore(root: &Path, id: &str, o: RestoreOpts, systemd_cgroup: bool) -> Result<Container, Error> {
    crate::process::validate_id(id)?;
    if o.flags.lazy_pages {
        return Err(CriuError::Unsupported { what: "--lazy-pages (lazy migration needs a page server)" }.into());
    }
    if systemd_cgroup {
        return Err(CriuError::Unsupported { what: "restore with the systemd cgroup driver" }.into());
    }
    let bundle = spec::load(&o.bundle)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().ok_or_else(|| spec::SpecError::Invalid { path: bundle.dir.join("config.json"), field: "linux".into(), reason: "missing".into() })?;
    let descriptors = check_images(&o.image_path)?;
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        return Err(spec::SpecError::Invalid { path: bundle.dir.join("config.json"), field: "process.terminal".into(), reason: "needs --console-socket".into() }.into());
    }
    let bin = criu_bin(&o.flags);
    check(&bin)?;
    let console = match o.console_socket {
        None => None,
        Some(ConsoleSocket::Connected(fd)) => Some(fd),
        Some(ConsoleSocket::Path(p)) => Some(std::os::unix::net::UnixStream::connect(&p).map_err(io("connect console socket", &p))?.into()),
    };

    let dir = State::dir(root, id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::AlreadyExists { id: id.to_string() }),
        Err(source) => return Err(Error::Io { step: "create state dir", path: dir, source }),
    }
    let mut guard = RestoreGuard { dir: &dir, placement: None, mounted: None, pid: None, armed: true };

    let cgroups_path = linux.cgroups_path().as_deref();
    cgroups::check_driver(cgroups_path, id, false).map_err(|reason| spec::SpecError::Invalid { path: bundle.dir.join("config.json"), field: "linux.cgroupsPath".into(), reason })?;
    let placement = cgroups::create(cgroups_path, id, linux.resources().as_ref(), linux.devices().as_deref().unwrap_or_default(), false)?;
    guard.placement = Some(placement.clone());

    // CRIU wants its root to be a mount point (runc bind-mounts the rootfs to <state>/criu-root
    // for the same reason); the bind lives only for the restore.
    let criu_root = dir.join("criu-root");
    fs::DirBuilder::new().mode(0o755).create(&criu_root).map_err(io("create", &criu_root))?;
    nix::mount::mount(Some(&bundle.rootfs), &criu_root, None::<&str>, nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC, None::<&str>)
        .map_err(|e| CriuError::Io { step: "bind rootfs to", path: criu_root.clone(), source: e.into() })?;
    guard.mounted = Some(criu_root.clone());

    let images = open_dir(&o.image_path, "open image directory")?;
    let work = match &o.flags.work_path {
        Some(w) => {
            mkdir_p(w)?;
            Some(open_dir(w, "open work directory")?)
        }
        None => None,
    };
    let log = o.flags.work_path.as_deref().unwrap_or(&o.image_path).join("restore.log");
    let mut opts = common_opts(&o.flags, &images, work.as_ref(), "restore.log");
    opts.root = Some(criu_root.to_string_lossy().into_owned());
    opts.rst_sibling = true;
    opts.evasive_devices = true;
    opts.config_file = config_file(spec);
    for (dest, src) in external_mounts(spec, &bundle.dir, &placement) {
        opts.ext_mnt.push((dest, src));
    }
    if linux.masked_paths().as_ref().is_some_and(|m| !m.is_empty()) {
        opts.ext_mnt.push(("/dev/null".into(), "/dev/null".into()));
    }
    // Pipes are handed back by key (their old identity); files CRIU reopens by path itself.
    for (i, d) in descriptors.iter().enumerate().take(3) {
        if d.starts_with("pipe:") {
            opts.inherit_fd.push((d.clone(), i as i32));
        }
    }
    // Namespaces joined by path go back to the same path: their fds are CRIU's 4, 5, ...
    let mut ns_files = Vec::new();
    for (t, _, key) in EXTERNAL_NS {
        let joined = linux.namespaces().as_ref().and_then(|ns| ns.iter().find(|n| n.typ() == *t)).and_then(|n| n.path().clone());
        if let Some(path) = joined {
            let f = fs::File::open(&path).map_err(io("open namespace", &path))?;
            opts.inherit_fd.push((key.to_string(), 4 + ns_files.len() as i32));
            ns_files.push(f);
        }
    }
    let extra: Vec<BorrowedFd<'_>> = ns_files.iter().map(|f| f.as_fd()).collect();

    let nss = linux.namespaces().clone().unwrap_or_default();
    let mut state = State {
        id: id.to_string(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: 0,
        pid_start: 0,
        status: Status::Creating,
        created: crate::process::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        cgroup: placement.clone(),
        namespaces: nss.iter().map(|n| (namespaces::name(n.typ()).to_string(), n.path().clone())).collect(),
        owner: crate::process::owner_name(),
        hooks: spec.hooks().clone(),
    };
    let mut restored: Option<(i32, u64)> = None;
    let mut before = |criu_pid: i32, opts: &mut Opts| -> Result<(), Error> {
        // runc's criuApplyCgroups: CRIU joins the container's cgroups before it forks the tree, and
        // cg_root tells it, per controller, that the dumped cgroup root is now where it stands.
        cgroups::add(&placement, criu_pid)?;
        let path = PathBuf::from(format!("/proc/{criu_pid}/cgroup"));
        let text = fs::read_to_string(&path).map_err(io("read", &path))?;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, cg) = (parts.next(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            if ctrls.is_empty() {
                opts.cg_root.push((None, cg.to_string()));
            } else {
                for ctrl in ctrls.split(',') {
                    opts.cg_root.push((Some(ctrl.to_string()), cg.to_string()));
                }
            }
        }
        Ok(())
    };
    let mut notify = |script: &str, pid: i32, fd: Option<OwnedFd>| -> Result<(), Error> {
        match script {
            // The tree's namespaces exist, nothing runs yet: where runc runs prestart and
            // createRuntime hooks on restore.
            "setup-namespaces" => {
                let mut s = state.oci_json(Status::Creating);
                s["pid"] = pid.into();
                let sj = serde_json::to_vec(&s).unwrap_or_default();
                hooks::run_all(Kind::Prestart, spec.hooks().as_ref(), &sj)?;
                hooks::run_all(Kind::CreateRuntime, spec.hooks().as_ref(), &sj)?;
            }
            "post-restore" => {
                let (_, start) = sys::proc_stat(pid).ok_or(crate::process::SpawnError::InitDied { step: "restore" })?;
                restored = Some((pid, start));
                state.pid = pid;
                state.pid_start = start;
                state.status = Status::Running;
                state.save(root)?;
            }
            "orphan-pts-master" => {
                let master = fd.ok_or_else(|| CriuError::Protocol { step: "orphan-pts-master", reason: "no fd with the message".into() })?;
                if let Some(sock) = &console {
                    sys::send_fd(sock.as_fd(), "/dev/ptmx", master.as_fd()).map_err(|source| CriuError::Rpc { step: "send pty master to the console socket", source })?;
                }
            }
            _ => {}
        }
        Ok(())
    };
    let res = swrk(&bin, "restore", REQ_RESTORE, &mut opts, o.stdio, &extra, &log, &mut before, &mut notify);
    guard.pid = restored;
    let resp = res?;
    let (pid, start) = match restored {
        Some(r) => r,
        None => {
            // A CRIU without the post-restore callback: the response carries the pid.
            let pid = resp.restore_pid.ok_or_else(|| CriuError::Protocol { step: "restore", reason: "no pid in the response".into() })?;
            let (_, start) = sys::proc_stat(pid).ok_or(crate::process::SpawnError::InitDied { step: "restore" })?;
            (pid, start)
        }
    };
    state.pid = pid;
    state.pid_start = start;
    state.status = Status::Running;
    state.save(root)?;
    let _ = fs::remove_file(dir.join("checkpoint"));
    if let Some(m) = guard.mounted.take() {
        nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH).map_err(|e| CriuError::Io { step: "unmount", path: m.clone(), source: e.into() })?;
        let _ = fs::remove_dir(&m);
    }
    guard.armed = false;
    Ok(Container { root: root.to_path_buf(), state, init_pidfd: sys::pidfd_verified(pid, start).ok() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encodes_rpc_proto_fields() {
        let o = Opts { images_dir_fd: 5, pid: Some(42), leave_running: true, log_file: "dump.log".into(), ext_mnt: vec![("/a".into(), "/a".into())], ..Default::default() };
        let b = encode_req(REQ_DUMP, Some(&o), false).expect("encode");
        // type = 1 (DUMP): field 1 varint.
        assert_eq!(&b[..2], &[0x08, 0x01]);
        // opts: field 2, length-delimited.
        assert_eq!(b[2], 0x12);
        let inner = &b[4..];
        assert_eq!(&inner[..2], &[0x08, 5]); // images_dir_fd
        assert_eq!(&inner[2..4], &[0x10, 42]); // pid
        assert_eq!(&inner[4..6], &[0x18, 1]); // leave_running
        // ext_mnt {key "/a", val "/a"}: field 23 = tag (23 << 3 | 2) = 0xba 0x01.
        let pos = inner.windows(2).position(|w| w == [0xba, 0x01]).expect("ext_mnt present");
        assert_eq!(&inner[pos + 2..pos + 9], &[8, 0x0a, 2, b'/', b'a', 0x12, 2]);
    }

    #[test]
    fn response_decodes_notify_restore_and_errors() {
        let data = sub_message(|os| {
            os.write_enum(1, REQ_NOTIFY)?;
            os.write_bool(2, true)?;
            os.write_bytes(5, &sub_message(|m| {
                m.write_string(1, "post-restore")?;
                m.write_int32(2, 1234)
            })?)?;
            os.write_int32(11, 7) // status: unknown to brisk, skipped
        })
        .expect("encode");
        let r = decode_resp(&data).expect("decode");
        assert_eq!(r, Resp { typ: REQ_NOTIFY, success: true, notify_script: Some("post-restore".into()), notify_pid: Some(1234), ..Default::default() });
        let data = sub_message(|os| {
            os.write_enum(1, REQ_RESTORE)?;
            os.write_bool(2, false)?;
            os.write_int32(7, 2)?;
            os.write_string(9, "no images")
        })
        .expect("encode");
        let r = decode_resp(&data).expect("decode");
        assert!(!r.success);
        assert_eq!((r.cr_errno, r.cr_errmsg.as_deref()), (Some(2), Some("no images")));
    }

    #[test]
    fn cg_modes_parse_like_runc() {
        assert_eq!("soft".parse::<CgMode>(), Ok(CgMode::Soft));
        assert_eq!("strict".parse::<CgMode>().map(|m| m as i32), Ok(5));
        assert!("props".parse::<CgMode>().expect_err("not a mode").contains("soft, full, strict or ignore"));
    }

    #[test]
    fn missing_image_dir_is_named() {
        let e = check_images(Path::new("/nonexistent/brisk-img")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/brisk-img"), "{e}");
        let d = tempfile::tempdir().expect("tempdir");
        let e = check_images(d.path()).expect_err("empty");
        assert!(e.to_string().contains("inventory.img"), "{e}");
    }
}
