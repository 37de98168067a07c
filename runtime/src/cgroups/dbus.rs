//! A minimal D-Bus client: just enough of the wire protocol (D-Bus specification, "Message
//! Protocol" and "Authentication Protocol") to call systemd's manager as root and wait for its job
//! signals. brisk stays lean: no zbus/dbus crate, no async runtime, no fd passing, little-endian
//! messages only (we send little-endian; replies in either byte order are decoded).
//!
//! The connection is blocking with a read timeout, so a wedged systemd yields an error instead of
//! hanging `create` or `delete` forever.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The system bus socket (D-Bus spec "Well-known Message Bus Instances": the default system bus
/// address is unix:path=/var/run/dbus/system_bus_socket; /var/run is /run).
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's private peer-to-peer socket (no bus daemon in between, so no Hello and no AddMatch).
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus {step} {path}: {source}")]
    Io { step: &'static str, path: PathBuf, #[source] source: std::io::Error },
    #[error("D-Bus authentication on {path}: server answered {answer:?}")]
    Auth { path: PathBuf, answer: String },
    #[error("D-Bus message from {path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// An error reply: `name` is the D-Bus error name (e.g. org.freedesktop.systemd1.NoSuchUnit).
    #[error("D-Bus {method}: {name}: {message}")]
    Reply { method: String, name: String, message: String },
    #[error("D-Bus {what} on {path}: no answer within {secs} s")]
    Timeout { what: String, path: PathBuf, secs: u64 },
}

/// A D-Bus value, typed enough to marshal it (an empty array still knows its element signature).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    U64(u64),
    Str(String),
    ObjPath(String),
    Sig(String),
    /// Element signature and elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// The value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::ObjPath(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(el, _) => format!("a{el}"),
            Value::Struct(f) => format!("({})", f.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjPath(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// Alignment of the first character of a signature (D-Bus spec "Summary of types").
fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Marshals values little-endian. Offsets are from the start of the buffer, which must itself be
/// 8-aligned in the message (the header and the body both are).
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I32(n) => {
                self.pad(4);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::ObjPath(s) => {
                self.u32(s.len() as u32);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Sig(s) => self.sig(s),
            Value::Array(el, items) => {
                self.pad(4);
                let len_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The length excludes the padding to the first element (spec "Marshaling containers").
                self.pad(align_of(el.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for i in items {
                    self.put(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Variant(inner) => {
                self.sig(&inner.signature());
                self.put(inner);
            }
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
}

/// Message types (spec "Message Types").
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A message as sent or received: the header fields we use and the body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub typ: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    pub fn call(destination: &str, path: &str, interface: &str, member: &str, body: Vec<Value>) -> Message {
        Message {
            typ: METHOD_CALL,
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            destination: Some(destination.into()),
            body,
            ..Default::default()
        }
    }

    /// The wire form, with `serial`.
    pub fn encode(&self, serial: u32) -> Vec<u8> {
        let mut body = Writer::default();
        for v in &self.body {
            body.put(v);
        }
        let sig: String = self.body.iter().map(Value::signature).collect();
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| fields.push(Value::Struct(vec![Value::Byte(code), Value::variant(v)]));
        if let Some(p) = &self.path {
            field(1, Value::ObjPath(p.clone()));
        }
        if let Some(i) = &self.interface {
            field(2, Value::str(i.clone()));
        }
        if let Some(m) = &self.member {
            field(3, Value::str(m.clone()));
        }
        if let Some(e) = &self.error_name {
            field(4, Value::str(e.clone()));
        }
        if let Some(r) = self.reply_serial {
            field(5, Value::U32(r));
        }
        if let Some(d) = &self.destination {
            field(6, Value::str(d.clone()));
        }
        if let Some(s) = &self.sender {
            field(7, Value::str(s.clone()));
        }
        if !sig.is_empty() {
            field(8, Value::Sig(sig));
        }
        let mut w = Writer::default();
        for b in [b'l', self.typ, 0, 1] {
            w.put(&Value::Byte(b));
        }
        w.put(&Value::U32(body.buf.len() as u32));
        w.put(&Value::U32(serial));
        w.put(&Value::Array("(yv)".into(), fields));
        w.pad(8);
        w.buf.extend_from_slice(&body.buf);
        w.buf
    }

    /// Parse one whole message (as delimited by [`message_len`]).
    pub fn decode(data: &[u8]) -> Result<Message, String> {
        let big = match data.first() {
            Some(b'l') => false,
            Some(b'B') => true,
            _ => return Err("bad endianness marker".into()),
        };
        let mut r = Reader { data, pos: 0, big };
        let typ = data.get(1).copied().ok_or("short header")?;
        r.pos = 4;
        let body_len = r.u32()? as usize;
        let serial = r.u32()?;
        let fields = r.get("a(yv)")?;
        r.align(8)?;
        let body_start = r.pos;
        if body_start + body_len != data.len() {
            return Err(format!("body length {body_len} does not match the message size {}", data.len()));
        }
        let mut m = Message { typ, serial, ..Default::default() };
        let mut sig = String::new();
        if let Value::Array(_, fs) = fields {
            for f in fs {
                let Value::Struct(kv) = f else { continue };
                let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else { continue };
                let s = v.as_str().map(str::to_string);
                match code {
                    1 => m.path = s,
                    2 => m.interface = s,
                    3 => m.member = s,
                    4 => m.error_name = s,
                    5 => m.reply_serial = v.as_u32(),
                    6 => m.destination = s,
                    7 => m.sender = s,
                    8 => sig = s.unwrap_or_default(),
                    _ => {}
                }
            }
        }
        // Body offsets are relative to the message start, which is 8-aligned like the body start.
        let mut types = split_signature(&sig)?.into_iter();
        for t in types.by_ref() {
            m.body.push(r.get(&t)?);
        }
        if r.pos != data.len() {
            return Err("trailing bytes after the body".into());
        }
        Ok(m)
    }
}

/// Total size of the message whose first 16 bytes are `head` (spec "Message Format": the fixed
/// part, the header field array whose length is at offset 12, padding to 8, the body).
pub fn message_len(head: &[u8; 16]) -> Result<usize, String> {
    let big = match head[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err("bad endianness marker".into()),
    };
    let n = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        (if big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }) as usize
    };
    let body = n(&head[4..8]);
    let fields = n(&head[12..16]);
    let header = (16 + fields).div_ceil(8) * 8;
    // The spec caps a message at 128 MiB.
    let total = header.checked_add(body).filter(|t| *t <= 128 << 20).ok_or("message too large")?;
    Ok(total)
}

/// The complete types in a signature, e.g. "a(sv)us" → ["a(sv)", "u", "s"].
pub fn split_signature(sig: &str) -> Result<Vec<String>, String> {
    let b = sig.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let end = complete_type_end(b, i)?;
        out.push(sig[i..end].to_string());
        i = end;
    }
    Ok(out)
}

fn complete_type_end(b: &[u8], i: usize) -> Result<usize, String> {
    match b.get(i) {
        None => Err("truncated signature".into()),
        Some(b'a') => complete_type_end(b, i + 1),
        Some(open @ (b'(' | b'{')) => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut j = i + 1;
            while b.get(j) != Some(&close) {
                if j >= b.len() {
                    return Err("unbalanced signature".into());
                }
                j = complete_type_end(b, j)?;
            }
            Ok(j + 1)
        }
        Some(c) if b"ybnqiuxtdsogvh".contains(c) => Ok(i + 1),
        Some(c) => Err(format!("unknown type code {:?}", *c as char)),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big: bool,
}

impl Reader<'_> {
    fn align(&mut self, a: usize) -> Result<(), String> {
        let to = self.pos.div_ceil(a) * a;
        if to > self.data.len() {
            return Err("truncated (padding)".into());
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or("truncated")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let s = self.take(4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.align(8)?;
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(if self.big { u64::from_be_bytes(a) } else { u64::from_le_bytes(a) })
    }

    fn string(&mut self, len: usize) -> Result<String, String> {
        let s = self.take(len)?.to_vec();
        if self.take(1)? != [0] {
            return Err("string not NUL-terminated".into());
        }
        String::from_utf8(s).map_err(|_| "string is not UTF-8".into())
    }

    /// Read one value of complete type `t`.
    fn get(&mut self, t: &str) -> Result<Value, String> {
        let b = t.as_bytes();
        Ok(match b.first().ok_or("empty type")? {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'n' | b'q' => {
                self.align(2)?;
                let s = self.take(2)?;
                let a = [s[0], s[1]];
                Value::U32(u32::from(if self.big { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) }))
            }
            b't' | b'x' | b'd' => Value::U64(self.u64()?),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.string(n)?;
                if b[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjPath(s)
                }
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.string(n)?)
            }
            b'v' => {
                let n = self.take(1)?[0] as usize;
                let sig = self.string(n)?;
                let types = split_signature(&sig)?;
                let [one] = types.as_slice() else { return Err(format!("variant signature {sig:?} is not one complete type")) };
                Value::variant(self.get(one)?)
            }
            b'a' => {
                let n = self.u32()? as usize;
                let el = &t[1..];
                self.align(align_of(el.as_bytes()[0]))?;
                let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or("array longer than the message")?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(el)?);
                }
                if self.pos != end {
                    return Err("array elements overrun its length".into());
                }
                Value::Array(el.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let inner = split_signature(&t[1..t.len() - 1])?;
                Value::Struct(inner.iter().map(|f| self.get(f)).collect::<Result<_, _>>()?)
            }
            c => return Err(format!("unsupported type code {:?}", *c as char)),
        })
    }
}

/// How long a call or a job may take before we give up (runc waits 30 s for a unit's job).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking connection, authenticated (SASL EXTERNAL) and, on a bus, registered with Hello.
#[derive(Debug)]
pub struct Conn {
    stream: BufReader<UnixStream>,
    path: PathBuf,
    serial: u32,
    /// Whether a bus daemon sits in between (Hello and AddMatch apply).
    pub is_bus: bool,
    /// Signals received while waiting for a reply, in arrival order.
    pending: Vec<Message>,
}

impl Conn {
    /// Connect to `path`; `is_bus` says whether it is a message bus (send Hello) or a peer.
    pub fn connect(path: &Path, is_bus: bool) -> Result<Conn, DbusError> {
        let io = |step| move |source| DbusError::Io { step, path: path.to_path_buf(), source };
        let s = UnixStream::connect(path).map_err(io("connect"))?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(io("set timeout"))?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(io("set timeout"))?;
        let mut c = Conn { stream: BufReader::new(s), path: path.to_path_buf(), serial: 0, is_bus, pending: Vec::new() };
        c.auth()?;
        if is_bus {
            c.call(Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", vec![]))?;
        }
        Ok(c)
    }

    /// SASL EXTERNAL with our effective uid (spec "Authentication Protocol"); the server checks it
    /// against SO_PEERCRED. BEGIN goes in the same write as AUTH, as sd-bus clients do: systemd's
    /// server (sd-bus, 252) can leave a message that arrives together with a late BEGIN unread
    /// until something else wakes the connection — seen as a first call with no answer on
    /// /run/systemd/private in about a third of the connections in the systemd guest lane.
    /// Pipelined, BEGIN is processed with AUTH, before our first message is even sent.
    fn auth(&mut self) -> Result<(), DbusError> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let path = self.path.clone();
        let io = |source| DbusError::Io { step: "authenticate", path: path.clone(), source };
        self.stream.get_mut().write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes()).map_err(io)?;
        let mut line = String::new();
        self.stream.read_line(&mut line).map_err(io)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth { path: self.path.clone(), answer: line.trim_end().to_string() });
        }
        Ok(())
    }

    fn send(&mut self, m: &Message) -> Result<u32, DbusError> {
        self.serial += 1;
        let bytes = m.encode(self.serial);
        self.stream.get_mut().write_all(&bytes).map_err(|source| DbusError::Io { step: "send", path: self.path.clone(), source })?;
        Ok(self.serial)
    }

    fn recv(&mut self, what: &str) -> Result<Message, DbusError> {
        let timeout = |e: std::io::Error| {
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
                DbusError::Timeout { what: what.to_string(), path: self.path.clone(), secs: TIMEOUT.as_secs() }
            } else {
                DbusError::Io { step: "receive", path: self.path.clone(), source: e }
            }
        };
        let mut head = [0u8; 16];
        self.stream.read_exact(&mut head).map_err(timeout)?;
        let len = message_len(&head).map_err(|reason| DbusError::Malformed { path: self.path.clone(), reason })?;
        let mut data = head.to_vec();
        data.resize(len, 0);
        self.stream.read_exact(&mut data[16..]).map_err(timeout)?;
        Message::decode(&data).map_err(|reason| DbusError::Malformed { path: self.path.clone(), reason })
    }

    /// Call a method and return its reply body; an error reply becomes [`DbusError::Reply`].
    /// Signals that arrive meanwhile are kept for [`Conn::wait_signal`].
    pub fn call(&mut self, m: Message) -> Result<Vec<Value>, DbusError> {
        let method = format!("{}.{}", m.interface.as_deref().unwrap_or(""), m.member.as_deref().unwrap_or(""));
        let serial = self.send(&m)?;
        loop {
            let r = self.recv(&method)?;
            match r.typ {
                SIGNAL => self.pending.push(r),
                METHOD_RETURN if r.reply_serial == Some(serial) => return Ok(r.body),
                ERROR if r.reply_serial == Some(serial) => {
                    let message = r.body.first().and_then(Value::as_str).unwrap_or("").to_string();
                    return Err(DbusError::Reply { method, name: r.error_name.unwrap_or_default(), message });
                }
                // Replies to calls we no longer wait for, or calls to us: not ours to answer.
                _ => {}
            }
        }
    }

    /// Wait (up to [`TIMEOUT`]) for the first signal, pending or new, that `pick` maps to a value.
    pub fn wait_signal<T>(&mut self, what: &str, mut pick: impl FnMut(&Message) -> Option<T>) -> Result<T, DbusError> {
        if let Some(i) = self.pending.iter().position(|m| pick(m).is_some()) {
            let m = self.pending.remove(i);
            return pick(&m).ok_or_else(|| DbusError::Malformed { path: self.path.clone(), reason: "signal changed".into() });
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                return Err(DbusError::Timeout { what: what.to_string(), path: self.path.clone(), secs: TIMEOUT.as_secs() });
            }
            let m = self.recv(what)?;
            if m.typ == SIGNAL {
                if let Some(v) = pick(&m) {
                    return Ok(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Hello as the spec's rules lay it out, field by field (computed by hand, not by the encoder).
    #[test]
    fn hello_is_byte_exact() {
        let m = Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", vec![]);
        let mut want: Vec<u8> = vec![b'l', 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        // Header field array: length placeholder, then 8-aligned (yv) structs.
        let mut fields: Vec<u8> = Vec::new();
        let mut field = |code: u8, sig: u8, s: &str, start: usize| {
            while !(start + fields.len()).is_multiple_of(8) {
                fields.push(0);
            }
            fields.extend_from_slice(&[code, 1, sig, 0]);
            fields.extend_from_slice(&(s.len() as u32).to_le_bytes());
            fields.extend_from_slice(s.as_bytes());
            fields.push(0);
        };
        // The array starts at offset 16 (12 + the 4-byte length).
        field(1, b'o', "/org/freedesktop/DBus", 16);
        field(2, b's', "org.freedesktop.DBus", 16);
        field(3, b's', "Hello", 16);
        field(6, b's', "org.freedesktop.DBus", 16);
        want.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        want.extend_from_slice(&fields);
        while !want.len().is_multiple_of(8) {
            want.push(0);
        }
        let got = m.encode(1);
        assert_eq!(got, want);
        // Spot checks independent of the helper above: the first field's code, variant signature
        // "o", its 21-byte string; 4+4+4+4 fixed bytes; total a multiple of 8.
        assert_eq!(&got[16..24], &[1, 1, b'o', 0, 21, 0, 0, 0]);
        assert_eq!(&got[24..45], b"/org/freedesktop/DBus");
        assert!(got.len().is_multiple_of(8));
        assert_eq!(message_len(got[..16].try_into().unwrap()).unwrap(), got.len());
    }

    /// StopUnit("a.scope", "replace"): body "ss", each string u32 length + bytes + NUL, 4-aligned.
    #[test]
    fn string_body_layout() {
        let m = Message::call("d", "/p", "i", "StopUnit", vec![Value::str("a.scope"), Value::str("replace")]);
        let bytes = m.encode(7);
        assert_eq!(&bytes[4..8], &24u32.to_le_bytes(), "body length: (4 + 7 + 1) * 2");
        assert_eq!(&bytes[8..12], &7u32.to_le_bytes(), "serial");
        let body = &bytes[bytes.len() - 24..];
        let mut want = Vec::new();
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(b"a.scope\0");
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(b"replace\0");
        assert_eq!(body, want.as_slice());
        // The signature header field (code 8, variant "g", "ss").
        let sig = [8u8, 1, b'g', 0, 2, b's', b's', 0];
        assert!(bytes.windows(8).any(|w| w == sig));
    }

    /// Containers: array length excludes the padding before the first 8-aligned struct; variants
    /// carry their signature; u64 aligns to 8; bool is a u32.
    #[test]
    fn container_layout() {
        let mut w = Writer::default();
        let props = Value::Array("(sv)".into(), vec![Value::Struct(vec![Value::str("T"), Value::variant(Value::U64(5))]), Value::Struct(vec![Value::str("B"), Value::variant(Value::Bool(true))])]);
        w.put(&props);
        let want: Vec<u8> = [
            &[40, 0, 0, 0][..],                       // array length: elements span 8..48
            &[0, 0, 0, 0],                            // pad to 8 (not counted)
            &[1, 0, 0, 0, b'T', 0],                   // "T"
            &[1, b't', 0],                            // variant sig "t"
            &[0, 0, 0, 0, 0, 0, 0],                   // pad to 24
            &[5, 0, 0, 0, 0, 0, 0, 0],                // u64 5
            &[1, 0, 0, 0, b'B', 0],                   // second struct at 32: "B"
            &[1, b'b', 0],                            // variant sig "b"
            &[0, 0, 0],                               // pad to 44
            &[1, 0, 0, 0],                            // true
        ]
        .concat();
        assert_eq!(w.buf, want);
        let empty = Value::Array("(ss)".into(), vec![]);
        let mut w = Writer::default();
        w.put(&Value::Byte(9));
        w.put(&empty);
        assert_eq!(w.buf, vec![9, 0, 0, 0, 0, 0, 0, 0], "empty array: length 0, padded to the element alignment");
    }

    #[test]
    fn decode_round_trips_and_splits_signatures() {
        let body = vec![
            Value::U32(3),
            Value::ObjPath("/org/freedesktop/systemd1/job/42".into()),
            Value::str("x.scope"),
            Value::str("done"),
            Value::Array("(sv)".into(), vec![Value::Struct(vec![Value::str("PIDs"), Value::variant(Value::Array("u".into(), vec![Value::U32(1), Value::U32(2)]))])]),
        ];
        let m = Message { typ: SIGNAL, path: Some("/org/freedesktop/systemd1".into()), member: Some("JobRemoved".into()), body: body.clone(), ..Default::default() };
        let bytes = m.encode(9);
        let d = Message::decode(&bytes).unwrap();
        assert_eq!(d.body, body);
        assert_eq!(d.member.as_deref(), Some("JobRemoved"));
        assert_eq!(d.serial, 9);
        assert_eq!(split_signature("ssa(sv)a(sa(sv))").unwrap(), vec!["s", "s", "a(sv)", "a(sa(sv))"]);
        assert!(split_signature("a(s").is_err());
        assert!(Message::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A real dbus-daemon (when installed): SASL EXTERNAL, Hello, a call with a reply, an error
    /// reply, and a signal delivered through AddMatch.
    #[test]
    fn talks_to_a_real_dbus_daemon() {
        if !Path::new("/usr/bin/dbus-daemon").exists() {
            eprintln!("skipped: /usr/bin/dbus-daemon is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        let uid = nix::unistd::geteuid().as_raw();
        std::fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"{uid}\"/><allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
                sock.display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new("/usr/bin/dbus-daemon").arg(format!("--config-file={}", conf.display())).arg("--nofork").arg("--print-address").stdout(std::process::Stdio::piped()).spawn().unwrap();
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let _guard = Kill(child);
        let mut addr = String::new();
        out.read_line(&mut addr).unwrap();
        assert!(addr.contains(&sock.display().to_string()), "{addr}");

        let mut c = Conn::connect(&sock, true).unwrap();
        let id = c.call(Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", vec![])).unwrap();
        assert_eq!(id.first().and_then(Value::as_str).map(str::len), Some(32), "{id:?}");
        let err = c.call(Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", vec![Value::str("org.example.Nobody")])).unwrap_err();
        assert!(matches!(&err, DbusError::Reply { name, .. } if name == "org.freedesktop.DBus.Error.NameHasNoOwner"), "{err}");
        // Our own signal comes back through the bus once matched.
        c.call(Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", vec![Value::str("type='signal',interface='org.example.T',member='Ping'")])).unwrap();
        let sig = Message { typ: SIGNAL, path: Some("/org/example".into()), interface: Some("org.example.T".into()), member: Some("Ping".into()), body: vec![Value::U32(7), Value::str("x")], ..Default::default() };
        c.send(&sig).unwrap();
        let got = c.wait_signal("Ping", |m| (m.member.as_deref() == Some("Ping")).then(|| m.body.clone())).unwrap();
        assert_eq!(got, vec![Value::U32(7), Value::str("x")]);
    }
}
