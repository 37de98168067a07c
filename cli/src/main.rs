//! `brisk`: runc's command line over brisk-runtime. This file parses arguments, prints, and relays
//! signals and stdio for foreground commands; every container operation is a brisk_runtime call.
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use brisk_runtime::{ConsoleSocket, Container, CreateOpts, Error, ExecExtras, ExecOpts, Runtime, Status, Stdio};

mod args;
mod checkpoint;
mod events;
mod relay;
mod update;
mod validate;

use args::{Args, Global};

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] Error),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

fn main() {
    brisk_runtime::init::run_if_init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut global, rest) = match args::parse_global(&argv) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("brisk: {e}");
            std::process::exit(1);
        }
    };
    logger::init(&global);
    let rootless = global.rootless.resolve();
    if !global.root_set {
        let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
        let user = std::env::var("USER").ok();
        match brisk_runtime::rootless::default_root(rootless, xdg.as_deref(), nix::unistd::geteuid().is_root(), user.as_deref()) {
            Ok(root) => global.root = root,
            // Only commands that use the state root need one (`spec` as a new user must work).
            Err(e) if !matches!(rest.first().map(String::as_str), None | Some("spec" | "features" | "help")) => {
                logger::error(&global, &e.to_string());
                std::process::exit(1);
            }
            Err(_) => {}
        }
    }
    global.rootless = if rootless { brisk_runtime::rootless::Mode::On } else { brisk_runtime::rootless::Mode::Off };
    let code = match run(&global, rest) {
        Ok(code) => code,
        Err(e) => {
            logger::error(&global, &e.to_string());
            1
        }
    };
    std::process::exit(code);
}

fn run(g: &Global, rest: Vec<String>) -> Result<i32, CliError> {
    // runc (urfave/cli) prints the help to stdout and exits 0 for no command, `help [CMD]`,
    // `-h`/`--help`, and `CMD -h`/`CMD --help`; the text comes from the tables the parser uses.
    let Some((cmd, rest)) = rest.split_first() else {
        print!("{}", args::main_help());
        return Ok(0);
    };
    if matches!(cmd.as_str(), "help" | "h" | "--help" | "-h" | "-help") {
        match rest.first().filter(|_| matches!(cmd.as_str(), "help" | "h")) {
            None => print!("{}", args::main_help()),
            Some(topic) => match args::command(topic) {
                Some(c) => print!("{}", args::command_help(c)),
                None => return Err(no_help_topic(topic)),
            },
        }
        return Ok(0);
    }
    if args::wants_help(cmd, rest) {
        match args::command(cmd) {
            Some(c) => print!("{}", args::command_help(c)),
            None => return Err(no_help_topic(cmd)),
        }
        return Ok(0);
    }
    let mut a = Args::new(cmd, rest);
    let rt = || Runtime::new(&g.root).map_err(CliError::from);
    match cmd.as_str() {
        "create" | "run" => {
            let bundle = PathBuf::from(a.value(&["b", "bundle"]).unwrap_or_else(|| ".".into()));
            let console = a.value(&["console-socket"]).map(PathBuf::from);
            let pid_file = a.value(&["pid-file"]).map(PathBuf::from);
            let no_pivot = a.flag(&["no-pivot"]);
            let no_new_keyring = a.flag(&["no-new-keyring"]);
            let preserve = a.value(&["preserve-fds"]).map(|v| v.parse::<i32>().map_err(|_| CliError::Usage(format!("--preserve-fds: {v:?} is not a number")))).transpose()?.unwrap_or(0);
            let detach = cmd == "run" && a.flag(&["d", "detach"]);
            let keep = cmd == "run" && a.flag(&["keep"]);
            let _ = a.flag(&["no-subreaper"]);
            let id = a.id()?;
            a.finish()?;
            // runc checks the terminal set-up before anything exists (utils_linux.go checkTerminal,
            // then setupIO's host console): fail here, so a bad combination leaves nothing behind.
            if console.is_none() && config_terminal(&bundle) {
                if cmd == "create" || detach {
                    return Err(CliError::Usage(
                        "cannot allocate tty if brisk will detach without setting console socket: pass --console-socket, or set terminal to false in config.json".into(),
                    ));
                }
                host_console()?;
            }
            let preserve_fds = (0..preserve).map(|i| dup_fd(3 + i)).collect::<Result<Vec<_>, _>>()?;
            // A foreground `run` relays the pty itself when the process has a terminal: the
            // runtime uses the pair only then, so offering it costs nothing otherwise.
            let (console_socket, relay_sock) = match (&console, cmd.as_str(), detach) {
                (Some(p), _, _) => (Some(ConsoleSocket::Path(p.clone())), None),
                (None, "run", false) => {
                    let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| CliError::Other(format!("socketpair: {e}")))?;
                    (Some(ConsoleSocket::Connected(a.into())), Some(b))
                }
                _ => (None, None),
            };
            let opts = CreateOpts { bundle, stdio: Stdio::default(), console_socket, no_pivot, no_new_keyring, preserve_fds, systemd_cgroup: g.systemd_cgroup, rootless: g.rootless == brisk_runtime::rootless::Mode::On };
            let mut c = rt()?.create(&id, opts)?;
            let pidfd = c.take_init_pidfd();
            if let Some(p) = &pid_file {
                write_pid_file(p, c.pid())?;
            }
            if cmd == "create" {
                return Ok(0);
            }
            // From here on a failure must not leave the container behind.
            let master = match relay_sock.map(|s| relay::recv_master(&s)).transpose() {
                Ok(m) => m.flatten(),
                Err(e) => {
                    let _ = c.delete(true);
                    return Err(CliError::Other(format!("receive pty master: {e}")));
                }
            };
            if let Err(e) = c.start() {
                let _ = rt()?.load(&id).and_then(|c| c.delete(true));
                return Err(e.into());
            }
            if detach {
                return Ok(0);
            }
            let pidfd = pidfd.ok_or_else(|| CliError::Other("no pidfd for the container init".into()))?;
            let code = relay::wait_forwarding(pidfd.as_fd(), master.as_ref().map(|m| m.as_fd()))
                .map_err(|e| CliError::Other(format!("waiting for the container: {e}")))?;
            // --keep: leave the stopped container (and its cgroups) for `state` and `delete`.
            if !keep {
                rt()?.load(&id)?.delete(true)?;
            }
            Ok(code)
        }
        "start" => {
            let id = a.id()?;
            a.finish()?;
            rt()?.load(&id)?.start()?;
            Ok(0)
        }
        "state" => {
            let id = a.id()?;
            a.finish()?;
            let c = rt()?.load(&id)?;
            println!("{}", serde_json::to_string_pretty(&state_json(&c)).unwrap_or_default());
            Ok(0)
        }
        "kill" => {
            let all = a.flag(&["a", "all"]);
            let id = a.id()?;
            let sig = a.positional().unwrap_or_else(|| "SIGTERM".into());
            a.finish()?;
            let c = rt()?.load(&id)?;
            // Signal 0 only checks, as runc allows (kill.bats sends it to a stopped container).
            match brisk_runtime::signal::parse(&sig).map_err(|e| CliError::Usage(e.to_string()))? {
                Some(sig) => c.kill(sig, all)?,
                None => c.kill_probe(all)?,
            }
            Ok(0)
        }
        "delete" => {
            let force = a.flag(&["f", "force"]);
            let id = a.id()?;
            a.finish()?;
            match rt()?.load(&id) {
                Ok(c) => c.delete(force)?,
                // runc: deleting a container that does not exist with --force is not an error.
                Err(Error::NotFound { .. }) | Err(Error::State(_)) if force => {}
                Err(e) => return Err(e.into()),
            }
            Ok(0)
        }
        "pause" | "resume" => {
            let id = a.id()?;
            a.finish()?;
            let mut c = rt()?.load(&id)?;
            if cmd == "pause" {
                c.pause()?
            } else {
                c.resume()?
            }
            Ok(0)
        }
        "list" => {
            let format = a.value(&["f", "format"]).unwrap_or_else(|| "table".into());
            let quiet = a.flag(&["q", "quiet"]);
            a.finish()?;
            let cs = rt()?.list()?;
            if quiet {
                for c in &cs {
                    println!("{}", c.id());
                }
                return Ok(0);
            }
            match format.as_str() {
                "json" => {
                    let v: Vec<_> = cs.iter().map(list_json).collect();
                    println!("{}", serde_json::to_string(&v).map_err(|e| CliError::Other(format!("list: {e}")))?);
                }
                "table" => {
                    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
                    for c in &cs {
                        let st = c.status();
                        let pid = if st == Status::Stopped { 0 } else { c.pid() };
                        rows.push([c.id().to_string(), pid.to_string(), st.to_string(), c.bundle().display().to_string(), c.state().created.clone(), c.state().owner.clone()]);
                    }
                    print!("{}", table(&rows));
                }
                other => return Err(CliError::Usage(format!("--format: {other:?} is not table or json"))),
            }
            Ok(0)
        }
        "ps" => {
            let format = a.value(&["f", "format"]).unwrap_or_else(|| "table".into());
            let id = a.id()?;
            let ps_args = a.rest();
            let c = rt()?.load(&id)?;
            let pids = c.pids()?;
            if format == "json" {
                println!("{}", serde_json::Value::from(pids));
                return Ok(0);
            }
            ps_table(&pids, &ps_args)?;
            Ok(0)
        }
        // runc exits 255 when exec itself fails (exec.go: fatalWithCode), so that a caller can tell
        // it from the exit status of the process; argument errors stay 1.
        "exec" => match exec(g, &mut a) {
            Err(e @ CliError::Usage(_)) => Err(e),
            Err(e) => {
                logger::error(g, &format!("exec failed: {e}"));
                Ok(255)
            }
            ok => ok,
        },
        "update" => update::run(&g.root, rest).map_err(|e| CliError::Other(e.to_string())),
        "checkpoint" | "restore" => checkpoint::run(g, cmd, rest),
        "events" => events::run(&g.root, rest).map_err(|e| CliError::Other(e.to_string())),
        // Exit 2, not 1: the config was never examined (1 means it has problems).
        "validate" => validate::run(rest).or_else(|e| {
            eprintln!("brisk validate: {e}");
            Ok(2)
        }),
        "spec" => {
            let bundle = PathBuf::from(a.value(&["b", "bundle"]).unwrap_or_else(|| ".".into()));
            let rootless = a.flag(&["rootless"]);
            a.finish()?;
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(CliError::Other(format!("File {} exists. Remove it first", path.display())));
            }
            let hs = brisk_runtime::cgroups::host_hierarchies().map_err(Error::from)?;
            let cgroupns = !hs.is_empty() && brisk_runtime::cgroups::is_unified(&hs);
            let v = brisk_runtime::spec::example(rootless, nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw(), cgroupns);
            let data = serde_json::to_string_pretty(&v).unwrap_or_default();
            fs::write(&path, data + "\n").map_err(|source| CliError::Io { what: "write", path, source })?;
            Ok(0)
        }
        "features" => {
            a.finish()?;
            println!("{}", serde_json::to_string_pretty(&brisk_runtime::features::features()).unwrap_or_default());
            Ok(0)
        }
        "--version" | "-v" | "version" => {
            println!("brisk version {}\nspec: {}", env!("CARGO_PKG_VERSION"), brisk_runtime::spec::OCI_VERSION);
            Ok(0)
        }
        other => Err(CliError::Usage(format!("unknown command {other:?}: the commands are listed by `brisk help`"))),
    }
}

/// urfave/cli's wording for `help foo` / `foo -h` (runc's help.bats matches it).
fn no_help_topic(topic: &str) -> CliError {
    CliError::Usage(format!("No help topic for '{topic}' (the commands are listed by `brisk help`)"))
}

fn exec(_g: &Global, a: &mut Args) -> Result<i32, CliError> {
    let console = a.value(&["console-socket"]).map(PathBuf::from);
    let cwd = a.value(&["cwd"]);
    let envs = a.values(&["e", "env"]);
    let tty = a.flag(&["t", "tty"]);
    let user = a.value(&["u", "user"]);
    let gids = a.values(&["g", "additional-gids"]);
    let process_file = a.value(&["p", "process"]);
    let detach = a.flag(&["d", "detach"]);
    let pid_file = a.value(&["pid-file"]).map(PathBuf::from);
    let nnp = a.flag(&["no-new-privs"]);
    let ignore_paused = a.flag(&["ignore-paused"]);
    let sub_cgroups = sub_cgroup_args(&a.values(&["cgroup"]))?;
    let caps = a.values(&["c", "cap"]);
    let preserve = a.value(&["preserve-fds"]).map(|v| v.parse::<i32>().map_err(|_| CliError::Usage(format!("--preserve-fds: {v:?} is not a number")))).transpose()?.unwrap_or(0);
    let id = a.id()?;
    let command = a.rest();
    let rt = Runtime::new(&_g.root)?;
    let c = rt.load(&id)?;
    // runc's wording: the flag to use is the CLI's business, so the check is here (exec.go).
    match c.status() {
        Status::Paused if !ignore_paused => return Err(CliError::Other("cannot exec in a paused container (use --ignore-paused to override)".into())),
        Status::Stopped => return Err(CliError::Other("cannot exec in a stopped container".into())),
        _ => {}
    }
    let mut process = match &process_file {
        Some(p) => {
            let data = fs::read(p).map_err(|source| CliError::Io { what: "read", path: p.into(), source })?;
            // The config parser's rules (keys matched as runc's Go decoder does, capability
            // spelling, a missing `user` meaning uid 0), so process.json reads like config.json.
            let (process, notes) = brisk_runtime::spec::parse_process(&data).map_err(|(field, msg)| CliError::Other(format!("{p}: {field}: {msg}")))?;
            brisk_runtime::spec::log_notes(Path::new(p), &notes);
            process
        }
        None => {
            if command.is_empty() {
                return Err(CliError::Usage("exec: no command given (pass ARGS or --process)".into()));
            }
            let base = brisk_runtime::spec::load(c.bundle()).map_err(Error::from)?.spec.process().clone().ok_or_else(|| CliError::Other("container has no process".into()))?;
            let mut p = base;
            p.set_args(Some(command));
            p.set_terminal(Some(tty));
            p.set_console_size(None);
            p
        }
    };
    if let Some(cwd) = cwd {
        process.set_cwd(cwd.into());
    }
    if !envs.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        for e in envs {
            let key = e.split('=').next().unwrap_or_default().to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        process.set_env(Some(env));
    }
    if let Some(u) = user {
        let (uid, gid) = u.split_once(':').map(|(a, b)| (a.to_string(), Some(b.to_string()))).unwrap_or((u.clone(), None));
        let mut usr = process.user().clone();
        usr.set_uid(uid.parse().map_err(|_| CliError::Usage(format!("--user: {uid:?} is not a numeric uid")))?);
        if let Some(g) = gid {
            usr.set_gid(g.parse().map_err(|_| CliError::Usage(format!("--user: {g:?} is not a numeric gid")))?);
        }
        process.set_user(usr);
    }
    if !gids.is_empty() {
        let mut usr = process.user().clone();
        let list = gids.iter().map(|g| g.parse::<u32>().map_err(|_| CliError::Usage(format!("--additional-gids: {g:?} is not a number")))).collect::<Result<Vec<_>, _>>()?;
        usr.set_additional_gids(Some(list));
        process.set_user(usr);
    }
    if nnp {
        process.set_no_new_privileges(Some(true));
    }
    if !caps.is_empty() {
        let mut cs = process.capabilities().clone().unwrap_or_default();
        for cap in &caps {
            // Spelled as the spec spells it, like config.json's (README "Differences from runc").
            if !cap.starts_with("CAP_") || *cap != cap.to_ascii_uppercase() {
                return Err(CliError::Usage(format!("--cap: {cap:?} is not a capability name: write {:?}", format!("CAP_{}", cap.to_ascii_uppercase().trim_start_matches("CAP_")))));
            }
            let cap: oci_spec::runtime::Capability = cap.parse().map_err(|_| CliError::Usage(format!("--cap: unknown capability {cap:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            cs.set_bounding(add(cs.bounding()));
            cs.set_effective(add(cs.effective()));
            cs.set_permitted(add(cs.permitted()));
        }
        process.set_capabilities(Some(cs));
    }
    let terminal = process.terminal().unwrap_or(false);
    let preserve_fds = (0..preserve).map(|i| dup_fd(3 + i)).collect::<Result<Vec<_>, _>>()?;
    let (console_socket, relay_sock) = match (console, terminal, detach) {
        (Some(p), _, _) => (Some(ConsoleSocket::Path(p)), None),
        (None, true, false) => {
            host_console()?;
            let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| CliError::Other(format!("socketpair: {e}")))?;
            (Some(ConsoleSocket::Connected(a.into())), Some(b))
        }
        (None, true, true) => return Err(CliError::Usage("cannot allocate tty if brisk will detach without setting console socket: pass --console-socket, or drop --tty (terminal: false in process.json)".into())),
        _ => (None, None),
    };
    let opts = ExecOpts { stdio: Stdio::default(), console_socket, preserve_fds };
    let spawned = c.exec_with(&process, opts, &ExecExtras { ignore_paused, sub_cgroups })?;
    if let Some(p) = &pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    if detach {
        return Ok(0);
    }
    let master = relay_sock.map(|s| relay::recv_master(&s)).transpose().map_err(|e| CliError::Other(format!("receive pty master: {e}")))?.flatten();
    relay::wait_forwarding(spawned.pidfd.as_fd(), master.as_ref().map(|m| m.as_fd())).map_err(|e| CliError::Other(format!("waiting for the process: {e}")))
}

/// `exec --cgroup` values as runc's getSubCgroupPaths (exec.go) reads them: `PATH` alone (only as the
/// single --cgroup), or `CONTROLLER[,CONTROLLER...]:PATH`.
fn sub_cgroup_args(args: &[String]) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    let mut paths = std::collections::BTreeMap::new();
    for c in args {
        let cs: Vec<&str> = c.splitn(3, ':').collect();
        match cs.as_slice() {
            [path] if args.len() == 1 => {
                paths.insert(String::new(), path.to_string());
            }
            [_] => return Err(CliError::Usage(format!("invalid --cgroup argument: {c} (missing <controller>: prefix)"))),
            [ctrls, path] => {
                for ctrl in ctrls.split(',') {
                    paths.insert(ctrl.to_string(), path.to_string());
                }
            }
            _ => return Err(CliError::Usage(format!("invalid --cgroup argument: {c}"))),
        }
    }
    Ok(paths)
}

/// Whether config.json in `bundle` asks for a terminal. Unreadable or malformed config says no:
/// create reports that with the field path.
fn config_terminal(bundle: &Path) -> bool {
    fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

/// A foreground process with a terminal needs a terminal on our side to relay it to: one of our
/// stdio fds, or the controlling terminal. runc (tty.go initHostConsole) looks the same way and
/// fails with "open /dev/tty: no such device or address" when there is none.
fn host_console() -> Result<(), CliError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() || std::io::stdout().is_terminal() || std::io::stderr().is_terminal() {
        return Ok(());
    }
    match fs::OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::Other(format!(
            "open /dev/tty: {e}: process.terminal is true but brisk has no terminal to relay it to (stdin, stdout and stderr are not terminals and there is no controlling terminal); run it from a terminal, use -d with --console-socket, or set terminal to false"
        ))),
    }
}

fn dup_fd(fd: i32) -> Result<OwnedFd, CliError> {
    // SAFETY: fd is one of the caller-provided fds named by --preserve-fds; we only borrow it to dup.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned().map_err(|e| CliError::Other(format!("--preserve-fds: fd {fd}: {e}")))
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), CliError> {
    // Atomic, like runc: a reader never sees a half-written pid.
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    fs::write(&tmp, pid.to_string()).map_err(|source| CliError::Io { what: "write pid file", path: tmp.clone(), source })?;
    fs::rename(&tmp, path).map_err(|source| CliError::Io { what: "write pid file", path: path.into(), source })
}

fn state_json(c: &Container) -> serde_json::Value {
    let mut v = c.oci_state();
    // runc's `state` also prints its own fields next to the OCI ones.
    v["rootfs"] = c.state().rootfs.display().to_string().into();
    v["created"] = c.state().created.clone().into();
    v["owner"] = c.state().owner.clone().into();
    if v.get("pid").is_none() {
        v["pid"] = 0.into();
    }
    v
}

/// One entry of `list --format json`, in the field order of runc's containerState (list.go): a
/// json! map would sort the keys, and runc's list.bats matches the text.
#[derive(serde::Serialize)]
struct ListEntry<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    id: &'a str,
    pid: i32,
    status: String,
    bundle: &'a Path,
    rootfs: &'a Path,
    created: &'a str,
    annotations: &'a std::collections::BTreeMap<String, String>,
    owner: &'a str,
}

fn list_json(c: &Container) -> ListEntry<'_> {
    let st = c.status();
    ListEntry {
        oci_version: brisk_runtime::spec::OCI_VERSION,
        id: c.id(),
        pid: if st == Status::Stopped { 0 } else { c.pid() },
        status: st.to_string(),
        bundle: c.bundle(),
        rootfs: &c.state().rootfs,
        created: &c.state().created,
        annotations: &c.state().annotations,
        owner: &c.state().owner,
    }
}

/// Rows laid out as runc's `list` does with Go's tabwriter (minwidth 12, padding 3, spaces): every
/// column but the last is as wide as its widest cell plus 3, and at least 12.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count() + 3).max(12);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

/// runc prints `ps <args>` (default -ef) filtered to the container's pids.
fn ps_table(pids: &[i32], args: &[String]) -> Result<(), CliError> {
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().map_err(|source| CliError::Io { what: "run", path: "ps".into(), source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| CliError::Other("ps output has no PID column".into()))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{l}");
        }
    }
    Ok(())
}

mod logger {
    //! runc-style logging: errors to stderr, and with --log to a file as text or JSON lines (what
    //! containerd-shim-runc-v2 reads back when brisk stands in for runc).
    use super::Global;
    use std::io::Write;

    pub fn init(g: &Global) {
        let level = if g.debug { log::LevelFilter::Debug } else { log::LevelFilter::Warn };
        let _ = log::set_boxed_logger(Box::new(Logger { file: g.log.clone(), json: g.log_json }));
        log::set_max_level(level);
    }

    struct Logger {
        file: Option<std::path::PathBuf>,
        json: bool,
    }

    impl log::Log for Logger {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            write(self.file.as_deref(), self.json, &r.level().to_string().to_lowercase(), &r.args().to_string());
        }
        fn flush(&self) {}
    }

    fn write(file: Option<&std::path::Path>, json: bool, level: &str, msg: &str) {
        let line = if json {
            serde_json::json!({"level": level, "msg": msg, "time": brisk_runtime::process::now_rfc3339()}).to_string()
        } else {
            format!("time=\"{}\" level={level} msg={msg:?}", brisk_runtime::process::now_rfc3339())
        };
        match file {
            Some(p) => {
                if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
                    let _ = writeln!(f, "{line}");
                }
            }
            None if level != "error" => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {}
        }
    }

    pub fn error(g: &Global, msg: &str) {
        eprintln!("brisk: {msg}");
        if g.log.is_some() {
            write(g.log.as_deref(), g.log_json, "error", msg);
        }
    }
}
