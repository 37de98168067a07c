//! Object keys the way runc reads them.
//!
//! runc decodes config.json with Go's encoding/json, which matches an object key to a struct
//! field exactly if it can and otherwise case-insensitively (`"postStop"` is `poststop`,
//! `"readOnly"` is `readonly`); keys of maps (annotations, sysctl, ...) are data and are never
//! folded. serde matches exactly, so before the typed parse this module rewrites every key that is
//! a known field in another case to the field's own spelling. The rewrite is byte-for-byte (ASCII
//! case folding keeps the length), so serde's errors still carry the line and column of the
//! original file. Go also folds a few non-ASCII letters (the Kelvin sign, the long s); such keys
//! are left alone and reported as unknown.
//!
//! The field names come from the serde `Deserialize` impls of oci-spec's types themselves
//! ([`Schema::of`]), so there is no hand-kept list to drift. Everything here returns data
//! ([`KeyNote`], [`suggest`]) so that a `validate` command can report all of it; the loader logs it.
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};

/// The known fields of every struct reachable from a type, keyed by path pattern: object keys
/// joined with `.`, array elements as `[]` (`hooks.prestart[]`, `process.capabilities`); the root
/// is `""`.
#[derive(Debug, Default)]
pub struct Schema {
    fields: HashMap<String, &'static [&'static str]>,
}

impl Schema {
    /// Walk `T`'s `Deserialize` impl with a deserializer that records the field list serde's derive
    /// passes to `deserialize_struct` at each path. A subtree whose impl rejects the probe values is
    /// skipped and the walk repeated, so one such type hides only itself.
    pub fn of<T: de::DeserializeOwned>() -> Schema {
        let mut st = TraceState::default();
        loop {
            let before = st.skip.len();
            st.failed_at = None;
            if T::deserialize(Tracer { st: &mut st, path: String::new(), depth: 0 }).is_ok() {
                break;
            }
            if st.skip.len() == before {
                break;
            }
        }
        Schema { fields: st.fields }
    }

    /// The fields of the struct at `pattern`, if the path names a struct.
    pub fn fields(&self, pattern: &str) -> Option<&'static [&'static str]> {
        self.fields.get(pattern).copied()
    }
}

/// What happened to one object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A known field spelled in another case; read as `field`, as runc does.
    Respelled { field: &'static str },
    /// Not a field of the object it is in; ignored (config.md "Extensibility").
    Unknown { suggestion: Option<&'static str> },
}

/// One key that is not spelled as the spec spells it, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNote {
    /// JSON path of the key as written (`hooks.postStop`, `hooks.prestart[0].pth`).
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub kind: KeyKind,
}

impl fmt::Display for KeyNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: serde reported the key but the scanner could not place it.
        let at = if self.line == 0 { String::new() } else { format!(" (line {} column {})", self.line, self.column) };
        match &self.kind {
            KeyKind::Respelled { field } => write!(f, "{}{at} read as the field {field}, as runc does", self.path),
            KeyKind::Unknown { suggestion } => {
                write!(f, "unknown property {}{at} ignored", self.path)?;
                if let Some(s) = suggestion {
                    let parent = self.path.rsplit_once('.').map_or("", |(p, _)| p);
                    let near = if parent.is_empty() { s.to_string() } else { format!("{parent}.{s}") };
                    write!(f, "; did you mean {near}?")?;
                }
                Ok(())
            }
        }
    }
}

/// Go's rule for one key against one struct's fields: an exact match wins, else the first field
/// equal to it ignoring ASCII case. `None`: not a field.
pub fn match_field(key: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    fields.iter().copied().find(|f| *f == key).or_else(|| fields.iter().copied().find(|f| f.eq_ignore_ascii_case(key)))
}

/// The known field nearest to `key` (edit distance, ignoring case), if it is near enough to be a
/// plausible typo: at most 2 edits, and fewer than half of the key.
pub fn suggest(key: &str, fields: &[&'static str]) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    fields
        .iter()
        .map(|f| (edit_distance(&k, &f.to_ascii_lowercase()), *f))
        .filter(|(d, _)| *d <= 2 && *d * 2 < k.chars().count().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Rewrite `data` so that every key that case-insensitively names a field (per `schema`, for the
/// document rooted at `root`) carries the field's spelling. Returns the rewritten bytes (same
/// length, same line/column for everything) and a note for every respelled or unknown key. A
/// document that is not well-formed JSON is scanned as far as it goes; the typed parse reports
/// the error.
pub fn fold(data: &[u8], schema: &Schema, root: &str) -> (Vec<u8>, Vec<KeyNote>) {
    let (folded, notes, _) = fold_with_positions(data, schema, root);
    (folded, notes)
}

/// [`fold`], and where every member and array element is in the text (JSON path as written →
/// offset), so that problems found after the typed parse can still say line:column.
pub fn fold_with_positions(data: &[u8], schema: &Schema, root: &str) -> (Vec<u8>, Vec<KeyNote>, super::check::Positions) {
    let mut sc = Scanner { data: data.to_vec(), pos: 0, notes: Vec::new(), spans: Vec::new(), schema };
    let _ = sc.value(root, "", 0);
    let positions = super::check::Positions::new(data, sc.spans);
    let folded = merge_duplicate_keys(&sc.data).unwrap_or(sc.data);
    (folded, sc.notes, positions)
}

/// Go's encoding/json decodes a repeated key into the same field again: an object into the
/// struct (or map) already there, merging member by member; anything else replaces the value.
/// So `{"cpu": {"shares": 2}, "CPU": {"cpus": "0"}}` (runc's update.bats writes `.CPU` beside an
/// existing `.cpu`) is one `cpu` with both members for runc, where serde refuses a duplicate
/// field. When the folded text repeats a key in some object, it is rebuilt with those merges and
/// returned re-serialised (line:column of a later error then refer to that text, not the file);
/// `None` when no object repeats a key, which is the common case and keeps the file's positions.
pub fn merge_duplicate_keys(data: &[u8]) -> Option<Vec<u8>> {
    let v: GoMerged = serde_json::from_slice(data).ok()?;
    if !v.1 {
        return None;
    }
    serde_json::to_vec(&v.0).ok()
}

/// A JSON value with repeated object keys merged as Go does, and whether any key repeated.
struct GoMerged(serde_json::Value, bool);

impl<'de> de::Deserialize<'de> for GoMerged {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoMerged;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<GoMerged, E> {
                Ok(GoMerged(b.into(), false))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<GoMerged, E> {
                Ok(GoMerged(n.into(), false))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<GoMerged, E> {
                Ok(GoMerged(n.into(), false))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<GoMerged, E> {
                Ok(GoMerged(serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number), false))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<GoMerged, E> {
                Ok(GoMerged(s.into(), false))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<GoMerged, E> {
                Ok(GoMerged(s.into(), false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<GoMerged, E> {
                Ok(GoMerged(serde_json::Value::Null, false))
            }
            fn visit_none<E: de::Error>(self) -> Result<GoMerged, E> {
                Ok(GoMerged(serde_json::Value::Null, false))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<GoMerged, A::Error> {
                let (mut items, mut dup) = (Vec::new(), false);
                while let Some(GoMerged(v, d)) = a.next_element()? {
                    items.push(v);
                    dup |= d;
                }
                Ok(GoMerged(serde_json::Value::Array(items), dup))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<GoMerged, A::Error> {
                let (mut map, mut dup) = (serde_json::Map::new(), false);
                while let Some((k, GoMerged(v, d))) = a.next_entry::<String, GoMerged>()? {
                    dup |= d;
                    match map.get_mut(&k) {
                        Some(old) => {
                            dup = true;
                            go_merge(old, v);
                        }
                        None => {
                            map.insert(k, v);
                        }
                    }
                }
                Ok(GoMerged(serde_json::Value::Object(map), dup))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decode `new` into `old` as Go does: objects member by member, anything else replaced.
fn go_merge(old: &mut serde_json::Value, new: serde_json::Value) {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            for (k, v) in n {
                match o.get_mut(&k) {
                    Some(slot) => go_merge(slot, v),
                    None => {
                        o.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Turn a serde path (`hooks.prestart.0.foo`, `linux.namespaces[1].type`) into a schema pattern
/// (`hooks.prestart[].foo`) and its last key.
pub fn pattern_of(path: &str) -> (String, String) {
    let mut parts: Vec<String> = Vec::new();
    for seg in path.split('.') {
        let (name, rest) = seg.find('[').map_or((seg, ""), |i| (&seg[..i], &seg[i..]));
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(last) = parts.last_mut() {
                last.push_str("[]");
            }
            continue;
        }
        parts.push(format!("{name}{}", "[]".repeat(rest.matches('[').count())));
    }
    let last = parts.pop().unwrap_or_default();
    (parts.join("."), last)
}

// ---- the JSON key scanner ----

struct Scanner<'s> {
    data: Vec<u8>,
    pos: usize,
    notes: Vec<KeyNote>,
    spans: Vec<(String, usize)>,
    schema: &'s Schema,
}

const MAX_DEPTH: usize = 128;

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.pos < self.data.len() && matches!(self.data[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.data[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = at - before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    /// A string at `pos` (which is `"`): returns (start of content, end of content, has escapes).
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut esc = false;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Some((start, end, esc));
                }
                b'\\' => {
                    esc = true;
                    self.pos += 2;
                }
                _ => self.pos += 1,
            }
        }
        None
    }

    /// One value; `pattern` is its schema path, `path` its JSON path as written.
    fn value(&mut self, pattern: &str, path: &str, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.data.get(self.pos)? {
            b'{' => {
                self.pos += 1;
                let fields = self.schema.fields(pattern);
                loop {
                    self.ws();
                    match *self.data.get(self.pos)? {
                        b'}' => {
                            self.pos += 1;
                            return Some(());
                        }
                        b',' => {
                            self.pos += 1;
                            continue;
                        }
                        b'"' => {}
                        _ => return None,
                    }
                    let key_at = self.pos;
                    let (s, e, esc) = self.string()?;
                    let key = String::from_utf8_lossy(&self.data[s..e]).into_owned();
                    let key_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    self.spans.push((key_path.clone(), key_at));
                    // A map (no field list) keeps its keys; so does a key with escapes (rare, and
                    // rewriting it in place could change the length).
                    let mut child = String::new();
                    if let Some(fields) = fields {
                        let (line, column) = self.line_col(key_at);
                        match match_field(&key, fields).filter(|_| !esc) {
                            Some(field) if field == key => {}
                            Some(field) => {
                                self.data[s..e].copy_from_slice(field.as_bytes());
                                self.notes.push(KeyNote { path: key_path.clone(), line, column, kind: KeyKind::Respelled { field } });
                            }
                            None => self.notes.push(KeyNote { path: key_path.clone(), line, column, kind: KeyKind::Unknown { suggestion: suggest(&key, fields) } }),
                        }
                        let name = std::str::from_utf8(&self.data[s..e]).unwrap_or_default();
                        child = if pattern.is_empty() { name.to_string() } else { format!("{pattern}.{name}") };
                    }
                    self.ws();
                    if self.data.get(self.pos) != Some(&b':') {
                        return None;
                    }
                    self.pos += 1;
                    self.value(&child, &key_path, depth + 1)?;
                }
            }
            b'[' => {
                self.pos += 1;
                let elem = if pattern.is_empty() { String::new() } else { format!("{pattern}[]") };
                let mut i = 0;
                loop {
                    self.ws();
                    match *self.data.get(self.pos)? {
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        b',' => {
                            self.pos += 1;
                            continue;
                        }
                        _ => {}
                    }
                    self.spans.push((format!("{path}[{i}]"), self.pos));
                    self.value(&elem, &format!("{path}[{i}]"), depth + 1)?;
                    i += 1;
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                while self.pos < self.data.len() && !matches!(self.data[self.pos], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }
}

// ---- the schema tracer ----

#[derive(Default)]
struct TraceState {
    fields: HashMap<String, &'static [&'static str]>,
    /// `pattern.field` entries whose value the probe could not produce.
    skip: HashSet<String>,
    failed_at: Option<String>,
}

#[derive(Debug)]
struct TraceError(String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for TraceError {}
impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError(msg.to_string())
    }
}

struct Tracer<'a> {
    st: &'a mut TraceState,
    path: String,
    depth: usize,
}

impl Tracer<'_> {
    fn child(&mut self, path: String) -> Tracer<'_> {
        Tracer { st: self.st, path, depth: self.depth + 1 }
    }
}

macro_rules! probe {
    ($($m:ident => $v:ident($($val:expr)?)),* $(,)?) => {
        $(fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> { visitor.$v($($val)?) })*
    };
}

impl<'de> Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, TraceError> {
        Err(TraceError(format!("{}: self-describing type", self.path)))
    }

    probe! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_u64(0), deserialize_i16 => visit_u64(0), deserialize_i32 => visit_u64(0), deserialize_i64 => visit_u64(0),
        deserialize_u8 => visit_u64(0), deserialize_u16 => visit_u64(0), deserialize_u32 => visit_u64(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""), deserialize_string => visit_str(""), deserialize_identifier => visit_str(""),
        deserialize_bytes => visit_bytes(&[]), deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(), deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, TraceError> {
        if self.depth > MAX_DEPTH {
            return Err(TraceError("too deep".into()));
        }
        let path = format!("{}[]", self.path);
        visitor.visit_seq(OneElem { t: Some(self.child(path)) })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _name: &'static str, _len: usize, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    /// A map's keys are data: nothing to record.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_map(de::value::MapDeserializer::<std::iter::Empty<((), ())>, TraceError>::new(std::iter::empty()))
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, fields: &'static [&'static str], visitor: V) -> Result<V::Value, TraceError> {
        if self.depth > MAX_DEPTH {
            return Err(TraceError("too deep".into()));
        }
        self.st.fields.entry(self.path.clone()).or_insert(fields);
        let todo: Vec<&'static str> = fields.iter().copied().filter(|f| !self.st.skip.contains(&join(&self.path, f))).collect();
        visitor.visit_map(Fields { t: self, todo: todo.into_iter(), current: None })
    }

    fn deserialize_enum<V: Visitor<'de>>(self, _name: &'static str, variants: &'static [&'static str], visitor: V) -> Result<V::Value, TraceError> {
        let first = variants.first().copied().ok_or_else(|| TraceError("empty enum".into()))?;
        visitor.visit_enum(first.into_deserializer())
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

struct OneElem<'a> {
    t: Option<Tracer<'a>>,
}

impl<'de> de::SeqAccess<'de> for OneElem<'_> {
    type Error = TraceError;
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, TraceError> {
        match self.t.take() {
            Some(t) => seed.deserialize(t).map(Some),
            None => Ok(None),
        }
    }
}

struct Fields<'a> {
    t: Tracer<'a>,
    todo: std::vec::IntoIter<&'static str>,
    current: Option<&'static str>,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = TraceError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        match self.todo.next() {
            Some(f) => {
                self.current = Some(f);
                seed.deserialize(de::value::BorrowedStrDeserializer::<TraceError>::new(f)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, TraceError> {
        let field = self.current.take().unwrap_or_default();
        let path = join(&self.t.path, field);
        let r = seed.deserialize(self.t.child(path.clone()));
        if r.is_err() && self.t.st.failed_at.is_none() {
            // The innermost field that failed is skipped next time; its parents are retried.
            self.t.st.failed_at = Some(path.clone());
            self.t.st.skip.insert(path);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_keys_merge_as_go_decodes_them() {
        let s = Schema::of::<Spec>();
        let raw = br#"{"linux":{"resources":{"cpu":{"shares":2,"cpus":"1"},"CPU":{"cpus":"0","mems":"0"}}}}"#;
        let (folded, _) = fold(raw, &s, "");
        let v: serde_json::Value = serde_json::from_slice(&folded).expect("json");
        assert_eq!(v["linux"]["resources"]["cpu"], serde_json::json!({"shares": 2, "cpus": "0", "mems": "0"}));
        // No repeated key: the folded text is the file's own (positions kept).
        let plain = br#"{"linux":{"resources":{"CPU":{"cpus":"0"}}}}"#;
        assert_eq!(fold(plain, &s, "").0.len(), plain.len());
        assert_eq!(merge_duplicate_keys(br#"{"a":[1],"a":[2]}"#).as_deref(), Some(&br#"{"a":[2]}"#[..]));
    }

    use super::*;
    use oci_spec::runtime::Spec;

    #[test]
    fn schema_knows_nested_fields() {
        let s = Schema::of::<Spec>();
        assert!(s.fields("").expect("root").contains(&"ociVersion"));
        assert!(s.fields("hooks").expect("hooks").contains(&"poststop"));
        assert!(s.fields("hooks.prestart[]").expect("hook").contains(&"path"));
        assert!(s.fields("root").expect("root").contains(&"readonly"));
        assert!(s.fields("process.capabilities").expect("caps").contains(&"bounding"));
        assert!(s.fields("linux.resources.memory").expect("memory").contains(&"kernelTCP"));
        assert!(s.fields("linux.seccomp.syscalls[]").expect("syscalls").contains(&"names"));
        assert!(s.fields("annotations").is_none(), "a map has no fields");
        assert!(s.fields("linux.sysctl").is_none(), "a map has no fields");
    }

    #[test]
    fn fold_respells_fields_only() {
        let s = Schema::of::<Spec>();
        let doc = br#"{"ociVersion":"1","Root":{"path":"r","readOnly":true},
 "hooks":{"postStop":[{"Path":"/bin/true"}]},"annotations":{"readOnly":"x"},"linux":{"sysctl":{"Net.x":"1"}},"wibble":1}"#;
        let (out, notes) = fold(doc, &s, "");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["hooks"]["poststop"][0]["path"], "/bin/true");
        assert_eq!(v["annotations"]["readOnly"], "x");
        assert_eq!(v["linux"]["sysctl"]["Net.x"], "1");
        assert_eq!(out.len(), doc.len());
        let post = notes.iter().find(|n| n.path == "hooks.postStop").expect("postStop note");
        assert_eq!(post.kind, KeyKind::Respelled { field: "poststop" });
        assert_eq!((post.line, post.column), (2, 11));
        assert!(notes.iter().any(|n| n.path == "hooks.postStop[0].Path"), "{notes:?}");
        assert!(notes.iter().any(|n| n.path == "wibble" && matches!(n.kind, KeyKind::Unknown { .. })), "{notes:?}");
    }

    #[test]
    fn exact_match_wins() {
        assert_eq!(match_field("readonly", &["readonly", "readOnly"]), Some("readonly"));
        assert_eq!(match_field("READONLY", &["readonly"]), Some("readonly"));
        assert_eq!(match_field("ro", &["readonly"]), None);
    }

    #[test]
    fn suggestions_are_near_misses() {
        assert_eq!(suggest("postop", &["poststop", "prestart"]), Some("poststop"));
        assert_eq!(suggest("pth", &["path", "args"]), Some("path"));
        assert_eq!(suggest("frobnicate", &["path", "args"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn patterns() {
        assert_eq!(pattern_of("hooks.prestart.0.foo"), ("hooks.prestart[]".into(), "foo".into()));
        assert_eq!(pattern_of("process.wibble"), ("process".into(), "wibble".into()));
        assert_eq!(pattern_of("frobnicate"), ("".into(), "frobnicate".into()));
    }
}
