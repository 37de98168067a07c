//! The collector every config check reports into.
//!
//! `create` and `brisk validate` run the same checks ([`super::check_config`]): each check calls
//! [`Collector::error`] and carries on with `?`. A fail-fast collector (what `create` uses) turns
//! the first error into [`Stop`], so `create` fails exactly where it always did; a collect-all
//! collector (what `validate` uses) records the problem and lets the checks go on, so one run
//! reports every problem. There is no second copy of the rules.
//!
//! Checks whose answer depends on the machine (is AppArmor enabled, does the kernel know a seccomp
//! flag, is a namespace path a namespace of that type) ask [`Collector::host`] first: `create`
//! always runs them, `validate` only with `--host`, so that without it the verdict depends on the
//! file alone.
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

/// How bad a problem is. Only errors refuse the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Accepted as written, but said differently from the spec (a respelled key).
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One problem with a config: where (JSON path, and line:column when known; 0 when not), what is
/// wrong, and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: String,
    /// Refused because brisk (or this host) cannot do it, not because the config is wrong
    /// (`SpecError::Unsupported` at create).
    #[serde(skip)]
    pub unsupported: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.line > 0 { format!(":{}:{}", self.line, self.column) } else { String::new() };
        write!(f, "{}{at}: {}: {}", self.severity, self.path, self.message)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// A fail-fast collector met an error: stop checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop;

/// What a check returns: `?` it so a fail-fast run stops at the first error.
pub type Flow = Result<(), Stop>;

/// JSON path → byte offset of the member's key (or the array element's value) in the original
/// text, for the line:column of problems found after the typed parse.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    text: Vec<u8>,
    at: HashMap<String, usize>,
}

impl Positions {
    pub(crate) fn new(text: &[u8], spans: Vec<(String, usize)>) -> Positions {
        // Keys are matched ignoring ASCII case: the file may say "Process" where the path says
        // "process" (runc reads both).
        let at = spans.into_iter().map(|(p, o)| (p.to_ascii_lowercase(), o)).collect();
        Positions { text: text.to_vec(), at }
    }

    /// line:column (1-based) of `path`, or of its nearest ancestor that the file has; (0, 0) if none.
    pub fn of(&self, path: &str) -> (usize, usize) {
        let mut p = path.to_ascii_lowercase();
        loop {
            if let Some(&o) = self.at.get(&p) {
                return line_col(&self.text, o);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return (0, 0),
            }
        }
    }
}

pub(crate) fn line_col(text: &[u8], at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.len() - before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Where problems go.
#[derive(Debug, Default)]
pub struct Collector {
    fail_fast: bool,
    host: bool,
    bundle: bool,
    problems: Vec<Problem>,
    positions: Positions,
    /// Paths the sectioned parse dropped because they did not parse: later checks would only
    /// report their absence again.
    pruned: Vec<String>,
}

impl Collector {
    /// What `create` uses: stop at the first error; host checks on; the config is in a bundle.
    pub fn fail_fast() -> Collector {
        Collector { fail_fast: true, host: true, bundle: true, ..Collector::default() }
    }

    /// What `validate` uses: report everything. `host`: also check what this machine can honour.
    /// `bundle`: the config is a bundle's config.json (root.path is resolved and must exist);
    /// a lone file has no rootfs to look at.
    pub fn collect_all(host: bool, bundle: bool) -> Collector {
        Collector { fail_fast: false, host, bundle, ..Collector::default() }
    }

    /// Whether checks that depend on this machine run.
    pub fn host(&self) -> bool {
        self.host
    }

    /// Whether checks that need the bundle directory (the rootfs) run.
    pub fn bundle(&self) -> bool {
        self.bundle
    }

    pub fn is_fail_fast(&self) -> bool {
        self.fail_fast
    }

    pub fn set_positions(&mut self, p: Positions) {
        self.positions = p;
    }

    pub(crate) fn prune(&mut self, path: String) {
        self.pruned.push(path);
    }

    fn related_to_pruned(&self, path: &str) -> bool {
        let under = |a: &str, b: &str| a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with(['.', '[']));
        self.pruned.iter().any(|p| under(path, p) || under(p, path))
    }

    /// Record a problem at a known position (the typed parse knows serde's).
    pub(crate) fn push_problem(&mut self, p: Problem) -> Flow {
        if p.severity == Severity::Error {
            // One error per path: a name the pre-parse check refused is refused by the typed
            // parse too.
            if self.problems.iter().any(|q| q.severity == Severity::Error && q.path == p.path) {
                return Ok(());
            }
        }
        let stop = p.severity == Severity::Error && self.fail_fast;
        self.problems.push(p);
        if stop {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    fn push(&mut self, severity: Severity, path: String, message: String, hint: String, unsupported: bool) -> Flow {
        if self.related_to_pruned(&path) {
            return Ok(());
        }
        let (line, column) = self.positions.of(&path);
        self.push_problem(Problem { severity, path, line, column, message, hint, unsupported })
    }

    /// The config is wrong at `path`; `hint` says what is accepted ("" if nothing useful).
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Flow {
        self.push(Severity::Error, path.into(), message.into(), hint.into(), false)
    }

    /// The config asks for something brisk or this host cannot do.
    pub fn unsupported(&mut self, path: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Flow {
        self.push(Severity::Error, path.into(), message.into(), hint.into(), true)
    }

    /// Accepted, but probably not what was meant (never refuses; `validate --strict` counts it).
    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) {
        let _ = self.push(Severity::Warning, path.into(), message.into(), hint.into(), false);
    }

    /// Accepted as written; said for information.
    pub fn note(&mut self, path: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) {
        let _ = self.push(Severity::Note, path.into(), message.into(), hint.into(), false);
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn first_error(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.severity == Severity::Error)
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Every problem, in the order of the file (by line, then column; unknown positions last,
    /// keeping the order they were found in).
    pub fn into_problems(self) -> Vec<Problem> {
        let mut v = self.problems;
        v.sort_by_key(|p| if p.line == 0 { (usize::MAX, 0) } else { (p.line, p.column) });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_fast_stops_at_the_first_error_and_keeps_warnings_going() {
        let mut c = Collector::fail_fast();
        c.warn("a", "w", "");
        assert_eq!(c.error("b", "e1", ""), Err(Stop));
        assert!(c.has_errors());
        assert_eq!(c.first_error().map(|p| p.path.as_str()), Some("b"));
    }

    #[test]
    fn collect_all_keeps_every_error_once_per_path() {
        let mut c = Collector::collect_all(false, true);
        assert_eq!(c.error("b", "e1", ""), Ok(()));
        assert_eq!(c.error("b", "e1 again", ""), Ok(()));
        assert_eq!(c.unsupported("c", "e2", "h"), Ok(()));
        c.note("d", "n", "");
        let errors: Vec<_> = c.problems().iter().filter(|p| p.severity == Severity::Error).map(|p| p.path.clone()).collect();
        assert_eq!(errors, ["b", "c"]);
        assert!(c.problems()[1].unsupported);
        assert!(!c.host());
    }

    #[test]
    fn pruned_paths_hide_their_consequences() {
        let mut c = Collector::collect_all(false, true);
        c.prune("process".into());
        c.error("process", "missing", "").expect("collect");
        c.error("process.args", "empty", "").expect("collect");
        c.error("processes", "other", "").expect("collect");
        assert_eq!(c.problems().len(), 1);
        assert_eq!(c.problems()[0].path, "processes");
    }

    #[test]
    fn positions_fall_back_to_the_nearest_ancestor_and_ignore_case() {
        let text = b"{\n  \"Process\": {\n    \"cwd\": 5\n  }\n}";
        let p = Positions::new(text, vec![("Process".into(), 4), ("Process.cwd".into(), 21)]);
        assert_eq!(p.of("process.cwd"), (3, 5));
        assert_eq!(p.of("process.args[0]"), (2, 3));
        assert_eq!(p.of("linux"), (0, 0));
        let mut c = Collector::collect_all(false, true);
        c.set_positions(p);
        c.error("process.cwd", "bad", "").expect("collect");
        assert_eq!((c.problems()[0].line, c.problems()[0].column), (3, 5));
        assert_eq!(c.problems()[0].to_string(), "error:3:5: process.cwd: bad");
    }
}
