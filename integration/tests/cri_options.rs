//! Runtime options of the brisk CRI handler as each containerd release delivers them. The
//! README and config/containerd/brisk-v2.toml rest on what this shows:
//! * containerd 1.6 decodes a non-runc runtime's `options` table into `runtimeoptions.v1.Options`
//!   (`TypeUrl`, `ConfigPath`, `ConfigBody`), so `Root = "..."` there is silently dropped and
//!   the state lands in the default root; `ConfigPath` pointing at a TOML file works;
//! * 1.7 and 2.x pass the table itself as the TOML body, so `Root` works inline too.
//!
//! The state must be at `<Root>/k8s.io/<sandbox id>`, the runc shim's layout. The runc handler
//! takes `Root` inline on every release (its options are the runc type); it is not what these
//! tests are about, so they run the brisk handler only (their names say brisk, so
//! `make test-cri-runc` skips them).
//!
//! Needs root, `--features cri`; `make test-cri`.

use std::fs;
use std::path::{Path, PathBuf};

use brisk_integration::containerd::{make_temp_dir, Version};
use brisk_integration::cri::{CriEnv, Settings, BRISK, CRI_NAMESPACE};

/// Removes the test's Root dir (and whatever a failed run left in it).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Form {
    /// `Root = "<dir>"` in the options table.
    Inline,
    /// `ConfigPath = "<file>"` in the options table, the file holding `Root = "<dir>"`.
    ConfigPath,
}

/// Whether the sandbox's brisk state lands under the Root the options name.
fn root_option(version: Version, form: Form, want_honoured: bool) {
    let tmp = TempDir(make_temp_dir("brisk-cri-root").expect("temp dir"));
    let root = tmp.0.join("root");
    let file = tmp.0.join("brisk.toml");
    let root_line = format!("Root = {:?}\n", root.to_string_lossy());
    fs::write(&file, &root_line).expect("writing the options file");
    let brisk_options = match form {
        Form::Inline => root_line,
        Form::ConfigPath => format!("ConfigPath = {:?}\n", file.to_string_lossy()),
    };
    let env = CriEnv::start_with(
        version,
        Settings {
            brisk_options,
            ..Settings::default()
        },
    )
    .unwrap_or_else(|e| panic!("CRI environment on containerd {version}: {e}"));
    let pod = env.pod_config("opts", true).expect("pod config");
    let id = env
        .run_pod(&pod, BRISK)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", env.log_tail(30)));
    let state: PathBuf = root.join(CRI_NAMESPACE).join(&id);
    let honoured = state.is_dir();
    let default_state = Path::new("/run/containerd/brisk")
        .join(CRI_NAMESPACE)
        .join(&id);
    let in_default = default_state.is_dir();
    env.cri.stop_pod_sandbox(&id).expect("StopPodSandbox");
    env.cri.remove_pod_sandbox(&id).expect("RemovePodSandbox");
    let left = env.finish();
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
    assert_eq!(
        honoured,
        want_honoured,
        "containerd {version}, {form:?}: state at {} is {honoured}, in the default root {in_default}",
        state.display()
    );
    assert_eq!(
        in_default,
        !want_honoured,
        "containerd {version}, {form:?}: state in the default root {}",
        default_state.display()
    );
}

#[test]
fn v1_6_brisk_root_inline_is_dropped() {
    root_option(Version::V1_6, Form::Inline, false)
}

#[test]
fn v1_6_brisk_root_via_config_path() {
    root_option(Version::V1_6, Form::ConfigPath, true)
}

#[test]
fn v1_7_brisk_root_inline() {
    root_option(Version::V1_7, Form::Inline, true)
}

#[test]
fn v1_7_brisk_root_via_config_path() {
    root_option(Version::V1_7, Form::ConfigPath, true)
}

#[test]
fn v2_1_brisk_root_inline() {
    root_option(Version::V2_1, Form::Inline, true)
}

#[test]
fn v2_1_brisk_root_via_config_path() {
    root_option(Version::V2_1, Form::ConfigPath, true)
}
