//! Persisted container state under `<root>/<id>/state.json`, written atomically (temp + rename), so
//! that a container's status survives the process that created it.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The OCI status of a container (runtime.md "State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("state {step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("state {path}: malformed: {source}")]
    Malformed { path: PathBuf, #[source] source: serde_json::Error },
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io { step, path: path.to_path_buf(), source }
}

/// What brisk remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The init's pid in the caller's pid namespace; 0 while creating.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), to tell it from a reused pid.
    pub pid_start: u64,
    /// The status the last writer saw; the live status is [`State::current_status`].
    pub status: Status,
    /// RFC 3339 creation time.
    pub created: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The cgroup placement, as the cgroups module recorded it.
    pub cgroup: crate::cgroups::Placement,
    /// The container's namespaces: kind → path of the one the init created or joined.
    pub namespaces: Vec<(String, Option<PathBuf>)>,
    /// The user that owns the container (runc's `list` shows it).
    pub owner: String,
    /// The config's hooks as they were at create time: poststart and poststop run these even if
    /// the bundle changed or disappeared since (runc keeps its config in its state too).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

pub fn ensure_root(root: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(io("create root", root))
}

/// Ids of the containers under `root` (directories holding a state file), sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let mut ids = Vec::new();
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(io("read root", root)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(io("read root", root))?;
        if ent.path().join(STATE_FILE).exists() {
            if let Some(name) = ent.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

impl State {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
        let path = Self::dir(root, id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound { id: id.to_string() })
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|source| StateError::Malformed { path, source })
    }

    /// Write atomically (temp file + rename): a reader sees the old or the new state, never half.
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let dir = Self::dir(root, &self.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let data = serde_json::to_vec(self).map_err(|source| StateError::Malformed { path: path.clone(), source })?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("write", &tmp))?;
        f.write_all(&data).map_err(io("write", &tmp))?;
        // No fsync: the state root lives on tmpfs (/run) and does not outlive a reboot, like the
        // containers it describes; the rename alone makes every reader see old or new, never half.
        fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// The live status: the init gone (or its pid reused) is `stopped`; the exec fifo still present
    /// is `created`; a frozen cgroup is `paused`.
    pub fn current_status(&self, root: &Path) -> Status {
        if self.status == Status::Creating && self.pid == 0 {
            return Status::Creating;
        }
        if self.pid <= 0 || !crate::sys::process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if Self::dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&self.cgroup) {
            return Status::Paused;
        }
        Status::Running
    }

    /// runtime.md "State": ociVersion, id, status, pid (absent once stopped), bundle, annotations.
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": crate::spec::OCI_VERSION,
            "id": self.id,
            "status": status.to_string(),
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        if status != Status::Stopped && self.pid > 0 {
            v["pid"] = self.pid.into();
        }
        v
    }
}
