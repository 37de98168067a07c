//! Loading and validating a bundle's config.json: the one place that knows the OCI config.
//!
//! Validation happens here, before any side effect, so that bad input fails with a message naming
//! the field and leaves nothing behind. Everything the rest of the runtime reads from the spec has
//! been checked here first.
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::namespaces;

pub mod check;
pub mod keys;
pub use check::{Collector, Flow, Problem, Severity, Stop};
pub use keys::{KeyKind, KeyNote, Schema};

/// The runtime-spec version brisk implements (what `state` and `features` report).
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {path}: {source}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("{path}: JSON specification file config.json not found (run `brisk spec` in the bundle directory to write a default one)")]
    Missing { path: PathBuf },
    #[error("{path}: {field}: {message}")]
    Parse { path: PathBuf, field: String, message: String },
    #[error("{path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: String, reason: String },
    #[error("{path}: {field}: not supported by brisk on this host: {reason}")]
    Unsupported { path: PathBuf, field: String, reason: String },
}

/// A parsed and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    /// Properties brisk does not know; the spec says to ignore them (config.md "Extensibility"), so
    /// they are reported as warnings, never errors.
    pub unknown_fields: Vec<String>,
}

/// Read `<bundle>/config.json`, parse it, and validate it (see [`validate`]).
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    // runc chdirs into the bundle and records os.Getwd(): a clean, symlink-free path (no
    // trailing "/" from `--bundle ./`), which is what `state` then prints.
    let dir = fs::canonicalize(bundle).map_err(|source| SpecError::Read { path: bundle.to_path_buf(), source })?;
    let path = dir.join("config.json");
    let data = fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing { path: path.clone() },
        _ => SpecError::Read { path: path.clone(), source },
    })?;
    let (spec, notes) = parse(&data).map_err(|(field, message)| SpecError::Parse { path: path.clone(), field, message })?;
    log_notes(&path, &notes);
    let unknown_fields = notes.iter().filter(|n| matches!(n.kind, KeyKind::Unknown { .. })).map(|n| n.path.clone()).collect();
    let rootfs = validate(&spec, &dir, &path)?;
    Ok(Bundle { dir, spec, rootfs, unknown_fields })
}

/// Log what [`parse`] noticed about keys: a respelled key at debug level (runc reads it the same
/// way), an unknown one as a warning with the nearest known key.
pub fn log_notes(path: &Path, notes: &[KeyNote]) {
    for n in notes {
        match n.kind {
            KeyKind::Respelled { .. } => log::debug!("{}: {n}", path.display()),
            KeyKind::Unknown { .. } => log::warn!("{}: {n} (config.md \"Extensibility\")", path.display()),
        }
    }
}

fn spec_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(Schema::of::<Spec>)
}

fn process_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(Schema::of::<oci_spec::runtime::Process>)
}

/// Parse config.json bytes; on error return (field path, message with line and column). Keys are
/// matched to fields as runc's Go decoder does (see [`keys`]); the notes say which keys were
/// respelled and which are unknown (with a suggestion), for the caller to log or report.
pub fn parse(data: &[u8]) -> Result<(Spec, Vec<KeyNote>), (String, String)> {
    let mut c = Collector::fail_fast();
    match parse_checked(data, &mut c) {
        Some(x) if !c.has_errors() => Ok(x),
        _ => Err(first_parse_error(&c)),
    }
}

/// The parse `create` and `validate` share: capability spellings, then the typed parse, reporting
/// into `c` (unknown keys as warnings, respelled keys as notes). A fail-fast collector gives
/// `None` at the first error. A collect-all one goes on section by section (see
/// [`parse_sections`]) and returns the spec made of what did parse, so the checks after the parse
/// can report on it too.
pub fn parse_checked(data: &[u8], c: &mut Collector) -> Option<(Spec, Vec<KeyNote>)> {
    let (_, _, positions) = keys::fold_with_positions(data, spec_schema(), "");
    c.set_positions(positions);
    check_capability_spellings(data, "", c).ok()?;
    parse_as::<Spec>(data, spec_schema(), c)
}

/// The first error of a fail-fast parse as `parse` has always returned it: (field, message with
/// serde's " at line L column C").
fn first_parse_error(c: &Collector) -> (String, String) {
    match c.first_error() {
        Some(p) if p.line > 0 && p.hint.is_empty() => (p.path.clone(), format!("{} at line {} column {}", p.message, p.line, p.column)),
        // serde's own wording: "unknown variant `x`, expected one of ...".
        Some(p) if p.line > 0 && p.hint.starts_with("expected ") => (p.path.clone(), format!("{}, {} at line {} column {}", p.message, p.hint, p.line, p.column)),
        Some(p) if p.line > 0 => (p.path.clone(), format!("{} ({}) at line {} column {}", p.message, p.hint, p.line, p.column)),
        Some(p) if p.hint.is_empty() => (p.path.clone(), p.message.clone()),
        Some(p) => (p.path.clone(), format!("{} ({})", p.message, p.hint)),
        None => ("config.json".into(), "could not be parsed".into()),
    }
}

/// Parse an `exec --process` file (a bare process object) by the same rules as config.json.
pub fn parse_process(data: &[u8]) -> Result<(oci_spec::runtime::Process, Vec<KeyNote>), (String, String)> {
    let mut c = Collector::fail_fast();
    if check_capability_spellings(data, "process", &mut c).is_err() {
        return Err(first_parse_error(&c));
    }
    // runc decodes into a Go struct whose `user` is a value, so a process.json without it means
    // uid 0, gid 0; oci-spec's Process requires the field.
    // The member is appended before the closing brace, so every position before it (all of
    // the file's own text) stays where it was for error messages.
    let (folded, _) = keys::fold(data, process_schema(), "");
    let with_user = match serde_json::from_slice::<serde_json::Value>(&folded) {
        Ok(serde_json::Value::Object(obj)) if !obj.contains_key("user") => {
            let end = data.iter().rposition(|b| *b == b'}').unwrap_or(data.len());
            let mut d = data[..end].to_vec();
            d.extend_from_slice(if obj.is_empty() { b"\"user\":{\"uid\":0,\"gid\":0}" } else { b",\"user\":{\"uid\":0,\"gid\":0}" });
            d.extend_from_slice(&data[end..]);
            Some(d)
        }
        _ => None,
    };
    match parse_as(with_user.as_deref().unwrap_or(data), process_schema(), &mut c) {
        Some(x) if !c.has_errors() => Ok(x),
        _ => Err(first_parse_error(&c)),
    }
}

/// A typed-parse failure: serde's path and message, and its position when it parsed bytes.
struct TypedError {
    path: String,
    message: String,
    line: usize,
    column: usize,
}

fn typed_error(track: serde_path_to_error::Track, e: &serde_json::Error) -> TypedError {
    let path = track.path().to_string();
    let path = if path == "." || path.is_empty() { "config.json".to_string() } else { path };
    // serde_json's Display is "MESSAGE at line L column C"; keep the position apart.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = if e.line() > 0 { full.strip_suffix(&suffix).unwrap_or(&full).to_string() } else { full };
    TypedError { path, message, line: e.line(), column: e.column() }
}

/// serde_ignored renders Option layers as "?"; drop them so the path reads like the JSON.
fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    p.to_string().replace(".?", "").trim_start_matches("?.").to_string()
}

/// The typed parse of bytes (serde's own line:column on error).
fn typed_bytes<T: serde::de::DeserializeOwned>(folded: &[u8]) -> Result<(T, Vec<String>), TypedError> {
    let mut ignored = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let mut jd = serde_json::Deserializer::from_slice(folded);
    let pd = serde_path_to_error::Deserializer::new(&mut jd, &mut track);
    let res: Result<T, _> = serde_ignored::deserialize(pd, |p| ignored.push(ignored_path(&p)));
    match res.and_then(|s| jd.end().map(|_| s)) {
        Ok(v) => Ok((v, ignored)),
        Err(e) => Err(typed_error(track, &e)),
    }
}

/// The typed parse of an already parsed document (what [`parse_sections`] prunes).
fn typed_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<(T, Vec<String>), TypedError> {
    let mut ignored = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let pd = serde_path_to_error::Deserializer::new(v, &mut track);
    let res: Result<T, _> = serde_ignored::deserialize(pd, |p| ignored.push(ignored_path(&p)));
    res.map(|v| (v, ignored)).map_err(|e| typed_error(track, &e))
}

/// serde's "unknown variant `x`, expected one of `a`, `b`" as (what is wrong, what is accepted).
fn split_serde_message(m: &str) -> (String, String) {
    for sep in [", expected one of ", ", expected "] {
        if let Some((what, accepted)) = m.split_once(sep) {
            if m.starts_with("unknown variant") || m.starts_with("invalid type") || m.starts_with("invalid value") {
                return (what.to_string(), format!("expected {}{accepted}", if sep.contains("one of") { "one of " } else { "" }));
            }
        }
    }
    (m.to_string(), String::new())
}

fn parse_as<T: serde::de::DeserializeOwned + serde::Serialize + Default>(data: &[u8], schema: &'static Schema, c: &mut Collector) -> Option<(T, Vec<KeyNote>)> {
    let (folded, mut notes, positions) = keys::fold_with_positions(data, schema, "");
    c.set_positions(positions);
    let (value, ignored) = match typed_bytes::<T>(&folded) {
        Ok(x) => x,
        Err(e) => {
            let (message, hint) = split_serde_message(&e.message);
            c.push_problem(Problem { severity: Severity::Error, path: e.path.clone(), line: e.line, column: e.column, message, hint, unsupported: false }).ok()?;
            parse_sections::<T>(&folded, e, c)?
        }
    };
    // serde decides what was ignored (a key the scanner could not place in a struct is still
    // reported); the scanner's note adds the position and the suggestion when it has one.
    let ignored: Vec<String> = ignored.iter().map(|p| bracket_path(p)).collect();
    notes.retain(|n| matches!(n.kind, KeyKind::Respelled { .. }) || ignored.iter().any(|p| p.eq_ignore_ascii_case(&n.path)));
    for p in ignored {
        if !notes.iter().any(|n| n.path.eq_ignore_ascii_case(&p)) {
            let (pattern, key) = keys::pattern_of(&p);
            let suggestion = schema.fields(&pattern).and_then(|f| keys::suggest(&key, f));
            notes.push(KeyNote { path: p, line: 0, column: 0, kind: KeyKind::Unknown { suggestion } });
        }
    }
    for n in &notes {
        match &n.kind {
            KeyKind::Respelled { field } => c.note(&n.path, format!("read as the field {field:?}, as runc does"), format!("write {field:?}")),
            KeyKind::Unknown { suggestion } => {
                let hint = suggestion.map(|s| format!("did you mean {s:?}?")).unwrap_or_default();
                c.warn(&n.path, "unknown property, ignored (config.md \"Extensibility\")", hint);
            }
        }
    }
    Some((value, notes))
}

/// serde stops at the first error; `validate` wants them all. So after a failed parse, the
/// document is parsed again as JSON and the part that failed is cut out: the member serde named,
/// or, when that leaves its object without a required field, the whole object (an array element,
/// a section). Then the typed parse runs again, and so on until it succeeds. Each error found on
/// the way is reported at its path in the file as written: the paths of later rounds are mapped
/// back over the array elements already cut out. What was cut is marked pruned, so the checks
/// after the parse do not report its absence as another problem.
fn parse_sections<T: serde::de::DeserializeOwned + serde::Serialize + Default>(folded: &[u8], first: TypedError, c: &mut Collector) -> Option<(T, Vec<String>)> {
    let mut doc: serde_json::Value = serde_json::from_slice(folded).ok()?;
    let defaults = &serde_json::to_value(T::default()).unwrap_or_default();
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    let mut err = first;
    // Every round removes one member, so the document runs out long before this.
    for _ in 0..4096 {
        let mut cur = segments(&err.path);
        if err.path == "config.json" {
            return None;
        }
        // A required field missing from an object outside any array (a section: `process`
        // without `cwd`, or whose `cwd` was cut in the round before) gets the value oci-spec's
        // default config has there, so the rest of the section is still checked. Inside an array a
        // made-up element could collide with a real one (a second "pid" namespace), so there the
        // element is cut instead.
        if let Some(f) = err.message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            let mut at = cur.clone();
            at.push(Seg::Key(f.to_string()));
            let filler = (!at.iter().any(|s| matches!(s, Seg::Index(_)))).then(|| lookup(defaults, &at)).flatten();
            if let Some(v) = filler {
                if insert(&mut doc, &at, v.clone()) {
                    let orig = to_original(&at, &removed);
                    c.prune(render(&orig));
                    removed.push(orig);
                    match typed_value::<T>(doc.clone()) {
                        Ok(x) => return Some(x),
                        Err(e) => {
                            report_round(&e, &removed, c).ok()?;
                            err = e;
                            continue;
                        }
                    }
                }
            }
        }
        // The member serde named; if the document has no such member (a "missing field" error
        // names the object), the object itself.
        while !cur.is_empty() && !remove(&mut doc, &cur) {
            cur.pop();
        }
        if cur.is_empty() {
            return None;
        }
        let orig = to_original(&cur, &removed);
        c.prune(render(&orig));
        removed.push(orig);
        match typed_value::<T>(doc.clone()) {
            Ok(x) => return Some(x),
            Err(e) => {
                report_round(&e, &removed, c).ok()?;
                err = e;
            }
        }
    }
    None
}

/// Report an error found in a later round of [`parse_sections`] at its path in the file.
fn report_round(e: &TypedError, removed: &[Vec<Seg>], c: &mut Collector) -> Flow {
    let orig = render(&to_original(&segments(&e.path), removed));
    let (message, hint) = split_serde_message(&e.message);
    // A field cut out in an earlier round is now "missing": not a problem of its own.
    let cut_field = e.message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`'));
    let own = cut_field.is_none_or(|f| !removed.iter().any(|r| render(r) == format!("{orig}.{f}")));
    if own && e.path != "config.json" {
        c.error(orig, message, hint)?;
    }
    Ok(())
}

fn lookup<'a>(doc: &'a serde_json::Value, path: &[Seg]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(doc, |v, seg| match (seg, v) {
        (Seg::Key(k), serde_json::Value::Object(o)) => o.get(k),
        (Seg::Index(i), serde_json::Value::Array(a)) => a.get(*i),
        _ => None,
    })
}

fn lookup_mut<'a>(doc: &'a mut serde_json::Value, path: &[Seg]) -> Option<&'a mut serde_json::Value> {
    path.iter().try_fold(doc, |v, seg| match (seg, v) {
        (Seg::Key(k), serde_json::Value::Object(o)) => o.get_mut(k),
        (Seg::Index(i), serde_json::Value::Array(a)) => a.get_mut(*i),
        _ => None,
    })
}

/// Set the member at `path` (its parent object must exist).
fn insert(doc: &mut serde_json::Value, path: &[Seg], value: serde_json::Value) -> bool {
    let Some((Seg::Key(last), parents)) = path.split_last() else { return false };
    let Some(v) = lookup_mut(doc, parents) else { return false };
    match v {
        serde_json::Value::Object(o) => {
            o.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `linux.namespaces[1].type` as segments.
fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.find('[').map_or((part, ""), |i| (&part[..i], &part[i..]));
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(Seg::Key(idx.to_string())),
            }
        }
    }
    out
}

fn render(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Remove the member or element at `path`; false if the document has none there.
fn remove(doc: &mut serde_json::Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let Some(v) = lookup_mut(doc, parents) else { return false };
    match (last, v) {
        (Seg::Key(k), serde_json::Value::Object(o)) => o.remove(k).is_some(),
        (Seg::Index(i), serde_json::Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// A path in the pruned document as the path in the file: every array index counts the elements
/// already cut out before it.
fn to_original(cur: &[Seg], removed: &[Vec<Seg>]) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::new();
    for seg in cur {
        match seg {
            Seg::Key(k) => out.push(Seg::Key(k.clone())),
            Seg::Index(k) => {
                let gone = |j: usize| {
                    removed.iter().any(|r| r.len() == out.len() + 1 && r[..out.len()] == out[..] && r[out.len()] == Seg::Index(j))
                };
                let (mut j, mut seen) = (0, 0);
                loop {
                    if !gone(j) {
                        if seen == *k {
                            break;
                        }
                        seen += 1;
                    }
                    j += 1;
                }
                out.push(Seg::Index(j));
            }
        }
    }
    out
}

/// `hooks.prestart.0.foo` (serde_ignored) as `hooks.prestart[0].foo` (how JSON paths read).
fn bracket_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p.split('.') {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Capability names must be spelled as the spec spells them (`CAP_NET_ADMIN`). runc 1.1.5 looks
/// names up in a table of `CAP_*` names and ignores (with a warning) any other spelling, so
/// `"net_admin"` silently loses the capability; oci-spec's parser instead accepts it and grants it.
/// brisk refuses both readings: a config that quietly gets fewer or more capabilities than it
/// says is a security surprise (README "Differences from runc").
fn check_capability_spellings(data: &[u8], prefix: &str, c: &mut Collector) -> Flow {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return Ok(()) };
    let (caps, field) = if prefix.is_empty() {
        (v.get("process").and_then(|p| find_ci(p, "capabilities")), "process.capabilities")
    } else {
        (find_ci(&v, "capabilities"), "capabilities")
    };
    let Some(caps) = caps else { return Ok(()) };
    for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
        let Some(items) = find_ci(caps, set).and_then(|l| l.as_array()) else { continue };
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.as_str() else { continue };
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
            let known = crate::security::capability_index(&full).is_some();
            if known && name == full {
                continue;
            }
            let at = format!("{field}.{set}[{i}]");
            if known {
                c.error(at, format!("{name:?} is not a capability name (runc 1.1.5 would ignore it, brisk refuses it)"), format!("write {full:?}"))?;
            } else {
                let hint = crate::security::suggest_capability(&full).map(|s| format!("did you mean {s:?}?")).unwrap_or_default();
                c.error(at, format!("unknown capability {name:?}"), hint)?;
            }
        }
    }
    Ok(())
}

/// A member of a JSON object by Go's key rule (exact, else ignoring ASCII case).
fn find_ci<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// filepath.Clean: drop "." and empty components and resolve ".." lexically.
fn lexical_clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("/");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn invalid(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid { path: path.to_path_buf(), field: field.into(), reason: reason.into() }
}

/// The first error a fail-fast run of the checks found, as the error `create` returns.
fn spec_error(path: &Path, c: &Collector) -> Option<SpecError> {
    let p = c.first_error()?;
    let reason = if p.hint.is_empty() { p.message.clone() } else { format!("{} ({})", p.message, p.hint) };
    Some(if p.unsupported {
        SpecError::Unsupported { path: path.to_path_buf(), field: p.path.clone(), reason }
    } else {
        SpecError::Invalid { path: path.to_path_buf(), field: p.path.clone(), reason }
    })
}

/// Check everything that can be checked without side effects. Returns the canonical rootfs.
pub fn validate(spec: &Spec, bundle: &Path, path: &Path) -> Result<PathBuf, SpecError> {
    let mut c = Collector::fail_fast();
    let rootfs = check_config(spec, bundle, &mut c);
    for w in c.problems().iter().filter(|p| p.severity == Severity::Warning) {
        // What create ignores (memory.kernel: runc 1.1.5 warns too) is worth a warning; the lint
        // advice about capabilities outside the default set is not news at every create.
        if w.path.ends_with(".capabilities.bounding") {
            log::debug!("{}: {}: {}", path.display(), w.path, w.message);
        } else {
            log::warn!("{}: {}: {}", path.display(), w.path, w.message);
        }
    }
    if let Some(e) = spec_error(path, &c) {
        return Err(e);
    }
    rootfs.ok().flatten().ok_or_else(|| invalid(path, "root.path", "could not be resolved"))
}

/// Every check of a parsed config, reporting into `c` (see [`check`]). `create` runs it through
/// [`validate`] with a fail-fast collector; `brisk validate` with a collect-all one. Returns the
/// canonical rootfs when it could be resolved (only when `c.bundle()`).
pub fn check_config(spec: &Spec, bundle: &Path, c: &mut Collector) -> Result<Option<PathBuf>, Stop> {
    let accepted = "a runtime-spec 1.x version, e.g. \"1.0.2\"";
    if spec.version().is_empty() {
        c.error("ociVersion", "missing", accepted)?;
    } else if !spec.version().starts_with("1.") {
        c.error("ociVersion", format!("{:?} is not a 1.x runtime-spec version", spec.version()), accepted)?;
    }
    let mut rootfs = None;
    match spec.root() {
        None => c.error("root", "missing", "an object with the rootfs \"path\"")?,
        Some(root) if c.bundle() => rootfs = check_rootfs(root.path(), bundle, c)?,
        Some(_) => {}
    }
    match spec.process() {
        Some(process) => check_process(process, "process", c)?,
        None => c.error("process", "missing", "")?,
    }
    if let Some(hooks) = spec.hooks() {
        for kind in crate::hooks::Kind::ALL {
            for (i, h) in kind.select(hooks).iter().enumerate() {
                // config.md "POSIX-platform Hooks": path is absolute. A bare name would otherwise
                // be looked up in the runtime's PATH, which runc never does (it fails the hook).
                if !h.path().is_absolute() {
                    c.error(format!("hooks.{}[{i}].path", kind.name()), format!("{:?} is not an absolute path", h.path().display().to_string()), "an absolute path")?;
                }
            }
        }
    }

    for field in ["vm", "zos"] {
        let present = match field {
            "vm" => spec.vm().is_some(),
            _ => spec.zos().is_some(),
        };
        if present {
            c.unsupported(field, "brisk runs Linux containers only", "")?;
        }
    }

    let Some(linux) = spec.linux() else {
        c.error("linux", "missing (brisk runs Linux containers)", "")?;
        return Ok(rootfs);
    };
    let nss = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in nss.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            c.error(format!("linux.namespaces[{i}].type"), format!("duplicate namespace {:?}", namespaces::name(ns.typ())), "each type at most once")?;
        }
        if let Some(p) = ns.path() {
            // Whether the path is a namespace of that type is a question about this machine.
            if c.host() {
                if let Err(e) = namespaces::check_path(p, ns.typ()) {
                    c.error(format!("linux.namespaces[{i}].path"), e.to_string(), "")?;
                }
            }
        }
    }
    let has = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t);
    let creates = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t && n.path().is_none());
    if !has(LinuxNamespaceType::Mount) {
        // runc 1.1.5 runs such a container (see rootfs::prepare for what it does then) but refuses
        // masked and read-only paths, which cannot be applied without a private mount namespace
        // (configs/validate security: "unable to restrict sys entries without a private MNT
        // namespace").
        if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            c.error("linux.maskedPaths", "needs a mount namespace in linux.namespaces", "add {\"type\": \"mount\"}")?;
        }
        if linux.readonly_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            c.error("linux.readonlyPaths", "needs a mount namespace in linux.namespaces", "add {\"type\": \"mount\"}")?;
        }
    }
    // Id mappings belong to a user namespace brisk creates (config-linux.md "User namespace mappings").
    let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
    let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
    if creates(LinuxNamespaceType::User) {
        if uid_maps.is_empty() || gid_maps.is_empty() {
            c.error("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings", "")?;
        }
    } else if !uid_maps.is_empty() || !gid_maps.is_empty() {
        c.error("linux.uidMappings", "id mappings need a new user namespace in linux.namespaces", "add {\"type\": \"user\"}")?;
    }
    check_mappings(&uid_maps, "linux.uidMappings", c)?;
    check_mappings(&gid_maps, "linux.gidMappings", c)?;

    if let Some(offsets) = linux.time_offsets() {
        if !creates(LinuxNamespaceType::Time) {
            c.error("linux.timeOffsets", "needs a new time namespace in linux.namespaces", "add {\"type\": \"time\"}")?;
        }
        for k in offsets.keys() {
            if k != "monotonic" && k != "boottime" {
                c.error(format!("linux.timeOffsets.{k}"), "only \"monotonic\" and \"boottime\" clocks can be offset", "monotonic, boottime")?;
            }
        }
    }
    // runc 1.1.5 (configs/validate hostname) asks for a uts entry in linux.namespaces, new or
    // joined by path, and sets the hostname in whichever it is.
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        c.error("hostname", "setting the hostname needs a uts namespace in linux.namespaces", "add {\"type\": \"uts\"}")?;
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        c.error("domainname", "setting the domainname needs a uts namespace in linux.namespaces", "add {\"type\": \"uts\"}")?;
    }
    if let Some(sysctl) = linux.sysctl() {
        let mut keys: Vec<&String> = sysctl.keys().collect();
        keys.sort();
        for key in keys {
            check_sysctl(key, &has, c)?;
        }
    }
    if let Some(cg) = linux.cgroups_path() {
        if let Err(reason) = crate::cgroups::check_path(cg) {
            c.error("linux.cgroupsPath", reason, "")?;
        }
    }
    if let Some(r) = linux.resources() {
        crate::cgroups::check_resources(r, "linux.resources", c)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(p.as_str(), "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable") {
            c.error("linux.rootfsPropagation", format!("unknown propagation {p:?}"), "one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable")?;
        }
    }
    if linux.intel_rdt().is_some() {
        c.unsupported("linux.intelRdt", "resctrl is not supported", "")?;
    }
    if linux.memory_policy().is_some() {
        c.unsupported("linux.memoryPolicy", "set_mempolicy is not supported yet", "")?;
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        c.unsupported("linux.netDevices", "moving network devices is not supported yet", "")?;
    }
    if let Some(label) = linux.mount_label() {
        if c.host() && !label.is_empty() && !selinux_enabled() {
            c.unsupported("linux.mountLabel", "SELinux is not enabled on this host", "")?;
        }
    }
    if let Some(p) = linux.personality() {
        use oci_spec::runtime::LinuxPersonalityDomain as D;
        if !matches!(p.domain(), D::PerLinux | D::PerLinux32) {
            c.error("linux.personality.domain", "only LINUX and LINUX32 are defined", "LINUX, LINUX32")?;
        }
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            c.unsupported("linux.personality.flags", "no personality flags are supported (runc supports none either)", "")?;
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::security::check_seccomp(seccomp, c)?;
    }
    Ok(rootfs)
}

/// root.path against the bundle, as runc resolves it.
fn check_rootfs(root: &Path, bundle: &Path, c: &mut Collector) -> Result<Option<PathBuf>, Stop> {
    let given = lexical_clean(&bundle.join(root));
    let rootfs = match fs::canonicalize(&given) {
        Ok(r) => r,
        Err(e) => {
            c.error("root.path", format!("{}: {e}", given.display()), "an existing directory, absolute or relative to the bundle")?;
            return Ok(None);
        }
    };
    // runc 1.1.5 (configs/validate rootfs): the rootfs must be reachable without a symlink;
    // "invalid rootfs: not an absolute path, or a symlink" otherwise.
    if rootfs != given {
        c.error("root.path", format!("{} is not an absolute path, or a symlink (it resolves to {}; use that path)", given.display(), rootfs.display()), "")?;
        return Ok(None);
    }
    if !rootfs.is_dir() {
        c.error("root.path", format!("{} is not a directory", rootfs.display()), "")?;
        return Ok(None);
    }
    Ok(Some(rootfs))
}

/// Checks shared by a container's process and an exec'd process.
pub fn validate_process(process: &oci_spec::runtime::Process, path: &Path, field: &str) -> Result<(), SpecError> {
    let mut c = Collector::fail_fast();
    let _ = check_process(process, field, &mut c);
    spec_error(path, &c).map_or(Ok(()), Err)
}

/// [`validate_process`]'s checks, reporting into a collector.
pub fn check_process(process: &oci_spec::runtime::Process, field: &str, c: &mut Collector) -> Flow {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        c.error(format!("{field}.args"), "must name the program to run", "a non-empty list whose first element is the program")?;
    }
    if !process.cwd().is_absolute() {
        c.error(format!("{field}.cwd"), format!("{} is not absolute", process.cwd().display()), "an absolute path")?;
    }
    for (i, e) in process.env().as_deref().unwrap_or_default().iter().enumerate() {
        if !e.contains('=') {
            c.error(format!("{field}.env[{i}]"), format!("{e:?} is not KEY=VALUE"), "KEY=VALUE")?;
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().as_deref().unwrap_or_default().iter().enumerate() {
        let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{:?}", r.typ()));
        if !seen.insert(name.clone()) {
            c.error(format!("{field}.rlimits[{i}]"), format!("duplicate {name}"), "each type at most once")?;
        }
        if r.soft() > r.hard() {
            c.error(format!("{field}.rlimits[{i}]"), "soft limit above the hard limit", "soft <= hard")?;
        }
    }
    if c.host() && process.apparmor_profile().as_deref().is_some_and(|p| !p.is_empty()) && !apparmor_enabled() {
        c.unsupported(format!("{field}.apparmorProfile"), "AppArmor is not enabled on this host", "")?;
    }
    if c.host() && process.selinux_label().as_deref().is_some_and(|p| !p.is_empty()) && !selinux_enabled() {
        c.unsupported(format!("{field}.selinuxLabel"), "SELinux is not enabled on this host", "")?;
    }
    if process.exec_cpu_affinity().is_some() {
        c.unsupported(format!("{field}.execCPUAffinity"), "not supported yet", "")?;
    }
    if let Some(s) = process.scheduler() {
        if s.flags().as_ref().is_some_and(|f| !f.is_empty()) || s.runtime().is_some() || s.deadline().is_some() || s.period().is_some() {
            c.unsupported(format!("{field}.scheduler"), "only policy, nice and priority are supported (SCHED_DEADLINE needs sched_setattr, not supported yet)", "")?;
        }
    }
    crate::security::check_capabilities(process, &format!("{field}.capabilities"), c)
}

fn check_mappings(maps: &[LinuxIdMapping], field: &str, c: &mut Collector) -> Flow {
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            c.error(format!("{field}[{i}].size"), "must be greater than 0", "")?;
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b.saturating_add(o.size()) && b < a.saturating_add(m.size());
            if overlap(m.container_id(), o.container_id()) {
                c.error(format!("{field}[{i}]"), format!("containerID range overlaps {field}[{j}]"), "ranges must not overlap")?;
            } else if overlap(m.host_id(), o.host_id()) {
                c.error(format!("{field}[{i}]"), format!("hostID range overlaps {field}[{j}]"), "ranges must not overlap")?;
            }
        }
    }
    if maps.len() > 340 {
        c.error(field, "the kernel accepts at most 340 ranges", "")?;
    }
    Ok(())
}

/// runc's sysctl rules (libcontainer/configs/validate): IPC sysctls need a new ipc namespace, net.*
/// a new net namespace, kernel.{hostname,domainname} a uts namespace; everything else is refused
/// because it is not namespaced and would change the host.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool, c: &mut Collector) -> Flow {
    let field = format!("linux.sysctl.{key}");
    const IPC: &[&str] = &["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has(LinuxNamespaceType::Ipc) { Ok(()) } else { c.error(field, "needs an ipc namespace", "add {\"type\": \"ipc\"}") };
    }
    if key.starts_with("net.") {
        return if has(LinuxNamespaceType::Network) { Ok(()) } else { c.error(field, "needs a network namespace", "add {\"type\": \"network\"}") };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has(LinuxNamespaceType::Uts) { Ok(()) } else { c.error(field, "needs a uts namespace", "add {\"type\": \"uts\"}") };
    }
    c.error(field, "not a namespaced sysctl: setting it would change the host", "kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, kernel.hostname, kernel.domainname")
}

fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Whether the host has AppArmor/SELinux (the init applies labels only when validation let them through).
pub fn lsm_available() -> (bool, bool) {
    (apparmor_enabled(), selinux_enabled())
}

/// The config.json `brisk spec` writes: runc's default spec, with the capability set and seccomp
/// profile containerd's CRI uses (config/). `rootless` maps the caller's uid/gid to root in a user
/// namespace and drops what an unprivileged user cannot set up (runc's `spec --rootless`).
/// `cgroupns` adds a cgroup namespace: runc's `spec` does so only on a cgroup v2 host
/// (libcontainer/specconv/example.go), since on v1 a container's /proc/self/cgroup then hides the
/// path that tools (and runc's own tests) compare with the host's view.
pub fn example(rootless: bool, uid: u32, gid: u32, cgroupns: bool) -> serde_json::Value {
    let caps = crate::security::default_capabilities();
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "brisk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "seccomp": crate::security::default_seccomp(),
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let linux = &mut v["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        let mounts = v["mounts"].as_array_mut().map(std::mem::take).unwrap_or_default();
        v["mounts"] = mounts
            .into_iter()
            .map(|mut m| {
                if m["destination"] == "/sys" {
                    m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["destination"] == "/dev/pts" {
                    m["options"] = serde_json::json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
                }
                m
            })
            .collect();
    }
    if cgroupns {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.push(serde_json::json!({"type": "cgroup"}));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_cgroupns_only_when_asked() {
        let types = |v: &serde_json::Value| v["linux"]["namespaces"].as_array().expect("namespaces").iter().map(|n| n["type"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
        for rootless in [false, true] {
            assert!(!types(&example(rootless, 1000, 1000, false)).contains(&"cgroup".to_string()), "rootless={rootless}");
            assert!(types(&example(rootless, 1000, 1000, true)).contains(&"cgroup".to_string()), "rootless={rootless}");
        }
        assert_eq!(types(&example(true, 1000, 1000, true)), ["pid", "ipc", "uts", "mount", "user", "cgroup"]);
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<PathBuf, SpecError> {
        let (spec, _) = parse(&serde_json::to_vec(&v).expect("json")).map_err(|(f, m)| SpecError::Parse { path: "c".into(), field: f, message: m })?;
        validate(&spec, Path::new("/"), Path::new("config.json"))
    }

    #[test]
    fn accepts_minimal() {
        check(base()).expect("valid");
    }

    #[test]
    fn unknown_namespace_type_names_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = check(v).expect_err("invalid").to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]);
        let e = check(v).expect_err("dup").to_string();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn unknown_fields_are_reported_not_fatal() {
        let mut v = base();
        v["frobnicate"] = 1.into();
        v["process"]["wibble"] = true.into();
        v["process"]["cwdd"] = "/".into();
        let (_, notes) = parse(&serde_json::to_vec(&v).expect("json")).expect("parses");
        assert!(notes.iter().any(|u| u.path == "frobnicate" && u.kind == KeyKind::Unknown { suggestion: None }), "{notes:?}");
        assert!(notes.iter().any(|u| u.path == "process.wibble"), "{notes:?}");
        assert!(notes.iter().any(|u| u.path == "process.cwdd" && u.kind == KeyKind::Unknown { suggestion: Some("cwd") }), "{notes:?}");
    }

    #[test]
    fn keys_match_fields_ignoring_case_like_go() {
        let mut v = base();
        v["Hooks"] = serde_json::json!({"postStop": [{"path": "/bin/true"}]});
        v["root"] = serde_json::json!({"path": "/", "readOnly": true});
        v["annotations"] = serde_json::json!({"readOnly": "data"});
        let text = serde_json::to_vec_pretty(&v).expect("json");
        let (spec, notes) = parse(&text).expect("parses");
        assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
        #[allow(deprecated)]
        let post = spec.hooks().as_ref().and_then(|h| h.poststop().clone()).unwrap_or_default();
        assert_eq!(post.len(), 1);
        assert_eq!(spec.annotations().as_ref().and_then(|a| a.get("readOnly")).map(String::as_str), Some("data"));
        assert!(notes.iter().all(|n| matches!(n.kind, KeyKind::Respelled { .. })), "{notes:?}");
        assert!(notes.iter().any(|n| n.path == "root.readOnly" && n.line > 1), "{notes:?}");
    }

    #[test]
    fn errors_keep_field_path_and_position_after_folding() {
        let text = b"{\"ociVersion\": \"1.0.2\",\n \"Process\": {\"Cwd\": 5}}";
        let (field, msg) = parse(text).expect_err("bad cwd");
        assert_eq!(field, "process.cwd");
        assert!(msg.contains("line 2 column"), "{msg}");
    }

    #[test]
    fn process_json_defaults_user_and_folds_keys() {
        let (p, notes) = parse_process(b"{\"Args\": [\"true\"], \"cwd\": \"/\"}").expect("parses");
        assert_eq!(p.user().uid(), 0);
        assert_eq!(p.args().as_deref(), Some(&["true".to_string()][..]));
        assert!(notes.iter().any(|n| n.path == "Args"), "{notes:?}");
        let (field, msg) = parse_process(b"{\"args\": [\"true\"],\n \"cwd\": 5}").expect_err("bad cwd");
        assert_eq!(field, "cwd");
        assert!(msg.contains("line 2 column"), "{msg}");
    }

    #[test]
    fn capability_spelling_must_be_the_specs() {
        for bad in ["net_admin", "NET_ADMIN", "cap_net_admin"] {
            let mut v = base();
            v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL", bad]});
            let (field, msg) = parse(&serde_json::to_vec(&v).expect("json")).expect_err(bad);
            assert_eq!(field, "process.capabilities.bounding[1]");
            assert!(msg.contains("\"CAP_NET_ADMIN\""), "{msg}");
        }
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_BOGUS"]});
        let e = parse(&serde_json::to_vec(&v).expect("json")).expect_err("unknown");
        assert!(e.1.contains("unknown capability"), "{e:?}");
    }

    #[test]
    fn malformed_json_names_position() {
        let e = parse(b"{\"ociVersion\": \"1.0.2\", \"root\": ").expect_err("bad");
        assert!(e.1.contains("line 1"), "{e:?}");
    }

    #[test]
    fn mappings_need_userns_and_must_not_overlap() {
        let mut v = base();
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        v["linux"]["gidMappings"] = v["linux"]["uidMappings"].clone();
        assert!(check(v.clone()).expect_err("no userns").to_string().contains("user namespace"));
        v["linux"]["namespaces"].as_array_mut().expect("array").push(serde_json::json!({"type": "user"}));
        check(v.clone()).expect("valid with userns");
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 5000, "size": 10}]);
        assert!(check(v.clone()).expect_err("overlap").to_string().contains("overlaps"));
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
        assert!(check(v).expect_err("zero").to_string().contains("size"));
    }

    #[test]
    fn time_offsets_need_time_namespace() {
        let mut v = base();
        v["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 10, "nanosecs": 0}});
        assert!(check(v.clone()).expect_err("no timens").to_string().contains("time namespace"));
        v["linux"]["namespaces"].as_array_mut().expect("array").push(serde_json::json!({"type": "time"}));
        check(v.clone()).expect("valid");
        v["linux"]["timeOffsets"] = serde_json::json!({"realtime": {"secs": 10}});
        assert!(check(v).expect_err("realtime").to_string().contains("realtime"));
    }

    #[test]
    fn sysctl_rules() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v.clone()).expect_err("no netns").to_string().contains("network namespace"));
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v).expect_err("host sysctl").to_string().contains("not a namespaced sysctl"));
    }

    #[test]
    fn missing_rootfs_names_path() {
        let mut v = base();
        v["root"]["path"] = "/nonexistent-rootfs-xyz".into();
        let e = check(v).expect_err("missing").to_string();
        assert!(e.contains("root.path") && e.contains("/nonexistent-rootfs-xyz"), "{e}");
    }

    fn check_all(v: &serde_json::Value, host: bool) -> Vec<Problem> {
        let data = serde_json::to_vec_pretty(v).expect("json");
        let mut c = Collector::collect_all(host, true);
        if let Some((spec, _)) = parse_checked(&data, &mut c) {
            let _ = check_config(&spec, Path::new("/"), &mut c);
        }
        c.into_problems()
    }

    fn errors(p: &[Problem]) -> Vec<&str> {
        p.iter().filter(|p| p.severity == Severity::Error).map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn collect_all_reports_every_section_with_positions() {
        let mut v = base();
        v["process"]["cwd"] = 5.into();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        v["mounts"] = serde_json::json!([{"destination": "/a", "type": "tmpfs", "options": "ro"}]);
        v["hostname"] = "h".into();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        let p = check_all(&v, false);
        let mut e = errors(&p);
        e.sort();
        assert_eq!(e, ["hostname", "linux.namespaces[1].type", "linux.sysctl.vm.swappiness", "mounts[0].options", "process.cwd"], "{p:#?}");
        assert!(p.iter().all(|p| p.line > 0), "{p:#?}");
        let ns = p.iter().find(|p| p.path == "linux.namespaces[1].type").expect("ns");
        assert!(ns.hint.contains("`network`"), "{ns:?}");
        // The fail-fast run (create) refuses the same config, at one of these.
        let e = check(v).expect_err("refused").to_string();
        assert!(e.contains("process.cwd") || e.contains("linux.namespaces[1].type") || e.contains("mounts[0].options"), "{e}");
    }

    #[test]
    fn indexes_after_a_cut_element_are_the_files() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}, {"type": "mount"}, {"type": "alsobad"}, {"type": "pid", "path": 3}]);
        let p = check_all(&v, false);
        assert_eq!(errors(&p), ["linux.namespaces[0].type", "linux.namespaces[2].type", "linux.namespaces[3].path"], "{p:#?}");
    }

    #[test]
    fn collect_all_and_fail_fast_agree_on_accepting() {
        let mut bad_caps = base();
        bad_caps["process"]["capabilities"] = serde_json::json!({"bounding": ["net_admin", "CAP_BOGUS"], "effective": ["CAP_KILL"]});
        let mut respelled = base();
        respelled["Hooks"] = serde_json::json!({"postStop": [{"path": "/bin/true"}]});
        let mut kernel_mem = base();
        kernel_mem["linux"]["resources"] = serde_json::json!({"memory": {"kernel": 1}});
        for (v, ok) in [(base(), true), (bad_caps, false), (respelled, true), (kernel_mem, true)] {
            let p = check_all(&v, true);
            assert_eq!(errors(&p).is_empty(), ok, "{p:#?}");
            assert_eq!(check(v).is_ok(), ok);
        }
    }

    #[test]
    fn warnings_and_notes_do_not_refuse() {
        let mut v = base();
        v["Hooks"] = serde_json::json!({"postStop": [{"path": "/bin/true"}]});
        v["procss"] = 1.into();
        v["linux"]["resources"] = serde_json::json!({"memory": {"kernel": 1}});
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_SYS_ADMIN"]});
        let p = check_all(&v, false);
        assert!(errors(&p).is_empty(), "{p:#?}");
        let kinds: Vec<(Severity, &str)> = p.iter().map(|p| (p.severity, p.path.as_str())).collect();
        assert!(kinds.contains(&(Severity::Note, "Hooks")), "{kinds:?}");
        assert!(kinds.contains(&(Severity::Warning, "procss")), "{kinds:?}");
        assert!(kinds.contains(&(Severity::Warning, "linux.resources.memory.kernel")), "{kinds:?}");
        assert!(kinds.contains(&(Severity::Warning, "process.capabilities.bounding")), "{kinds:?}");
    }

    #[test]
    fn host_checks_run_only_when_asked() {
        let mut v = base();
        v["process"]["apparmorProfile"] = "p".into();
        v["process"]["selinuxLabel"] = "l".into();
        assert!(errors(&check_all(&v, false)).is_empty());
        let (apparmor, selinux) = lsm_available();
        assert_eq!(errors(&check_all(&v, true)).len(), usize::from(!apparmor) + usize::from(!selinux));
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "x".into();
        assert!(check(v).expect_err("uts").to_string().contains("uts"));
    }
}
