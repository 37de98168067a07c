//! Signals as users and containerd name them: the one parser behind `brisk kill` and the shim's
//! Kill.
//!
//! nix's `Signal` has no real-time signals, but podman sends `kill -s 64` and containerd passes any
//! number its client gave. runc 1.1.5 (kill.go parseSignal) takes every number and the standard
//! names (`KILL`, `SIGKILL`, any case). brisk takes the same, plus the real-time names
//! `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX` (the spelling of kill(1), podman and moby/sys/signal;
//! runc 1.1.5 refuses them as unknown). A number outside 1..=64 is refused here with a message
//! saying so; runc passes it to kill(2) and reports EINVAL.
use std::fmt;

/// A signal number accepted by kill(2) on Linux (1..=64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig(i32);

/// The kernel's real-time range (`SIGRTMIN`..`SIGRTMAX` as the kernel defines them); glibc keeps
/// 32 and 33 for itself, so user-visible `RTMIN` is 34 (libc::SIGRTMIN()).
const KERNEL_RTMAX: i32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal {0:?}")]
    Unknown(String),
    #[error("signal {0} is out of range: Linux signals are 1 to 64")]
    OutOfRange(i64),
}

impl Sig {
    pub const KILL: Sig = Sig(libc::SIGKILL);
    pub const TERM: Sig = Sig(libc::SIGTERM);

    /// A signal by number (what containerd passes); 0 is not a signal.
    pub fn from_number(n: i64) -> Result<Sig, SignalError> {
        if (1..=i64::from(KERNEL_RTMAX)).contains(&n) {
            Ok(Sig(n as i32))
        } else {
            Err(SignalError::OutOfRange(n))
        }
    }

    /// The number kill(2) takes.
    pub fn number(self) -> i32 {
        self.0
    }
}

impl From<nix::sys::signal::Signal> for Sig {
    fn from(s: nix::sys::signal::Signal) -> Sig {
        Sig(s as i32)
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match nix::sys::signal::Signal::try_from(self.0) {
            Ok(s) => f.write_str(s.as_str()),
            Err(_) => write!(f, "signal {}", self.0),
        }
    }
}

/// `kill`'s signal argument: a number, a name with or without `SIG` in any case, or a real-time
/// name. `Ok(None)` is signal 0, kill(2)'s existence check (runc accepts it; kill.bats uses it).
pub fn parse(s: &str) -> Result<Option<Sig>, SignalError> {
    if let Ok(n) = s.parse::<i64>() {
        return if n == 0 { Ok(None) } else { Sig::from_number(n).map(Some) };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rt) = realtime(name) {
        return rt.map(Some).ok_or_else(|| SignalError::Unknown(s.to_string()));
    }
    format!("SIG{name}").parse::<nix::sys::signal::Signal>().map(|s| Some(Sig::from(s))).map_err(|_| SignalError::Unknown(s.to_string()))
}

/// `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX`: Some(None) when it has that shape but leaves the range.
fn realtime(name: &str) -> Option<Option<Sig>> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let n = if let Some(rest) = name.strip_prefix("RTMIN") {
        min + offset(rest, '+')?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        max - offset(rest, '-')?
    } else {
        return None;
    };
    Some((min..=max).contains(&n).then_some(Sig(n)))
}

/// "" → 0, "+3" (with `sign` '+') → 3; anything else is not a real-time name.
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse::<u8>().ok().map(i32::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_names_and_realtime() {
        assert_eq!(parse("9").unwrap(), Some(Sig::KILL));
        assert_eq!(parse("0").unwrap(), None);
        assert_eq!(parse("64").unwrap(), Some(Sig(64)));
        assert_eq!(parse("34").unwrap(), Some(Sig(34)));
        assert_eq!(parse("kill").unwrap(), Some(Sig::KILL));
        assert_eq!(parse("SIGterm").unwrap(), Some(Sig::TERM));
        assert_eq!(parse("STKFLT").unwrap(), Some(Sig(libc::SIGSTKFLT)));
        assert_eq!(parse("RTMIN").unwrap(), Some(Sig(libc::SIGRTMIN())));
        assert_eq!(parse("RTMIN+3").unwrap(), Some(Sig(libc::SIGRTMIN() + 3)));
        assert_eq!(parse("sigrtmin+3").unwrap(), Some(Sig(libc::SIGRTMIN() + 3)));
        assert_eq!(parse("RTMAX-1").unwrap(), Some(Sig(63)));
        assert_eq!(parse("SIGRTMAX").unwrap(), Some(Sig(64)));
    }

    #[test]
    fn bad_input_names_the_culprit() {
        assert_eq!(parse("SIGFOO").unwrap_err(), SignalError::Unknown("SIGFOO".into()));
        assert!(parse("RTMIN+40").is_err());
        assert!(parse("RTMAX+1").is_err());
        assert!(parse("RTMIN-1").is_err());
        assert_eq!(parse("65").unwrap_err(), SignalError::OutOfRange(65));
        assert!(parse("-1").unwrap_err().to_string().contains("1 to 64"));
        assert!(Sig::from_number(999).is_err());
        assert_eq!(Sig::KILL.to_string(), "SIGKILL");
    }
}
