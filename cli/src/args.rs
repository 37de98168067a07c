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
    /// `--rootless auto|true|false` (runc's flag; see brisk_runtime::rootless).
    pub rootless: brisk_runtime::rootless::Mode,
    /// Whether `--root` was given (otherwise main picks the default, which depends on rootless).
    pub root_set: bool,
}

/// Global flags up to the command name.
pub fn parse_global(argv: &[String]) -> Result<(Global, Vec<String>), String> {
    let mut g = Global { root: PathBuf::from("/run/brisk"), log: None, log_json: false, debug: false, systemd_cgroup: false, rootless: Default::default(), root_set: false };
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if !a.starts_with('-') || a == "-" || a == "-v" || a == "--version" || a == "-h" || a == "--help" {
            break;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            argv.get(i).cloned().ok_or_else(|| format!("flag --{name} needs a value"))
        };
        match name {
            "root" => {
                g.root = PathBuf::from(value()?);
                g.root_set = true;
            }
            "log" => g.log = Some(PathBuf::from(value()?)),
            "log-format" => {
                let v = value()?;
                g.log_json = match v.as_str() {
                    "json" => true,
                    "text" => false,
                    _ => return Err(format!("--log-format: {v:?} is not text or json")),
                }
            }
            "debug" => g.debug = true,
            // runc's flag: create/run place the container in a transient systemd scope
            // (cgroupsPath slice:prefix:name); later commands read the driver from state.json.
            "systemd-cgroup" => {
                if inline.as_deref().is_some_and(|v| v != "true" && v != "false") {
                    return Err("--systemd-cgroup takes true or false".into());
                }
                g.systemd_cgroup = inline.as_deref() != Some("false");
            }
            "rootless" => g.rootless = brisk_runtime::rootless::Mode::parse(&value()?).map_err(|e| e.to_string())?,
            "criu" => {
                value()?;
            }
            other => return Err(format!("unknown global flag --{other}")),
        }
        i += 1;
    }
    Ok((g, argv[i..].to_vec()))
}

/// (value-taking flags, boolean flags) of each command.
fn table(cmd: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match cmd {
        "create" | "run" => (&["b", "bundle", "console-socket", "pid-file", "preserve-fds"], &["no-pivot", "no-new-keyring", "d", "detach", "no-subreaper", "keep"]),
        "kill" => (&[], &["a", "all"]),
        "delete" => (&[], &["f", "force"]),
        "list" => (&["f", "format"], &["q", "quiet"]),
        "ps" => (&["f", "format"], &[]),
        "exec" => (
            &["console-socket", "cwd", "e", "env", "u", "user", "g", "additional-gids", "p", "process", "pid-file", "c", "cap", "preserve-fds", "process-label", "apparmor", "cgroup"],
            &["t", "tty", "d", "detach", "no-new-privs", "ignore-paused"],
        ),
        "spec" => (&["b", "bundle"], &["rootless"]),
        _ => (&[], &[]),
    }
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
        let (vals, bools) = table(cmd);
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
                if vals.contains(&name.as_str()) {
                    let v = inline.or_else(|| {
                        i += 1;
                        rest.get(i).cloned()
                    });
                    if v.is_none() {
                        a.err.get_or_insert(format!("{cmd}: flag --{name} needs a value"));
                    }
                    a.flags.push((name, v));
                } else if bools.contains(&name.as_str()) {
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
