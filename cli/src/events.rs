//! `brisk events [--stats] [--interval DURATION] ID`: runc 1.1.5's `events`.
//!
//! `--stats` prints one `{"type":"stats","id":...,"data":{...}}` object and exits; without it, a stats
//! object is printed every interval (default 5s) and an `{"type":"oom","id":...}` object whenever the
//! container's memory cgroup reports an OOM kill, until the container stops. `data` has runc's
//! layout (libcontainer types.Stats: cpu, memory, pids, blkio, hugetlb), with zero values omitted
//! where runc's JSON tags omit them.
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use brisk_runtime::cgroups::stats::BlkioEntry;
use brisk_runtime::cgroups::{OomEvent, Stats};
use brisk_runtime::{Runtime, Status};
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("events: {0}")]
    Usage(String),
    #[error("events: --interval: {0:?} is not a duration (e.g. 5s, 500ms, 1m)")]
    Interval(String),
    #[error("events: writing to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("events: poll: {0}")]
    Poll(#[source] nix::Error),
    #[error(transparent)]
    Runtime(#[from] brisk_runtime::Error),
}

/// "5s", "500ms", "1m", "2h", "1.5s" (Go's time.ParseDuration subset runc's flag takes).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

fn put(m: &mut Map<String, Value>, k: &str, v: u64) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

fn entries(list: &[BlkioEntry]) -> Value {
    Value::Array(
        list.iter()
            .map(|e| {
                let mut m = Map::new();
                put(&mut m, "major", e.major);
                put(&mut m, "minor", e.minor);
                if !e.op.is_empty() {
                    m.insert("op".into(), json!(e.op));
                }
                put(&mut m, "value", e.value);
                Value::Object(m)
            })
            .collect(),
    )
}

fn mem_entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    let mut m = Map::new();
    m.insert("limit".into(), json!(limit));
    put(&mut m, "usage", usage);
    put(&mut m, "max", max);
    m.insert("failcnt".into(), json!(failcnt));
    Value::Object(m)
}

/// runc's types.Stats JSON for `s`.
pub fn runc_stats(s: &Stats) -> Value {
    let mut usage = Map::new();
    put(&mut usage, "total", s.cpu.usage_total);
    if !s.cpu.per_cpu.is_empty() {
        usage.insert("percpu".into(), json!(s.cpu.per_cpu));
    }
    usage.insert("kernel".into(), json!(s.cpu.usage_kernel));
    usage.insert("user".into(), json!(s.cpu.usage_user));
    let mut thr = Map::new();
    put(&mut thr, "periods", s.cpu.periods);
    put(&mut thr, "throttledPeriods", s.cpu.throttled_periods);
    put(&mut thr, "throttledTime", s.cpu.throttled_time);
    let m = &s.memory;
    let mut mem = Map::new();
    put(&mut mem, "cache", m.cache);
    mem.insert("usage".into(), mem_entry(m.limit, m.usage, m.max_usage, m.failcnt));
    mem.insert("swap".into(), mem_entry(m.swap_limit, m.swap_usage, m.swap_max_usage, m.swap_failcnt));
    mem.insert("kernel".into(), mem_entry(m.kernel_limit, m.kernel_usage, m.kernel_max_usage, m.kernel_failcnt));
    mem.insert("kernelTCP".into(), mem_entry(0, 0, 0, 0));
    if !m.raw.is_empty() {
        mem.insert("raw".into(), json!(m.raw));
    }
    let mut pids = Map::new();
    put(&mut pids, "current", s.pids.current);
    put(&mut pids, "limit", s.pids.limit);
    let mut blkio = Map::new();
    if !s.blkio.io_service_bytes_recursive.is_empty() {
        blkio.insert("ioServiceBytesRecursive".into(), entries(&s.blkio.io_service_bytes_recursive));
    }
    if !s.blkio.io_serviced_recursive.is_empty() {
        blkio.insert("ioServicedRecursive".into(), entries(&s.blkio.io_serviced_recursive));
    }
    let mut huge = Map::new();
    for h in &s.hugetlb {
        let mut e = Map::new();
        put(&mut e, "usage", h.usage);
        put(&mut e, "max", h.max_usage);
        e.insert("failcnt".into(), json!(h.failcnt));
        huge.insert(h.pagesize.clone(), Value::Object(e));
    }
    json!({
        "cpu": {"usage": usage, "throttling": thr},
        "memory": mem,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": huge,
    })
}

/// runc's types.Event. A struct, not a json! map (which serde_json sorts), because the field order
/// is part of the output: runc's events.bats matches lines starting `{"type":"stats","id":...`.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

fn print(e: &Event<'_>) -> Result<(), EventsError> {
    let line = serde_json::to_string(e).map_err(|e| EventsError::Stdout(e.into()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(EventsError::Stdout)
}

/// Entry point: `args` are the words after `events`.
pub fn run(root: &Path, args: &[String]) -> Result<i32, EventsError> {
    let mut stats_only = false;
    let mut interval = Duration::from_secs(5);
    let mut id = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--stats" | "-stats" => stats_only = true,
            "--interval" | "-interval" => {
                i += 1;
                let v = args.get(i).ok_or_else(|| EventsError::Usage("--interval needs a value".into()))?;
                interval = parse_duration(v).ok_or_else(|| EventsError::Interval(v.clone()))?;
            }
            _ if a.starts_with("--interval=") => {
                let v = &a["--interval=".len()..];
                interval = parse_duration(v).ok_or_else(|| EventsError::Interval(v.into()))?;
            }
            _ if a.starts_with('-') => return Err(EventsError::Usage(format!("unknown flag {a:?}"))),
            _ if id.is_none() => id = Some(a.to_string()),
            _ => return Err(EventsError::Usage(format!("unexpected argument {a:?}"))),
        }
        i += 1;
    }
    let id = id.ok_or_else(|| EventsError::Usage("missing container id".into()))?;
    let c = Runtime::new(root)?.load(&id)?;
    if c.status() == Status::Stopped {
        return Err(brisk_runtime::Error::WrongStatus { id, status: "stopped".into(), op: "get events" }.into());
    }
    let print_stats = |c: &brisk_runtime::Container| -> Result<(), EventsError> { print(&Event { kind: "stats", id: c.id(), data: Some(runc_stats(&c.stats()?)) }) };
    if stats_only {
        print_stats(&c)?;
        return Ok(0);
    }
    let mut oom = c.oom_watch().ok();
    loop {
        if c.status() == Status::Stopped {
            return Ok(0);
        }
        print_stats(&c)?;
        let deadline = std::time::Instant::now() + interval;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(w) = oom.as_mut() else {
                std::thread::sleep(left);
                break;
            };
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(w.as_fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(EventsError::Poll(e)),
            }
            match w.read() {
                Ok(Some(OomEvent::Oom { .. })) => print(&Event { kind: "oom", id: c.id(), data: None })?,
                Ok(Some(OomEvent::Gone)) | Err(_) => oom = None,
                Ok(None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_field_order_is_runcs() {
        let e = Event { kind: "stats", id: "c1", data: Some(json!({"pids": {"current": 1}})) };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"stats","id":"c1","data":{"pids":{"current":1}}}"#);
        let e = Event { kind: "oom", id: "c1", data: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"oom","id":"c1"}"#);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("0s"), None);
    }

    #[test]
    fn runc_layout() {
        let mut s = Stats::default();
        s.cpu.usage_total = 10;
        s.memory.usage = 20;
        s.memory.limit = 30;
        s.pids.current = 2;
        let v = runc_stats(&s);
        assert_eq!(v["cpu"]["usage"]["total"], 10);
        assert_eq!(v["memory"]["usage"], json!({"limit": 30, "usage": 20, "failcnt": 0}));
        assert_eq!(v["pids"], json!({"current": 2}));
        assert!(v["cpu"]["throttling"].as_object().unwrap().is_empty());
    }
}
