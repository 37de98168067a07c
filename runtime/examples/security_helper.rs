//! Test helper for runtime/tests/security_*.rs: a fresh single-threaded process that does what a
//! container init does last — `finalize_process` — and then execs a command, so the tests can look at
//! the result from the outside (/proc/self/status, a syscall failing) without ever forking the
//! multi-threaded test harness.
//!
//! Usage: `security_helper <config.json>` where the file holds
//! `{"process": {...}, "seccomp": {...}|null, "cacheDir": "..."|null, "state": {...}|null, "argv": [...]}`.
//! Exit status 121 means finalize (or sending the notify fd) failed; the error is on stderr.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::PathBuf;

use brisk_runtime::security::{self, SeccompProgram};
use oci_spec::runtime::{LinuxSeccomp, Process};

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Debug
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("{}: {}", r.level(), r.args());
    }
    fn flush(&self) {}
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    process: Process,
    seccomp: Option<LinuxSeccomp>,
    cache_dir: Option<PathBuf>,
    state: Option<serde_json::Value>,
    argv: Vec<String>,
}

fn run() -> Result<std::convert::Infallible, String> {
    let path = std::env::args().nth(1).ok_or("usage: security_helper <config.json>")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    security::validate_process_json(&raw["process"]).map_err(|e| e.to_string())?;
    if let Some(s) = raw.get("seccomp").filter(|s| !s.is_null()) {
        security::validate_seccomp_json(s).map_err(|e| e.to_string())?;
    }
    let cfg: Config = serde_json::from_value(raw).map_err(|e| format!("{path}: {e}"))?;
    security::validate(&cfg.process, cfg.seccomp.as_ref()).map_err(|e| e.to_string())?;

    let argv: Vec<CString> =
        cfg.argv.iter().map(|a| CString::new(a.as_str())).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let program = argv.first().cloned().ok_or("argv is empty")?;

    // With a cache dir, compile through the cache first (as the runtime would before pivot_root);
    // without one, let finalize_process compile in place.
    let notify_fd = match (&cfg.seccomp, &cfg.cache_dir) {
        (Some(s), Some(dir)) => {
            let prog = SeccompProgram::prepare(s, Some(dir)).map_err(|e| e.to_string())?;
            security::finalize_process_with(&cfg.process, Some(&prog))
        }
        (s, _) => security::finalize_process(&cfg.process, s.as_ref()),
    }
    .map_err(|e| e.to_string())?;

    if let Some(fd) = notify_fd {
        let s = cfg.seccomp.as_ref().ok_or("notify fd without a profile")?;
        let listener = s.listener_path().as_ref().ok_or("notify fd without listenerPath")?;
        let state = cfg.state.ok_or("notify needs a state")?.to_string();
        security::send_to_listener(listener, fd.as_fd(), &state, s.listener_metadata().as_deref())
            .map_err(|e| e.to_string())?;
        // The agent has its copy; ours must not leak into the exec'd program.
        drop(fd);
    }
    nix::unistd::execv(&program, &argv).map_err(|e| format!("execv {}: {e}", cfg.argv[0]))
}

fn main() {
    let _ = log::set_logger(&StderrLog);
    log::set_max_level(log::LevelFilter::Debug);
    let e = match run() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("security_helper: {e}");
    std::process::exit(121);
}
