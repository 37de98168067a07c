//! OCI bundles for end-to-end tests, built from Debian's busybox-static.
//!
//! A [`Bundle`] is a temp dir holding `rootfs/` (busybox plus one symlink per applet, `/etc/passwd`,
//! `/etc/group`) and a `config.json` shaped like `runc spec` output. Builder methods tweak the config;
//! [`Bundle::write_config`] (called by every runtime helper before use) serialises it. Dropping the
//! bundle removes the temp dir.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// Where Debian's busybox-static installs the static binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Uid/gid of the unprivileged user present in every bundle's /etc/passwd.
pub const TEST_UID: u32 = 1000;

/// The capability set `runc spec` grants (also the default here).
pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// A unique-per-process suffix for container ids and cgroup paths, so parallel tests in one binary
/// (and parallel test binaries) never collide on the host-wide cgroup tree.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// An OCI bundle in a temp dir. Removed on drop.
#[derive(Debug)]
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config that [`Bundle::write_config`] writes; tests may edit it directly.
    pub config: Value,
    cgroup_name: String,
}

impl Bundle {
    /// A fresh busybox bundle running `sh -c 'true'` with a runc-spec-like config, a private cgroup
    /// path, `terminal: false` and a writable rootfs (tests write scratch files into it).
    pub fn new() -> Bundle {
        Self::try_new().unwrap_or_else(|e| panic!("building busybox bundle: {e}"))
    }

    fn try_new() -> io::Result<Bundle> {
        let dir = tempfile::Builder::new().prefix("brisk-bundle-").tempdir()?;
        // Mapped (user-namespaced) roots and the test user must be able to traverse the bundle.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "proc",
            "dev",
            "sys",
            "tmp",
            "etc",
            "root",
            "home/test",
            "mnt",
            "run",
        ] {
            fs::create_dir_all(rootfs.join(d))?;
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::copy(BUSYBOX, rootfs.join("bin/busybox"))?;
        fs::set_permissions(
            rootfs.join("bin/busybox"),
            fs::Permissions::from_mode(0o755),
        )?;
        // `busybox --install -s`, done from the host: one symlink per applet.
        let list = Command::new(BUSYBOX).arg("--list").output()?;
        if !list.status.success() {
            return Err(io::Error::other(format!(
                "{BUSYBOX} --list failed: {:?}",
                list.status
            )));
        }
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let applet = applet.trim();
            if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                continue;
            }
            symlink("busybox", rootfs.join("bin").join(applet))?;
        }
        fs::write(
            rootfs.join("etc/passwd"),
            format!(
                "root:x:0:0:root:/root:/bin/sh\ntest:x:{TEST_UID}:{TEST_UID}:test:/home/test:/bin/sh\n"
            ),
        )?;
        fs::write(
            rootfs.join("etc/group"),
            format!("root:x:0:\ntest:x:{TEST_UID}:\n"),
        )?;
        std::os::unix::fs::chown(rootfs.join("home/test"), Some(TEST_UID), Some(TEST_UID))?;
        let cgroup_name = unique_name("brisk-it");
        let config = default_config(&cgroup_name);
        Ok(Bundle {
            dir,
            config,
            cgroup_name,
        })
    }

    /// The bundle directory (what `--bundle` takes).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// A path inside the bundle dir for test-side scratch files (logs, sockets, hook scripts).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `linux.cgroupsPath` this bundle uses (`/brisk-it-<pid>-<n>`), relative to each v1
    /// hierarchy root.
    pub fn cgroups_path(&self) -> String {
        format!("/{}", self.cgroup_name)
    }

    /// Serialise [`Bundle::config`] to `config.json`.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("config serialises");
        fs::write(self.dir.path().join("config.json"), text).expect("writing config.json");
    }

    fn process(&mut self) -> &mut serde_json::Map<String, Value> {
        self.config["process"]
            .as_object_mut()
            .expect("process is an object")
    }

    fn linux(&mut self) -> &mut serde_json::Map<String, Value> {
        self.config["linux"]
            .as_object_mut()
            .expect("linux is an object")
    }

    /// `process.args`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.process().insert("args".into(), json!(args));
        self
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(self, script: &str) -> Self {
        self.args(&["sh", "-c", script])
    }

    /// Append `KEY=VALUE` entries to `process.env`.
    pub fn env(mut self, vars: &[&str]) -> Self {
        let env = self.process().entry("env").or_insert_with(|| json!([]));
        for v in vars {
            env.as_array_mut().expect("env is an array").push(json!(v));
        }
        self
    }

    /// `process.cwd`.
    pub fn cwd(mut self, cwd: &str) -> Self {
        self.process().insert("cwd".into(), json!(cwd));
        self
    }

    /// `process.user.uid/gid` (keeps other user fields).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        let user = self.process().entry("user").or_insert_with(|| json!({}));
        user["uid"] = json!(uid);
        user["gid"] = json!(gid);
        self
    }

    /// `process.user.additionalGids`.
    pub fn additional_gids(mut self, gids: &[u32]) -> Self {
        self.process()["user"]["additionalGids"] = json!(gids);
        self
    }

    /// `process.user.umask`.
    pub fn umask(mut self, umask: u32) -> Self {
        self.process()["user"]["umask"] = json!(umask);
        self
    }

    /// Replace `process.rlimits` entry of `kind` (e.g. `RLIMIT_NOFILE`), adding it if absent.
    pub fn rlimit(mut self, kind: &str, soft: u64, hard: u64) -> Self {
        let rl = self.process().entry("rlimits").or_insert_with(|| json!([]));
        let rl = rl.as_array_mut().expect("rlimits is an array");
        rl.retain(|r| r["type"] != kind);
        rl.push(json!({"type": kind, "soft": soft, "hard": hard}));
        self
    }

    /// All five capability sets (bounding, effective, permitted, inheritable, ambient) set to `caps`.
    pub fn capabilities(mut self, caps: &[&str]) -> Self {
        self.process().insert(
            "capabilities".into(),
            json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps}),
        );
        self
    }

    /// `process.noNewPrivileges`.
    pub fn no_new_privileges(mut self, on: bool) -> Self {
        self.process().insert("noNewPrivileges".into(), json!(on));
        self
    }

    /// `process.terminal`.
    pub fn terminal(mut self, on: bool) -> Self {
        self.process().insert("terminal".into(), json!(on));
        self
    }

    /// `hostname`.
    pub fn hostname(mut self, name: &str) -> Self {
        self.config["hostname"] = json!(name);
        self
    }

    /// `domainname`.
    pub fn domainname(mut self, name: &str) -> Self {
        self.config["domainname"] = json!(name);
        self
    }

    /// `root.readonly`.
    pub fn readonly_rootfs(mut self, on: bool) -> Self {
        self.config["root"]["readonly"] = json!(on);
        self
    }

    /// `root.path` (relative to the bundle or absolute).
    pub fn root_path(mut self, path: &str) -> Self {
        self.config["root"]["path"] = json!(path);
        self
    }

    /// Append a mount.
    pub fn mount(mut self, destination: &str, typ: &str, source: &str, options: &[&str]) -> Self {
        let m =
            json!({"destination": destination, "type": typ, "source": source, "options": options});
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
            .push(m);
        self
    }

    /// Append a bind mount of a host path.
    pub fn bind(self, host: &Path, destination: &str, options: &[&str]) -> Self {
        let mut opts = vec!["rbind"];
        opts.extend_from_slice(options);
        let src = host.to_str().expect("utf-8 path").to_owned();
        self.mount(destination, "bind", &src, &opts)
    }

    /// Add a namespace (`type`, optional `path`), replacing one of the same type.
    pub fn namespace(mut self, typ: &str, path: Option<&str>) -> Self {
        let ns = self
            .linux()
            .entry("namespaces")
            .or_insert_with(|| json!([]));
        let ns = ns.as_array_mut().expect("namespaces is an array");
        ns.retain(|n| n["type"] != typ);
        let mut entry = json!({"type": typ});
        if let Some(p) = path {
            entry["path"] = json!(p);
        }
        ns.push(entry);
        self
    }

    /// Remove a namespace type from `linux.namespaces`.
    pub fn without_namespace(mut self, typ: &str) -> Self {
        if let Some(ns) = self
            .linux()
            .get_mut("namespaces")
            .and_then(Value::as_array_mut)
        {
            ns.retain(|n| n["type"] != typ);
        }
        self
    }

    /// A user namespace with the given `(containerID, hostID, size)` uid and gid mappings.
    pub fn user_namespace(
        self,
        uid_maps: &[(u32, u32, u32)],
        gid_maps: &[(u32, u32, u32)],
    ) -> Self {
        let to_json = |maps: &[(u32, u32, u32)]| -> Value {
            maps.iter()
                .map(|&(c, h, s)| json!({"containerID": c, "hostID": h, "size": s}))
                .collect()
        };
        let uid = to_json(uid_maps);
        let gid = to_json(gid_maps);
        let mut b = self.namespace("user", None);
        b.linux().insert("uidMappings".into(), uid);
        b.linux().insert("gidMappings".into(), gid);
        b
    }

    /// A time namespace with `linux.timeOffsets` for monotonic and boottime (seconds).
    pub fn time_namespace(self, monotonic_secs: i64, boottime_secs: i64) -> Self {
        let mut b = self.namespace("time", None);
        b.linux().insert(
            "timeOffsets".into(),
            json!({"monotonic": {"secs": monotonic_secs, "nanosecs": 0},
                   "boottime": {"secs": boottime_secs, "nanosecs": 0}}),
        );
        b
    }

    /// `linux.sysctl[key] = value`.
    pub fn sysctl(mut self, key: &str, value: &str) -> Self {
        let s = self.linux().entry("sysctl").or_insert_with(|| json!({}));
        s[key] = json!(value);
        self
    }

    /// `linux.cgroupsPath` (overrides the unique default).
    pub fn cgroups_path_override(mut self, path: &str) -> Self {
        self.linux().insert("cgroupsPath".into(), json!(path));
        self
    }

    /// Append a hook of `kind` (`prestart`, `createRuntime`, ...).
    pub fn hook(mut self, kind: &str, path: &str, args: &[&str]) -> Self {
        let hooks = self.config.as_object_mut().expect("config is an object");
        let hooks = hooks.entry("hooks").or_insert_with(|| json!({}));
        let list = hooks
            .as_object_mut()
            .expect("hooks is an object")
            .entry(kind)
            .or_insert_with(|| json!([]));
        list.as_array_mut()
            .expect("hook list is an array")
            .push(json!({"path": path, "args": args}));
        self
    }

    /// Set an arbitrary JSON pointer (e.g. `/linux/resources/pids`) to `value`.
    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a '/'");
        let parent = if parent.is_empty() {
            &mut self.config
        } else {
            self.config
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("no {parent} in config"))
        };
        parent[key] = value;
        self
    }

    /// Remove the member a JSON pointer names (e.g. `/linux/resources/blockIO/weight`).
    pub fn remove(mut self, pointer: &str) -> Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a '/'");
        self.config
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object {parent} in config"))
            .remove(key);
        self
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

/// The config `runc spec` prints (runc 1.1.5), made non-interactive (`terminal: false`), with a
/// writable rootfs and a private `cgroupsPath`.
fn default_config(cgroup_name: &str) -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
                "ambient": DEFAULT_CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{cgroup_name}"),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The directories a container's cgroup may appear under on this host: one per v1 hierarchy
/// (plus the hybrid `unified` one), or the single cgroup2 directory on a pure v2 host.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(rel)];
    }
    [
        "pids", "memory", "cpu", "cpuset", "devices", "freezer", "blkio", "unified", "systemd",
    ]
    .iter()
    .map(|c| root.join(c).join(rel))
    .collect()
}
