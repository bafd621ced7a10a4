//! The comparison of an expected answer with the one received: strict JSON structure
//! (missing and unexpected fields both count), money and other decimals compared as
//! decimals, placeholders bound on first sight, and ignore rules.
//!
//! Paths are written `$.order.order.lines[0].total_amount` for the answer body,
//! `forwarded[0].occurred_at` for forwarded events, `headers.idempotent-replayed` for
//! headers and `status` for the HTTP status. Patterns use the same syntax plus `[*]` (any
//! index), `.*` (any key) and `..` (any depth, e.g. `$..occurred_at`); a pattern that
//! matches a prefix of a path ignores the whole subtree.

use super::bind::{self, Bindings};
use rust_decimal::Decimal;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// The central list of volatile fields: never compared, in any tape, unless a tape's header
/// lists the entry under `check`. Ids the seller generates are *not* here: they are bound to
/// placeholders (see [`super::bind`]), which checks that they stay consistent.
pub const VOLATILE: &[&str] = &[
    // Forwarded events: a new event id per delivery and the wall-clock time of the change.
    "forwarded[*].id",
    "forwarded[*].occurred_at",
    // Transport headers.
    "headers.date",
    "headers.content-length",
];

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A concrete location: a root (`$`, `forwarded`, `headers`, `status`) and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub root: String,
    pub segs: Vec<Seg>,
}

impl JsonPath {
    pub fn root(root: &str) -> JsonPath {
        JsonPath {
            root: root.to_string(),
            segs: Vec::new(),
        }
    }

    pub fn key(&self, key: &str) -> JsonPath {
        let mut p = self.clone();
        p.segs.push(Seg::Key(key.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> JsonPath {
        let mut p = self.clone();
        p.segs.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        for s in &self.segs {
            match s {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PSeg {
    Key(String),
    AnyKey,
    Index(usize),
    AnyIndex,
    AnyDepth,
}

/// A path pattern (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    root: String,
    segs: Vec<PSeg>,
}

impl Pattern {
    /// Parses `$.a.b[*].c`, `forwarded[*].id`, `$..occurred_at`, `headers.date`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let bad = |why: &str| format!("bad path pattern {text:?}: {why}");
        let root_end = text.find(['.', '[']).unwrap_or(text.len());
        let root = text.get(..root_end).unwrap_or_default();
        if root.is_empty() {
            return Err(bad("it must start with $, forwarded, headers or status"));
        }
        let mut segs = Vec::new();
        let mut rest = text.get(root_end..).unwrap_or_default();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("..") {
                segs.push(PSeg::AnyDepth);
                // `..name` is any depth, then `name`.
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = r.get(..end).unwrap_or_default();
                if !key.is_empty() {
                    segs.push(if key == "*" {
                        PSeg::AnyKey
                    } else {
                        PSeg::Key(key.to_string())
                    });
                }
                rest = r.get(end..).unwrap_or_default();
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = r.get(..end).unwrap_or_default();
                if key.is_empty() {
                    return Err(bad("empty key"));
                }
                segs.push(if key == "*" {
                    PSeg::AnyKey
                } else {
                    PSeg::Key(key.to_string())
                });
                rest = r.get(end..).unwrap_or_default();
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| bad("unclosed ["))?;
                let inner = r.get(..end).unwrap_or_default();
                segs.push(if inner == "*" {
                    PSeg::AnyIndex
                } else {
                    PSeg::Index(
                        inner
                            .parse()
                            .map_err(|_| bad("an index is a number or *"))?,
                    )
                });
                rest = r.get(end + 1..).unwrap_or_default();
            } else {
                return Err(bad("expected . or ["));
            }
        }
        Ok(Pattern {
            text: text.to_string(),
            root: root.to_string(),
            segs,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches `path` or one of its ancestors.
    pub fn matches(&self, path: &JsonPath) -> bool {
        self.root == path.root && match_segs(&self.segs, &path.segs)
    }
}

fn match_segs(pattern: &[PSeg], path: &[Seg]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return true; // the pattern is a prefix of the path
    };
    if *first == PSeg::AnyDepth {
        return (0..=path.len()).any(|i| match_segs(rest, path.get(i..).unwrap_or_default()));
    }
    let Some((seg, path_rest)) = path.split_first() else {
        return false;
    };
    let ok = match (first, seg) {
        (PSeg::Key(k), Seg::Key(s)) => k == s,
        (PSeg::AnyKey, Seg::Key(_)) => true,
        (PSeg::Index(i), Seg::Index(j)) => i == j,
        (PSeg::AnyIndex, Seg::Index(_)) => true,
        _ => false,
    };
    ok && match_segs(rest, path_rest)
}

/// The paths not compared: the central [`VOLATILE`] list minus the tape's `check` entries,
/// plus the tape's and the step's `ignore` lists.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    pub fn new(check: &[String], ignore: &[String]) -> Result<IgnoreRules, String> {
        let mut patterns = Vec::new();
        for v in VOLATILE {
            if !check.iter().any(|c| c == v) {
                patterns.push(Pattern::parse(v)?);
            }
        }
        for i in ignore {
            patterns.push(Pattern::parse(i)?);
        }
        Ok(IgnoreRules { patterns })
    }

    /// These rules plus a step's own `ignore` list.
    pub fn with(&self, extra: &[String]) -> Result<IgnoreRules, String> {
        let mut rules = self.clone();
        for i in extra {
            rules.patterns.push(Pattern::parse(i)?);
        }
        Ok(rules)
    }

    pub fn ignored(&self, path: &JsonPath) -> bool {
        self.patterns.iter().any(|p| p.matches(path))
    }
}

/// One difference between expected and received.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub path: String,
    /// `None`: the field was not expected at all.
    pub expected: Option<Value>,
    /// `None`: the field is missing from the answer.
    pub got: Option<Value>,
    /// Why, when the values alone do not say (a placeholder bound elsewhere…).
    pub note: Option<String>,
}

/// Renders a value for a one-line report (JSON text, clipped).
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(v) => super::clip(&v.to_string(), 160),
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expected {} got {}",
            self.path,
            show(self.expected.as_ref()),
            show(self.got.as_ref())
        )?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A decimal when `s` looks like one (`-12`, `5.0`, `0.00`).
fn decimal_text(s: &str) -> Option<Decimal> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (frac.is_empty() != digits.contains('.'))
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    Decimal::from_str(s).ok()
}

/// Whether two strings are equal, or both decimals (one at least with a decimal point, so
/// `"0123"` and `"123"` stay different ids) of equal value: `"5.0"` == `"5.00"`.
pub fn strings_equal(expected: &str, got: &str) -> bool {
    if expected == got {
        return true;
    }
    if !expected.contains('.') && !got.contains('.') {
        return false;
    }
    match (decimal_text(expected), decimal_text(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether two JSON numbers are equal as decimals (`2` == `2.0`).
pub fn numbers_equal(expected: &serde_json::Number, got: &serde_json::Number) -> bool {
    let (a, b) = (expected.to_string(), got.to_string());
    if a == b {
        return true;
    }
    match (Decimal::from_str(&a), Decimal::from_str(&b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => match (expected.as_f64(), got.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Compares `expected` with `got` under `rules`, binding placeholders into `bindings`, and
/// appends every difference to `out`.
pub fn diff(
    expected: &Value,
    got: Option<&Value>,
    path: &JsonPath,
    rules: &IgnoreRules,
    bindings: &mut Bindings,
    out: &mut Vec<Mismatch>,
) {
    if rules.ignored(path) {
        return;
    }
    let mismatch = |note: Option<String>| Mismatch {
        path: path.to_string(),
        expected: Some(expected.clone()),
        got: got.cloned(),
        note,
    };
    let Some(got) = got else {
        out.push(mismatch(None));
        return;
    };
    match (expected, got) {
        (Value::String(e), _) if bind::as_placeholder(e).is_some() => {
            let label = bind::as_placeholder(e).unwrap_or_default();
            if label == bind::ANY {
                return;
            }
            let Value::String(g) = got else {
                out.push(mismatch(Some("an id must be a string".into())));
                return;
            };
            if let Err(why) = bindings.bind(label, g) {
                out.push(mismatch(Some(why)));
            }
        }
        (Value::String(e), Value::String(g)) => match bindings.substitute_str(e) {
            Ok(live) if strings_equal(&live, g) => {}
            // Show the expectation with its placeholders filled in.
            Ok(live) => out.push(Mismatch {
                path: path.to_string(),
                expected: Some(Value::String(live)),
                got: Some(got.clone()),
                note: None,
            }),
            Err(unbound) => out.push(mismatch(Some(format!("{unbound} is not bound yet")))),
        },
        (Value::Number(e), Value::Number(g)) => {
            if !numbers_equal(e, g) {
                out.push(mismatch(None));
            }
        }
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                diff(ev, g.get(k), &path.key(k), rules, bindings, out);
            }
            for (k, gv) in g {
                if !e.contains_key(k) {
                    let p = path.key(k);
                    if !rules.ignored(&p) {
                        out.push(Mismatch {
                            path: p.to_string(),
                            expected: None,
                            got: Some(gv.clone()),
                            note: None,
                        });
                    }
                }
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            for i in 0..e.len().max(g.len()) {
                match e.get(i) {
                    Some(ev) => diff(ev, g.get(i), &path.index(i), rules, bindings, out),
                    None => {
                        let p = path.index(i);
                        if !rules.ignored(&p) {
                            out.push(Mismatch {
                                path: p.to_string(),
                                expected: None,
                                got: g.get(i).cloned(),
                                note: Some(format!(
                                    "{} items expected, {} received",
                                    e.len(),
                                    g.len()
                                )),
                            });
                        }
                    }
                }
            }
        }
        (e, g) if e == g => {}
        _ => out.push(mismatch(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_but_ids_do_not() {
        assert!(strings_equal("5.0", "5.00"));
        assert!(strings_equal("45", "45.00"));
        assert!(!strings_equal("5.01", "5.00"));
        assert!(!strings_equal("0123", "123"));
        assert!(!strings_equal("1.2.3", "1.2.30"));
        assert!(!strings_equal("abc.0", "abc.00"));
    }

    #[test]
    fn patterns_match_prefixes_wildcards_and_any_depth() {
        let p = Pattern::parse("$.order.order.lines[*].external_id").unwrap();
        let path = JsonPath::root("$")
            .key("order")
            .key("order")
            .key("lines")
            .index(3)
            .key("external_id");
        assert!(p.matches(&path));
        assert!(!p.matches(&JsonPath::root("$").key("order")));
        let deep = Pattern::parse("$..occurred_at").unwrap();
        assert!(deep.matches(&JsonPath::root("$").key("a").index(0).key("occurred_at")));
        let prefix = Pattern::parse("$.order").unwrap();
        assert!(prefix.matches(&path));
        assert!(Pattern::parse("order")
            .unwrap()
            .matches(&JsonPath::root("order")));
        assert!(Pattern::parse(".x").is_err());
        assert!(Pattern::parse("$.a[x]").is_err());
    }
}
