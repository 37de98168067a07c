//! CVE-2019-5736: a container process must never open the runtime's binary for writing through
//! `/proc/<pid>/exe` of a process that runs it inside the container.
//!
//! The runtime binary is executed inside the container's namespaces in three windows: by the init
//! while a created container waits for `start`; by the container's first program when that program
//! is a `#!/proc/self/exe` script (the kernel resolves the interpreter through the init's own exe);
//! and likewise by an exec'd `#!/proc/self/exe` script. In each window an attacker in another
//! container sharing the victim's pid namespace (with CAP_SYS_PTRACE, so the init's
//! `PR_SET_DUMPABLE 0` does not hide the target and the defence underneath is tested too):
//!   1. tries to open `/proc/<pid>/exe` read-write while the target lives;
//!   2. holds it open read-only (the original exploit's trick);
//!   3. after every process executing the binary is gone (so ETXTBSY no longer protects it — the
//!      test checks from the host that the file is then openable for writing), reopens the held fd
//!      read-write through `/proc/self/fd/3` and writes to it.
//!
//! The runtime under test is a *copy* of the binary in a temp dir, so a successful attack damages
//! only the copy. The assertion is on the copy's hash and on what the attacker managed.
//!
//! The two `#!/proc/self/exe` windows are held open deterministically: the victim's stdout and
//! stderr are a pipe whose buffer is already full, so the runtime binary, started as an interpreter
//! with an unknown argument, blocks writing its usage error until the test drains the pipe.
//!
//! Results (recorded from runs on this host, kernel 6.18, Debian runc 1.1.5+ds1-1+deb12u1):
//! * `attack_5736_while_created` — runc 1.1.5: blocked, brisk: blocked. runc: opening the live exe
//!   for writing fails with ETXTBSY, the held exe reopened for writing after the binary stops
//!   running fails with EROFS (Debian's runc build runs its init from a read-only bind mount;
//!   `readlink` shows "/"). brisk: both fail with EROFS — its helper is exec'd from the binary
//!   opened in a detached read-only overlayfs (`readlink` shows "/brisk").
//! * `attack_5736_while_created_default_caps` — runc 1.1.5: blocked, brisk: blocked (without
//!   CAP_SYS_PTRACE the non-dumpable init's exe cannot even be opened: EACCES).
//! * `attack_5736_held_at_start_execve`, `attack_5736_held_at_exec_execve` — runc 1.1.5: blocked,
//!   brisk: blocked (runc: ETXTBSY while held, brisk: EROFS; both EROFS on the reopen). A seccomp agent (the test) holds the
//!   runtime's final execve — in the init at `start`, in the exec'd process at `exec` — so the
//!   runtime binary stays inside the container, deterministically, while the attacker works.
//! * `attack_5736_shebang_entrypoint`, `attack_5736_shebang_exec` — runc 1.1.5: blocked, brisk:
//!   blocked. On this kernel, and on Debian's 6.1 in the v2 guest (run there by hand), the exec of
//!   the `#!/proc/self/exe` script fails with ENOENT for both runtimes (the interpreter is not resolvable from the runtime's init), so the binary never runs
//!   as an interpreter; the tests still carry the full attack for kernels where it does.
//!
//! Every runtime in this test binary is built through `attack::runtime_with_copy` (it points
//! `BRISK_BIN`/`RUNC_BIN` at the copy while constructing), so this file must not also use
//! `runtime_tests!`.

use std::fs;
use std::process::{Child, Stdio};

use brisk_integration::attack::{self, BinaryCopy};
use brisk_integration::bundle::{unique_name, Bundle, DEFAULT_CAPS};
use brisk_integration::runtime_cli::{path_str, Kind, RuntimeUnderTest};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn runc() {
                    super::$name(brisk_integration::runtime_cli::Kind::Runc)
                }
                #[test]
                fn brisk() {
                    super::$name(brisk_integration::runtime_cli::Kind::Brisk)
                }
            }
        )*
    };
}

both!(
    attack_5736_while_created,
    attack_5736_while_created_default_caps,
    attack_5736_held_at_start_execve,
    attack_5736_held_at_exec_execve,
    attack_5736_shebang_entrypoint,
    attack_5736_shebang_exec,
);

/// The attacker container A (owner of the shared pid namespace) and everything to drive it.
struct Attacker<'a> {
    rt: &'a RuntimeUnderTest,
    bundle: Bundle,
    id: String,
    ctl: std::path::PathBuf,
}

impl<'a> Attacker<'a> {
    /// With CAP_SYS_PTRACE and CAP_DAC_OVERRIDE, so that PR_SET_DUMPABLE 0 does not hide the target
    /// and the defence underneath is what gets tested.
    fn start(rt: &'a RuntimeUnderTest) -> Attacker<'a> {
        Self::start_with_caps(rt, attack::ATTACKER_CAPS)
    }

    fn start_with_caps(rt: &'a RuntimeUnderTest, extra_caps: &[&'static str]) -> Attacker<'a> {
        let b = Bundle::new();
        let ctl = attack::ctl_dir(&b, "ctl");
        fs::write(b.rootfs().join("attack.sh"), attack::ATTACK_SH).expect("write attack.sh");
        let mut caps: Vec<&str> = DEFAULT_CAPS.to_vec();
        caps.extend_from_slice(extra_caps);
        let b = b.bind(&ctl, "/ctl", &[]).capabilities(&caps).sh("echo started; exec sleep 1000");
        let id = rt.new_id("cve5736-attacker");
        rt.run_detached(&id, &b).ok();
        rt.wait_output(&id, &b, "started");
        Attacker { rt, bundle: b, id, ctl }
    }

    fn init_pid(&self) -> i64 {
        self.rt.state(&self.id)["pid"].as_i64().expect("attacker pid")
    }

    /// A victim bundle whose processes join the attacker's pid namespace.
    fn victim_bundle(&self) -> Bundle {
        let ns = format!("/proc/{}/ns/pid", self.init_pid());
        Bundle::new().namespace("pid", Some(&ns))
    }

    /// Run the attack against `host_pid` (a process in the shared pid namespace) and wait for steps
    /// 1-2 to finish.
    fn grab(&self, host_pid: i32, tag: &str) -> String {
        let inner = attack::inner_pid(host_pid).unwrap_or_else(|| panic!("no NSpid for {host_pid}"));
        // Through files: the detached attacker keeps the runtime's stdout/stderr open.
        self.rt.cmd_to_files(&["exec", "-d", &self.id, "sh", "/attack.sh", &inner.to_string(), tag], &self.bundle, &format!("exec-{tag}")).ok();
        attack::read_grab(&self.ctl, tag)
    }

    /// Let the attacker try step 3 and return its report.
    fn finish(&self, tag: &str) -> String {
        attack::finish(&self.ctl, tag)
    }
}

impl Drop for Attacker<'_> {
    fn drop(&mut self) {
        let _ = self.rt.delete_force(&self.id);
        let _ = &self.bundle;
    }
}

fn assert_blocked(kind: Kind, copy: &BinaryCopy, grab: &str, result: &str) {
    attack::assert_blocked(&format!("{kind:?}"), kind == Kind::Brisk, copy, grab, result)
}

fn host_pid(rt: &RuntimeUnderTest, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().expect("pid") as i32
}

/// `<bin> --root R args...` in the background, all stdio on /dev/null.
fn spawn_quiet(rt: &RuntimeUnderTest, args: &[&str]) -> Child {
    rt.command().args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn runtime")
}

/// `<bin> --root R args...` with stdout and stderr on `w` (a full pipe) and stdin from /dev/null.
fn spawn_on_pipe(rt: &RuntimeUnderTest, args: &[&str], w: &std::os::fd::OwnedFd) -> Child {
    let out = w.try_clone().expect("dup pipe");
    let err = w.try_clone().expect("dup pipe");
    rt.command().args(args).stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn runtime")
}

// runc 1.1.5: blocked (ETXTBSY, then EROFS), brisk: blocked (EROFS, then EROFS).
fn attack_5736_while_created(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start(&rt);
    let v = a.victim_bundle().args(&["sleep", "1000"]);
    let vid = rt.new_id("cve5736-victim");
    rt.create(&vid, &v).ok();
    // The created container's init is the runtime binary, waiting in the container for `start`.
    let grab = a.grab(host_pid(&rt, &vid), "created");
    rt.start(&vid).ok();
    let pid = host_pid(&rt, &vid);
    attack::wait_for("the victim to exec its program", || attack::cmdline(pid).first().map(String::as_str) == Some("sleep"));
    attack::assert_not_busy(&copy);
    let result = a.finish("created");
    assert_blocked(kind, &copy, &grab, &result);
    rt.delete_force(&vid).ok();
}

/// The `#!/proc/self/exe` script failed to exec, so the runtime binary never ran as its
/// interpreter and there was no window to attack (on this host's kernel the interpreter lookup
/// fails with ENOENT for both runtimes). The binary must of course be intact.
fn never_ran(kind: Kind, copy: &BinaryCopy, what: &str) {
    eprintln!("RESULT {kind:?}: the runtime binary never ran as the script's interpreter\n{what}");
    assert_eq!(copy.hash(), copy.original_hash(), "the runtime binary copy was modified");
    assert!(what.to_lowercase().contains("no such file"), "the script's exec failed for another reason than a missing interpreter:\n{what}");
}

// runc 1.1.5: blocked (EACCES: init not dumpable), brisk: blocked (EACCES: init not dumpable).
//
// The usual configuration: without CAP_SYS_PTRACE the attacker cannot even open the waiting
// init's /proc/<pid>/exe, because the init runs with PR_SET_DUMPABLE 0.
fn attack_5736_while_created_default_caps(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start_with_caps(&rt, &[]);
    let v = a.victim_bundle().args(&["sleep", "1000"]);
    let vid = rt.new_id("cve5736-victim");
    rt.create(&vid, &v).ok();
    let grab = a.grab(host_pid(&rt, &vid), "created");
    rt.start(&vid).ok();
    let pid = host_pid(&rt, &vid);
    attack::wait_for("the victim to exec its program", || attack::cmdline(pid).first().map(String::as_str) == Some("sleep"));
    attack::assert_not_busy(&copy);
    let result = a.finish("created");
    assert_blocked(kind, &copy, &grab, &result);
    assert!(grab.contains("grab failed"), "a container process without CAP_SYS_PTRACE opened the non-dumpable init's exe:\n{grab}");
    rt.delete_force(&vid).ok();
}

/// The victim's config: execve and execveat go to a seccomp agent (the test).
fn with_execve_agent(v: Bundle, sock: &std::path::Path) -> Bundle {
    v.set("/linux/seccomp", attack::execve_notify_seccomp(sock))
}

// runc 1.1.5: blocked (ETXTBSY, then EROFS), brisk: blocked (EROFS, then EROFS).
//
// `start`: the init, still the runtime binary, is held inside its final execve by the seccomp
// agent while the attacker opens its exe.
fn attack_5736_held_at_start_execve(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start(&rt);
    let v = a.victim_bundle().args(&["sleep", "1000"]);
    let sock = v.scratch("agent.sock");
    let v = with_execve_agent(v, &sock);
    let (decision, notified, release) = attack::hold();
    let agent = attack::NotifyAgent::listen(&sock, vec![decision]);
    let vid = rt.new_id("cve5736-victim");
    rt.create(&vid, &v).ok();
    // In the background: `start` returns only once the init has exec'd, which the agent holds.
    let mut start = attack::ChildGuard(spawn_quiet(&rt, &["start", &vid]));
    let held = notified.recv_timeout(brisk_integration::runtime_cli::WAIT_LIMIT).expect("the init's execve reached the agent");
    assert_eq!(held as i64, rt.state(&vid)["pid"].as_i64().expect("pid"), "the held execve is not the init's");
    let grab = a.grab(held as i32, "start");
    drop(release);
    let st = start.0.wait().expect("wait start");
    assert!(st.success(), "start failed: {st}");
    let pid = host_pid(&rt, &vid);
    let mut seen = Vec::new();
    attack::wait_for("the victim to exec its program", || {
        seen = attack::cmdline(pid);
        if seen.is_empty() {
            panic!("the victim's init died after its execve was continued; it printed: {:?} / {:?}", rt.container_stdout(&vid, &v), std::fs::read_to_string(v.scratch(&format!("{vid}.err"))));
        }
        seen.first().map(String::as_str) == Some("sleep")
    });
    attack::assert_not_busy(&copy);
    let result = a.finish("start");
    assert_blocked(kind, &copy, &grab, &result);
    rt.delete_force(&vid).ok();
    drop(agent);
}

// runc 1.1.5: blocked (ETXTBSY, then EROFS), brisk: blocked (EROFS, then EROFS).
//
// `exec`: the exec'd process, still the runtime binary inside the container, is held inside its
// final execve while the attacker opens its exe.
fn attack_5736_held_at_exec_execve(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start(&rt);
    let v = a.victim_bundle().args(&["sleep", "1000"]);
    let sock = v.scratch("agent.sock");
    let v = with_execve_agent(v, &sock);
    let (decision, notified, release) = attack::hold();
    // Session 1: the init's execve of sleep. Session 2: the exec'd process's execve, held.
    let agent = attack::NotifyAgent::listen_sessions(&sock, vec![vec![attack::Decision::Continue], vec![decision]]);
    let vid = rt.new_id("cve5736-victim");
    rt.run_detached(&vid, &v).ok();
    let init = host_pid(&rt, &vid);
    attack::wait_for("the victim's init to run sleep", || attack::cmdline(init).first().map(String::as_str) == Some("sleep"));
    let mut exec = attack::ChildGuard(spawn_quiet(&rt, &["exec", &vid, "true"]));
    let held = notified.recv_timeout(brisk_integration::runtime_cli::WAIT_LIMIT).expect("the exec'd process's execve reached the agent");
    let grab = a.grab(held as i32, "exec");
    drop(release);
    let st = exec.0.wait().expect("wait exec");
    assert!(st.success(), "exec failed: {st}");
    attack::assert_not_busy(&copy);
    let result = a.finish("exec");
    assert_blocked(kind, &copy, &grab, &result);
    rt.delete_force(&vid).ok();
    drop(agent);
}

fn evil_script(b: &Bundle) -> String {
    let name = format!("/{}.sh", unique_name("evil"));
    attack::write_exec(&b.rootfs().join(name.trim_start_matches('/')), "#!/proc/self/exe\n");
    name
}

/// Wait until `script` runs under the runtime binary as `#!/proc/self/exe` (its argv is
/// [interpreter, script]) and return that process's host pid — or return None once it is clear the
/// interpreter never ran: the exec failed and the process that tried is now blocked writing its
/// error to the full pipe, or everything already exited.
fn wait_interpreter(script: &str, victim: &Bundle, exited: &mut dyn FnMut() -> bool) -> Option<i32> {
    // The victim's pids cgroup (v1) or its one cgroup2 directory.
    let procs = brisk_integration::bundle::cgroup_dirs(&victim.cgroups_path())
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no cgroup with cgroup.procs for the victim {}", victim.cgroups_path()));
    let mut found = None;
    let mut gave_up = false;
    attack::wait_for(&format!("{script} to run under /proc/self/exe (or its exec to fail)"), || {
        found = attack::pids_with_arg(script).into_iter().find(|&p| attack::cmdline(p).first().map(String::as_str) == Some("/proc/self/exe"));
        if found.is_some() {
            return true;
        }
        let stuck_on_error = fs::read_to_string(&procs).unwrap_or_default().lines().filter_map(|l| l.trim().parse::<i32>().ok()).any(|p| {
            fs::read_to_string(format!("/proc/{p}/wchan")).is_ok_and(|w| w.contains("pipe_write")) && attack::cmdline(p).iter().all(|a| a != script)
        });
        gave_up = stuck_on_error || exited();
        gave_up
    });
    found
}

// runc 1.1.5: blocked (script exec ENOENT), brisk: blocked (script exec ENOENT).
fn attack_5736_shebang_entrypoint(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start(&rt);
    let v = a.victim_bundle();
    let script = evil_script(&v);
    let v = v.args(&[&script]);
    let vid = rt.new_id("cve5736-victim");
    rt.track(&vid);
    v.write_config();
    let (r, w) = attack::full_pipe();
    let mut create = attack::ChildGuard(spawn_on_pipe(&rt, &["create", "--bundle", path_str(v.path()), &vid], &w));
    drop(w);
    let st = create.0.wait().expect("wait create");
    assert!(st.success(), "create failed: {st}");
    // In the background: `start` returns only once the init has exec'd or died (brisk and runc),
    // and here the init blocks writing to the full pipe.
    let mut start = attack::ChildGuard(spawn_quiet(&rt, &["start", &vid]));
    let pid = wait_interpreter(&script, &v, &mut || rt.status(&vid) == "stopped");
    let grab = pid.map(|pid| a.grab(pid, "entrypoint"));
    // Let the interpreter (or the failed exec) print its error and exit; the container stops.
    let drained = attack::drain(r);
    rt.wait_status(&vid, "stopped");
    let printed = String::from_utf8_lossy(&drained.join().unwrap_or_default()).trim_start_matches('.').to_string();
    let start = start.0.wait().expect("wait start");
    match grab {
        Some(grab) => {
            attack::assert_not_busy(&copy);
            let result = a.finish("entrypoint");
            assert_blocked(kind, &copy, &grab, &result);
        }
        None => never_ran(kind, &copy, &format!("start: {start:?}\ncontainer printed: {printed}")),
    }
    rt.delete_force(&vid).ok();
}

// runc 1.1.5: blocked (script exec ENOENT), brisk: blocked (script exec ENOENT).
fn attack_5736_shebang_exec(kind: Kind) {
    let (rt, copy) = attack::runtime_with_copy(kind);
    let a = Attacker::start(&rt);
    let v = a.victim_bundle();
    let script = evil_script(&v);
    let v = v.sh("echo started; exec sleep 1000");
    let vid = rt.new_id("cve5736-victim");
    rt.run_detached(&vid, &v).ok();
    rt.wait_output(&vid, &v, "started");
    let (r, w) = attack::full_pipe();
    let mut exec = attack::ChildGuard(spawn_on_pipe(&rt, &["exec", &vid, &script], &w));
    drop(w);
    let exec_pid = exec.0.id();
    // The runtime CLI itself may be the one reporting the failed exec (runc does).
    let cli_blocked = || {
        fs::read_dir(format!("/proc/{exec_pid}/task"))
            .map(|rd| rd.flatten().any(|t| fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))))
            .unwrap_or(false)
    };
    let pid = wait_interpreter(&script, &v, &mut || cli_blocked() || exec.0.try_wait().ok().flatten().is_some());
    let grab = pid.map(|pid| a.grab(pid, "exec"));
    let drained = attack::drain(r);
    let st = exec.0.wait().expect("wait exec");
    let printed = String::from_utf8_lossy(&drained.join().unwrap_or_default()).trim_start_matches('.').to_string();
    assert!(!st.success(), "exec of a #!/proc/self/exe script cannot succeed (the runtime binary rejects the script path as a command, or the exec fails)");
    match grab {
        Some(grab) => {
            attack::assert_not_busy(&copy);
            let result = a.finish("exec");
            assert_blocked(kind, &copy, &grab, &result);
        }
        None => never_ran(kind, &copy, &format!("exec: {st}\nprinted: {printed}")),
    }
    rt.delete_force(&vid).ok();
}
