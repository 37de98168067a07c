//! `brisk checkpoint` and `brisk restore`: runc's commands over brisk_runtime::criu.
//!
//! Their flags are in args.rs's command table like every other command's, so the parser and
//! `--help` read the same list.
use std::path::PathBuf;

use brisk_runtime::criu::{CgMode, CheckpointOpts, CriuFlags, RestoreOpts};
use brisk_runtime::{ConsoleSocket, Error, Runtime, Status, Stdio};

use super::args::{Args, Global};
use super::CliError;

/// runc's default image path: `checkpoint` under the current directory.
fn image_path(p: &mut Args) -> Result<PathBuf, CliError> {
    match p.value(&["image-path"]) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => std::env::current_dir().map(|d| d.join("checkpoint")).map_err(|source| CliError::Io { what: "current directory", path: ".".into(), source }),
    }
}

/// The flags both commands share (runc's criuOptions).
fn criu_flags(cmd: &str, g: &Global, p: &mut Args) -> Result<CriuFlags, CliError> {
    let manage_cgroups_mode = p.value(&["manage-cgroups-mode"]).filter(|v| !v.is_empty()).map(|v| v.parse::<CgMode>()).transpose().map_err(|e| CliError::Usage(format!("{cmd}: --manage-cgroups-mode: {e}")))?;
    let mut empty_ns = 0u32;
    for ns in p.values(&["empty-ns"]) {
        let (_, _, flag, _) = brisk_runtime::namespaces::NAMESPACES.iter().find(|n| n.1 == ns).ok_or_else(|| CliError::Usage(format!("{cmd}: --empty-ns: namespace {ns:?} is not supported")))?;
        empty_ns |= *flag as u32;
    }
    if p.flag(&["lazy-pages"]) {
        return Err(CliError::Usage(format!("{cmd}: --lazy-pages is not supported by brisk (lazy migration needs CRIU's page server and lazy-pages daemon)")));
    }
    Ok(CriuFlags {
        criu: g.criu.clone(),
        work_path: p.value(&["work-path"]).filter(|v| !v.is_empty()).map(PathBuf::from),
        tcp_established: p.flag(&["tcp-established"]),
        ext_unix_sk: p.flag(&["ext-unix-sk"]),
        shell_job: p.flag(&["shell-job"]),
        file_locks: p.flag(&["file-locks"]),
        empty_ns,
        auto_dedup: p.flag(&["auto-dedup"]),
        manage_cgroups_mode,
        lazy_pages: false,
    })
}

/// `checkpoint` and `restore`.
pub fn run(g: &Global, cmd: &str, rest: &[String]) -> Result<i32, CliError> {
    match cmd {
        "checkpoint" => checkpoint(g, rest),
        _ => restore(g, rest),
    }
}

fn checkpoint(g: &Global, rest: &[String]) -> Result<i32, CliError> {
    let mut p = Args::new("checkpoint", rest);
    let id = p.id()?;
    p.finish()?;
    if p.value(&["page-server"]).is_some_and(|v| !v.is_empty()) {
        return Err(CliError::Usage("checkpoint: --page-server is not supported by brisk".into()));
    }
    if p.value(&["status-fd"]).is_some() {
        return Err(CliError::Usage("checkpoint: --status-fd is not supported by brisk (it serves --lazy-pages)".into()));
    }
    let opts = CheckpointOpts {
        image_path: image_path(&mut p)?,
        parent_path: p.value(&["parent-path"]).filter(|v| !v.is_empty()).map(PathBuf::from),
        leave_running: p.flag(&["leave-running"]),
        pre_dump: p.flag(&["pre-dump"]),
        flags: criu_flags("checkpoint", g, &mut p)?,
    };
    let rt = Runtime::new(&g.root)?;
    let c = rt.load(&id)?;
    // runc's wording and check (checkpoint.go): only a live container has anything to dump.
    let status = c.status();
    if matches!(status, Status::Created | Status::Stopped | Status::Creating) {
        return Err(CliError::Other(format!("Container cannot be checkpointed in {status} state")));
    }
    c.checkpoint(&opts)?;
    // runc destroys the container once CRIU has dumped and stopped it; a pre-dump or
    // --leave-running keeps it, and a failed dump returned above with the container untouched.
    if !(opts.leave_running || opts.pre_dump) {
        rt.load(&id)?.delete(true)?;
    }
    Ok(0)
}

fn restore(g: &Global, rest: &[String]) -> Result<i32, CliError> {
    let mut p = Args::new("restore", rest);
    let id = p.id()?;
    p.finish()?;
    for f in ["lsm-profile", "lsm-mount-context"] {
        if p.value(&[f]).is_some_and(|v| !v.is_empty()) {
            return Err(CliError::Usage(format!("restore: --{f} is not supported by brisk")));
        }
    }
    // --no-subreaper: runc's foreground restore is a subreaper unless told not to; brisk's is
    // the restored init's parent (CRIU's rst_sibling) either way, so the flag changes nothing.
    let detach = p.flag(&["d", "detach"]);
    let pid_file = p.value(&["pid-file"]).map(PathBuf::from);
    let opts = RestoreOpts {
        image_path: image_path(&mut p)?,
        bundle: PathBuf::from(p.value(&["b", "bundle"]).filter(|v| !v.is_empty()).unwrap_or_else(|| ".".into())),
        stdio: Stdio::default(),
        console_socket: p.value(&["console-socket"]).map(|s| ConsoleSocket::Path(s.into())),
        no_pivot: p.flag(&["no-pivot"]),
        flags: criu_flags("restore", g, &mut p)?,
    };
    let rt = Runtime::new(&g.root)?;
    let mut c = rt.restore(&id, opts, g.systemd_cgroup)?;
    if let Some(path) = &pid_file {
        if let Err(e) = super::write_pid_file(path, c.pid()) {
            let _ = rt.load(&id).and_then(|c| c.delete(true));
            return Err(e);
        }
    }
    if detach {
        return Ok(0);
    }
    // Foreground, as runc: the restored init is our child (CRIU's rst_sibling); wait for it,
    // forwarding signals, then remove the container and exit with its status.
    let pidfd = c.take_init_pidfd().ok_or_else(|| CliError::Other("no pidfd for the restored init".into()))?;
    let code = super::relay::wait_forwarding(std::os::fd::AsFd::as_fd(&pidfd), None).map_err(|e| CliError::Other(format!("waiting for the container: {e}")))?;
    match rt.load(&id) {
        Ok(c) => c.delete(true)?,
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn global() -> Global {
        Global { root: "/run/brisk".into(), log: None, log_json: false, debug: false, systemd_cgroup: false, criu: Some("/opt/criu".into()), rootless: Default::default(), root_set: false }
    }

    #[test]
    fn checkpoint_flags_parse_like_runc() {
        let mut p = Args::new("checkpoint", &v(&["--image-path", "/i", "--leave-running", "--manage-cgroups-mode=soft", "--empty-ns", "network", "c1"]));
        assert_eq!(p.value(&["image-path"]).as_deref(), Some("/i"));
        assert!(p.flag(&["leave-running"]));
        assert_eq!(p.id().expect("id"), "c1");
        let f = criu_flags("checkpoint", &global(), &mut p).expect("flags");
        assert_eq!(f.manage_cgroups_mode, Some(CgMode::Soft));
        assert_eq!(f.empty_ns, libc::CLONE_NEWNET as u32);
        assert_eq!(f.criu.as_deref(), Some(std::path::Path::new("/opt/criu")));
    }

    #[test]
    fn bad_flags_are_named() {
        let e = Args::new("restore", &v(&["--bogus", "c"])).id().expect_err("unknown");
        assert!(e.to_string().contains("--bogus"), "{e}");
        let mut p = Args::new("checkpoint", &v(&["--manage-cgroups-mode", "props", "c"]));
        assert!(criu_flags("checkpoint", &global(), &mut p).expect_err("mode").to_string().contains("props"));
        let mut p = Args::new("checkpoint", &v(&["--lazy-pages", "c"]));
        assert!(criu_flags("checkpoint", &global(), &mut p).expect_err("lazy").to_string().contains("--lazy-pages is not supported"));
        assert!(Args::new("restore", &v(&["-d"])).id().is_err());
        assert!(Args::new("restore", &v(&["c", "extra"])).finish().is_err());
    }
}
