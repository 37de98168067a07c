#![cfg_attr(test, allow(clippy::unwrap_used))]
//! containerd-shim-brisk-v2: the containerd runtime v2 shim for brisk (`io.containerd.brisk.v2`).
//!
//! One binary, several roles: `start` and `delete` actions run by containerd, `-info` and `-v`, the
//! long-running server (no action, started by `start`), and the container init the runtime
//! re-executes (handled by `run_if_init` before anything else).
mod args;
mod bootstrap;
mod delete;
mod errors;
mod events;
mod info;
mod logger;
mod metrics;
mod mount;
mod options;
mod reaper;
mod server;
mod service;
mod start;
mod stdio;

fn main() {
    // Must come first, before any thread exists (docs/ARCHITECTURE.md, design rule 1): the runtime re-executes
    // this binary as the container's init.
    brisk_runtime::init::run_if_init();

    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let flags = match args::parse(&argv) {
        Ok(f) => f,
        // Go's flag package (containerd-shim-runc-v2): the usage on stderr, exit 0.
        Err(args::ArgsError::Help) => {
            eprint!("{}", args::usage("containerd-shim-brisk-v2"));
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("containerd-shim-brisk-v2: {e}");
            std::process::exit(2);
        }
    };
    if flags.version {
        println!(
            "containerd-shim-brisk-v2:\n  Version:  {}\n  Runtime:  {}",
            env!("CARGO_PKG_VERSION"),
            info::RUNTIME_NAME
        );
        return;
    }
    if flags.info {
        std::process::exit(info::run());
    }
    let code = match flags.action.as_str() {
        "start" => match start::run(&flags) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("containerd-shim-brisk-v2: {e}");
                1
            }
        },
        "delete" => delete::run(&flags),
        "" => server::run(&flags),
        other => {
            eprintln!("containerd-shim-brisk-v2: unknown action {other:?} (want start or delete)");
            2
        }
    };
    std::process::exit(code);
}
