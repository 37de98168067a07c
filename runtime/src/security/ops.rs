//! The syscall boundary of [`super::finalize_process`] (docs/ARCHITECTURE.md, design rule 7): the order of calls is
//! decided in `mod.rs` against this trait; [`RealOps`] is the only implementation outside tests.

use std::os::fd::OwnedFd;

use super::seccomp::SeccompProgram;
use super::SecurityError;

pub(crate) trait Ops {
    /// The calling thread's bounding set and the highest capability index the kernel knows.
    fn bounding_set(&mut self) -> Result<(u64, u8), SecurityError>;
    fn set_no_new_privs(&mut self) -> Result<(), SecurityError>;
    fn drop_bounding(&mut self, cap: u8) -> Result<(), SecurityError>;
    fn set_keepcaps(&mut self, keep: bool) -> Result<(), SecurityError>;
    /// Whether /proc/self/setgroups says "deny" (user namespace set up without setgroups).
    fn setgroups_denied(&mut self) -> Result<bool, SecurityError>;
    fn setgroups(&mut self, gids: &[u32]) -> Result<(), SecurityError>;
    fn setresgid(&mut self, gid: u32) -> Result<(), SecurityError>;
    fn setresuid(&mut self, uid: u32) -> Result<(), SecurityError>;
    fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), SecurityError>;
    fn clear_ambient(&mut self) -> Result<(), SecurityError>;
    fn raise_ambient(&mut self, cap: u8) -> Result<(), SecurityError>;
    fn pdeathsig(&mut self) -> Result<i32, SecurityError>;
    fn set_pdeathsig(&mut self, sig: i32) -> Result<(), SecurityError>;
    fn load_seccomp(&mut self, program: &SeccompProgram) -> Result<Option<OwnedFd>, SecurityError>;
}

#[derive(Debug)]
pub(crate) struct RealOps;

fn prctl(step: &'static str, op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> Result<libc::c_int, SecurityError> {
    // SAFETY: every prctl used here takes integer arguments only (or, for PR_GET_PDEATHSIG, a
    // pointer handled by its caller); unused arguments are passed as zero as the man page requires.
    let rc = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if rc < 0 {
        return Err(SecurityError::Sys { step, source: nix::Error::last() });
    }
    Ok(rc)
}

fn sys(step: &'static str, what: impl FnOnce() -> String, rc: libc::c_long) -> Result<(), SecurityError> {
    if rc < 0 {
        return Err(SecurityError::SysArg { step, what: what(), source: nix::Error::last() });
    }
    Ok(())
}

fn cap_name(cap: u8) -> String {
    super::caps::names(1u64 << cap).join("")
}

fn with_arg(e: SecurityError, what: String) -> SecurityError {
    match e {
        SecurityError::Sys { step, source } => SecurityError::SysArg { step, what, source },
        other => other,
    }
}

impl Ops for RealOps {
    fn bounding_set(&mut self) -> Result<(u64, u8), SecurityError> {
        // PR_CAPBSET_READ answers EINVAL past the last capability the kernel knows, which makes
        // it both the set and cap_last_cap without needing /proc.
        let mut set = 0u64;
        let mut last = 0u8;
        for cap in 0..64u8 {
            // SAFETY: PR_CAPBSET_READ takes an integer capability index.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc < 0 {
                let err = nix::Error::last();
                if err == nix::errno::Errno::EINVAL && cap > 0 {
                    break;
                }
                return Err(SecurityError::Sys { step: "prctl(PR_CAPBSET_READ)", source: err });
            }
            if rc == 1 {
                set |= 1u64 << cap;
            }
            last = cap;
        }
        Ok((set, last))
    }

    fn set_no_new_privs(&mut self) -> Result<(), SecurityError> {
        prctl("prctl(PR_SET_NO_NEW_PRIVS)", libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
    }

    fn drop_bounding(&mut self, cap: u8) -> Result<(), SecurityError> {
        prctl("prctl(PR_CAPBSET_DROP)", libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0)
            .map(drop)
            .map_err(|e| with_arg(e, cap_name(cap)))
    }

    fn set_keepcaps(&mut self, keep: bool) -> Result<(), SecurityError> {
        prctl("prctl(PR_SET_KEEPCAPS)", libc::PR_SET_KEEPCAPS, libc::c_ulong::from(keep), 0).map(drop)
    }

    fn setgroups_denied(&mut self) -> Result<bool, SecurityError> {
        // setgroups is per user namespace, so /proc/self is as good as /proc/thread-self here.
        let path = "/proc/self/setgroups";
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(s.trim() == "deny"),
            // Kernels before 3.19 have no such file and always allow setgroups (runc does the same).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(SecurityError::Io { step: "read", path: path.into(), source }),
        }
    }

    fn setgroups(&mut self, gids: &[u32]) -> Result<(), SecurityError> {
        // SAFETY: gids points at gids.len() valid gid_t values for the duration of the call. The raw
        // syscall (not glibc's setgroups) changes only this thread, which is the whole process here.
        let rc = unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) };
        sys("setgroups", || format!("{gids:?}"), rc)
    }

    fn setresgid(&mut self, gid: u32) -> Result<(), SecurityError> {
        // SAFETY: integer arguments only.
        let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
        sys("setresgid", || format!("gid {gid}"), rc)
    }

    fn setresuid(&mut self, uid: u32) -> Result<(), SecurityError> {
        // SAFETY: integer arguments only.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
        sys("setresuid", || format!("uid {uid} (is it mapped in the user namespace?)"), rc)
    }

    fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), SecurityError> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: libc::c_int,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
        let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let lo = |m: u64| m as u32;
        let hi = |m: u64| (m >> 32) as u32;
        let data = [
            Data { effective: lo(effective), permitted: lo(permitted), inheritable: lo(inheritable) },
            Data { effective: hi(effective), permitted: hi(permitted), inheritable: hi(inheritable) },
        ];
        // All three sets in one capset(2): setting them one by one (as the caps crate does)
        // passes through states the kernel rejects, e.g. effective briefly outside permitted.
        // SAFETY: header and data are valid v3 structures (two data elements) for the call.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
        sys("capset", || format!("effective {effective:#x} permitted {permitted:#x} inheritable {inheritable:#x}"), rc)
    }

    fn clear_ambient(&mut self) -> Result<(), SecurityError> {
        prctl(
            "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
        )
        .map(drop)
    }

    fn raise_ambient(&mut self, cap: u8) -> Result<(), SecurityError> {
        prctl(
            "prctl(PR_CAP_AMBIENT_RAISE)",
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(cap),
        )
        .map(drop)
        .map_err(|e| with_arg(e, cap_name(cap)))
    }

    fn pdeathsig(&mut self) -> Result<i32, SecurityError> {
        let mut sig: libc::c_int = 0;
        // SAFETY: PR_GET_PDEATHSIG writes one c_int through the pointer, which is valid.
        let rc = unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut sig as *mut libc::c_int, 0, 0, 0) };
        if rc < 0 {
            return Err(SecurityError::Sys { step: "prctl(PR_GET_PDEATHSIG)", source: nix::Error::last() });
        }
        Ok(sig)
    }

    fn set_pdeathsig(&mut self, sig: i32) -> Result<(), SecurityError> {
        prctl("prctl(PR_SET_PDEATHSIG)", libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0).map(drop)
    }

    fn load_seccomp(&mut self, program: &SeccompProgram) -> Result<Option<OwnedFd>, SecurityError> {
        super::seccomp::load(program)
    }
}
