//! Real podman (Debian's 4.3.1, with conmon) driving `--runtime /usr/sbin/runc` and
//! `--runtime BRISK_BIN` side by side: every scenario runs once per runtime (`<name>::runc`,
//! `<name>::brisk`) and asserts the same outcome.
//!
//! Each test instance has its own podman world under one temp dir: storage (`--root`, `--runroot`,
//! vfs driver), `--tmpdir`, file locks, the events log, and private containers.conf /
//! registries.conf / storage.conf (through `CONTAINERS_CONF`, `CONTAINERS_REGISTRIES_CONF`,
//! `CONTAINERS_STORAGE_CONF`), so the host's podman state is never read or written. No network is
//! used: the image is imported from a local tarball of a busybox rootfs, and every container gets
//! `netns = "none"`. Containers live under a private `--cgroup-parent` (cgroupfs manager), so their
//! cgroups and conmon's are removable. Dropping the world removes containers, kills any conmon left
//! on its directories, unmounts whatever is still mounted under it and removes the cgroups and the
//! directory, also when a test fails. The one host path podman writes regardless,
//! /var/lib/containers/cache (containers/image's blob-info cache), is removed again when this test
//! process created it.
//!
//! Run with `make test-podman` (mk/podman.mk), which installs podman and its helpers first.
//!
//! The containers' RLIMIT_NOFILE/RLIMIT_NPROC are pinned low (1024/4096, or this process's soft
//! limit if lower): podman otherwise raises both to 1048576 (or to its own hard limit), which needs
//! CAP_SYS_RESOURCE, absent on this host.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brisk_integration::bundle::{unique_name, Bundle};
use brisk_integration::runtime_cli::{RUNC_DEFAULT, WAIT_LIMIT};

macro_rules! podman_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn runc() {
                    super::$name(&super::Podman::new(super::Which::Runc))
                }
                #[test]
                fn brisk() {
                    super::$name(&super::Podman::new(super::Which::Brisk))
                }
            }
        )*
    };
}

podman_tests!(
    run_exit_codes,
    missing_program_is_127,
    non_executable_program_is_126,
    tmpfs_copies_the_image_dir,
    read_only_rootfs,
    detached_exec_logs_stop_rm,
    kill_realtime_signal,
    pause_unpause,
    top,
    network_none,
    exec_options_restart_update,
);

const IMAGE: &str = "localhost/brisk-podman:test";

/// containers/image's blob-info cache for root: `podman import` creates it whatever `--root` says
/// (there is no option to move it). Removed after each test if this test process created it.
const BLOB_CACHE_DIR: &str = "/var/lib/containers/cache";

/// Whether /var/lib/containers existed before this process ran podman (checked once, first).
fn host_had_containers_dir() -> bool {
    static HAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAD.get_or_init(|| Path::new("/var/lib/containers").exists())
}

/// How long one podman command may take before the test calls it hung (a guard, not an assertion).
const CMD_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
enum Which {
    Runc,
    Brisk,
}

/// What one podman command did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    cmdline: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "`{}` failed\nstdout:\n{}\nstderr:\n{}", self.cmdline, self.stdout, self.stderr);
        self
    }
}

/// One private podman world using one OCI runtime.
#[derive(Debug)]
struct Podman {
    runtime: PathBuf,
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

/// `cap:cap` with cap no higher than this process's soft limit: lowering a hard limit needs no
/// privilege.
fn rlimit(res: nix::sys::resource::Resource, cap: u64) -> String {
    let (soft, _) = nix::sys::resource::getrlimit(res).expect("getrlimit");
    let v = soft.min(cap);
    format!("{v}:{v}")
}

impl Podman {
    fn new(which: Which) -> Podman {
        let runtime = match which {
            Which::Runc => PathBuf::from(std::env::var("RUNC_BIN").unwrap_or_else(|_| RUNC_DEFAULT.into())),
            Which::Brisk => PathBuf::from(std::env::var("BRISK_BIN").unwrap_or_else(|_| {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/brisk").into()
            })),
        };
        assert!(runtime.exists(), "runtime {} not found (set RUNC_BIN / BRISK_BIN)", runtime.display());
        host_had_containers_dir();
        let dir = tempfile::Builder::new().prefix("brisk-podman-").tempdir().expect("podman temp dir");
        let p = Podman { runtime, dir, cgroup_parent: format!("/{}", unique_name("brisk-podman")) };
        let d = p.dir.path();
        for sub in ["root", "runroot", "tmp", "net"] {
            fs::create_dir(d.join(sub)).expect("podman dirs");
        }
        use nix::sys::resource::Resource;
        fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile={}\", \"nproc={}\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{}\"\n\
                 lock_type = \"file\"\n\
                 [network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{}\"\n",
                rlimit(Resource::RLIMIT_NOFILE, 1024),
                rlimit(Resource::RLIMIT_NPROC, 4096),
                d.join("events.log").display(),
                d.join("net").display(),
            ),
        )
        .expect("containers.conf");
        fs::write(d.join("registries.conf"), "unqualified-search-registries = []\n").expect("registries.conf");
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                d.join("runroot").display(),
                d.join("root").display()
            ),
        )
        .expect("storage.conf");
        p.import_image();
        p
    }

    /// The busybox rootfs of the CLI tests, plus what the scenarios look at, imported with
    /// `podman import` (owners and modes kept: tar runs as root with --numeric-owner).
    fn import_image(&self) {
        let b = Bundle::new();
        let rootfs = b.rootfs();
        fs::write(rootfs.join("bin/notexec"), "#!/bin/sh\necho ran\n").expect("notexec");
        fs::set_permissions(rootfs.join("bin/notexec"), fs::Permissions::from_mode(0o644)).expect("chmod notexec");
        let data = rootfs.join("data");
        fs::create_dir_all(data.join("sub")).expect("mkdir data/sub");
        fs::write(data.join("f"), "hello\n").expect("data/f");
        chown(data.join("f"), Some(1000), Some(1000)).expect("chown data/f");
        fs::set_permissions(data.join("f"), fs::Permissions::from_mode(0o640)).expect("chmod data/f");
        fs::write(data.join("sub/g"), "deep\n").expect("data/sub/g");
        fs::set_permissions(data.join("sub/g"), fs::Permissions::from_mode(0o600)).expect("chmod data/sub/g");
        fs::set_permissions(data.join("sub"), fs::Permissions::from_mode(0o755)).expect("chmod data/sub");
        std::os::unix::fs::symlink("f", data.join("link")).expect("data/link");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o751)).expect("chmod data");
        for d in ["var/tmp", "run"] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        fs::write(rootfs.join("tmp/keep"), "kept\n").expect("tmp/keep");
        let tar = self.dir.path().join("image.tar");
        let out = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("running tar");
        assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
        let tar = tar.to_str().expect("utf-8 temp path");
        self.podman(&[
            "import",
            "--change",
            "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "CMD [\"sh\"]",
            tar,
            IMAGE,
        ])
        .ok();
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(&self.runtime)
            .stdin(Stdio::null());
        c
    }

    /// Run `podman ARGS` (with this world's global flags) to completion.
    fn podman(&self, args: &[&str]) -> Out {
        let mut c = self.command();
        c.args(args);
        let cmdline = format!("podman ... --runtime {} {}", self.runtime.display(), args.join(" "));
        let dir = tempfile::tempdir_in(self.dir.path()).expect("output dir");
        let (o, e) = (dir.path().join("out"), dir.path().join("err"));
        c.stdout(fs::File::create(&o).expect("stdout file")).stderr(fs::File::create(&e).expect("stderr file"));
        let mut child = c.spawn().unwrap_or_else(|err| panic!("spawning `{cmdline}`: {err}"));
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for podman") {
                break s;
            }
            if start.elapsed() > CMD_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{cmdline}` hung (> {CMD_LIMIT:?})");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Out {
            code: status.code().unwrap_or_else(|| panic!("`{cmdline}` died by signal: {status}")),
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr: fs::read_to_string(&e).unwrap_or_default(),
            cmdline,
        }
    }

    /// `podman run --rm [extra] IMAGE cmd...`.
    fn run_rm(&self, extra: &[&str], cmd: &[&str]) -> Out {
        let mut args = vec!["run", "--rm", "--cgroup-parent", &self.cgroup_parent];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.podman(&args)
    }

    /// `podman run -d --name NAME IMAGE sh -c SCRIPT`, then wait until its log shows `ready`.
    fn run_detached(&self, name: &str, script: &str, ready: &str) {
        self.podman(&["run", "-d", "--name", name, "--cgroup-parent", &self.cgroup_parent, IMAGE, "sh", "-c", script]).ok();
        self.wait_until(&format!("{name} logs {ready:?}"), || self.podman(&["logs", name]).stdout.contains(ready));
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.podman(&["inspect", "--format", format, name]).ok().stdout.trim().to_string()
    }

    fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < WAIT_LIMIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// rmdir a cgroup directory tree bottom-up, killing what is still in it (only ever called on
/// this test's own cgroup parent).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    for _ in 0..100 {
        if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    eprintln!("cleanup: could not remove cgroup {}", dir.display());
}

impl Drop for Podman {
    fn drop(&mut self) {
        let d = self.dir.path().to_path_buf();
        let _ = self.command().args(["rm", "-a", "-f", "-t", "0"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        // conmon processes still serving this world (their command lines name its directories).
        if let Ok(procs) = fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else { continue };
                let Ok(cmdline) = fs::read(p.path().join("cmdline")) else { continue };
                let cmdline = String::from_utf8_lossy(&cmdline);
                if cmdline.starts_with("/usr/bin/conmon\0") && cmdline.contains(d.to_string_lossy().as_ref()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        // Mounts podman or the storage driver left under the directory (shm, overlay, netns), deepest first.
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(|m| m.replace("\\040", " ")))
            .filter(|m| Path::new(m).starts_with(&d))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Ok(hier) = fs::read_dir("/sys/fs/cgroup") {
            for h in hier.flatten() {
                if h.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_cgroup(&h.path().join(self.cgroup_parent.trim_start_matches('/')));
                }
            }
        }
        if !host_had_containers_dir() {
            // Another test of this process may be importing right now: its own drop removes what
            // this one cannot.
            let _ = fs::remove_file(Path::new(BLOB_CACHE_DIR).join("blob-info-cache-v1.boltdb"));
            let _ = fs::remove_dir(BLOB_CACHE_DIR);
            let _ = fs::remove_dir("/var/lib/containers");
        }
    }
}

fn run_exit_codes(p: &Podman) {
    let r = p.run_rm(&[], &["echo", "hello"]).ok();
    assert_eq!(r.stdout, "hello\n");
    assert_eq!(p.run_rm(&[], &["true"]).ok().code, 0);
    assert_eq!(p.run_rm(&[], &["false"]).code, 1);
    assert_eq!(p.run_rm(&[], &["sh", "-c", "exit 7"]).code, 7);
    assert_eq!(p.podman(&["ps", "-a", "-q"]).ok().stdout, "", "--rm left a container");
}

fn missing_program_is_127(p: &Podman) {
    let r = p.run_rm(&[], &["/nonexistent"]);
    assert_eq!(r.code, 127, "{r:?}");
    let r = p.run_rm(&[], &["no-such-program"]);
    assert_eq!(r.code, 127, "{r:?}");
}

// On branch `podman` (before the spec-parity work is merged) brisk gives 127 here: its init reports
// an existing non-executable file as "not found". runc 1.1.5 gives 126.
fn non_executable_program_is_126(p: &Podman) {
    let r = p.run_rm(&[], &["/bin/notexec"]);
    assert_eq!(r.code, 126, "{r:?}");
}

/// podman's `--tmpfs` adds runc's tmpcopyup: the tmpfs starts with the image's /data.
fn tmpfs_copies_the_image_dir(p: &Podman) {
    let r = p
        .run_rm(
            &["--tmpfs", "/data"],
            &[
                "sh",
                "-c",
                "stat -c '%n %a %u:%g %F' /data /data/f /data/sub /data/sub/g /data/link; readlink /data/link; \
                 cat /data/f /data/sub/g; awk '$5 == \"/data\"' /proc/self/mountinfo | grep -c ' - tmpfs '; \
                 echo changed > /data/f && cat /data/f",
            ],
        )
        .ok();
    assert_eq!(
        r.stdout,
        "/data 751 0:0 directory\n/data/f 640 1000:1000 regular file\n/data/sub 755 0:0 directory\n\
         /data/sub/g 600 0:0 regular file\n/data/link 777 0:0 symbolic link\nf\nhello\ndeep\n1\nchanged\n",
        "stderr: {}",
        r.stderr
    );
    // The write went to the tmpfs only.
    assert_eq!(p.run_rm(&[], &["cat", "/data/f"]).ok().stdout, "hello\n");
}

/// `--read-only`: the rootfs is read-only, /tmp, /var/tmp and /run are tmpfs copied up from the image.
fn read_only_rootfs(p: &Podman) {
    let r = p
        .run_rm(
            &["--read-only"],
            &[
                "sh",
                "-c",
                "if (touch /x) 2>/dev/null; then echo rootfs-writable; else echo rootfs-ro; fi; cat /tmp/keep; \
                 for d in /tmp /var/tmp /run; do echo $d > $d/w && cat $d/w; done",
            ],
        )
        .ok();
    assert_eq!(r.stdout, "rootfs-ro\nkept\n/tmp\n/var/tmp\n/run\n", "stderr: {}", r.stderr);
}

fn detached_exec_logs_stop_rm(p: &Podman) {
    p.run_detached("c", "trap 'echo term; exit 0' TERM; echo started; while :; do sleep 0.2; done", "started");
    assert_eq!(p.inspect("c", "{{.State.Status}}"), "running");
    assert_eq!(p.podman(&["exec", "c", "echo", "hi"]).ok().stdout, "hi\n");
    assert_eq!(p.podman(&["exec", "c", "sh", "-c", "exit 3"]).code, 3);
    assert_eq!(p.podman(&["exec", "c", "/nonexistent"]).code, 127);
    p.podman(&["stop", "-t", "30", "c"]).ok();
    assert_eq!(p.inspect("c", "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect("c", "{{.State.ExitCode}}"), "0");
    assert_eq!(p.podman(&["logs", "c"]).ok().stdout, "started\nterm\n");
    p.podman(&["rm", "c"]).ok();
    assert_eq!(p.podman(&["ps", "-a", "-q"]).ok().stdout, "");
}

/// A real-time signal by number (podman passes `kill ID 64` to the runtime).
// On branch `podman` (before the cli-parity signal parsing is merged) brisk refuses "64" with
// `unknown signal "64"`; runc 1.1.5 sends SIGRTMAX.
fn kill_realtime_signal(p: &Podman) {
    p.run_detached("c", "trap 'echo got64; exit 0' 64; echo started; while :; do sleep 0.2; done", "started");
    p.podman(&["kill", "-s", "64", "c"]).ok();
    assert_eq!(p.podman(&["wait", "c"]).ok().stdout.trim(), "0");
    assert_eq!(p.podman(&["logs", "c"]).ok().stdout, "started\ngot64\n");
}

fn pause_unpause(p: &Podman) {
    p.run_detached("c", "echo started; while :; do sleep 0.2; done", "started");
    p.podman(&["pause", "c"]).ok();
    assert_eq!(p.inspect("c", "{{.State.Status}}"), "paused");
    p.podman(&["unpause", "c"]).ok();
    assert_eq!(p.inspect("c", "{{.State.Status}}"), "running");
    assert_eq!(p.podman(&["exec", "c", "echo", "alive"]).ok().stdout, "alive\n");
}

fn top(p: &Podman) {
    p.run_detached("c", "echo started; exec sleep 1000", "started");
    let r = p.podman(&["top", "c", "pid", "args"]).ok();
    let lines: Vec<&str> = r.stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    let fields: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(fields, ["1", "sleep", "1000"], "{}", r.stdout);
}

fn network_none(p: &Podman) {
    let r = p.run_rm(&["--network", "none"], &["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]).ok();
    assert_eq!(r.stdout, "lo\n");
}

/// `exec` with a terminal, user, working directory and environment; `restart`; `update` (the
/// runtime's `update` command) reaching the container's memory cgroup.
fn exec_options_restart_update(p: &Podman) {
    p.run_detached("c", "echo started; while :; do sleep 0.2; done", "started");
    let r = p.podman(&["exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", "c", "sh", "-c", "id -u; pwd; echo $X"]).ok();
    assert_eq!(r.stdout, "1000\n/tmp\ny\n");
    assert_eq!(p.podman(&["exec", "-t", "c", "sh", "-c", "test -t 0 && test -t 1"]).code, 0);
    p.podman(&["restart", "-t", "0", "c"]).ok();
    assert_eq!(p.inspect("c", "{{.State.Status}}"), "running");
    p.podman(&["update", "--memory", "128m", "c"]).ok();
    let id = p.inspect("c", "{{.Id}}");
    let cg = format!("{}/libpod-{id}", p.cgroup_parent.trim_start_matches('/'));
    // cgroup v1 memory controller (this host), or the unified hierarchy on a v2-only host.
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let limit = if v1.is_dir() { v1.join(cg).join("memory.limit_in_bytes") } else { Path::new("/sys/fs/cgroup").join(cg).join("memory.max") };
    assert_eq!(fs::read_to_string(&limit).unwrap_or_else(|e| panic!("{}: {e}", limit.display())).trim(), "134217728");
}
