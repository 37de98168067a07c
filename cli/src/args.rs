//! runc-compatible argument parsing (urfave/cli v1 rules): `-f`, `--flag`, `--flag=value` and
//! `--flag value`; flags come before positional arguments, and everything from the first
//! positional argument on is positional (so `exec ID sh -c ...` passes `-c` to sh).
use std::path::PathBuf;

use super::CliError;

#[derive(Debug)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_json: bool,
    pub debug: bool,
    /// `--systemd-cgroup`: the systemd cgroup driver for create/run.
    pub systemd_cgroup: bool,
    /// `--criu`: the CRIU binary for checkpoint/restore (default: `criu` from PATH).
    pub criu: Option<PathBuf>,
    /// `--rootless auto|true|false` (runc's flag; see brisk_runtime::rootless).
    pub rootless: brisk_runtime::rootless::Mode,
    /// Whether `--root` was given (otherwise main picks the default, which depends on rootless).
    pub root_set: bool,
}

/// One flag of a command: every spelling (long first, as help lists them), whether it takes a
/// value, and its help text. The parser and the help output both read these tables, so what
/// `--help` shows is exactly what is accepted.
#[derive(Debug)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
    pub usage: &'static str,
}

/// One command: name, one-line summary, positional arguments, flags.
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    pub summary: &'static str,
    pub args: &'static str,
    pub flags: &'static [Flag],
}

const fn val(names: &'static [&'static str], usage: &'static str) -> Flag {
    Flag { names, value: true, usage }
}

const fn switch(names: &'static [&'static str], usage: &'static str) -> Flag {
    Flag { names, value: false, usage }
}

/// Flags before the command name (runc's global options).
pub const GLOBAL: &[Flag] = &[
    switch(&["debug"], "enable debug logging"),
    val(&["log"], "write brisk's log to this file (default: stderr)"),
    val(&["log-format"], "log format: text (default) or json"),
    val(&["root"], "directory holding container state, preferably on tmpfs (default: \"/run/brisk\", or \"$XDG_RUNTIME_DIR/brisk\" in rootless mode)"),
    val(&["criu"], "path to the criu binary used for checkpoint and restore (default: \"criu\" from PATH)"),
    switch(&["systemd-cgroup"], "use the systemd cgroup driver; cgroupsPath is \"slice:prefix:name\", e.g. \"system.slice:brisk:1234\""),
    val(&["rootless"], "rootless mode: true, false or auto (default: auto: a non-root user, or uid 0 in a user namespace)"),
    switch(&["help", "h"], "show help"),
    switch(&["version", "v"], "print the version"),
];

const BUNDLE: Flag = val(&["bundle", "b"], "path to the bundle directory (default: the current directory)");
const CONSOLE_SOCKET: Flag = val(&["console-socket"], "AF_UNIX socket that receives the master end of the container's pseudoterminal");
const PID_FILE: Flag = val(&["pid-file"], "write the process id to this file");
const PRESERVE_FDS: Flag = val(&["preserve-fds"], "pass N more file descriptors to the container (after stdio and $LISTEN_FDS) (default: 0)");
const NO_PIVOT: Flag = switch(&["no-pivot"], "do not use pivot_root to enter the rootfs (for a rootfs on a ramdisk)");
const NO_NEW_KEYRING: Flag = switch(&["no-new-keyring"], "do not create a new session keyring: the container inherits the caller's");
const MANAGE_CGROUPS: Flag = val(&["manage-cgroups-mode"], "cgroups mode: soft (default), full, strict or ignore");
const FORMAT: Flag = val(&["format", "f"], "table or json (default: \"table\")");

/// Every command, in the order `brisk help` lists them.
pub const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "checkpoint",
        summary: "checkpoint a running container with CRIU",
        args: "<container-id>",
        flags: &[
            val(&["image-path"], "path for saving CRIU image files (default: ./checkpoint)"),
            val(&["work-path"], "path for saving work files and logs"),
            val(&["parent-path"], "path for previous CRIU images (relative to --image-path)"),
            switch(&["leave-running"], "leave the process running after checkpointing"),
            switch(&["tcp-established"], "allow open TCP connections"),
            switch(&["ext-unix-sk"], "allow external unix sockets"),
            switch(&["shell-job"], "allow shell jobs"),
            switch(&["lazy-pages"], "refused: lazy migration is not supported"),
            val(&["status-fd"], "refused: serves --lazy-pages only"),
            val(&["page-server"], "refused: a CRIU page server is not supported"),
            switch(&["file-locks"], "handle file locks"),
            switch(&["pre-dump"], "dump the container's memory only, leaving it running"),
            MANAGE_CGROUPS,
            val(&["empty-ns"], "create a namespace, but do not restore its properties"),
            switch(&["auto-dedup"], "enable auto deduplication of memory images"),
        ],
    },
    Cmd { name: "create", summary: "create a container", args: "<container-id>", flags: &[BUNDLE, CONSOLE_SOCKET, PID_FILE, NO_PIVOT, NO_NEW_KEYRING, PRESERVE_FDS] },
    Cmd { name: "delete", summary: "delete a container and everything it holds", args: "<container-id>", flags: &[switch(&["force", "f"], "delete the container even if it is running (SIGKILL)")] },
    Cmd {
        name: "events",
        summary: "print container events (OOM notifications, usage statistics)",
        args: "<container-id>",
        flags: &[val(&["interval"], "statistics interval (default: 5s)"), switch(&["stats"], "print the container's statistics once and exit")],
    },
    Cmd {
        name: "exec",
        summary: "run a new process inside a container",
        args: "<container-id> <command> [command options]  || -p process.json <container-id>",
        flags: &[
            CONSOLE_SOCKET,
            val(&["cwd"], "working directory in the container"),
            val(&["env", "e"], "set an environment variable (KEY=VALUE)"),
            switch(&["tty", "t"], "allocate a pseudo-terminal"),
            val(&["user", "u"], "user id, <uid>[:<gid>]"),
            val(&["additional-gids", "g"], "additional group id"),
            val(&["process", "p"], "path to a process.json"),
            switch(&["detach", "d"], "detach from the process"),
            PID_FILE,
            val(&["process-label"], "SELinux label of the process"),
            val(&["apparmor"], "AppArmor profile of the process"),
            switch(&["no-new-privs"], "set no_new_privs for the process"),
            val(&["cap", "c"], "add a capability to the process's bounding, effective and permitted sets"),
            PRESERVE_FDS,
            val(&["cgroup"], "run in an existing sub-cgroup: [<controller>[,<controller>...]:]<path>"),
            switch(&["ignore-paused"], "allow exec in a paused container"),
        ],
    },
    Cmd { name: "features", summary: "print the features brisk supports (JSON)", args: "", flags: &[] },
    Cmd { name: "kill", summary: "send a signal (default: SIGTERM) to the container's init", args: "<container-id> [signal]", flags: &[switch(&["all", "a"], "send the signal to every process in the container")] },
    Cmd { name: "list", summary: "list the containers under --root", args: "", flags: &[FORMAT, switch(&["quiet", "q"], "print container ids only")] },
    Cmd { name: "pause", summary: "freeze every process of a container", args: "<container-id>", flags: &[] },
    Cmd { name: "ps", summary: "show the processes of a container", args: "<container-id> [ps options]", flags: &[FORMAT] },
    Cmd {
        name: "restore",
        summary: "restore a container from a CRIU checkpoint",
        args: "<container-id>",
        flags: &[
            CONSOLE_SOCKET,
            val(&["image-path"], "path to the CRIU image files (default: ./checkpoint)"),
            val(&["work-path"], "path for saving work files and logs"),
            switch(&["tcp-established"], "allow open TCP connections"),
            switch(&["ext-unix-sk"], "allow external unix sockets"),
            switch(&["shell-job"], "allow shell jobs"),
            switch(&["file-locks"], "handle file locks"),
            MANAGE_CGROUPS,
            BUNDLE,
            switch(&["detach", "d"], "detach from the container's process"),
            PID_FILE,
            switch(&["no-subreaper"], "accepted for runc compatibility (brisk waits through a pidfd)"),
            NO_PIVOT,
            val(&["empty-ns"], "create a namespace, but do not restore its properties"),
            switch(&["auto-dedup"], "enable auto deduplication of memory images"),
            switch(&["lazy-pages"], "refused: lazy migration is not supported"),
            val(&["lsm-profile"], "refused: not supported by brisk"),
            val(&["lsm-mount-context"], "refused: not supported by brisk"),
        ],
    },
    Cmd { name: "resume", summary: "thaw a paused container", args: "<container-id>", flags: &[] },
    Cmd {
        name: "run",
        summary: "create and start a container",
        args: "<container-id>",
        flags: &[
            BUNDLE,
            CONSOLE_SOCKET,
            switch(&["detach", "d"], "detach from the container's process"),
            switch(&["keep"], "keep the container after it exits (delete it with `brisk delete`)"),
            PID_FILE,
            switch(&["no-subreaper"], "accepted for runc compatibility (brisk waits through a pidfd)"),
            NO_PIVOT,
            NO_NEW_KEYRING,
            PRESERVE_FDS,
        ],
    },
    Cmd { name: "spec", summary: "write a new config.json", args: "", flags: &[val(&["bundle", "b"], "directory to write config.json to"), switch(&["rootless"], "a configuration for a rootless container")] },
    Cmd { name: "start", summary: "start the user process of a created container", args: "<container-id>", flags: &[] },
    Cmd { name: "state", summary: "print the state of a container (JSON)", args: "<container-id>", flags: &[] },
    Cmd {
        name: "update",
        summary: "change the resource limits of a container",
        args: "<container-id>",
        flags: &[
            val(&["resources", "r"], "file with LinuxResources JSON to apply ('-' for stdin); other flags are then ignored"),
            val(&["blkio-weight"], "block IO weight, 10 to 1000"),
            val(&["cpu-period"], "CPU CFS period (usecs)"),
            val(&["cpu-quota"], "CPU CFS quota per period (usecs)"),
            val(&["cpu-share", "cpu-shares"], "CPU shares (relative weight)"),
            val(&["cpu-rt-period"], "CPU realtime period (usecs)"),
            val(&["cpu-rt-runtime"], "CPU realtime runtime per period (usecs)"),
            val(&["cpuset-cpus"], "CPUs to use"),
            val(&["cpuset-mems"], "memory nodes to use"),
            val(&["memory"], "memory limit (bytes, or with a unit: 128m, 1g)"),
            val(&["memory-reservation"], "memory soft limit"),
            val(&["memory-swap"], "memory plus swap limit; -1 for unlimited swap"),
            val(&["pids-limit"], "maximum number of pids"),
        ],
    },
    Cmd {
        name: "validate",
        summary: "check a bundle's config.json (or FILE) with create's own rules, reporting every problem",
        args: "[FILE]",
        flags: &[
            BUNDLE,
            val(&["format", "f"], "text (default) or json: an array of {severity, path, line, column, message, hint}"),
            switch(&["host"], "also check what this machine can honour (capabilities, cgroups, seccomp, LSMs, user namespaces)"),
            switch(&["strict"], "warnings refuse the config too"),
            switch(&["seccomp-report"], "compare the seccomp profile with brisk's default, grouped by risk"),
        ],
    },
    Cmd { name: "help", summary: "show the commands, or the help of one command", args: "[command]", flags: &[] },
];

/// The table entry of `cmd`.
pub fn command(cmd: &str) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name == cmd)
}

fn find<'a>(flags: &'a [Flag], name: &str) -> Option<&'a Flag> {
    flags.iter().find(|f| f.names.contains(&name))
}

/// A flag's spellings as help shows them: `--bundle value, -b value` (urfave/cli's layout).
fn flag_names(f: &Flag) -> String {
    f.names
        .iter()
        .map(|n| {
            let dash = if n.len() == 1 { "-" } else { "--" };
            if f.value {
                format!("{dash}{n} value")
            } else {
                format!("{dash}{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn options(out: &mut String, flags: &[Flag]) {
    let width = flags.iter().map(|f| flag_names(f).len()).max().unwrap_or(0);
    for f in flags {
        out.push_str(&format!("   {:<width$}  {}\n", flag_names(f), f.usage));
    }
}

/// `brisk --help` / `brisk help`: the commands and the global options.
pub fn main_help() -> String {
    let mut out = format!(
        "NAME:\n   brisk - an OCI runtime with runc's command line\n\nUSAGE:\n   brisk [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:\n",
        env!("CARGO_PKG_VERSION")
    );
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        out.push_str(&format!("   {:<width$}  {}\n", c.name, c.summary));
    }
    out.push_str("\nGLOBAL OPTIONS:\n");
    options(&mut out, GLOBAL);
    out
}

/// `brisk CMD --help` / `brisk help CMD`.
pub fn command_help(c: &Cmd) -> String {
    let opts = if c.flags.is_empty() { "" } else { " [command options]" };
    let mut out = format!("NAME:\n   brisk {} - {}\n\nUSAGE:\n   brisk {}{opts} {}\n", c.name, c.summary, c.name, c.args);
    if !c.flags.is_empty() {
        out.push_str("\nOPTIONS:\n");
        options(&mut out, c.flags);
    }
    out
}

/// Whether the flags of `rest` (up to the first positional argument) ask for help: `-h`,
/// `--help` or `-help`, urfave/cli's spellings. The value of a value flag (`exec -e -h`) is not a
/// flag.
pub fn wants_help(cmd: &str, rest: &[String]) -> bool {
    let flags = command(cmd).map(|c| c.flags).unwrap_or_default();
    let mut it = rest.iter();
    while let Some(t) = it.next() {
        if t == "--" || !t.starts_with('-') || t == "-" {
            return false;
        }
        let name = t.trim_start_matches('-');
        if matches!(name, "h" | "help") {
            return true;
        }
        if find(flags, name).is_some_and(|f| f.value) {
            it.next();
        }
    }
    false
}

/// Global flags up to the command name.
pub fn parse_global(argv: &[String]) -> Result<(Global, Vec<String>), String> {
    let mut g = Global { root: PathBuf::from("/run/brisk"), log: None, log_json: false, debug: false, systemd_cgroup: false, criu: None, rootless: Default::default(), root_set: false };
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let Some(flag) = find(GLOBAL, name) else {
            return Err(format!("unknown global flag --{name}"));
        };
        // -h / -v end the global flags: the command dispatch prints the help or the version.
        if matches!(flag.names[0], "help" | "version") {
            break;
        }
        let value = if flag.value {
            match inline.clone() {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(argv.get(i).cloned().ok_or_else(|| format!("flag --{name} needs a value"))?)
                }
            }
        } else {
            if inline.as_deref().is_some_and(|v| v != "true" && v != "false") {
                return Err(format!("--{name} takes true or false"));
            }
            None
        };
        let on = inline.as_deref() != Some("false");
        match (flag.names[0], value) {
            ("root", Some(v)) => {
                g.root = PathBuf::from(v);
                g.root_set = true;
            }
            ("log", Some(v)) => g.log = Some(PathBuf::from(v)),
            ("log-format", Some(v)) => {
                g.log_json = match v.as_str() {
                    "json" => true,
                    "text" => false,
                    _ => return Err(format!("--log-format: {v:?} is not text or json")),
                }
            }
            ("debug", _) => g.debug = on,
            // runc's flag: create/run place the container in a transient systemd scope
            // (cgroupsPath slice:prefix:name); later commands read the driver from state.json.
            ("systemd-cgroup", _) => g.systemd_cgroup = on,
            ("criu", Some(v)) => g.criu = Some(PathBuf::from(v)),
            ("rootless", Some(v)) => g.rootless = brisk_runtime::rootless::Mode::parse(&v).map_err(|e| e.to_string())?,
            _ => {}
        }
        i += 1;
    }
    Ok((g, argv[i..].to_vec()))
}

#[derive(Debug)]
pub struct Args {
    cmd: String,
    flags: Vec<(String, Option<String>)>,
    pos: std::collections::VecDeque<String>,
    err: Option<String>,
}

impl Args {
    pub fn new(cmd: &str, rest: &[String]) -> Args {
        let flags = command(cmd).map(|c| c.flags).unwrap_or_default();
        let mut a = Args { cmd: cmd.to_string(), flags: Vec::new(), pos: Default::default(), err: None };
        let mut i = 0;
        while i < rest.len() {
            let t = &rest[i];
            if !a.pos.is_empty() || !t.starts_with('-') || t == "-" {
                a.pos.push_back(t.clone());
            } else if t == "--" {
                a.pos.extend(rest[i + 1..].iter().cloned());
                break;
            } else {
                let name = t.trim_start_matches('-');
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name.to_string(), None),
                };
                let flag = find(flags, &name);
                if flag.is_some_and(|f| f.value) {
                    let v = inline.or_else(|| {
                        i += 1;
                        rest.get(i).cloned()
                    });
                    if v.is_none() {
                        a.err.get_or_insert(format!("{cmd}: flag --{name} needs a value"));
                    }
                    a.flags.push((name, v));
                } else if flag.is_some() {
                    if inline.as_deref().is_some_and(|v| v != "true" && v != "false") {
                        a.err.get_or_insert(format!("{cmd}: flag --{name} takes true or false"));
                    }
                    if inline.as_deref() != Some("false") {
                        a.flags.push((name, None));
                    }
                } else {
                    a.err.get_or_insert(format!("{cmd}: unknown flag {t}"));
                }
            }
            i += 1;
        }
        a
    }

    pub fn flag(&mut self, names: &[&str]) -> bool {
        self.flags.iter().any(|(n, _)| names.contains(&n.as_str()))
    }

    /// The last value given for any of `names`.
    pub fn value(&mut self, names: &[&str]) -> Option<String> {
        self.flags.iter().rev().find(|(n, _)| names.contains(&n.as_str())).and_then(|(_, v)| v.clone())
    }

    pub fn values(&mut self, names: &[&str]) -> Vec<String> {
        self.flags.iter().filter(|(n, _)| names.contains(&n.as_str())).filter_map(|(_, v)| v.clone()).collect()
    }

    /// The container id (first positional argument).
    pub fn id(&mut self) -> Result<String, CliError> {
        if let Some(e) = self.err.take() {
            return Err(CliError::Usage(e));
        }
        self.pos.pop_front().ok_or_else(|| CliError::Usage(format!("{}: requires a container id", self.cmd)))
    }

    /// The flag error, if any (without consuming positional arguments).
    #[cfg(test)]
    fn finish_flags(&mut self) -> Result<(), CliError> {
        match self.err.take() {
            Some(e) => Err(CliError::Usage(e)),
            None => Ok(()),
        }
    }

    pub fn positional(&mut self) -> Option<String> {
        self.pos.pop_front()
    }

    pub fn rest(&mut self) -> Vec<String> {
        self.pos.drain(..).collect()
    }

    /// Error on a flag problem or on leftover positional arguments.
    pub fn finish(&mut self) -> Result<(), CliError> {
        if let Some(e) = self.err.take() {
            return Err(CliError::Usage(e));
        }
        if !self.pos.is_empty() {
            return Err(CliError::Usage(format!("{}: unexpected arguments {:?}", self.cmd, self.pos)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn global_then_command() {
        let (g, rest) = parse_global(&v(&["--root", "/tmp/r", "--log-format=json", "--debug", "state", "x"])).expect("ok");
        assert_eq!(g.root, PathBuf::from("/tmp/r"));
        assert!(g.log_json && g.debug);
        assert_eq!(rest, v(&["state", "x"]));
        assert!(parse_global(&v(&["--bogus", "x"])).is_err());
        let (g, rest) = parse_global(&v(&["--systemd-cgroup", "create", "x"])).expect("ok");
        assert!(g.systemd_cgroup);
        assert_eq!(rest, v(&["create", "x"]));
        assert!(!parse_global(&v(&["--systemd-cgroup=false", "state", "x"])).expect("ok").0.systemd_cgroup);
        assert!(parse_global(&v(&["--systemd-cgroup=maybe", "state", "x"])).expect_err("not a boolean").contains("--systemd-cgroup"));
    }

    #[test]
    fn help_comes_from_the_tables() {
        for c in COMMANDS {
            let h = command_help(c);
            for f in c.flags {
                assert!(h.contains(&flag_names(f)), "{}: {:?} missing from\n{h}", c.name, f.names);
                // Every listed flag parses as the table says.
                let arg = format!("--{}", f.names[0]);
                let rest = if f.value { v(&[&arg, "x", "id"]) } else { v(&[&arg, "id"]) };
                let mut a = Args::new(c.name, &rest);
                if c.name != "update" && c.name != "events" {
                    assert!(a.finish_flags().is_ok(), "{} {arg} refused", c.name);
                }
            }
            assert!(main_help().contains(&format!("   {}", c.name)));
        }
        assert!(command_help(command("run").expect("run")).contains("--bundle value, -b value"));
        assert!(wants_help("run", &v(&["-d", "--help", "id"])) && wants_help("kill", &v(&["-h"])) && wants_help("foo", &v(&["-help"])));
        assert!(!wants_help("kill", &v(&["id", "--help"])) && !wants_help("run", &v(&["--", "-h"])));
        assert!(!wants_help("exec", &v(&["-e", "-h", "id", "sh"])) && wants_help("exec", &v(&["-e=X", "-h"])));
        let (_, rest) = parse_global(&v(&["--root", "/r", "--help"])).expect("ok");
        assert_eq!(rest, v(&["--help"]));
    }

    #[test]
    fn exec_stops_at_first_positional() {
        let mut a = Args::new("exec", &v(&["-e", "A=1", "--env=B=2", "-t", "id", "sh", "-c", "echo"]));
        assert!(a.flag(&["t", "tty"]));
        assert_eq!(a.values(&["e", "env"]), v(&["A=1", "B=2"]));
        assert_eq!(a.id().expect("id"), "id");
        assert_eq!(a.rest(), v(&["sh", "-c", "echo"]));
    }

    #[test]
    fn unknown_flag_and_missing_id() {
        let mut a = Args::new("start", &v(&["--nope", "x"]));
        assert!(a.id().is_err());
        let mut a = Args::new("start", &v(&[]));
        assert!(a.id().expect_err("missing").to_string().contains("requires a container id"));
        let mut a = Args::new("kill", &v(&["id", "KILL", "extra"]));
        a.id().expect("id");
        a.positional();
        assert!(a.finish().is_err());
    }
}
