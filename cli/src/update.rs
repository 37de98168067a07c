//! `brisk update [flags] ID`: runc 1.1.5's `update` (change a container's cgroup limits live).
//!
//! Either `-r/--resources FILE` (OCI LinuxResources JSON, `-` for stdin) or the individual flags:
//! --memory, --memory-reservation, --memory-swap (sizes with runc's units: 128m, 1G, -1), --cpu-share
//! (runc's spelling; --cpu-shares accepted too), --cpu-quota, --cpu-period, --cpu-rt-period,
//! --cpu-rt-runtime, --cpuset-cpus, --cpuset-mems, --blkio-weight, --pids-limit. Only the fields given
//! change.
use std::io::Read;
use std::path::{Path, PathBuf};

use brisk_runtime::Runtime;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("update: {0}")]
    Usage(String),
    #[error("update: --{flag}: {reason}")]
    Flag { flag: String, reason: String },
    #[error("update: reading {path}: {source}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("update: {path}: invalid LinuxResources JSON: {source}")]
    Json { path: PathBuf, #[source] source: serde_json::Error },
    #[error(transparent)]
    Runtime(#[from] brisk_runtime::Error),
}

/// Flags taking a value: (names, JSON pointer in LinuxResources, kind).
#[derive(Clone, Copy)]
enum Kind {
    Size,
    Int,
    Uint,
    Str,
}

const FLAGS: &[(&[&str], &str, Kind)] = &[
    (&["memory"], "/memory/limit", Kind::Size),
    (&["memory-reservation"], "/memory/reservation", Kind::Size),
    (&["memory-swap"], "/memory/swap", Kind::Size),
    (&["cpu-share", "cpu-shares"], "/cpu/shares", Kind::Uint),
    (&["cpu-quota"], "/cpu/quota", Kind::Int),
    (&["cpu-period"], "/cpu/period", Kind::Uint),
    (&["cpu-rt-period"], "/cpu/realtimePeriod", Kind::Uint),
    (&["cpu-rt-runtime"], "/cpu/realtimeRuntime", Kind::Int),
    (&["cpuset-cpus"], "/cpu/cpus", Kind::Str),
    (&["cpuset-mems"], "/cpu/mems", Kind::Str),
    (&["blkio-weight"], "/blockIO/weight", Kind::Uint),
    (&["pids-limit"], "/pids/limit", Kind::Int),
];

/// runc's units.RAMInBytes: a number with an optional binary suffix (k, m, g, t, p; optional b/ib),
/// or -1 for unlimited.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let num_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let unit = unit.trim();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    Ok((n * mult) as i64)
}

fn set(obj: &mut Value, pointer: &str, v: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = v;
            return;
        }
        if cur.get(*p).is_none() {
            cur[*p] = Value::Object(Map::new());
        }
        cur = &mut cur[*p];
    }
}

/// Parse the command line (after `update`) into the container id and the resources to apply.
pub fn parse(args: &[String]) -> Result<(String, LinuxResources), UpdateError> {
    let mut resources_file: Option<String> = None;
    let mut from_flags = json!({});
    let mut id = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') || a == "-" {
            if id.is_some() {
                return Err(UpdateError::Usage(format!("unexpected argument {a:?}")));
            }
            id = Some(a.clone());
            i += 1;
            continue;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (name.to_string(), None),
        };
        let mut value = || -> Result<String, UpdateError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i).cloned().ok_or_else(|| UpdateError::Flag { flag: name.clone(), reason: "needs a value".into() })
        };
        if name == "r" || name == "resources" {
            resources_file = Some(value()?);
        } else if let Some((_, pointer, kind)) = FLAGS.iter().find(|(names, _, _)| names.contains(&name.as_str())) {
            let raw = value()?;
            let bad = |reason: String| UpdateError::Flag { flag: name.clone(), reason };
            let v = match kind {
                Kind::Size => json!(ram_in_bytes(&raw).map_err(bad)?),
                Kind::Int => json!(raw.parse::<i64>().map_err(|_| bad(format!("{raw:?} is not a number")))?),
                Kind::Uint => json!(raw.parse::<u64>().map_err(|_| bad(format!("{raw:?} is not a non-negative number")))?),
                Kind::Str => json!(raw),
            };
            set(&mut from_flags, pointer, v);
        } else if matches!(name.as_str(), "kernel-memory" | "kernel-memory-tcp") {
            // runc 1.1.5 (update.go) parses these, warns and ignores them: kernel memory limits
            // are deprecated and obsolete since Linux 5.4.
            let raw = value()?;
            ram_in_bytes(&raw).map_err(|reason| UpdateError::Flag { flag: name.clone(), reason })?;
            log::warn!("--{name}: kernel memory settings are ignored and will be removed");
        } else if matches!(name.as_str(), "l3-cache-schema" | "mem-bw-schema") {
            return Err(UpdateError::Flag { flag: name, reason: "not supported by brisk".into() });
        } else {
            return Err(UpdateError::Usage(format!("unknown flag {a:?}")));
        }
        i += 1;
    }
    let id = id.ok_or_else(|| UpdateError::Usage("missing container id".into()))?;
    let resources = match resources_file {
        Some(f) => {
            let path = PathBuf::from(&f);
            let mut text = String::new();
            if f == "-" {
                std::io::stdin().read_to_string(&mut text).map_err(|source| UpdateError::Read { path: path.clone(), source })?;
            } else {
                text = std::fs::read_to_string(&path).map_err(|source| UpdateError::Read { path: path.clone(), source })?;
            }
            serde_json::from_str(&text).map_err(|source| UpdateError::Json { path, source })?
        }
        None => serde_json::from_value(from_flags).map_err(|source| UpdateError::Json { path: "<flags>".into(), source })?,
    };
    Ok((id, resources))
}

/// Entry point: `args` are the words after `update`.
pub fn run(root: &Path, args: &[String]) -> Result<i32, UpdateError> {
    let (id, resources) = parse(args)?;
    let c = Runtime::new(root)?.load(&id)?;
    c.update(&resources)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("128m").unwrap(), 128 << 20);
        assert_eq!(ram_in_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("100MiB").unwrap(), 100 << 20);
        assert_eq!(ram_in_bytes("4096").unwrap(), 4096);
        assert_eq!(ram_in_bytes("-1").unwrap(), -1);
        assert!(ram_in_bytes("12x").is_err());
    }

    #[test]
    fn flags_become_resources() {
        let (id, r) = parse(&v(&["--memory", "64m", "--cpu-share=256", "--cpuset-cpus", "0-1", "--pids-limit", "9", "c1"])).unwrap();
        assert_eq!(id, "c1");
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(256));
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0-1"));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 9);
        assert!(r.block_io().is_none());
    }

    /// `update --help` comes from the args table; it must list exactly what this parser takes.
    #[test]
    fn help_lists_exactly_the_parsed_flags() {
        let mut listed: Vec<&str> = crate::args::command("update").unwrap().flags.iter().flat_map(|f| f.names.iter().copied()).collect();
        let mut parsed: Vec<&str> = FLAGS.iter().flat_map(|(names, _, _)| names.iter().copied()).chain(["resources", "r"]).collect();
        listed.sort_unstable();
        parsed.sort_unstable();
        assert_eq!(listed, parsed);
    }

    #[test]
    fn errors_name_the_flag() {
        let e = parse(&v(&["--cpu-quota", "x", "c1"])).unwrap_err().to_string();
        assert!(e.contains("--cpu-quota"), "{e}");
        assert!(parse(&v(&["--memory", "1m"])).unwrap_err().to_string().contains("missing container id"));
        assert!(parse(&v(&["--bogus", "1", "c"])).is_err());
    }
}
