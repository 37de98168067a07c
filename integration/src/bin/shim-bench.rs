//! The shim side by side with containerd-shim-runc-v2 + runc, in one run, through one private
//! containerd: `ctr run --rm` latency, `ctr task exec` latency, and shim memory (PSS) per running
//! container. A benchmark, not a test: it prints numbers and ratios and asserts nothing about them.
//!
//! Usage: `shim-bench [N]` (default N = 20, or env BENCH_N); containerd version from
//! BENCH_CONTAINERD (1.6, 1.7 or 2.1; default 1.7). Iterations alternate between the two runtimes
//! so that machine noise hits both alike.
use std::process::ExitCode;
use std::time::{Duration, Instant};

use brisk_integration::containerd::{Containerd, Version, BRISK, RUNC};

/// Containers kept running per runtime for the memory figure.
const RESIDENT: usize = 5;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shim-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stats(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len().max(1) as f64;
    (mean, samples.get(samples.len() / 2).map(|d| ms(*d)).unwrap_or(0.0))
}

/// Proportional set size of `pid` in KiB, from smaps_rollup.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn run() -> Result<(), String> {
    let n: usize = std::env::args().nth(1).or_else(|| std::env::var("BENCH_N").ok()).and_then(|s| s.parse().ok()).unwrap_or(20);
    let version = match std::env::var("BENCH_CONTAINERD").as_deref() {
        Ok("1.6") => Version::V1_6,
        Ok("2.1") => Version::V2_1,
        _ => Version::V1_7,
    };
    let (cd, image) = Containerd::with_busybox(version).map_err(|e| e.to_string())?;
    let runtimes = [RUNC, BRISK];
    let timed = |args: &[&str]| -> Result<Duration, String> {
        let t = Instant::now();
        let out = cd.ctr(args);
        let d = t.elapsed();
        if !out.status.success() {
            return Err(format!("ctr {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(d)
    };

    // Warm both paths once (page cache, image unpack).
    for rt in runtimes {
        let id = cd.new_id("warm");
        let mut args = cd.run_args(rt, &["--rm"], &image, &id);
        args.push("true");
        timed(&args)?;
    }
    let mut run_samples = [Vec::new(), Vec::new()];
    for _ in 0..n {
        for (i, rt) in runtimes.iter().enumerate() {
            let id = cd.new_id("run");
            let mut args = cd.run_args(rt, &["--rm"], &image, &id);
            args.push("true");
            run_samples[i].push(timed(&args)?);
        }
    }

    // Resident containers: memory per container, and exec latency into one of them.
    let mut resident: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (i, rt) in runtimes.iter().enumerate() {
        for _ in 0..RESIDENT {
            let id = cd.new_id("mem");
            let mut args = cd.run_args(rt, &["-d"], &image, &id);
            args.extend(["sleep", "1000"]);
            timed(&args)?;
            resident[i].push(id);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut pss = [0u64; 2];
    for (i, ids) in resident.iter().enumerate() {
        let mut pids: Vec<u32> = ids.iter().filter_map(|id| cd.shim_pid(id).ok()).collect();
        pids.sort();
        pids.dedup();
        pss[i] = pids.iter().map(|p| pss_kib(*p)).sum::<u64>() / RESIDENT as u64;
    }
    let mut exec_samples = [Vec::new(), Vec::new()];
    for k in 0..n {
        for (i, ids) in resident.iter().enumerate() {
            let exec_id = format!("e{k}");
            exec_samples[i].push(timed(&["task", "exec", "--exec-id", &exec_id, &ids[0], "true"])?);
        }
    }
    for ids in &resident {
        for id in ids {
            let _ = cd.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        }
    }
    for ids in &resident {
        for id in ids {
            for _ in 0..50 {
                if cd.ctr(&["task", "delete", id]).status.success() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = cd.ctr(&["containers", "delete", id]);
        }
    }

    println!("containerd {} — {n} iterations each, interleaved", version.release());
    println!("{:<34} {:>14} {:>14} {:>8}", "", "runc shim", "brisk shim", "ratio");
    let (rm_mean, rm_med) = stats(&mut run_samples[0]);
    let (bm_mean, bm_med) = stats(&mut run_samples[1]);
    println!("{:<34} {:>11.1} ms {:>11.1} ms {:>8.2}", "ctr run --rm true (median)", rm_med, bm_med, bm_med / rm_med);
    println!("{:<34} {:>11.1} ms {:>11.1} ms {:>8.2}", "ctr run --rm true (mean)", rm_mean, bm_mean, bm_mean / rm_mean);
    let (re_mean, re_med) = stats(&mut exec_samples[0]);
    let (be_mean, be_med) = stats(&mut exec_samples[1]);
    println!("{:<34} {:>11.1} ms {:>11.1} ms {:>8.2}", "ctr task exec true (median)", re_med, be_med, be_med / re_med);
    println!("{:<34} {:>11.1} ms {:>11.1} ms {:>8.2}", "ctr task exec true (mean)", re_mean, be_mean, be_mean / re_mean);
    println!(
        "{:<34} {:>11.2} MB {:>11.2} MB {:>8.2}",
        "shim PSS per running container",
        pss[0] as f64 / 1024.0,
        pss[1] as f64 / 1024.0,
        pss[1] as f64 / pss[0].max(1) as f64
    );
    Ok(())
}
