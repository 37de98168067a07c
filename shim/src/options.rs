//! Runtime options: `containerd.runc.v1.Options` (what ctr and containerd's runc-type runtimes send)
//! or `runtimeoptions.v1.Options` whose `config_body` is TOML (what CRI sends for runtime types it
//! does not know), or the old `containerd.linux.runc.CreateOptions` that containerd's Go client
//! (1.6, 1.7) sends runtimes whose name does not start with `io.containerd.runc` for task options
//! such as `WithNoPivotRoot`, `WithShimCgroup`, `WithUIDOwner`. All end up as [`ShimOptions`].
use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedInputStream, Message};
use containerd_shim_protos::shim::oci::Options as RuncOptions;

pub const RUNC_OPTIONS_TYPE: &str = "containerd.runc.v1.Options";
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
/// containerd's `runtime/linux/runctypes` CreateOptions (package `containerd.linux.runc`).
pub const LEGACY_CREATE_OPTIONS_TYPE: &str = "containerd.linux.runc.CreateOptions";

/// The options brisk uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShimOptions {
    /// Runtime state root; empty means the per-namespace default.
    pub root: String,
    pub systemd_cgroup: bool,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    pub io_uid: u32,
    pub io_gid: u32,
    /// A cgroup path (relative to each hierarchy's mount) the shim server is moved into at
    /// `start`, as the runc shim does; empty: the shim stays where containerd started it.
    #[serde(default)]
    pub shim_cgroup: String,
}

impl ShimOptions {
    /// The state root: `<Root>/<namespace>`, with /run/containerd/brisk as the default `Root`.
    /// runc's shim joins the namespace to `Root` the same way (default /run/containerd/runc), so
    /// one `Root` holds the same container id in two namespaces. brisk before this layout used
    /// `Root` itself; the root actually used is recorded in the bundle ([`crate::service::BundleRecord`]),
    /// which is how the `delete` action still finds state written there.
    pub fn state_root(&self, namespace: &str) -> PathBuf {
        let root = if self.root.is_empty() {
            "/run/containerd/brisk"
        } else {
            self.root.as_str()
        };
        Path::new(root).join(namespace)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error(
        "options: unsupported type_url {0:?} (want {RUNC_OPTIONS_TYPE}, {RUNTIME_OPTIONS_TYPE} or {LEGACY_CREATE_OPTIONS_TYPE})"
    )]
    UnknownType(String),
    #[error("options: {type_url}: malformed protobuf: {reason}")]
    Malformed { type_url: String, reason: String },
    #[error("options: config_body line {line}: unknown key {key:?}")]
    UnknownKey { line: usize, key: String },
    #[error("options: config_body line {line}: {reason}")]
    Toml { line: usize, reason: String },
    #[error("options: config_path {path}: {reason}")]
    ConfigPath { path: String, reason: String },
}

fn type_name(type_url: &str) -> &str {
    // typeurl writes bare names; Any::pack prefixes "type.googleapis.com/".
    type_url.rsplit('/').next().unwrap_or_default()
}

pub fn is_options_any(a: &Any) -> bool {
    matches!(
        type_name(&a.type_url),
        RUNC_OPTIONS_TYPE | RUNTIME_OPTIONS_TYPE | LEGACY_CREATE_OPTIONS_TYPE
    )
}

/// Parse the options of CreateTaskRequest (or of `start`'s stdin). `None` or an empty Any gives the
/// defaults.
pub fn parse_any(any: Option<&Any>) -> Result<ShimOptions, OptionsError> {
    let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
        return Ok(ShimOptions::default());
    };
    match type_name(&any.type_url) {
        RUNC_OPTIONS_TYPE => {
            let o =
                RuncOptions::parse_from_bytes(&any.value).map_err(|e| OptionsError::Malformed {
                    type_url: any.type_url.clone(),
                    reason: e.to_string(),
                })?;
            log_binary_name(&o.binary_name);
            Ok(ShimOptions {
                root: o.root,
                systemd_cgroup: o.systemd_cgroup,
                no_pivot_root: o.no_pivot_root,
                no_new_keyring: o.no_new_keyring,
                io_uid: o.io_uid,
                io_gid: o.io_gid,
                shim_cgroup: o.shim_cgroup,
            })
        }
        LEGACY_CREATE_OPTIONS_TYPE => {
            decode_legacy_create_options(&any.value).map_err(|reason| OptionsError::Malformed {
                type_url: any.type_url.clone(),
                reason,
            })
        }
        RUNTIME_OPTIONS_TYPE => {
            let (config_path, body) =
                decode_runtime_options(&any.value).map_err(|reason| OptionsError::Malformed {
                    type_url: any.type_url.clone(),
                    reason,
                })?;
            let body = if body.is_empty() && !config_path.is_empty() {
                std::fs::read_to_string(&config_path).map_err(|e| OptionsError::ConfigPath {
                    path: config_path.clone(),
                    reason: e.to_string(),
                })?
            } else {
                body
            };
            parse_toml(&body)
        }
        _ => Err(OptionsError::UnknownType(any.type_url.clone())),
    }
}

/// BinaryName names the runc binary the runc shim execs; brisk runs containers in process and
/// execs no runtime binary, so it is accepted and only logged.
fn log_binary_name(name: &str) {
    if !name.is_empty() {
        log::debug!("options: BinaryName {name:?} ignored: brisk execs no runtime binary");
    }
}

/// `containerd.linux.runc.CreateOptions` (containerd's runtime/linux/runctypes/runc.proto):
/// `bool no_pivot_root = 1; bool open_tcp = 2; bool external_unix_sockets = 3; bool terminal = 4;
/// bool file_locks = 5; repeated string empty_namespaces = 6; string cgroups_mode = 7;
/// bool no_new_keyring = 8; string shim_cgroup = 9; uint32 io_uid = 10; uint32 io_gid = 11;
/// string criu_work_path = 12; string criu_image_path = 13;`. Not among the generated protos, so
/// decoded by field number. Fields 2-7, 12 and 13 are checkpoint/restore (CRIU) settings, which
/// the runc shim also only uses for checkpoints; brisk has none, so they are read and dropped.
fn decode_legacy_create_options(data: &[u8]) -> Result<ShimOptions, String> {
    let mut is = CodedInputStream::from_bytes(data);
    let mut o = ShimOptions::default();
    let e = |e: containerd_shim_protos::protobuf::Error| e.to_string();
    while let Some(tag) = is.read_raw_tag_or_eof().map_err(e)? {
        let (field, wire) = (tag >> 3, tag & 7);
        match (field, wire) {
            (1, 0) => o.no_pivot_root = is.read_bool().map_err(e)?,
            (8, 0) => o.no_new_keyring = is.read_bool().map_err(e)?,
            (9, 2) => o.shim_cgroup = is.read_string().map_err(e)?,
            (10, 0) => o.io_uid = is.read_uint32().map_err(e)?,
            (11, 0) => o.io_gid = is.read_uint32().map_err(e)?,
            (1 | 8 | 9 | 10 | 11, w) => {
                return Err(format!("field {field}: unexpected wire type {w}"));
            }
            (_, w) => {
                let wt = containerd_shim_protos::protobuf::rt::WireType::new(w)
                    .ok_or_else(|| format!("field {field}: bad wire type {w}"))?;
                is.skip_field(wt).map_err(e)?;
            }
        }
    }
    Ok(o)
}

/// `message Options { string type_url = 1; string config_path = 2; string config_body = 3; }`
/// (containerd's pkg/runtimeoptions/v1); not among the generated protos, so decoded by hand.
fn decode_runtime_options(data: &[u8]) -> Result<(String, String), String> {
    let mut is = CodedInputStream::from_bytes(data);
    let (mut path, mut body) = (String::new(), String::new());
    while let Some(tag) = is.read_raw_tag_or_eof().map_err(|e| e.to_string())? {
        let (field, wire) = (tag >> 3, tag & 7);
        match (field, wire) {
            (1, 2) => {
                is.read_string().map_err(|e| e.to_string())?;
            }
            (2, 2) => path = is.read_string().map_err(|e| e.to_string())?,
            (3, 2) => {
                let b = is.read_bytes().map_err(|e| e.to_string())?;
                body = String::from_utf8(b).map_err(|_| "config_body is not UTF-8".to_string())?;
            }
            (_, w) => {
                let wt = containerd_shim_protos::protobuf::rt::WireType::new(w)
                    .ok_or_else(|| format!("field {field}: bad wire type {w}"))?;
                is.skip_field(wt).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok((path, body))
}

enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// A TOML subset: `key = value` lines with strings, booleans and integers, comments, blank lines.
/// That is all the flat runc option table CRI serializes needs. Keys match the Go field names
/// case-insensitively (as BurntSushi/toml does) and the proto names.
pub fn parse_toml(body: &str) -> Result<ShimOptions, OptionsError> {
    let mut o = ShimOptions::default();
    for (idx, raw) in body.lines().enumerate() {
        let line = idx + 1;
        let text = strip_comment(raw).trim();
        if text.is_empty() {
            continue;
        }
        if text.starts_with('[') {
            return Err(OptionsError::Toml {
                line,
                reason: format!("tables are not supported here: {text}"),
            });
        }
        let (key, value) = text.split_once('=').ok_or_else(|| OptionsError::Toml {
            line,
            reason: format!("expected key = value, got {text:?}"),
        })?;
        let key = key.trim().trim_matches('"');
        let value = parse_value(value.trim()).map_err(|reason| OptionsError::Toml {
            line,
            reason: format!("{key}: {reason}"),
        })?;
        let norm: String = key
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        let want_bool = |v: Value| match v {
            Value::Bool(b) => Ok(b),
            _ => Err(OptionsError::Toml {
                line,
                reason: format!("{key}: expected a boolean"),
            }),
        };
        let want_u32 = |v: Value| match v {
            Value::Int(i) if (0..=u32::MAX as i64).contains(&i) => Ok(i as u32),
            _ => Err(OptionsError::Toml {
                line,
                reason: format!("{key}: expected an integer in 0..=4294967295"),
            }),
        };
        let want_str = |v: Value| match v {
            Value::Str(s) => Ok(s),
            _ => Err(OptionsError::Toml {
                line,
                reason: format!("{key}: expected a string"),
            }),
        };
        match norm.as_str() {
            "root" => o.root = want_str(value)?,
            "systemdcgroup" => o.systemd_cgroup = want_bool(value)?,
            "nopivotroot" => o.no_pivot_root = want_bool(value)?,
            "nonewkeyring" => o.no_new_keyring = want_bool(value)?,
            "iouid" => o.io_uid = want_u32(value)?,
            "iogid" => o.io_gid = want_u32(value)?,
            "shimcgroup" => o.shim_cgroup = want_str(value)?,
            "binaryname" => log_binary_name(&want_str(value)?),
            // Known runc options brisk has no use for: accepted and ignored.
            "criupath" | "criuimagepath" | "criuworkpath" | "taskapiaddress" => {
                want_str(value)?;
            }
            "taskapiversion" => {
                want_u32(value)?;
            }
            _ => {
                return Err(OptionsError::UnknownKey {
                    line,
                    key: key.to_string(),
                })
            }
        }
    }
    Ok(o)
}

fn strip_comment(line: &str) -> &str {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (in_str, c) {
            (None, '#') => return &line[..i],
            (None, '"') | (None, '\'') => in_str = Some(c),
            (Some(q), c) if c == q => in_str = None,
            _ => {}
        }
    }
    line
}

fn parse_value(v: &str) -> Result<Value, String> {
    match v {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(inner) = v.strip_prefix('\'') {
        return inner
            .strip_suffix('\'')
            .map(|s| Value::Str(s.to_string()))
            .ok_or_else(|| "unterminated string".into());
    }
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or("unterminated string")?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                other => {
                    return Err(format!(
                        "unsupported escape \\{}",
                        other.map(String::from).unwrap_or_default()
                    ))
                }
            }
        }
        return Ok(Value::Str(out));
    }
    let digits: String = v.chars().filter(|c| *c != '_').collect();
    digits
        .parse::<i64>()
        .map(Value::Int)
        .map_err(|_| format!("unsupported value {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(type_url: &str, value: Vec<u8>) -> Any {
        Any {
            type_url: type_url.into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn none_and_empty_are_defaults() {
        assert_eq!(parse_any(None).unwrap(), ShimOptions::default());
        assert_eq!(
            parse_any(Some(&Any::default())).unwrap(),
            ShimOptions::default()
        );
        assert_eq!(
            ShimOptions::default().state_root("k8s.io"),
            PathBuf::from("/run/containerd/brisk/k8s.io")
        );
    }

    #[test]
    fn runc_options_any() {
        let o = RuncOptions {
            binary_name: "/usr/sbin/runc".into(),
            root: "/run/brisk-test".into(),
            systemd_cgroup: true,
            no_pivot_root: true,
            io_uid: 1000,
            io_gid: 1001,
            shim_cgroup: "/brisk/shim".into(),
            ..Default::default()
        };
        for url in [
            RUNC_OPTIONS_TYPE,
            "type.googleapis.com/containerd.runc.v1.Options",
        ] {
            let got = parse_any(Some(&any(url, o.write_to_bytes().unwrap()))).unwrap();
            assert_eq!(
                got,
                ShimOptions {
                    root: "/run/brisk-test".into(),
                    systemd_cgroup: true,
                    no_pivot_root: true,
                    no_new_keyring: false,
                    io_uid: 1000,
                    io_gid: 1001,
                    shim_cgroup: "/brisk/shim".into(),
                }
            );
            // runc's shim layout: <Root>/<namespace>/<id>.
            assert_eq!(
                got.state_root("default"),
                PathBuf::from("/run/brisk-test/default")
            );
        }
    }

    /// Bytes as CRI builds them: runtimeoptions.v1.Options{type_url: "", config_body: <toml>}.
    fn runtime_options(body: &str) -> Any {
        let mut v = vec![0x1a];
        v.push(body.len() as u8);
        v.extend_from_slice(body.as_bytes());
        any(RUNTIME_OPTIONS_TYPE, v)
    }

    #[test]
    fn runtimeoptions_toml_body() {
        let body = "BinaryName = \"\"\n# comment\nRoot = \"/run/b\" # trailing\nSystemdCgroup = true\nNoNewKeyring = true\nIoUid = 0\nio_gid = 7\n";
        let o = parse_any(Some(&runtime_options(body))).unwrap();
        assert_eq!(o.root, "/run/b");
        assert!(o.systemd_cgroup && o.no_new_keyring && !o.no_pivot_root);
        assert_eq!((o.io_uid, o.io_gid), (0, 7));
    }

    #[test]
    fn unknown_toml_key_is_named() {
        let err = parse_any(Some(&runtime_options(
            "SystemdCgroup = true\nFrobnicate = 1\n",
        )))
        .unwrap_err();
        assert_eq!(
            err,
            OptionsError::UnknownKey {
                line: 2,
                key: "Frobnicate".into()
            }
        );
        assert!(err.to_string().contains("Frobnicate"));
    }

    #[test]
    fn bad_toml_values_name_the_key() {
        let err = parse_toml("SystemdCgroup = \"yes\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("SystemdCgroup: expected a boolean"),
            "{err}"
        );
        assert!(parse_toml("Root = \"unterminated").is_err());
        assert!(parse_toml("[section]").is_err());
    }

    #[test]
    fn legacy_create_options() {
        // CreateOptions{no_pivot_root: true, empty_namespaces: ["x"], shim_cgroup: "/cg",
        // io_uid: 1000, io_gid: 300, criu_image_path: "/i"}, as Go's proto.Marshal writes it.
        let v = [
            &[0x08, 0x01][..],
            &[0x32, 0x01, b'x'],
            &[0x4a, 0x03, b'/', b'c', b'g'],
            &[0x50, 0xe8, 0x07],
            &[0x58, 0xac, 0x02],
            &[0x6a, 0x02, b'/', b'i'],
        ]
        .concat();
        for url in [
            LEGACY_CREATE_OPTIONS_TYPE,
            "type.googleapis.com/containerd.linux.runc.CreateOptions",
        ] {
            let a = any(url, v.clone());
            assert!(is_options_any(&a));
            let o = parse_any(Some(&a)).unwrap();
            assert_eq!(
                o,
                ShimOptions {
                    no_pivot_root: true,
                    shim_cgroup: "/cg".into(),
                    io_uid: 1000,
                    io_gid: 300,
                    ..Default::default()
                }
            );
        }
        // A string where a bool belongs is refused, naming the type.
        let err = parse_any(Some(&any(LEGACY_CREATE_OPTIONS_TYPE, vec![0x0a, 0x00]))).unwrap_err();
        assert!(
            err.to_string().contains(LEGACY_CREATE_OPTIONS_TYPE),
            "{err}"
        );
    }

    #[test]
    fn toml_shim_cgroup_and_binary_name() {
        let o = parse_toml("BinaryName = \"/usr/bin/crun\"\nShimCgroup = \"/shims\"\n").unwrap();
        assert_eq!(o.shim_cgroup, "/shims");
    }

    #[test]
    fn unknown_type_url_is_named() {
        let err = parse_any(Some(&any("io.example.Other", vec![]))).unwrap_err();
        assert_eq!(err, OptionsError::UnknownType("io.example.Other".into()));
    }
}
