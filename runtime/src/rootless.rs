//! Rootless mode: running containers as an ordinary user, as runc 1.1.5 does.
//!
//! What is rootless, and where its state lives, follows runc's main.go and utils: `--rootless
//! auto` (the default) means rootless when the effective uid is not 0, or when we run in a user
//! namespace whose root is not the host's root (runc `userns.RunningInUserNS`). The state root
//! defaults to `$XDG_RUNTIME_DIR/brisk` for a rootless caller (runc: `$XDG_RUNTIME_DIR/runc`).
//!
//! The id mappings of a new user namespace are written the way runc's nsexec does: a single
//! mapping of the caller's own uid (gid) is written directly, which the kernel allows an
//! unprivileged writer (user_namespaces(7) "Defining user and group ID mappings"), after writing
//! "deny" to `setgroups` for the gid map, which the kernel requires of such a writer since Linux
//! 3.19. Every other mapping goes through the setuid helpers `newuidmap`/`newgidmap` (shadow's
//! uidmap package), which check it against /etc/subuid and /etc/subgid.
use std::fs;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("--rootless: {value:?} is not auto, true or false")]
    Mode { value: String },
    #[error("rootless: no state directory: XDG_RUNTIME_DIR is not set; set it to a directory owned by uid {uid} (pam_systemd sets /run/user/{uid} at login) or pass --root DIR")]
    NoRuntimeDir { uid: u32 },
    #[error("{which} of the new user namespace {mapping:?}: {step} {path}: {source}")]
    Write { which: &'static str, mapping: String, step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("{which} of the new user namespace {mapping:?}: {helper} is needed for a mapping other than your own {kind} alone, and could not be run: {source} (install the uidmap package)")]
    HelperMissing { which: &'static str, mapping: String, helper: &'static str, kind: &'static str, #[source] source: std::io::Error },
    /// `detail`: what the helper said and the /etc/subuid (subgid) line the mapping needs.
    #[error("{which} of the new user namespace {mapping:?}: {detail}")]
    HelperFailed { which: &'static str, mapping: String, detail: String },
}

/// `--rootless`: runc's values. `auto` decides from the caller's credentials ([`detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Auto,
    On,
    Off,
}

impl Mode {
    pub fn parse(value: &str) -> Result<Mode, RootlessError> {
        match value {
            "auto" => Ok(Mode::Auto),
            "true" => Ok(Mode::On),
            "false" => Ok(Mode::Off),
            _ => Err(RootlessError::Mode { value: value.to_string() }),
        }
    }

    /// Whether this invocation is rootless.
    pub fn resolve(self) -> bool {
        match self {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => detect(),
        }
    }
}

/// runc's `--rootless auto`: a non-zero euid, or uid 0 of a user namespace that is not the
/// initial one (then host root's powers, cgroup writes among them, are not ours).
pub fn detect() -> bool {
    !nix::unistd::geteuid().is_root() || running_in_userns()
}

/// runc's `userns.RunningInUserNS`: the initial user namespace maps the whole id range
/// ("0 0 4294967295"); any other uid_map means we are inside a user namespace.
pub fn running_in_userns() -> bool {
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => !is_initial_uid_map(&m),
        // No /proc/self/uid_map: a kernel without user namespaces, so not in one.
        Err(_) => false,
    }
}

fn is_initial_uid_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| !f.is_empty()).collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// The default state root: `/run/brisk` for root, `$XDG_RUNTIME_DIR/brisk` when rootless.
///
/// runc 1.1.5's rule (`shouldHonorXDGRuntimeDir`): XDG_RUNTIME_DIR is used when set and the euid
/// is not 0, or when uid 0 of a user namespace runs with `USER` unset or not "root"; otherwise
/// /run/runc. Where runc falls back to /run/runc for a non-zero euid (and fails later with
/// "permission denied" on a path the user cannot create), brisk says instead what to set: the one
/// deliberate difference. `euid_root` and `user` are the caller's (passed in for the tests).
pub fn default_root(rootless: bool, xdg_runtime_dir: Option<&str>, euid_root: bool, user: Option<&str>) -> Result<PathBuf, RootlessError> {
    let xdg = xdg_runtime_dir.filter(|d| !d.is_empty());
    // runc decides this from the credentials, not from --rootless: `rootless` only stands for
    // "in a user namespace" when the euid is 0.
    let honour = !euid_root || (rootless && user != Some("root"));
    match xdg {
        Some(d) if honour => Ok(PathBuf::from(d).join("brisk")),
        None if !euid_root => Err(RootlessError::NoRuntimeDir { uid: nix::unistd::geteuid().as_raw() }),
        _ => Ok(PathBuf::from("/run/brisk")),
    }
}

/// One line of a uid_map/gid_map: (container id, host id, size).
fn parse_map(map: &str) -> Vec<(u32, u32, u32)> {
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

/// True when the kernel lets an unprivileged writer set `map` itself: one line mapping exactly
/// our own id (user_namespaces(7)).
fn writable_directly(map: &[(u32, u32, u32)], own: u32) -> bool {
    matches!(map, [(_, host, 1)] if *host == own)
}

/// Write the uid and gid maps of `pid`'s new user namespace from a caller that is not host root
/// (euid != 0). Host root writes the files itself (see the init's stage 0).
pub fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<(), RootlessError> {
    let uids = parse_map(uid_map);
    let gids = parse_map(gid_map);
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.name).unwrap_or_else(|| euid.to_string());
    let uid_kind = IdKind { which: "uidMappings", file: "/etc/subuid", helper: "newuidmap", kind: "uid", proc: "uid_map", own: euid };
    let gid_kind = IdKind { which: "gidMappings", file: "/etc/subgid", helper: "newgidmap", kind: "gid", proc: "gid_map", own: egid };
    // uid_map first: newgidmap checks the caller against the target's credentials either way,
    // and runc's nsexec writes in this order too.
    write_one(pid, &uids, uid_map, &uid_kind, &user)?;
    write_one(pid, &gids, gid_map, &gid_kind, &user)
}

struct IdKind {
    which: &'static str,
    file: &'static str,
    helper: &'static str,
    kind: &'static str,
    proc: &'static str,
    own: u32,
}

fn write_one(pid: i32, map: &[(u32, u32, u32)], text: &str, k: &IdKind, user: &str) -> Result<(), RootlessError> {
    let mapping = text.trim().replace('\n', ", ");
    if map.is_empty() {
        return Ok(());
    }
    if writable_directly(map, k.own) {
        if k.kind == "gid" {
            // An unprivileged writer may only write gid_map once setgroups(2) is disabled for the
            // namespace (Linux 3.19, CVE-2014-8989: dropping supplementary groups could grant
            // access). The init then skips setgroups, as runc does.
            let p = PathBuf::from(format!("/proc/{pid}/setgroups"));
            fs::write(&p, "deny").map_err(|source| RootlessError::Write { which: k.which, mapping: mapping.clone(), step: "write", path: p, source })?;
        }
        let p = PathBuf::from(format!("/proc/{pid}/{}", k.proc));
        return fs::write(&p, text).map_err(|source| RootlessError::Write { which: k.which, mapping, step: "write", path: p, source });
    }
    // newuidmap PID CONTAINER-ID HOST-ID SIZE...: the setuid helper checks each range against
    // the caller's /etc/subuid entries (its own id is always allowed) and writes the map.
    let mut cmd = Command::new(k.helper);
    cmd.arg(pid.to_string());
    for (c, h, s) in map {
        cmd.args([c.to_string(), h.to_string(), s.to_string()]);
    }
    let out = cmd.output().map_err(|source| RootlessError::HelperMissing { which: k.which, mapping: mapping.clone(), helper: k.helper, kind: k.kind, source })?;
    if out.status.success() {
        return Ok(());
    }
    // The hint names the first range that is not the caller's own id: the line it needs.
    let (hint_start, hint_size) = map.iter().find(|(_, h, s)| !(*h == k.own && *s == 1)).map(|(_, h, s)| (*h, *s)).unwrap_or((map[0].1, map[0].2));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let stderr = if stderr.is_empty() { format!("exit status {}", out.status) } else { stderr };
    let detail = format!(
        "{} refused it: {stderr}; the host ids must be your own {} or in a range granted to user {user} in {} (a line such as \"{user}:{hint_start}:{hint_size}\")",
        k.helper, k.kind, k.file
    );
    Err(RootlessError::HelperFailed { which: k.which, mapping, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_uid_map_is_recognised() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map("0 0 4294967295\n1 1 1\n"));
    }

    #[test]
    fn only_a_single_own_id_is_written_directly() {
        assert!(writable_directly(&parse_map("0 1000 1\n"), 1000));
        assert!(!writable_directly(&parse_map("0 1001 1\n"), 1000));
        assert!(!writable_directly(&parse_map("0 1000 1\n1 100000 65536\n"), 1000));
        assert!(!writable_directly(&parse_map("0 1000 2\n"), 1000));
    }

    #[test]
    fn modes_and_default_root() {
        assert_eq!(Mode::parse("true").expect("true"), Mode::On);
        assert_eq!(Mode::parse("false").expect("false"), Mode::Off);
        assert_eq!(Mode::parse("auto").expect("auto"), Mode::Auto);
        assert!(Mode::parse("yes").expect_err("yes").to_string().contains("\"yes\""));
        assert_eq!(default_root(false, Some("/run/user/5"), true, Some("root")).expect("root"), PathBuf::from("/run/brisk"));
        assert_eq!(default_root(false, Some("/run/user/5"), true, None).expect("host root"), PathBuf::from("/run/brisk"));
        assert_eq!(default_root(true, Some("/run/user/5"), false, Some("u")).expect("rootless"), PathBuf::from("/run/user/5/brisk"));
        assert!(default_root(true, None, false, Some("u")).expect_err("no XDG").to_string().contains("XDG_RUNTIME_DIR"));
        assert!(default_root(true, Some(""), false, None).is_err());
        // uid 0 of a user namespace: runc's USER rule, and /run/brisk rather than an error.
        assert_eq!(default_root(true, Some("/run/user/5"), true, Some("root")).expect("userns root"), PathBuf::from("/run/brisk"));
        assert_eq!(default_root(true, Some("/run/user/5"), true, None).expect("userns root"), PathBuf::from("/run/user/5/brisk"));
        assert_eq!(default_root(true, None, true, None).expect("userns root"), PathBuf::from("/run/brisk"));
    }
}
