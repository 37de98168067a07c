//! Drop-in details where brisk differed from runc 1.1.5 (issue 17): the terminal checks, the default
//! cgroup placement, a memory limit too low to start, help output, `list`'s table, real-time
//! signals. Each case runs against runc and brisk.
//!
//! INTENDED_DIFFERENCES:
//! * Real-time signal names (`RTMIN+3`, `SIGRTMIN+3`, `RTMAX-1`): runc 1.1.5 knows only the 31
//!   standard names and refuses them as "unknown signal"; brisk accepts them (kill(1)'s and
//!   podman's spelling). Numbers 1..64 work in both.
//! * Messages: where runc says only what failed, brisk's message also says what to do about it
//!   ("or set terminal to false") or why (the OOM kill of the init for a memory limit too low).

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use brisk_integration::bundle::{cgroup_dirs, Bundle};
use brisk_integration::containerd::brisk_shim_binary;
use brisk_integration::runtime_cli::{path_str, CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;
use serde_json::json;

runtime_tests!(
    terminal_in_the_foreground_needs_a_terminal,
    terminal_when_detached_needs_a_console_socket,
    default_cgroup_is_under_the_callers_cgroup,
    memory_limit_too_low_to_start,
    help_for_every_command,
    list_table_is_aligned_like_runc,
    realtime_signals,
);

/// `shared`: substrings both runc and brisk print (case-insensitive). `brisk_only`: what brisk must
/// also say.
#[track_caller]
fn expect_message(rt: &RuntimeUnderTest, r: &CmdResult, shared: &[&str], brisk_only: &[&str]) {
    let err = r.stderr.to_lowercase();
    let mut want: Vec<&str> = shared.to_vec();
    if !rt.is_runc() {
        want.extend_from_slice(brisk_only);
    }
    for w in want {
        assert!(err.contains(&w.to_lowercase()), "`{}`: stderr does not mention {w:?}:\n{}", r.cmdline, r.stderr);
    }
}

#[track_caller]
fn assert_nothing_left(rt: &RuntimeUnderTest, id: &str, b: &Bundle) {
    rt.assert_nothing_left(id);
    let left: Vec<_> = cgroup_dirs(&b.cgroups_path()).into_iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroup dirs left behind: {left:?}");
}

/// Item 8: `terminal: true`, foreground `run`, no `--console-socket`, and no terminal anywhere
/// (stdin a pipe, stdout/stderr captured, a new session without a controlling terminal). runc
/// (setupIO → initHostConsole) fails with "open /dev/tty: no such device or address" before
/// creating anything.
fn terminal_in_the_foreground_needs_a_terminal(rt: &RuntimeUnderTest) {
    let b = Bundle::new().terminal(true).args(&["echo", "hello"]);
    b.write_config();
    let id = rt.new_id("ttyfg");
    let mut cmd = rt.command();
    cmd.args(["run", "--bundle", path_str(b.path()), &id]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setsid(2) only, between fork and exec: async-signal-safe. A new session has no
    // controlling terminal, whatever terminal the test itself was started from.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let out = cmd.output().expect("spawning the runtime");
    let r = CmdResult { status: out.status, stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into(), cmdline: format!("{} run {id} (no terminal)", rt.bin().display()) };
    let r = r.failed();
    expect_message(rt, &r, &["/dev/tty", "no such device or address"], &["set terminal to false"]);
    assert!(!r.stdout.contains("hello"), "the container ran: {}", r.stdout);
    assert_nothing_left(rt, &id, &b);
}

/// Item 16: `terminal: true` with `create` or `run -d` and no `--console-socket`: runc's
/// checkTerminal refuses before anything exists; brisk also says how to fix it.
fn terminal_when_detached_needs_a_console_socket(rt: &RuntimeUnderTest) {
    let b = Bundle::new().terminal(true).args(&["sleep", "10"]);
    for detach in [&["create"][..], &["run", "-d"]] {
        let id = rt.new_id("ttybg");
        rt.track(&id);
        b.write_config();
        let mut args = detach.to_vec();
        args.extend(["--bundle", path_str(b.path()), &id]);
        let r = rt.cmd_to_files(&args, &b, &id).failed();
        expect_message(rt, &r, &["cannot allocate tty", "without setting console socket"], &["--console-socket", "or set terminal to false"]);
        assert_nothing_left(rt, &id, &b);
    }
}

/// One `/proc/<pid>/cgroup` as (controllers, path) pairs.
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// Item 9: no `linux.cgroupsPath`. runc names the cgroup after the container and resolves that as
/// a relative path: `<caller's cgroup>/<id>` in each hierarchy (on this CI host the caller's
/// memory cgroup is not the root, so `/<id>` is visibly different).
fn default_cgroup_is_under_the_callers_cgroup(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh("echo ready; sleep 100").remove("/linux/cgroupsPath");
    let id = rt.new_id("cgdef");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "ready");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let theirs = cgroup_lines(&fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("container's cgroup"));
    let ours = cgroup_lines(&fs::read_to_string("/proc/self/cgroup").expect("own cgroup"));
    // The unified hierarchy of a pure v2 host is the one place runc uses the parent of the caller's
    // cgroup (its fs2 rule); this hybrid or v1 host has none.
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut checked = 0;
    for (ctrls, own) in &ours {
        let base = if unified && ctrls.is_empty() { std::path::Path::new(own).parent().map_or("/".into(), |p| p.display().to_string()) } else { own.clone() };
        let want = format!("{}/{id}", base.trim_end_matches('/'));
        let got = theirs.iter().find(|(c, _)| c == ctrls).map(|(_, p)| p.as_str());
        assert_eq!(got, Some(want.as_str()), "hierarchy {ctrls:?}: container in {got:?}, want {want} (caller in {own})\ncontainer:\n{theirs:?}");
        checked += 1;
    }
    assert!(checked > 0, "no hierarchy in /proc/self/cgroup");
    rt.delete_force(&id).ok();
    for (_, own) in &ours {
        for d in cgroup_dirs(&format!("{own}/{id}")) {
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
}

/// Item 11: a memory limit (256 KiB) below what the init needs. runc writes the limit once its
/// init is in the cgroup and reports "unable to set memory limit to 262144 (current usage: …)";
/// brisk's init is OOM-killed, and brisk must say that the memory limit is the cause.
fn memory_limit_too_low_to_start(rt: &RuntimeUnderTest) {
    let b = Bundle::new().args(&["true"]).set("/linux/resources/memory", json!({"limit": 262144}));
    let id = rt.new_id("memlow");
    let r = rt.create(&id, &b).failed();
    expect_message(rt, &r, &["memory limit", "262144"], &["oom-killed", "linux.resources.memory.limit"]);
    assert_nothing_left(rt, &id, &b);
}

/// (command, flag spellings its help must show in both runtimes)
const HELP: &[(&str, &[&str])] = &[
    ("create", &["--bundle value, -b value", "--console-socket value", "--pid-file value", "--no-pivot", "--no-new-keyring", "--preserve-fds value"]),
    ("run", &["--bundle value, -b value", "--console-socket value", "--detach, -d", "--keep", "--pid-file value", "--no-subreaper", "--no-pivot", "--no-new-keyring", "--preserve-fds value"]),
    ("start", &[]),
    ("state", &[]),
    ("kill", &["--all, -a"]),
    ("delete", &["--force, -f"]),
    ("list", &["--format value, -f value", "--quiet, -q"]),
    ("ps", &["--format value, -f value"]),
    (
        "exec",
        &[
            "--console-socket value", "--cwd value", "--env value, -e value", "--tty, -t", "--user value, -u value", "--additional-gids value, -g value",
            "--process value, -p value", "--detach, -d", "--pid-file value", "--process-label value", "--apparmor value", "--no-new-privs", "--cap value, -c value",
            "--preserve-fds value", "--cgroup value", "--ignore-paused",
        ],
    ),
    ("pause", &[]),
    ("resume", &[]),
    ("update", &["--resources value, -r value", "--memory value", "--memory-swap value", "--cpu-share value", "--cpu-quota value", "--cpuset-cpus value", "--pids-limit value", "--blkio-weight value"]),
    ("events", &["--interval value", "--stats"]),
    ("spec", &["--bundle value, -b value", "--rootless"]),
    ("features", &[]),
];

/// Item 14: `CMD --help`, `CMD -h` and `help CMD` print the same usage with every flag to stdout
/// and exit 0; `--help`, `-h`, `help` and no arguments at all list the commands and global flags.
fn help_for_every_command(rt: &RuntimeUnderTest) {
    for (cmd, flags) in HELP {
        let long = rt.cmd(&[cmd, "--help"]).ok();
        for (what, r) in [("-h", rt.cmd(&[cmd, "-h"]).ok()), ("help", rt.cmd(&["help", cmd]).ok())] {
            assert_eq!(r.stdout, long.stdout, "`{cmd} {what}` and `{cmd} --help` differ");
        }
        assert!(long.stdout.contains("USAGE:") && long.stdout.contains(&format!(" {cmd} ")), "`{cmd} --help`:\n{}", long.stdout);
        for f in *flags {
            assert!(long.stdout.contains(f), "`{cmd} --help` does not list {f:?}:\n{}", long.stdout);
        }
    }
    let main = rt.cmd(&["--help"]).ok();
    for other in [rt.cmd(&["-h"]).ok(), rt.cmd(&["help"]).ok(), rt.cmd(&[]).ok()] {
        assert_eq!(other.stdout, main.stdout, "`{}` differs from --help", other.cmdline);
    }
    for (cmd, _) in HELP {
        assert!(main.stdout.lines().any(|l| l.trim_start().starts_with(cmd)), "`--help` does not list {cmd}:\n{}", main.stdout);
    }
    // urfave/cli's wording for a help topic that does not exist (runc's help.bats checks it).
    for args in [&["foo", "-h"][..], &["help", "foo"]] {
        let r = rt.cmd(args).failed();
        expect_message(rt, &r, &["No help topic for 'foo'"], &[]);
    }
    for f in ["--debug", "--log value", "--log-format value", "--root value", "--systemd-cgroup", "--help, -h", "--version, -v"] {
        assert!(main.stdout.contains(f), "`--help` does not list {f}:\n{}", main.stdout);
    }
}

/// Item 14, the shim: `containerd-shim-*-v2 -h` / `--help` prints Go's flag usage (stderr) and
/// exits 0, listing the flags containerd passes.
fn shim_help(bin: &std::path::Path) {
    for flag in ["-h", "--help", "-help"] {
        let out = Command::new(bin).arg(flag).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "`{} {flag}`: {}\n{text}", bin.display(), out.status);
        for f in ["Usage of ", "-address string", "-bundle string", "-debug", "-id string", "-namespace string", "-publish-binary string", "-socket string", "-v"] {
            assert!(text.contains(f), "`{} {flag}` does not list {f:?}:\n{text}", bin.display());
        }
    }
}

#[test]
fn shim_help_runc() {
    shim_help(std::path::Path::new("/usr/bin/containerd-shim-runc-v2"));
}

#[test]
fn shim_help_brisk() {
    shim_help(&brisk_shim_binary());
}

/// Go's tabwriter as runc's `list` sets it up (minwidth 12, tabwidth 1, padding 3, spaces): each
/// column but the last is its widest cell plus 3, at least 12.
fn tabwriter(rows: &[Vec<String>]) -> String {
    let n = rows[0].len();
    let mut widths = vec![12usize; n];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count() + 3);
        }
    }
    rows.iter()
        .map(|r| {
            let mut line: String = r[..n - 1].iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            line.push_str(&r[n - 1]);
            line + "\n"
        })
        .collect()
}

/// Item 15: `list`'s table, byte for byte as runc lays it out, for the values `list --format json`
/// reports (so only the layout is compared): an empty root, and a short plus a long id.
fn list_table_is_aligned_like_runc(rt: &RuntimeUnderTest) {
    let header = || vec!["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(rt.cmd(&["list"]).ok().stdout, tabwriter(&[header()]));
    let b = Bundle::new().sh("echo ready; sleep 100");
    let short = rt.new_id("l");
    let long = rt.new_id("a-container-id-longer-than-any-column-of-the-table");
    for id in [&short, &long] {
        rt.run_detached(id, &b).ok();
        rt.wait_output(id, &b, "ready");
    }
    let r = rt.cmd(&["list"]).ok();
    let mut rows = vec![header()];
    for c in rt.list_json() {
        let s = |k: &str| c[k].as_str().map_or_else(|| c[k].to_string(), str::to_owned);
        rows.push(vec![s("id"), s("pid"), s("status"), s("bundle"), s("created"), s("owner")]);
    }
    assert_eq!(rows.len(), 3, "list --format json: {rows:?}");
    assert_eq!(r.stdout, tabwriter(&rows), "`list` layout differs from runc's tabwriter");
    for id in [&short, &long] {
        rt.delete_force(id).ok();
    }
}

/// Item 17: real-time signals by number (podman's `kill -s 64`), 34 (SIGRTMIN) to 64, reach the
/// process; runc's standard names still work. brisk also takes RTMIN+n / RTMAX-n names.
fn realtime_signals(rt: &RuntimeUnderTest) {
    let b = Bundle::new().sh(concat!(
        "for s in 34 35 37 50 63 64; do trap \"echo got-$s\" $s; done; ",
        "echo ready; while :; do sleep 0.05 & wait $!; done"
    ));
    let id = rt.new_id("rtsig");
    rt.run_detached(&id, &b).ok();
    rt.wait_output(&id, &b, "ready");
    for n in ["64", "34", "50"] {
        rt.kill(&id, Some(n)).ok();
        rt.wait_output(&id, &b, &format!("got-{n}\n"));
    }
    // Names: runc 1.1.5 refuses them (see INTENDED_DIFFERENCES), brisk delivers them.
    for (name, n) in [("RTMIN+3", 37), ("SIGRTMIN+1", 35), ("rtmax-1", 63)] {
        let r = rt.kill(&id, Some(name));
        if rt.is_runc() {
            expect_message(rt, &r.failed(), &["unknown signal"], &[]);
        } else {
            r.ok();
            rt.wait_output(&id, &b, &format!("got-{n}\n"));
        }
    }
    assert_eq!(rt.status(&id), "running");
    rt.kill(&id, Some("SIGKILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
}
