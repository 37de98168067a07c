//! What containerd hands the `start` action, and which reply it can read.
//!
//! Four generations of containerd talk to a shim differently:
//! * 1.6 passes flags + `TTRPC_ADDRESS`, the runtime options (a protobuf `Any`) on stdin, and reads
//!   a bare address from stdout (`strings.TrimSpace(CombinedOutput)`), so nothing else may be printed.
//! * 1.7 also sets `MAX_SHIM_VERSION=2` and accepts `{"version":2,"address":..,"protocol":"ttrpc"}`;
//!   it rejects a version above 2.
//! * 2.0–2.2 set `MAX_SHIM_VERSION` to 3 and accept version 3 (task API `containerd.task.v3.Task`).
//! * 2.3+ write a `BootstrapParams` message to stdin and read a `BootstrapResult` back. containerd's
//!   `pkg/shim` encodes both as binary protobuf; the proto file's comment speaks of JSON, so a JSON
//!   object is accepted too and answered in kind.
//!
//! The runtime options of the older protocol also decode as a `BootstrapParams` (type URL in field 1,
//! value in field 2), which is why a decoded message only counts as bootstrap params when its instance
//! id and namespace match the command line, as containerd's own shim library checks.
use containerd_shim_protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;

use crate::args::Flags;

/// The task API version the shim announces to daemons that can use v3.
pub const TASK_API_V3: i32 = 3;

/// How to answer `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// containerd 1.6: the bare address.
    Plain,
    /// containerd 1.7–2.2: JSON with this task API version.
    Json(i32),
    /// containerd 2.3+: a protobuf `BootstrapResult`.
    BootstrapProto,
    /// A JSON `BootstrapParams` came in: a JSON `BootstrapResult` goes out.
    BootstrapJson,
}

/// The environment containerd sets for the legacy protocol.
#[derive(Debug, Default, Clone)]
pub struct LegacyEnv {
    pub ttrpc_address: String,
    pub grpc_address: String,
    pub max_shim_version: Option<String>,
}

impl LegacyEnv {
    pub fn from_process() -> LegacyEnv {
        LegacyEnv {
            ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
            grpc_address: std::env::var("GRPC_ADDRESS").unwrap_or_default(),
            max_shim_version: std::env::var("MAX_SHIM_VERSION").ok(),
        }
    }
}

/// The normalized parameters of `start`, whichever protocol carried them.
#[derive(Debug, Clone, PartialEq)]
pub struct StartParams {
    pub id: String,
    pub namespace: String,
    pub ttrpc_address: String,
    pub grpc_address: String,
    pub debug: bool,
    pub socket_dir: Option<String>,
    /// Runtime options, if containerd passed any (`Any`).
    pub options: Option<Any>,
    pub reply: Reply,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootstrapError {
    #[error("start: containerd's TTRPC address is unknown (no TTRPC_ADDRESS environment variable and no bootstrap params)")]
    NoTtrpcAddress,
    #[error("start: -id is required")]
    NoId,
    #[error("start: -namespace is required")]
    NoNamespace,
    #[error("start: invalid MAX_SHIM_VERSION {0:?}: not an integer")]
    BadMaxVersion(String),
    #[error(
        "start: bootstrap params are for {got_ns}/{got_id}, but the command line says {ns}/{id}"
    )]
    Mismatch {
        got_ns: String,
        got_id: String,
        ns: String,
        id: String,
    },
}

/// Decide the protocol from stdin's bytes, the flags and the environment.
pub fn parse_start(
    input: &[u8],
    flags: &Flags,
    env: &LegacyEnv,
) -> Result<StartParams, BootstrapError> {
    if flags.id.is_empty() {
        return Err(BootstrapError::NoId);
    }
    if flags.namespace.is_empty() {
        return Err(BootstrapError::NoNamespace);
    }
    let params = if let Some(p) = bootstrap_proto(input, flags)? {
        p
    } else if let Some(p) = bootstrap_json(input, flags)? {
        p
    } else {
        legacy(input, flags, env)?
    };
    if params.ttrpc_address.is_empty() {
        return Err(BootstrapError::NoTtrpcAddress);
    }
    Ok(params)
}

fn bootstrap_proto(input: &[u8], flags: &Flags) -> Result<Option<StartParams>, BootstrapError> {
    if input.is_empty() {
        return Ok(None);
    }
    let Ok(p) = BootstrapParams::parse_from_bytes(input) else {
        return Ok(None);
    };
    if p.instance_id != flags.id || p.namespace != flags.namespace {
        // A runtime-options Any decodes into exactly these two fields and nothing else: that is the
        // legacy protocol. Anything richer is a bootstrap message for some other shim.
        let identity_only = BootstrapParams {
            instance_id: p.instance_id.clone(),
            namespace: p.namespace.clone(),
            ..Default::default()
        };
        if p == identity_only {
            return Ok(None);
        }
        return Err(BootstrapError::Mismatch {
            got_ns: p.namespace,
            got_id: p.instance_id,
            ns: flags.namespace.clone(),
            id: flags.id.clone(),
        });
    }
    let options = p
        .extensions
        .iter()
        .filter_map(|e| e.value.as_ref())
        .find(|a| crate::options::is_options_any(a))
        .cloned();
    Ok(Some(StartParams {
        id: p.instance_id.clone(),
        namespace: p.namespace.clone(),
        ttrpc_address: p.containerd_ttrpc_address.clone(),
        grpc_address: p.containerd_grpc_address.clone(),
        debug: flags.debug || p.log_level.value() < 0,
        socket_dir: p.socket_dir.clone().filter(|d| !d.is_empty()),
        options,
        reply: Reply::BootstrapProto,
    }))
}

fn bootstrap_json(input: &[u8], flags: &Flags) -> Result<Option<StartParams>, BootstrapError> {
    let trimmed = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &input[i..])
        .unwrap_or(&[]);
    if trimmed.first() != Some(&b'{') {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(input) else {
        return Ok(None);
    };
    // protojson writes lowerCamelCase, Go's encoding/json the proto names; accept both.
    let field = |snake: &str, camel: &str| -> String {
        v.get(snake)
            .or_else(|| v.get(camel))
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let id = field("instance_id", "instanceId");
    let ns = field("namespace", "namespace");
    if id.is_empty() && ns.is_empty() {
        return Ok(None);
    }
    if id != flags.id || ns != flags.namespace {
        return Err(BootstrapError::Mismatch {
            got_ns: ns,
            got_id: id,
            ns: flags.namespace.clone(),
            id: flags.id.clone(),
        });
    }
    let level = v.get("log_level").or_else(|| v.get("logLevel"));
    let debug_level = match level {
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0) < 0,
        Some(serde_json::Value::String(s)) => s.contains("DEBUG") || s.contains("TRACE"),
        _ => false,
    };
    let socket_dir = field("socket_dir", "socketDir");
    Ok(Some(StartParams {
        id,
        namespace: ns,
        ttrpc_address: field("containerd_ttrpc_address", "containerdTtrpcAddress"),
        grpc_address: field("containerd_grpc_address", "containerdGrpcAddress"),
        debug: flags.debug || debug_level,
        socket_dir: (!socket_dir.is_empty()).then_some(socket_dir),
        options: None,
        reply: Reply::BootstrapJson,
    }))
}

fn legacy(input: &[u8], flags: &Flags, env: &LegacyEnv) -> Result<StartParams, BootstrapError> {
    let reply = match env.max_shim_version.as_deref().map(str::trim) {
        None | Some("") => Reply::Plain,
        Some(v) => {
            let n: i32 = v
                .parse()
                .map_err(|_| BootstrapError::BadMaxVersion(v.to_string()))?;
            if n >= TASK_API_V3 {
                Reply::Json(TASK_API_V3)
            } else if n == 2 {
                Reply::Json(2)
            } else {
                Reply::Plain
            }
        }
    };
    let options = Any::parse_from_bytes(input)
        .ok()
        .filter(|a| !a.type_url.is_empty());
    Ok(StartParams {
        id: flags.id.clone(),
        namespace: flags.namespace.clone(),
        ttrpc_address: env.ttrpc_address.clone(),
        grpc_address: if flags.address.is_empty() {
            env.grpc_address.clone()
        } else {
            flags.address.clone()
        },
        debug: flags.debug,
        socket_dir: None,
        options,
        reply,
    })
}

/// The bytes to print on stdout for `address` ("unix:///run/containerd/s/<hash>").
pub fn encode_reply(reply: Reply, address: &str) -> Vec<u8> {
    match reply {
        Reply::Plain => address.as_bytes().to_vec(),
        Reply::Json(version) => json_reply(version, address),
        Reply::BootstrapJson => json_reply(TASK_API_V3, address),
        Reply::BootstrapProto => {
            let r = BootstrapResult {
                version: TASK_API_V3,
                address: address.to_string(),
                protocol: "ttrpc".to_string(),
                ..Default::default()
            };
            // Serializing a message of plain scalar fields cannot fail.
            r.write_to_bytes().unwrap_or_default()
        }
    }
}

fn json_reply(version: i32, address: &str) -> Vec<u8> {
    serde_json::json!({"version": version, "address": address, "protocol": "ttrpc"})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::bootstrap_api::{Extension, LogLevel};
    use containerd_shim_protos::protobuf::EnumOrUnknown;

    fn flags() -> Flags {
        Flags {
            id: "c1".into(),
            namespace: "default".into(),
            address: "/run/containerd/containerd.sock".into(),
            ..Default::default()
        }
    }
    fn env(max: Option<&str>) -> LegacyEnv {
        LegacyEnv {
            ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            grpc_address: String::new(),
            max_shim_version: max.map(str::to_string),
        }
    }

    /// What containerd 1.6 writes for `ctr run --runtime-config-path`-less runc options with
    /// SystemdCgroup = true: Any{type_url: "containerd.runc.v1.Options", value: {9: 1}}.
    const RUNC_OPTIONS_ANY: &[u8] = b"\x0a\x1acontainerd.runc.v1.Options\x12\x02\x48\x01";
    /// Default runc options: an Any with an empty value (only the type URL is on the wire).
    const EMPTY_RUNC_OPTIONS_ANY: &[u8] = b"\x0a\x1acontainerd.runc.v1.Options";

    #[test]
    fn containerd_16_empty_stdin_gets_plain_address() {
        let p = parse_start(b"", &flags(), &env(None)).unwrap();
        assert_eq!(p.reply, Reply::Plain);
        assert_eq!(p.ttrpc_address, "/run/containerd/containerd.sock.ttrpc");
        assert_eq!(p.grpc_address, "/run/containerd/containerd.sock");
        assert_eq!(
            encode_reply(p.reply, "unix:///run/containerd/s/ab"),
            b"unix:///run/containerd/s/ab"
        );
    }

    #[test]
    fn containerd_16_runtime_options_on_stdin_are_legacy() {
        let p = parse_start(RUNC_OPTIONS_ANY, &flags(), &env(None)).unwrap();
        assert_eq!(p.reply, Reply::Plain);
        let a = p.options.unwrap();
        assert_eq!(a.type_url, "containerd.runc.v1.Options");
        assert_eq!(a.value, b"\x48\x01");
        // The value-less Any decodes as BootstrapParams{instance_id: type_url}: still legacy.
        let p = parse_start(EMPTY_RUNC_OPTIONS_ANY, &flags(), &env(None)).unwrap();
        assert_eq!(p.reply, Reply::Plain);
        assert!(p.options.is_some());
    }

    #[test]
    fn containerd_17_and_2x_get_json_with_their_version() {
        let p = parse_start(RUNC_OPTIONS_ANY, &flags(), &env(Some("2"))).unwrap();
        assert_eq!(p.reply, Reply::Json(2));
        let v: serde_json::Value =
            serde_json::from_slice(&encode_reply(p.reply, "unix:///s")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"version": 2, "address": "unix:///s", "protocol": "ttrpc"})
        );
        let p = parse_start(b"", &flags(), &env(Some("3"))).unwrap();
        assert_eq!(p.reply, Reply::Json(3));
        assert_eq!(
            parse_start(b"", &flags(), &env(Some("x"))).unwrap_err(),
            BootstrapError::BadMaxVersion("x".into())
        );
    }

    #[test]
    fn containerd_23_protobuf_bootstrap_params() {
        let any = Any::parse_from_bytes(RUNC_OPTIONS_ANY).unwrap();
        let params = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "default".into(),
            log_level: EnumOrUnknown::new(LogLevel::LOG_LEVEL_DEBUG),
            containerd_version: "v2.3.0".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            containerd_grpc_address: "/run/containerd/containerd.sock".into(),
            containerd_binary: "/usr/bin/containerd".into(),
            socket_dir: Some("/run/containerd/s".into()),
            extensions: vec![Extension {
                value: Some(any).into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = params.write_to_bytes().unwrap();
        // Even with a TTRPC_ADDRESS-less environment the params carry everything.
        let p = parse_start(&bytes, &flags(), &LegacyEnv::default()).unwrap();
        assert_eq!(p.reply, Reply::BootstrapProto);
        assert!(p.debug);
        assert_eq!(p.socket_dir.as_deref(), Some("/run/containerd/s"));
        assert_eq!(p.options.unwrap().type_url, "containerd.runc.v1.Options");
        let r =
            BootstrapResult::parse_from_bytes(&encode_reply(p.reply, "unix:///run/containerd/s/x"))
                .unwrap();
        assert_eq!(
            (r.version, r.address.as_str(), r.protocol.as_str()),
            (3, "unix:///run/containerd/s/x", "ttrpc")
        );
    }

    #[test]
    fn bootstrap_params_for_another_instance_are_rejected() {
        let params = BootstrapParams {
            instance_id: "other".into(),
            namespace: "default".into(),
            containerd_ttrpc_address: "/t".into(),
            ..Default::default()
        };
        let err = parse_start(&params.write_to_bytes().unwrap(), &flags(), &env(None)).unwrap_err();
        assert!(matches!(err, BootstrapError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn json_bootstrap_params_get_json_result() {
        let input = br#"{"instance_id":"c1","namespace":"default","log_level":0,
            "containerd_ttrpc_address":"/run/containerd/containerd.sock.ttrpc"}"#;
        let p = parse_start(input, &flags(), &LegacyEnv::default()).unwrap();
        assert_eq!(p.reply, Reply::BootstrapJson);
        assert_eq!(p.ttrpc_address, "/run/containerd/containerd.sock.ttrpc");
        let v: serde_json::Value =
            serde_json::from_slice(&encode_reply(p.reply, "unix:///s")).unwrap();
        assert_eq!(v["version"], 3);
        let camel = br#"{"instanceId":"c1","namespace":"default","containerdTtrpcAddress":"/t"}"#;
        assert_eq!(
            parse_start(camel, &flags(), &LegacyEnv::default())
                .unwrap()
                .reply,
            Reply::BootstrapJson
        );
    }

    #[test]
    fn missing_ttrpc_address_is_an_error() {
        assert_eq!(
            parse_start(b"", &flags(), &LegacyEnv::default()).unwrap_err(),
            BootstrapError::NoTtrpcAddress
        );
    }
}
