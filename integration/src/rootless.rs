//! An ordinary user for rootless tests, made the way a new user of the host would be.
//!
//! [`TestUser::create`] runs `useradd -m` (Debian's login.defs gives every new user a 65536-id
//! range in /etc/subuid and /etc/subgid), makes the user its own `XDG_RUNTIME_DIR` (what
//! pam_systemd would give it at login), and runs commands as that user with `setpriv` and a
//! minimal environment. Dropping it deletes, as the user, every container left in its runc and
//! brisk state roots, kills any process still running with one of its ids (the user is unique to
//! the test, so every such process was started by the test), then removes the user, its home,
//! its subordinate ids and its runtime dir.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bundle::{unique_name, Bundle};
use crate::runtime_cli::CmdResult;

/// A throwaway user with a subordinate id range and a runtime dir.
#[derive(Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// (first, count) of the user's /etc/subuid range.
    pub subuid: (u32, u32),
    /// (first, count) of the user's /etc/subgid range.
    pub subgid: (u32, u32),
    /// The user's `XDG_RUNTIME_DIR`.
    pub runtime_dir: PathBuf,
}

fn run_root(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).output()
}

/// The user's range in /etc/subuid or /etc/subgid.
fn sub_range(file: &str, name: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == name).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
    })
}

impl TestUser {
    /// A fresh user (panics when useradd fails: the test cannot mean anything without one).
    pub fn create() -> TestUser {
        // Names are at most 32 bytes; unique per process and call.
        let name = unique_name("brl").replace('-', "");
        let mut last = String::new();
        // useradd refuses while another one holds /etc/passwd's lock: retry (tests and other
        // suites may add users at the same time).
        for _ in 0..100 {
            let out = run_root(Command::new("useradd").args(["-m", "-U", "-s", "/bin/sh", &name])).expect("running useradd");
            if out.status.success() {
                last.clear();
                break;
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(last.is_empty(), "useradd {name}: {last}");
        let user = nix::unistd::User::from_name(&name).ok().flatten().unwrap_or_else(|| panic!("user {name} not found after useradd"));
        let runtime_dir = PathBuf::from(format!("/tmp/{name}-xdg"));
        let mut u = TestUser { name: name.clone(), uid: user.uid.as_raw(), gid: user.gid.as_raw(), subuid: (0, 0), subgid: (0, 0), runtime_dir: runtime_dir.clone() };
        // From here on Drop cleans up, even if the rest panics.
        u.subuid = sub_range("/etc/subuid", &name).unwrap_or_else(|| panic!("useradd gave {name} no /etc/subuid range (SUB_UID_COUNT in /etc/login.defs)"));
        u.subgid = sub_range("/etc/subgid", &name).unwrap_or_else(|| panic!("useradd gave {name} no /etc/subgid range"));
        fs::create_dir(&runtime_dir).expect("creating XDG_RUNTIME_DIR");
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod XDG_RUNTIME_DIR");
        std::os::unix::fs::chown(&runtime_dir, Some(u.uid), Some(u.gid)).expect("chown XDG_RUNTIME_DIR");
        u
    }

    /// A busybox bundle the user owns (rootfs included), with no config.json yet.
    pub fn bundle(&self) -> Bundle {
        let b = Bundle::new();
        let _ = fs::remove_file(b.path().join("config.json"));
        let out = run_root(Command::new("chown").args(["-R", &format!("{}:{}", self.uid, self.gid)]).arg(b.path())).expect("running chown");
        assert!(out.status.success(), "chown bundle: {}", String::from_utf8_lossy(&out.stderr));
        b
    }

    /// `bin args...` as the user, in `cwd`, with only PATH, HOME, USER and XDG_RUNTIME_DIR set
    /// (none when `xdg` is false).
    pub fn cmd_in(&self, cwd: &Path, xdg: bool, bin: &Path, args: &[&str]) -> CmdResult {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", &self.uid.to_string(), "--regid", &self.gid.to_string(), "--init-groups", "env", "-i"]);
        c.arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        c.arg(format!("HOME=/home/{}", self.name)).arg(format!("USER={}", self.name));
        if xdg {
            c.arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()));
        }
        c.arg(bin).args(args).current_dir(cwd);
        let cmdline = format!("[as {}] {} {}", self.name, bin.display(), args.join(" "));
        // Detached containers inherit stdout/stderr: send those to files so output() does not
        // wait for the container to exit.
        let tag = unique_name("out");
        let out_p = std::env::temp_dir().join(format!("{tag}.out"));
        let err_p = std::env::temp_dir().join(format!("{tag}.err"));
        let status = c
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_p).expect("stdout file"))
            .stderr(fs::File::create(&err_p).expect("stderr file"))
            .status()
            .unwrap_or_else(|e| panic!("spawning {cmdline}: {e}"));
        let r = CmdResult { status, stdout: fs::read_to_string(&out_p).unwrap_or_default(), stderr: fs::read_to_string(&err_p).unwrap_or_default(), cmdline };
        let _ = fs::remove_file(out_p);
        let _ = fs::remove_file(err_p);
        r
    }

    /// The default state root of `bin` for this user: `$XDG_RUNTIME_DIR/<runc|brisk>`.
    pub fn state_root(&self, bin: &Path) -> PathBuf {
        let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.runtime_dir.join(if name.contains("brisk") { "brisk" } else { "runc" })
    }

    /// Container ids under the user's state root of `bin` (dot entries, such as brisk's seccomp
    /// cache, are not containers).
    pub fn containers(&self, bin: &Path) -> Vec<String> {
        fs::read_dir(self.state_root(bin))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect())
            .unwrap_or_default()
    }

    /// Pids of processes whose real uid is the user's or in its subordinate range.
    pub fn processes(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(status) = fs::read_to_string(e.path().join("status")) else { continue };
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
            if let Some(uid) = uid {
                if uid == self.uid || (uid >= self.subuid.0 && uid < self.subuid.0.saturating_add(self.subuid.1)) {
                    out.push(pid);
                }
            }
        }
        out
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let root = Path::new("/");
        for bin in [Path::new("/usr/sbin/runc").to_path_buf(), brisk_bin()] {
            for id in self.containers(&bin) {
                let _ = self.cmd_in(root, true, &bin, &["delete", "-f", &id]);
            }
        }
        // Any process left is the test's own (the user exists only for it).
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        for _ in 0..100 {
            if self.processes().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir_all(&self.runtime_dir);
        // userdel -r removes the home dir, the user's group and its /etc/subuid, /etc/subgid lines.
        for _ in 0..100 {
            match run_root(Command::new("userdel").args(["-r", &self.name])) {
                // 1: passwd lock busy, 8: a process of the user is still exiting, 10: group file lock.
                Ok(o) if !matches!(o.status.code(), Some(1) | Some(8) | Some(10)) => break,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// The brisk binary the suite tests (`BRISK_BIN`, default `<workspace>/target/release/brisk`).
pub fn brisk_bin() -> PathBuf {
    std::env::var_os("BRISK_BIN").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/brisk"))
}
