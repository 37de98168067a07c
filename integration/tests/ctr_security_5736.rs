//! CVE-2019-5736 through containerd: a container process must never open the binary that runs
//! inside the container during create, start or exec — the brisk **shim** (containerd-shim-brisk-v2,
//! which re-executes itself as the init helper) or, for the runc shim, `runc` — for writing through
//! `/proc/<pid>/exe`. `tests/cli_security_5736.rs` does the same for the `brisk` CLI.
//!
//! Each test starts a private containerd whose PATH puts a *copy* of the protected binary where the
//! shim finds it (`Options::brisk_shim` / `Options::runc_binary`), so a successful attack damages
//! only the copy; the verdict is on the copy's hash and on what the attacker managed.
//!
//! The attacker container A runs `attack::ATTACK_SH` (steps: open the live exe read-write, hold it
//! read-only, reopen the held fd read-write once nothing executes the binary any more). The victim
//! V joins A's pid namespace. Both are started with `ctr run --config <spec.json>` so the test owns
//! the whole spec: V's hooks, seccomp, namespaces and cgroups path (`/<namespace>/<id>`, where the
//! harness's Drop looks for leftovers). `--config` means no image and no snapshot: `root.path` is an
//! absolute busybox rootfs (`bundle::Bundle`); ctr 1.6.20, 1.7.24 and 2.1.9 all accept that.
//!
//! A always runs on the runc shim. Had it run on the brisk shim, A's own shim would execute the
//! brisk copy for A's whole life, so ETXTBSY would stop step 3 and the read-only overlayfs would
//! never be tested. For the same reason V is deleted (its shim exits) before step 3, and the test checks
//! from the host that the copy has become writable before letting the attacker go on.
//!
//! Each window is held deterministically:
//! * create: a `createRuntime` hook (run by the runtime on the host) reports the state and blocks on
//!   a FIFO that only the test writes to; meanwhile V's init — the shim binary for brisk (stage 1 of
//!   the helper), `runc init` for runc — waits inside the container. The hook's state names the
//!   init's pid; the test checks that its exe is the copy before attacking.
//! * start / exec: V's seccomp sends execve to an `attack::NotifyAgent` (listenerPath) that holds
//!   the runtime's final execve — the init's at start, the exec'd process's at `ctr task exec` —
//!   while the runtime binary is still what the process executes.
//! * `#!/proc/self/exe` entrypoint / exec'd script: the agent lets the runtime's execve of the
//!   script go through and holds the next exit_group of that process, which is still the runtime
//!   binary either way: the script's interpreter if the kernel ran `/proc/self/exe` as one, else the
//!   runtime's init (or exec process) reporting the failed exec. The test tells which from the
//!   held process's argv and attacks it.
//!
//! Results (recorded from runs on this host, kernel 6.18.44, Debian runc 1.1.5+ds1-1+deb12u1; the
//! same on containerd 1.6.20, 1.7.24 and 2.1.9):
//! * `attack_5736_ctr_create` — runc shim: blocked, brisk shim: blocked. runc: opening the live exe
//!   for writing fails with ETXTBSY, the held exe reopened for writing after V and its shim are
//!   gone fails with EROFS (Debian's runc 1.1.5 runs `runc init` from a read-only bind mount).
//!   brisk: both fail with EROFS (its helper is exec'd from the shim binary opened in a detached
//!   read-only overlayfs; `readlink` of the exe shows "/containerd-shim-brisk-v2").
//! * `attack_5736_ctr_create_default_caps` — runc shim: blocked, brisk shim: blocked. Without
//!   CAP_SYS_PTRACE the non-dumpable init's exe cannot even be opened (EACCES).
//! * `attack_5736_ctr_start` — runc shim: blocked, brisk shim: blocked (while held: runc ETXTBSY,
//!   brisk EROFS; EROFS on the reopen).
//! * `attack_5736_ctr_exec` — runc shim: blocked, brisk shim: blocked (while held: runc ETXTBSY,
//!   brisk EROFS; EROFS on the reopen).
//! * `attack_5736_ctr_shebang_entrypoint`, `attack_5736_ctr_shebang_exec` — runc shim: blocked,
//!   brisk shim: blocked. On this kernel the exec of the `#!/proc/self/exe` script fails with ENOENT
//!   for both (runc prints "exec /evil.sh: no such file or directory", brisk
//!   `exec "/evil.sh": ENOENT`), so the binary never runs as the interpreter; the held `runc init` /
//!   `brisk-init` that failed the exec is attacked instead: ETXTBSY (brisk: EROFS), then EROFS. The tests carry the
//!   full attack on the interpreter for kernels where it does run.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use brisk_integration::attack::{self, BinaryCopy, Decision};
use brisk_integration::bundle::{Bundle, DEFAULT_CAPS};
use brisk_integration::containerd::{brisk_shim_binary, ChildGuard, Containerd, Options, Version, BRISK, RUNC};
use brisk_integration::ctr_matrix;
use brisk_integration::runtime_cli::{Kind, WAIT_LIMIT};

ctr_matrix!(
    attack_5736_ctr_create,
    attack_5736_ctr_create_default_caps,
    attack_5736_ctr_start,
    attack_5736_ctr_exec,
    attack_5736_ctr_shebang_entrypoint,
    attack_5736_ctr_shebang_exec,
);

/// One test's world. Field order is drop order: containerd (its Drop kills every container and
/// shim it finds) before the bundles and the binary copy they refer to.
struct Scene {
    cd: Containerd,
    runtime: &'static str,
    attacker: Attacker,
    copy: BinaryCopy,
}

/// The attacker container A (owner of the shared pid namespace), always on the runc shim.
struct Attacker {
    /// Holds the attacker's rootfs and /ctl for as long as the scene lives.
    _bundle: Bundle,
    ctl: PathBuf,
    id: String,
    pid: u32,
}

impl Scene {
    /// A private containerd whose `runtime` runs a copy of its protected binary, and a running
    /// attacker with the default capabilities plus `extra_caps`.
    fn new(version: Version, runtime: &'static str, extra_caps: &[&str]) -> Scene {
        let mut opts = Options::new(version);
        let copy = if runtime == BRISK {
            let src = brisk_shim_binary();
            assert!(src.is_file(), "{} not found (cargo build --release -p containerd-shim-brisk-v2, or set SHIM_BIN)", src.display());
            let copy = BinaryCopy::new(&src);
            opts.brisk_shim = Some(copy.path().to_path_buf());
            copy
        } else {
            let src = attack::default_bin(Kind::Runc);
            assert!(src.is_file(), "{} not found (install runc or set RUNC_BIN)", src.display());
            let copy = BinaryCopy::new(&src);
            opts.runc_binary = Some(copy.path().to_path_buf());
            copy
        };
        let cd = Containerd::start_with(opts).unwrap_or_else(|e| panic!("private containerd {version}: {e}"));

        let mut b = Bundle::new();
        let ctl = attack::ctl_dir(&b, "ctl");
        fs::write(b.rootfs().join("attack.sh"), attack::ATTACK_SH).expect("write attack.sh");
        let mut caps: Vec<&str> = DEFAULT_CAPS.to_vec();
        caps.extend_from_slice(extra_caps);
        b = b.bind(&ctl, "/ctl", &[]).capabilities(&caps).args(&["sleep", "1000"]);
        let id = cd.new_id("cve5736-attacker");
        let spec = write_spec(&cd, &mut b, &id);
        // `ctr run -d` returns once the task has started.
        let args = run_args(&cd, RUNC, &spec, &id, None);
        cd.ctr_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_else(|e| panic!("starting the attacker: {e}\n{}", cd.log_tail(30)));
        let (_, pid, status) = cd.task(&id).expect("ctr task ls").unwrap_or_else(|| panic!("attacker task {id} not listed"));
        assert_eq!(status, "RUNNING", "attacker task {id}");
        Scene { cd, runtime, attacker: Attacker { _bundle: b, ctl, id, pid }, copy }
    }

    fn brisk(&self) -> bool {
        self.runtime == BRISK
    }

    /// A victim bundle whose processes join the attacker's pid namespace.
    fn victim_bundle(&self) -> Bundle {
        let ns = format!("/proc/{}/ns/pid", self.attacker.pid);
        Bundle::new().namespace("pid", Some(&ns)).args(&["sleep", "1000"])
    }

    /// Wire victim `v` to a seccomp agent: execve, execveat and the syscalls in `also` notify it.
    /// The agent serves one session per entry of `before` (one per process that loads the filter,
    /// in order), then one that answers `lead` and holds the notification after those.
    fn agent_victim(&self, v: Bundle, mut before: Vec<Vec<Decision>>, mut lead: Vec<Decision>, also: &[&str]) -> AgentVictim {
        let sock = v.scratch("agent.sock");
        let mut seccomp = attack::execve_notify_seccomp(&sock);
        let names = seccomp["syscalls"][0]["names"].as_array_mut().expect("syscall names");
        names.extend(also.iter().map(|n| serde_json::json!(n)));
        let v = v.set("/linux/seccomp", seccomp);
        let (decision, notified, release) = attack::hold();
        lead.push(decision);
        before.push(lead);
        let agent = attack::NotifyAgent::listen_sessions(&sock, before);
        AgentVictim { v, agent, notified, release }
    }

    /// `ctr run -d --config` of the victim in the background (it blocks while a window is held),
    /// ctr's output to `<bundle>/ctr-run.log`, the container's to [`VICTIM_OUT`].
    fn spawn_victim(&self, v: &mut Bundle, id: &str) -> Background {
        let spec = write_spec(&self.cd, v, id);
        let out = v.scratch(VICTIM_OUT);
        Background::spawn(&self.cd, &run_args(&self.cd, self.runtime, &spec, id, Some(&out)), v.scratch("ctr-run.log"))
    }

    /// Run victim `v` (its init runs sleep) and then, in the background, `ctr task exec` of `cmd`
    /// in it; the init's host pid and the exec's ctr.
    fn run_then_exec(&self, v: &mut Bundle, vid: &str, cmd: &str) -> (i32, Background) {
        self.spawn_victim(v, vid).wait_ok(&self.cd);
        let (_, init, _) = self.cd.task(vid).expect("ctr task ls").unwrap_or_else(|| panic!("victim task {vid} not listed"));
        let init = i32::try_from(init).expect("pid fits i32");
        attack::wait_for("the victim's init to run sleep", || attack::cmdline(init).first().map(String::as_str) == Some("sleep"));
        let args = ["task", "exec", "--fifo-dir", self.cd.fifo_dir_str(), "--exec-id", "victim-exec", vid, cmd];
        (init, Background::spawn(&self.cd, &args.map(String::from), v.scratch("ctr-exec.log")))
    }

    /// Run the attack against `host_pid` (a process in the shared pid namespace) and wait for
    /// steps 1-2 to finish.
    fn grab(&self, host_pid: i32, tag: &str) -> String {
        let inner = attack::inner_pid(host_pid).unwrap_or_else(|| panic!("no NSpid for {host_pid}"));
        let a = &self.attacker;
        // Detached: the script's progress is in /ctl; ctr would otherwise wait for step 3.
        let exec_id = format!("attack-{tag}");
        self.cd
            .ctr_ok(&["task", "exec", "-d", "--exec-id", &exec_id, &a.id, "sh", "/attack.sh", &inner.to_string(), tag])
            .unwrap_or_else(|e| panic!("starting the attack: {e}"));
        attack::read_grab(&a.ctl, tag)
    }

    /// Remove the victim (task and container, so its shim exits), wait until nothing executes the
    /// binary copy, let the attacker try step 3, and judge.
    fn finish(&self, vid: &str, tag: &str, grab: &str) -> String {
        // A victim whose start failed may have no task left.
        if self.cd.task(vid).expect("ctr task ls").is_some() {
            let _ = self.cd.ctr(&["task", "kill", "-s", "SIGKILL", vid]);
            self.cd.wait_task_status(vid, "STOPPED").unwrap_or_else(|e| panic!("victim {vid} stopping: {e}"));
            self.cd.ctr_ok(&["task", "delete", vid]).unwrap_or_else(|e| panic!("deleting task {vid}: {e}"));
        }
        self.cd.ctr_ok(&["containers", "delete", vid]).unwrap_or_else(|e| panic!("deleting container {vid}: {e}"));
        attack::assert_not_busy(&self.copy);
        let result = attack::finish(&self.attacker.ctl, tag);
        let label = format!("{} on containerd {}", self.runtime, self.cd.opts.version);
        attack::assert_blocked(&label, self.brisk(), &self.copy, grab, &result);
        result
    }

    /// With CAP_SYS_PTRACE the attacker holds the exe; for brisk the reopen must then fail with
    /// EROFS, the read-only overlayfs the shim binary is exec'd from being what stands in the way.
    fn assert_read_only_bind(&self, grab: &str, result: &str) {
        if self.brisk() {
            assert!(grab.contains("grab ok"), "with CAP_SYS_PTRACE the attacker should hold the shim binary's exe:\n{grab}");
            assert!(
                result.contains("reopen-rw failed") && result.contains("Read-only file system"),
                "brisk shim: reopening the held exe for writing did not fail with EROFS:\n{grab}\n{result}"
            );
        }
    }

    /// Host-side checks that `host_pid` is a process of victim `vid` (by cgroup) that executes the
    /// protected binary copy; returns how the exe matched.
    fn assert_target(&self, host_pid: i32, vid: &str) -> &'static str {
        let cgroup = fs::read_to_string(format!("/proc/{host_pid}/cgroup")).unwrap_or_else(|e| panic!("reading /proc/{host_pid}/cgroup: {e}"));
        let want = format!("/{}/{vid}", self.cd.namespace);
        assert!(cgroup.lines().any(|l| l.ends_with(&want)), "process {host_pid} is not in victim {vid}'s cgroup {want}:\n{cgroup}");
        attack::exe_is_copy(host_pid, &self.copy).unwrap_or_else(|e| panic!("the held process does not run the binary under test: {e}"))
    }
}

/// A victim bundle wired to a seccomp notify agent, with the agent's held-pid receiver and the
/// sender whose drop releases the held execve.
struct AgentVictim {
    v: Bundle,
    agent: attack::NotifyAgent,
    notified: std::sync::mpsc::Receiver<u32>,
    release: std::sync::mpsc::Sender<()>,
}

/// The victim container's stdout and stderr, in its bundle dir.
const VICTIM_OUT: &str = "victim.out";

/// Point `b` at its absolute rootfs and at the cgroups path ctr itself would use (so the harness
/// finds whatever is left), write it to `<bundle>/spec.json` and return that path.
fn write_spec(cd: &Containerd, b: &mut Bundle, id: &str) -> PathBuf {
    b.config["root"]["path"] = serde_json::json!(b.rootfs().to_str().expect("utf-8 rootfs"));
    b.config["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{id}", cd.namespace));
    let path = b.scratch("spec.json");
    fs::write(&path, serde_json::to_string_pretty(&b.config).expect("spec serialises")).expect("write spec.json");
    path
}

/// `ctr run -d --config` arguments; the container's stdout and stderr go to `log` (a `file://`
/// log URI, which both shims support), or nowhere.
fn run_args(cd: &Containerd, runtime: &str, spec: &Path, id: &str, log: Option<&Path>) -> Vec<String> {
    let mut v: Vec<String> = ["run", "-d", "--runtime", runtime, "--fifo-dir", cd.fifo_dir_str()].map(String::from).to_vec();
    match log {
        Some(p) => v.extend(["--log-uri".to_string(), format!("file://{}", p.display())]),
        None => v.push("--null-io".into()),
    }
    v.extend(["--config".to_string(), spec.to_str().expect("utf-8 spec path").to_string(), id.to_string()]);
    v
}

/// A ctr command running in the background (killed on drop), output in a log file.
struct Background {
    child: ChildGuard,
    log: PathBuf,
    what: String,
}

impl Background {
    fn spawn(cd: &Containerd, args: &[String], log: PathBuf) -> Background {
        let f = fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let f2 = f.try_clone().expect("dup log fd");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = cd.ctr_command(&args).stdin(Stdio::null()).stdout(f).stderr(f2).spawn().expect("spawn ctr");
        Background { child: ChildGuard(child), log, what: format!("ctr {}", args.join(" ")) }
    }

    /// Panics, quoting ctr's output, if ctr has already exited.
    fn assert_running(&mut self, cd: &Containerd) {
        if let Ok(Some(st)) = self.child.0.try_wait() {
            panic!("{} exited early ({st}):\n{}\ncontainerd log:\n{}", self.what, fs::read_to_string(&self.log).unwrap_or_default(), cd.log_tail(30));
        }
    }

    /// Waits for the seccomp agent to report the pid it holds (`what`: the notification awaited);
    /// if it never comes, ctr's own exit usually says why.
    fn await_held(&mut self, cd: &Containerd, notified: &std::sync::mpsc::Receiver<u32>, what: &str) -> i32 {
        let pid = notified.recv_timeout(WAIT_LIMIT).unwrap_or_else(|e| {
            self.assert_running(cd);
            panic!("{what}: {e}")
        });
        i32::try_from(pid).expect("pid fits i32")
    }

    /// Waits for ctr to exit; its status and output.
    fn wait(mut self) -> (Option<std::process::ExitStatus>, String) {
        let st = self.child.wait_timeout(WAIT_LIMIT);
        (st, fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Waits for ctr to exit and requires success.
    fn wait_ok(mut self, cd: &Containerd) {
        let st = self.child.wait_timeout(WAIT_LIMIT);
        assert!(
            st.is_some_and(|s| s.success()),
            "{}: {st:?}\n{}\ncontainerd log:\n{}",
            self.what,
            fs::read_to_string(&self.log).unwrap_or_default(),
            cd.log_tail(30)
        );
    }
}

/// A `createRuntime` hook that opens a FIFO whose only writer is the test, reports the container
/// state to `<bundle>/hook-state.json`, and blocks reading the FIFO until the test releases it.
/// Release (also on drop, so a failed test never leaves the hook — and the create it holds —
/// behind) first renames an empty regular file over the FIFO, so a hook that has not opened it yet
/// reads EOF at once, then closes the writer, which gives EOF to a hook already reading.
struct HookGate {
    state: PathBuf,
    fifo: PathBuf,
    writer: Option<OwnedFd>,
}

impl HookGate {
    fn install(v: Bundle) -> (Bundle, HookGate) {
        let fifo = v.scratch("gate.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo gate");
        // Read+write so the open does not wait for a reader; the test holds the only writer.
        let writer: OwnedFd = fs::OpenOptions::new().read(true).write(true).open(&fifo).expect("open gate fifo").into();
        let state = v.scratch("hook-state.json");
        let script = v.scratch("gate.sh");
        // The FIFO is opened before the state is reported, so once the test sees the state the
        // hook holds the FIFO and only the writer's close releases it.
        attack::write_exec(&script, "#!/bin/sh\nexec 3< \"$2\"\ncat > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\nread -r _ <&3\nexit 0\n");
        let (s, f, st) = (script.to_str().expect("utf-8"), fifo.to_str().expect("utf-8"), state.to_str().expect("utf-8"));
        let v = v.hook("createRuntime", "/bin/sh", &["sh", s, st, f]);
        (v, HookGate { state, fifo, writer: Some(writer) })
    }

    /// Waits for the hook to report and returns the container init's host pid from its state.
    fn wait_pid(&self, ctr: &mut Background, cd: &Containerd) -> i32 {
        attack::wait_for("the createRuntime hook to report the state", || {
            ctr.assert_running(cd);
            self.state.exists()
        });
        let text = fs::read_to_string(&self.state).expect("read hook state");
        let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("hook state is not JSON ({e}): {text}"));
        assert_eq!(state["status"], "creating", "hook state: {state}");
        let pid = state["pid"].as_i64().unwrap_or_else(|| panic!("no pid in hook state {state}"));
        i32::try_from(pid).expect("pid fits i32")
    }

    fn release(&mut self) {
        let Some(writer) = self.writer.take() else { return };
        let plain = self.fifo.with_extension("released");
        if fs::write(&plain, "").is_ok() {
            let _ = fs::rename(&plain, &self.fifo);
        }
        drop(writer);
    }
}

impl Drop for HookGate {
    fn drop(&mut self) {
        self.release();
    }
}

/// The attack while V's init waits inside the container during create, held there by the
/// createRuntime hook; returns the scene and the attacker's two reports.
fn attack_at_create(version: Version, runtime: &'static str, extra_caps: &[&str]) -> (Scene, String, String) {
    let s = Scene::new(version, runtime, extra_caps);
    let (mut v, mut gate) = HookGate::install(s.victim_bundle());
    let vid = s.cd.new_id("cve5736-victim");
    let mut run = s.spawn_victim(&mut v, &vid);
    let pid = gate.wait_pid(&mut run, &s.cd);
    let how = s.assert_target(pid, &vid);
    eprintln!("create window: init {pid} executes {how}");
    let grab = s.grab(pid, "create");
    gate.release();
    run.wait_ok(&s.cd);
    let result = s.finish(&vid, "create", &grab);
    (s, grab, result)
}

// Both shims: blocked (runc ETXTBSY, brisk EROFS while the init waits; EROFS on the reopen).
fn attack_5736_ctr_create(version: Version, runtime: &'static str) {
    let (s, grab, result) = attack_at_create(version, runtime, attack::ATTACKER_CAPS);
    s.assert_read_only_bind(&grab, &result);
}

// Both shims: blocked (EACCES: without CAP_SYS_PTRACE the non-dumpable init's exe cannot be opened).
fn attack_5736_ctr_create_default_caps(version: Version, runtime: &'static str) {
    let (_s, grab, _) = attack_at_create(version, runtime, &[]);
    assert!(grab.contains("grab failed"), "a container process without CAP_SYS_PTRACE opened the non-dumpable init's exe:\n{grab}");
}

// Both shims: blocked (runc ETXTBSY, brisk EROFS while the init's execve is held; EROFS on the reopen).
fn attack_5736_ctr_start(version: Version, runtime: &'static str) {
    let s = Scene::new(version, runtime, attack::ATTACKER_CAPS);
    let AgentVictim { mut v, agent, notified, release } = s.agent_victim(s.victim_bundle(), Vec::new(), Vec::new(), &[]);
    let vid = s.cd.new_id("cve5736-victim");
    let mut run = s.spawn_victim(&mut v, &vid);
    let held = run.await_held(&s.cd, &notified, "the init's execve never reached the seccomp agent");
    let how = s.assert_target(held, &vid);
    eprintln!("start window: execve of {held} held; it executes {how}");
    let grab = s.grab(held, "start");
    drop(release);
    run.wait_ok(&s.cd);
    let (_, pid, _) = s.cd.task(&vid).expect("ctr task ls").unwrap_or_else(|| panic!("victim task {vid} not listed"));
    attack::wait_for("the victim to exec its program", || attack::cmdline(i32::try_from(pid).expect("pid fits i32")).first().map(String::as_str) == Some("sleep"));
    let result = s.finish(&vid, "start", &grab);
    s.assert_read_only_bind(&grab, &result);
    // runc's Go init may see its held execve interrupted (SIGURG) and restarted: the agent then
    // answers the same execve more than once.
    let reports = agent.reports();
    let report = &reports[0];
    assert!(
        !report.syscalls.is_empty() && report.syscalls.iter().all(|&nr| i64::from(nr) == libc::SYS_execve),
        "the agent answered something other than the init's execve: {:?}",
        report.syscalls
    );
}

// Both shims: blocked (runc ETXTBSY, brisk EROFS while the exec'd process's execve is held; EROFS on the reopen).
fn attack_5736_ctr_exec(version: Version, runtime: &'static str) {
    let s = Scene::new(version, runtime, attack::ATTACKER_CAPS);
    // Session 1: the init's execve of sleep, let through. Session 2: the exec'd process's, held.
    let AgentVictim { mut v, agent, notified, release } = s.agent_victim(s.victim_bundle(), vec![vec![Decision::Continue]], Vec::new(), &[]);
    let vid = s.cd.new_id("cve5736-victim");
    let (init, mut exec) = s.run_then_exec(&mut v, &vid, "true");
    let held = exec.await_held(&s.cd, &notified, "the exec'd process's execve never reached the seccomp agent");
    assert_ne!(held, init, "the held execve is the init's, not the exec'd process's");
    let how = s.assert_target(held, &vid);
    eprintln!("exec window: execve of {held} held; it executes {how}");
    let grab = s.grab(held, "exec");
    drop(release);
    exec.wait_ok(&s.cd);
    let result = s.finish(&vid, "exec", &grab);
    s.assert_read_only_bind(&grab, &result);
    let reports = agent.reports();
    assert_eq!(reports.len(), 2, "one agent session for the init, one for the exec");
}

/// The victim's `#!/proc/self/exe` script: executing it makes the kernel run the binary that does
/// the execve — the runtime's — as the script's interpreter (the CVE's entry point).
const EVIL: &str = "/evil.sh";

fn with_evil_script(v: Bundle) -> Bundle {
    attack::write_exec(&v.rootfs().join(EVIL.trim_start_matches('/')), "#!/proc/self/exe\n");
    v
}

/// Whether `host_pid` is the runtime binary running as the interpreter of [`EVIL`] (argv
/// `/proc/self/exe /evil.sh`) rather than the runtime's own process that tried to exec it.
fn is_interpreter(host_pid: i32) -> bool {
    let argv = attack::cmdline(host_pid);
    argv.first().map(String::as_str) == Some("/proc/self/exe") && argv.iter().any(|a| a == EVIL)
}

/// The shebang windows hold whatever runs the runtime binary last at its exit_group — the script's
/// interpreter, or, if the kernel cannot resolve `/proc/self/exe` as an interpreter, the runtime
/// process whose exec failed — and attack it there. Returns whether it was the interpreter, and
/// the attacker's grab report.
fn grab_shebang(s: &Scene, held: i32, vid: &str, tag: &str) -> (bool, String) {
    let interpreter = is_interpreter(held);
    let how = s.assert_target(held, vid);
    eprintln!("{tag}: {held} {:?} held at exit_group (the script's interpreter: {interpreter}); it executes {how}", attack::cmdline(held));
    (interpreter, s.grab(held, tag))
}

/// After the held process has gone on: if the runtime binary never ran as the interpreter, the
/// exec must have failed for the missing interpreter (as `printed` says); then the usual verdict.
fn judge_shebang(s: &Scene, vid: &str, tag: &str, interpreter: bool, grab: &str, printed: &str) {
    eprintln!("{tag}: printed: {printed}");
    if !interpreter {
        assert!(printed.to_lowercase().contains("no such file"), "the script's exec failed for another reason than a missing interpreter: {printed}");
    }
    let result = s.finish(vid, tag, grab);
    s.assert_read_only_bind(grab, &result);
}

// runc shim: blocked, brisk shim: blocked (the script's exec fails with ENOENT; the runtime's init,
// held at its exit, is attacked instead: ETXTBSY (brisk: EROFS), then EROFS).
fn attack_5736_ctr_shebang_entrypoint(version: Version, runtime: &'static str) {
    let s = Scene::new(version, runtime, attack::ATTACKER_CAPS);
    let v = with_evil_script(s.victim_bundle()).args(&[EVIL]);
    // The runtime's execve of the script goes through; the next exit_group is held.
    let AgentVictim { mut v, agent, notified, release } = s.agent_victim(v, Vec::new(), vec![Decision::Continue], &["exit_group"]);
    let vid = s.cd.new_id("cve5736-victim");
    let mut run = s.spawn_victim(&mut v, &vid);
    let held = run.await_held(&s.cd, &notified, "no exit_group after the script's execve reached the seccomp agent");
    let (interpreter, grab) = grab_shebang(&s, held, &vid, "entrypoint");
    drop(release);
    // Both shims report `start` done before the exec's outcome is known; the outcome is the
    // container's exit and what it printed.
    let (st, out) = run.wait();
    eprintln!("entrypoint: ctr run {st:?}: {out}");
    if s.cd.task(&vid).expect("ctr task ls").is_some() {
        s.cd.wait_task_status(&vid, "STOPPED").unwrap_or_else(|e| panic!("victim {vid} stopping: {e}"));
    }
    let printed = fs::read_to_string(v.scratch(VICTIM_OUT)).unwrap_or_default();
    judge_shebang(&s, &vid, "entrypoint", interpreter, &grab, &format!("{out}{printed}"));
    drop(agent);
}

// runc shim: blocked, brisk shim: blocked (the script's exec fails with ENOENT; the runtime's exec
// process, held at its exit, is attacked instead: ETXTBSY (brisk: EROFS), then EROFS).
fn attack_5736_ctr_shebang_exec(version: Version, runtime: &'static str) {
    let s = Scene::new(version, runtime, attack::ATTACKER_CAPS);
    let v = with_evil_script(s.victim_bundle());
    // Session 1: the init's execve of sleep. Session 2: the exec'd process's execve of the script
    // goes through; its next exit_group is held.
    let AgentVictim { mut v, agent, notified, release } =
        s.agent_victim(v, vec![vec![Decision::Continue]], vec![Decision::Continue], &["exit_group"]);
    let vid = s.cd.new_id("cve5736-victim");
    let (init, mut exec) = s.run_then_exec(&mut v, &vid, EVIL);
    let held = exec.await_held(&s.cd, &notified, "no exit_group after the exec'd script's execve reached the seccomp agent");
    assert_ne!(held, init, "the held exit_group is the init's, not the exec'd process's");
    let (interpreter, grab) = grab_shebang(&s, held, &vid, "exec");
    drop(release);
    let (st, out) = exec.wait();
    assert!(!st.is_some_and(|s| s.success()), "ctr task exec of {EVIL} cannot succeed (the runtime binary rejects it as a command, or the exec fails): {st:?} {out}");
    judge_shebang(&s, &vid, "exec", interpreter, &grab, &out);
    drop(agent);
}
