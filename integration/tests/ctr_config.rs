//! The config snippets in config/containerd register brisk with CRI on each
//! containerd release, and a CRI-enabled private containerd starts with them.

use std::path::Path;

use brisk_integration::containerd::{workspace_dir, Containerd, Options, Version};

/// Host paths a CRI-enabled containerd could create if it escaped our dirs.
const HOST_PATHS: [&str; 5] = [
    "/var/lib/containerd",
    "/opt/containerd",
    "/var/lib/cni",
    "/var/run/netns",
    "/etc/cni",
];

fn snippet_registers_brisk(version: Version) {
    let snippet = match version.config_version() {
        2 => "brisk-v2.toml",
        _ => "brisk-v3.toml",
    };
    let before: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    {
        let mut opts = Options::new(version);
        opts.cri = true;
        opts.imports
            .push(workspace_dir().join("config/containerd").join(snippet));
        let cd =
            Containerd::start_with(opts).expect("CRI-enabled containerd with the brisk snippet");
        // 2.x dumps TOML with single-quoted strings and keys, 1.x with double.
        let dump = cd.config_dump().expect("config dump").replace('\'', "\"");
        let table = match version.config_version() {
            2 => "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.brisk]",
            _ => "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.brisk]",
        };
        let section = dump
            .split(table)
            .nth(1)
            .unwrap_or_else(|| panic!("{table} missing from config dump:\n{dump}"));
        let section = section.split("\n  [").next().unwrap_or_default();
        assert!(
            section.contains("runtime_type = \"io.containerd.brisk.v2\""),
            "brisk runtime_type in {table}:\n{section}"
        );
        let plugins = cd.ctr_ok(&["plugins", "ls"]).expect("plugins ls");
        let cri = plugins
            .lines()
            .find(|l| l.contains(" cri ") || l.split_whitespace().nth(1) == Some("cri"))
            .unwrap_or_else(|| panic!("no cri plugin:\n{plugins}"));
        assert!(
            cri.trim_end().ends_with("ok"),
            "CRI plugin not ok with the snippet: {cri}\n{}",
            cd.log_tail(40)
        );
    }
    let after: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    for ((p, b), a) in HOST_PATHS.iter().zip(before).zip(after) {
        assert!(b || !a, "the private containerd created host path {p}");
    }
}

#[test]
fn v1_6_cri_snippet() {
    snippet_registers_brisk(Version::V1_6)
}

#[test]
fn v1_7_cri_snippet() {
    snippet_registers_brisk(Version::V1_7)
}

#[test]
fn v2_1_cri_snippet() {
    snippet_registers_brisk(Version::V2_1)
}
