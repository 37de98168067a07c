//! The `delete` action: containerd's cleanup when the shim is gone (crashed, SIGKILLed) or failed
//! to start. Idempotent and quick: force-delete the container through the runtime, unmount the
//! rootfs, print a DeleteResponse (exit 137, now).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;

use crate::args::Flags;
use crate::options::ShimOptions;
use crate::service::{BundleRecord, SHIM_STATE_FILE};

/// The state root the shim recorded at create. It is the root actually used, so a container made
/// by an older brisk that kept state at `Root/<id>` (before the `Root/<namespace>/<id>` layout) is
/// still found after an upgrade. No record: the default root of this namespace.
fn recorded_root(bundle: &Path, namespace: &str) -> PathBuf {
    std::fs::read(bundle.join(SHIM_STATE_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice::<BundleRecord>(&d).ok())
        .map(|r| r.root)
        .unwrap_or_else(|| ShimOptions::default().state_root(namespace))
}

pub fn run(flags: &Flags) -> i32 {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        PathBuf::from(&flags.bundle)
    };
    let root = recorded_root(&bundle, &flags.namespace);
    let mut pid = 0;
    // Warnings go to stderr, which containerd logs; only the response goes to stdout.
    match brisk_runtime::Runtime::new(&root).and_then(|rt| rt.load(&flags.id)) {
        Ok(c) => {
            pid = c.pid().max(0) as u32;
            if let Err(e) = c.delete(true) {
                eprintln!("delete container {} in {}: {e}", flags.id, root.display());
            }
        }
        Err(e) if e.kind() == brisk_runtime::ErrorKind::NotFound => {}
        Err(e) => eprintln!("load container {} from {}: {e}", flags.id, root.display()),
    }
    if let Err(e) = crate::mount::unmount_all(&bundle.join("rootfs")) {
        eprintln!("{e}");
    }
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(crate::events::timestamp(SystemTime::now())).into(),
        ..Default::default()
    };
    let bytes = resp.write_to_bytes().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_keep_their_root() {
        let dir = std::env::temp_dir().join(format!("brisk-delete-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Written by brisk before ShimCgroup and the namespace level existed.
        let old = r#"{"root":"/run/brisk-old","options":{"root":"/run/brisk-old","systemd_cgroup":false,"no_pivot_root":false,"no_new_keyring":false,"io_uid":0,"io_gid":0}}"#;
        std::fs::write(dir.as_path().join(SHIM_STATE_FILE), old).unwrap();
        assert_eq!(
            recorded_root(dir.as_path(), "default"),
            PathBuf::from("/run/brisk-old")
        );
        std::fs::remove_file(dir.as_path().join(SHIM_STATE_FILE)).unwrap();
        assert_eq!(
            recorded_root(dir.as_path(), "default"),
            PathBuf::from("/run/containerd/brisk/default")
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
