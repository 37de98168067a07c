//! `brisk run` vs `runc run` on a busybox `true` bundle, side by side.
//!
//! Usage: `cli-bench [N]` (default N = 30, or env BENCH_N). Binaries from BRISK_BIN (default
//! target/release/brisk) and RUNC_BIN (default /usr/sbin/runc). Iterations alternate between the
//! two runtimes so that machine noise (other builds on a shared box) hits both alike. Each runtime
//! gets its own private --root; every run is a foreground `run`, which deletes the container on exit.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use brisk_integration::bundle::Bundle;

struct Subject {
    name: &'static str,
    bin: PathBuf,
    root: tempfile::TempDir,
    samples: Vec<Duration>,
}

impl Subject {
    fn new(name: &'static str, bin: PathBuf) -> Result<Subject, String> {
        if !bin.is_file() {
            return Err(format!(
                "{name} binary not found at {} (run `make build` or set the env var)",
                bin.display()
            ));
        }
        let root = tempfile::Builder::new()
            .prefix("brisk-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        Ok(Subject {
            name,
            bin,
            root,
            samples: Vec::new(),
        })
    }

    fn run_once(&self, bundle: &Path, id: &str) -> Result<Duration, String> {
        let start = Instant::now();
        let out = Command::new(&self.bin)
            .arg("--root")
            .arg(self.root.path())
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        let took = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{} run {id} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(took)
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        // A failed run may leave a container behind; clear anything recorded under this root.
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                let _ = Command::new(&self.bin)
                    .arg("--root")
                    .arg(self.root.path())
                    .args(["delete", "-f"])
                    .arg(e.file_name())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(samples: &[Duration]) -> (f64, f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().copied().map(ms).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (mean, median, v[0], v[n - 1])
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cli-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), String> {
    let n: usize = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BENCH_N").ok())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("iteration count {s:?} is not a number"))
        })
        .transpose()?
        .unwrap_or(30);
    if n == 0 {
        return Err("iteration count must be at least 1".into());
    }
    let brisk_bin = std::env::var_os("BRISK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/brisk"));
    let runc_bin = std::env::var_os("RUNC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"));
    let mut subjects = [
        Subject::new("runc", runc_bin)?,
        Subject::new("brisk", brisk_bin)?,
    ];

    let bundle = Bundle::new().args(&["true"]);
    bundle.write_config();
    let pid = std::process::id();
    // One untimed warm-up each (page cache, binary load).
    for s in &subjects {
        s.run_once(bundle.path(), &format!("bench-{pid}-warm"))?;
    }
    for i in 0..n {
        for s in subjects.iter_mut() {
            let d = s.run_once(bundle.path(), &format!("bench-{pid}-{i}"))?;
            s.samples.push(d);
        }
    }

    println!("`<runtime> run` of a busybox `true` bundle, {n} iterations each (interleaved)");
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10}",
        "runtime", "mean ms", "median ms", "min ms", "max ms"
    );
    let mut medians = Vec::new();
    let mut means = Vec::new();
    for s in &subjects {
        let (mean, median, min, max) = stats(&s.samples);
        println!(
            "{:<8} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            s.name, mean, median, min, max
        );
        medians.push(median);
        means.push(mean);
    }
    println!(
        "brisk/runc: mean {:.2}x, median {:.2}x (below 1 means brisk is faster)",
        means[1] / means[0],
        medians[1] / medians[0]
    );
    if std::env::var("BENCH_ROOTLESS").as_deref() != Ok("0") {
        let bins = [subjects[0].bin.clone(), subjects[1].bin.clone()];
        rootless(n, &bins)?;
    }
    Ok(())
}

/// The same `run` as a fresh ordinary user (rootless: user namespace, no cgroups), with the
/// config each runtime's `spec --rootless` writes. Both go through the same `setpriv` wrapper, so
/// its cost is in both columns. BENCH_ROOTLESS=0 skips it.
fn rootless(n: usize, bins: &[PathBuf; 2]) -> Result<(), String> {
    use brisk_integration::rootless::TestUser;
    let user = TestUser::create();
    let mut bundles = Vec::new();
    for bin in bins {
        let b = user.bundle();
        let r = user.cmd_in(b.path(), true, bin, &["spec", "--rootless"]);
        if !r.status.success() {
            return Err(format!("{} failed: {}", r.cmdline, r.stderr.trim()));
        }
        let p = b.path().join("config.json");
        let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?).map_err(|e| format!("{}: {e}", p.display()))?;
        c["process"]["args"] = serde_json::json!(["true"]);
        c["process"]["terminal"] = serde_json::json!(false);
        std::fs::write(&p, c.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
        bundles.push(b);
    }
    let pid = std::process::id();
    let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for i in 0..=n {
        for (k, bin) in bins.iter().enumerate() {
            let start = Instant::now();
            let r = user.cmd_in(bundles[k].path(), true, bin, &["run", &format!("rl-{pid}-{i}")]);
            let took = start.elapsed();
            if !r.status.success() {
                return Err(format!("{} failed ({}): {}", r.cmdline, r.status, r.stderr.trim()));
            }
            // Iteration 0 is the untimed warm-up.
            if i > 0 {
                samples[k].push(took);
            }
        }
    }
    println!("rootless (as a fresh user, through setpriv), {n} iterations each (interleaved)");
    let mut medians = Vec::new();
    for (name, s) in ["runc", "brisk"].iter().zip(&samples) {
        let (mean, median, min, max) = stats(s);
        println!("{:<8} {:>10.2} {:>10.2} {:>10.2} {:>10.2}", name, mean, median, min, max);
        medians.push(median);
    }
    println!("rootless brisk/runc: median {:.2}x", medians[1] / medians[0]);
    Ok(())
}
