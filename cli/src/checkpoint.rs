//! `brisk checkpoint` and `brisk restore`: runc's commands over brisk_runtime::criu.
//!
//! The flag tables live here (not in args.rs) so the commands can be registered with the generated
//! help in one place; the parsing rules are urfave/cli v1's, as for every other command: flags
//! before the container id, `--flag value` or `--flag=value`, booleans take `=true|false`.
use std::path::PathBuf;

use brisk_runtime::criu::{CgMode, CheckpointOpts, CriuFlags, RestoreOpts};
use brisk_runtime::{ConsoleSocket, Error, Runtime, Status, Stdio};

use super::args::Global;
use super::CliError;

/// (value-taking flags, boolean flags) of `checkpoint`, as runc 1.1.5's checkpoint.go.
pub const CHECKPOINT_FLAGS: (&[&str], &[&str]) = (
    &["image-path", "work-path", "parent-path", "page-server", "manage-cgroups-mode", "empty-ns", "status-fd"],
    &["leave-running", "tcp-established", "ext-unix-sk", "shell-job", "lazy-pages", "file-locks", "pre-dump", "auto-dedup"],
);

/// (value-taking flags, boolean flags) of `restore`, as runc 1.1.5's restore.go.
pub const RESTORE_FLAGS: (&[&str], &[&str]) = (
    &["console-socket", "image-path", "work-path", "manage-cgroups-mode", "b", "bundle", "pid-file", "empty-ns", "lsm-profile", "lsm-mount-context"],
    &["tcp-established", "ext-unix-sk", "shell-job", "file-locks", "d", "detach", "no-subreaper", "no-pivot", "auto-dedup", "lazy-pages"],
);

pub const CHECKPOINT_USAGE: &str = "usage: brisk checkpoint [--image-path DIR] [--work-path DIR] [--parent-path DIR] [--leave-running] [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--pre-dump] [--manage-cgroups-mode soft|full|strict|ignore] [--empty-ns NS] [--auto-dedup] CONTAINER";
pub const RESTORE_USAGE: &str = "usage: brisk restore [--image-path DIR] [--work-path DIR] [-b|--bundle DIR] [-d|--detach] [--pid-file FILE] [--console-socket PATH] [--no-pivot] [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--manage-cgroups-mode soft|full|strict|ignore] [--empty-ns NS] [--auto-dedup] CONTAINER";

/// Parsed flags of one command.
#[derive(Debug, Default)]
struct Parsed {
    flags: Vec<(String, Option<String>)>,
    pos: Vec<String>,
}

impl Parsed {
    fn new(cmd: &str, table: (&[&str], &[&str]), rest: &[String]) -> Result<Parsed, CliError> {
        let (vals, bools) = table;
        let mut p = Parsed::default();
        let mut i = 0;
        while i < rest.len() {
            let t = &rest[i];
            if !p.pos.is_empty() || !t.starts_with('-') || t == "-" {
                p.pos.push(t.clone());
            } else if t == "--" {
                p.pos.extend(rest[i + 1..].iter().cloned());
                break;
            } else {
                let name = t.trim_start_matches('-');
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name.to_string(), None),
                };
                if vals.contains(&name.as_str()) {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            rest.get(i).cloned().ok_or_else(|| CliError::Usage(format!("{cmd}: flag --{name} needs a value")))?
                        }
                    };
                    p.flags.push((name, Some(v)));
                } else if bools.contains(&name.as_str()) {
                    match inline.as_deref() {
                        None | Some("true") => p.flags.push((name, None)),
                        Some("false") => {}
                        Some(_) => return Err(CliError::Usage(format!("{cmd}: flag --{name} takes true or false"))),
                    }
                } else {
                    return Err(CliError::Usage(format!("{cmd}: unknown flag {t}")));
                }
            }
            i += 1;
        }
        Ok(p)
    }

    fn flag(&self, names: &[&str]) -> bool {
        self.flags.iter().any(|(n, _)| names.contains(&n.as_str()))
    }

    fn value(&self, names: &[&str]) -> Option<String> {
        self.flags.iter().rev().find(|(n, _)| names.contains(&n.as_str())).and_then(|(_, v)| v.clone())
    }

    fn values(&self, names: &[&str]) -> Vec<String> {
        self.flags.iter().filter(|(n, _)| names.contains(&n.as_str())).filter_map(|(_, v)| v.clone()).collect()
    }

    /// The one positional argument, the container id.
    fn id(&self, cmd: &str) -> Result<String, CliError> {
        match self.pos.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(CliError::Usage(format!("{cmd}: requires a container id"))),
            more => Err(CliError::Usage(format!("{cmd}: unexpected arguments {:?}", &more[1..]))),
        }
    }
}

/// runc's default image path: `checkpoint` under the current directory.
fn image_path(p: &Parsed) -> Result<PathBuf, CliError> {
    match p.value(&["image-path"]) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => std::env::current_dir().map(|d| d.join("checkpoint")).map_err(|source| CliError::Io { what: "current directory", path: ".".into(), source }),
    }
}

/// The flags both commands share (runc's criuOptions).
fn criu_flags(cmd: &str, p: &Parsed) -> Result<CriuFlags, CliError> {
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
        criu: None,
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
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", if cmd == "checkpoint" { CHECKPOINT_USAGE } else { RESTORE_USAGE });
        return Ok(0);
    }
    match cmd {
        "checkpoint" => checkpoint(g, rest),
        _ => restore(g, rest),
    }
}

fn checkpoint(g: &Global, rest: &[String]) -> Result<i32, CliError> {
    let p = Parsed::new("checkpoint", CHECKPOINT_FLAGS, rest)?;
    let id = p.id("checkpoint")?;
    if p.value(&["page-server"]).is_some_and(|v| !v.is_empty()) {
        return Err(CliError::Usage("checkpoint: --page-server is not supported by brisk".into()));
    }
    if p.value(&["status-fd"]).is_some() {
        return Err(CliError::Usage("checkpoint: --status-fd is not supported by brisk (it serves --lazy-pages)".into()));
    }
    let opts = CheckpointOpts {
        image_path: image_path(&p)?,
        parent_path: p.value(&["parent-path"]).filter(|v| !v.is_empty()).map(PathBuf::from),
        leave_running: p.flag(&["leave-running"]),
        pre_dump: p.flag(&["pre-dump"]),
        flags: criu_flags("checkpoint", &p)?,
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
    let p = Parsed::new("restore", RESTORE_FLAGS, rest)?;
    let id = p.id("restore")?;
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
        image_path: image_path(&p)?,
        bundle: PathBuf::from(p.value(&["b", "bundle"]).filter(|v| !v.is_empty()).unwrap_or_else(|| ".".into())),
        stdio: Stdio::default(),
        console_socket: p.value(&["console-socket"]).map(|s| ConsoleSocket::Path(s.into())),
        no_pivot: p.flag(&["no-pivot"]),
        flags: criu_flags("restore", &p)?,
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

    #[test]
    fn checkpoint_flags_parse_like_runc() {
        let p = Parsed::new("checkpoint", CHECKPOINT_FLAGS, &v(&["--image-path", "/i", "--leave-running", "--manage-cgroups-mode=soft", "--empty-ns", "network", "c1"])).expect("parse");
        assert_eq!(p.value(&["image-path"]).as_deref(), Some("/i"));
        assert!(p.flag(&["leave-running"]));
        assert_eq!(p.id("checkpoint").expect("id"), "c1");
        let f = criu_flags("checkpoint", &p).expect("flags");
        assert_eq!(f.manage_cgroups_mode, Some(CgMode::Soft));
        assert_eq!(f.empty_ns, libc::CLONE_NEWNET as u32);
    }

    #[test]
    fn bad_flags_are_named() {
        let e = Parsed::new("restore", RESTORE_FLAGS, &v(&["--bogus", "c"])).expect_err("unknown");
        assert!(e.to_string().contains("--bogus"), "{e}");
        let p = Parsed::new("checkpoint", CHECKPOINT_FLAGS, &v(&["--manage-cgroups-mode", "props", "c"])).expect("parse");
        assert!(criu_flags("checkpoint", &p).expect_err("mode").to_string().contains("props"));
        let p = Parsed::new("checkpoint", CHECKPOINT_FLAGS, &v(&["--lazy-pages", "c"])).expect("parse");
        assert!(criu_flags("checkpoint", &p).expect_err("lazy").to_string().contains("--lazy-pages is not supported"));
        let p = Parsed::new("restore", RESTORE_FLAGS, &v(&["-d"])).expect("parse");
        assert!(p.id("restore").is_err());
    }
}
