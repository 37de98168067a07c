//! Command line flags as containerd passes them: Go `flag` syntax (`-name value`, `-name=value`,
//! `--name`), flags before the action word (`start`, `delete`), unknown flags rejected by name.

/// Everything containerd may put on a shim's command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    pub debug: bool,
    pub version: bool,
    pub info: bool,
    pub namespace: String,
    pub id: String,
    pub socket: String,
    pub bundle: String,
    pub address: String,
    pub publish_binary: String,
    /// `start`, `delete`, or empty for the long-running server.
    pub action: String,
}

/// Every flag: (name, takes a value, help text). `parse` refuses names not listed here, and
/// `-h`/`-help` prints them ([`usage`]), so the help cannot drift from what is accepted.
const FLAGS: &[(&str, bool, &str)] = &[
    ("address", true, "grpc address back to main containerd"),
    ("bundle", true, "path to the bundle if not workdir"),
    ("debug", false, "enable debug output in logs"),
    ("id", true, "id of the task"),
    ("info", false, "print the runtime's features (JSON) and exit"),
    ("namespace", true, "namespace that owns the shim"),
    ("publish-binary", true, "path to publish binary (used for publishing events)"),
    ("socket", true, "socket path to serve"),
    ("v", false, "show the shim version and exit"),
    ("version", false, "show the shim version and exit"),
];

/// What `-h` prints, in Go's flag package layout (containerd-shim-runc-v2 prints the same way).
pub fn usage(prog: &str) -> String {
    let mut out = format!("Usage of {prog}:\n");
    for (name, value, help) in FLAGS {
        let arg = if *value { " string" } else { "" };
        out.push_str(&format!("  -{name}{arg}\n    \t{help}\n"));
    }
    out
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// `-h`, `-help` or `--help`: not an error for the user (exit 0 after the usage).
    #[error("help requested")]
    Help,
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid boolean value {value:?} for -{name}")]
    BadBool { name: String, value: String },
}

pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Flags, ArgsError> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        // Go's flag package stops at the first non-flag argument (the action) or at "--".
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let body = arg.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if matches!(name, "h" | "help") {
            return Err(ArgsError::Help);
        }
        if !FLAGS.iter().any(|(n, _, _)| *n == name) {
            return Err(ArgsError::Unknown(name.to_string()));
        }
        let boolean = |inline: Option<String>| -> Result<bool, ArgsError> {
            match inline.as_deref() {
                None | Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE")
                | Some("True") => Ok(true),
                Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE")
                | Some("False") => Ok(false),
                Some(v) => Err(ArgsError::BadBool {
                    name: name.to_string(),
                    value: v.to_string(),
                }),
            }
        };
        match name {
            "debug" => f.debug = boolean(inline)?,
            "v" | "version" => f.version = boolean(inline)?,
            "info" => f.info = boolean(inline)?,
            "namespace" | "id" | "socket" | "bundle" | "address" | "publish-binary" => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .map(|s| s.as_ref().to_string())
                            .ok_or_else(|| ArgsError::MissingValue(name.to_string()))?
                    }
                };
                match name {
                    "namespace" => f.namespace = value,
                    "id" => f.id = value,
                    "socket" => f.socket = value,
                    "bundle" => f.bundle = value,
                    "address" => f.address = value,
                    _ => f.publish_binary = value,
                }
            }
            other => return Err(ArgsError::Unknown(other.to_string())),
        }
        i += 1;
    }
    if let Some(action) = args.get(i) {
        f.action = action.as_ref().to_string();
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_16_start_line() {
        let f = parse(&[
            "-namespace",
            "default",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "-debug",
            "start",
        ])
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert_eq!(f.id, "c1");
        assert!(f.debug);
        assert_eq!(f.action, "start");
    }

    #[test]
    fn delete_with_bundle_and_equals_form() {
        let f = parse(&["-id=c1", "--bundle", "/b", "delete"]).unwrap();
        assert_eq!(f.id, "c1");
        assert_eq!(f.bundle, "/b");
        assert_eq!(f.action, "delete");
    }

    #[test]
    fn version_info_and_errors() {
        assert!(parse(&["-v"]).unwrap().version);
        assert_eq!(parse(&["--help"]).unwrap_err(), ArgsError::Help);
        assert_eq!(parse(&["-h"]).unwrap_err(), ArgsError::Help);
        let u = usage("x");
        for (name, _, _) in FLAGS {
            assert!(u.contains(&format!("  -{name}")), "{name} missing from the usage:\n{u}");
        }
        assert!(parse(&["-info"]).unwrap().info);
        assert_eq!(
            parse(&["-bogus"]).unwrap_err(),
            ArgsError::Unknown("bogus".into())
        );
        assert_eq!(
            parse(&["-id"]).unwrap_err(),
            ArgsError::MissingValue("id".into())
        );
        assert!(matches!(
            parse(&["-debug=maybe"]).unwrap_err(),
            ArgsError::BadBool { .. }
        ));
    }
}
