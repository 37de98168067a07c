//! `-info`: describe the runtime to containerd (RuntimeInfo with the OCI features document).
use std::io::{IsTerminal, Read, Write};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};

pub const RUNTIME_NAME: &str = "io.containerd.brisk.v2";
/// The type URL containerd's typeurl registers for runtime-spec's features.Features.
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// The OCI features document (runtime-spec features.md), as the runtime library states it.
pub fn features_json() -> Vec<u8> {
    brisk_runtime::features::features().to_string().into_bytes()
}

pub fn info(options: Option<Any>) -> RuntimeInfo {
    RuntimeInfo {
        name: RUNTIME_NAME.to_string(),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
        .into(),
        options: options.into(),
        features: Some(Any {
            type_url: FEATURES_TYPE_URL.to_string(),
            value: features_json(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

pub fn run() -> i32 {
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let _ = stdin.lock().take(10 << 20).read_to_end(&mut input);
    }
    let options = if input.is_empty() {
        None
    } else {
        match Any::parse_from_bytes(&input) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("-info: runtime options on stdin are not a protobuf Any: {e}");
                return 1;
            }
        }
    };
    if let Some(a) = &options {
        if let Err(e) = crate::options::parse_any(Some(a)) {
            eprintln!("-info: {e}");
            return 1;
        }
    }
    let bytes = info(options).write_to_bytes().unwrap_or_default();
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
    fn runtime_info_carries_features() {
        let i = info(None);
        assert_eq!(i.name, RUNTIME_NAME);
        let f = i.features.as_ref().unwrap();
        assert_eq!(f.type_url, FEATURES_TYPE_URL);
        let v: serde_json::Value = serde_json::from_slice(&f.value).unwrap();
        assert_eq!(v["ociVersionMin"], "1.0.0");
        let back = RuntimeInfo::parse_from_bytes(&i.write_to_bytes().unwrap()).unwrap();
        assert_eq!(back, i);
    }
}
