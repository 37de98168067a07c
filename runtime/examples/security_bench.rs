//! Measures what the seccomp filter cache saves: compiling containerd's default profile with
//! libseccomp versus reading the cached BPF. Run with
//! `cargo run --release -p brisk-runtime --example security_bench [iterations]`.
//! Prints numbers only; it changes nothing outside a scratch directory it removes.

use std::time::{Duration, Instant};

use brisk_runtime::security;

fn per_iter(total: Duration, n: u32) -> String {
    format!("{:.1} µs", total.as_secs_f64() * 1e6 / f64::from(n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let profile = security::default_seccomp();
    let dir = std::env::temp_dir().join(format!("brisk-seccomp-bench-{}", std::process::id()));

    let t = Instant::now();
    let mut insns = 0;
    for _ in 0..n {
        insns = security::compile(&profile)?.instructions();
    }
    let compile = t.elapsed();

    let first = security::compile_cached(&profile, &dir)?; // miss: compile + write
    let t = Instant::now();
    for _ in 0..n {
        let hit = security::compile_cached(&profile, &dir)?;
        assert_eq!(hit, first);
    }
    let cached = t.elapsed();

    let t = Instant::now();
    for _ in 0..n {
        security::cache_key(&profile)?;
    }
    let key = t.elapsed();
    std::fs::remove_dir_all(&dir)?;

    println!("containerd default profile: {} rules, {insns} BPF instructions", profile.syscalls().as_ref().map_or(0, Vec::len));
    println!("compile (libseccomp):  {}", per_iter(compile, n));
    println!("cached (hash + read):  {}  (of which hashing {})", per_iter(cached, n), per_iter(key, n));
    Ok(())
}
