//! Placeholders for values a tape cannot know in advance.
//!
//! - `{{ext:N}}` (any label of letters, digits, `_ : . -`): an id the seller generates
//!   (seller order id, line and plan `external_id`, generated plan ids). In an expected
//!   answer, an unbound placeholder is **bound on first sight** to the value the server
//!   returned there; from then on every expected occurrence must be that same value, and
//!   requests that mention it are sent with the live value substituted. Two placeholders
//!   never bind the same value (two lines must not share an id).
//! - `{{run}}`: a random token per replay, pre-bound (makes Fast order ids and request ids
//!   unique when a tape is replayed against a long-lived server).
//! - `{{any}}`: in an expected answer, any value (the field must be present).
//!
//! When recording (or `--update`), the reverse happens: fresh seller ids found at
//! [`SELLER_ID_PATHS`] become new placeholders and every later occurrence is written as one.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Matches any value.
pub const ANY: &str = "any";
/// The per-replay random token.
pub const RUN: &str = "run";

/// Where a seller generates ids in its answers (paths of [`super::compare::Pattern`] syntax,
/// relative to the answer body; the second group is relative to a forwarded event).
/// A value found here that no request has mentioned becomes a placeholder when recording.
pub const SELLER_ID_PATHS: &[&str] = &[
    "$.order.order.external_id",
    "$.order.order.lines[*].external_id",
    "$.order.order.lines[*].id.value",
    "$.order.order.shipment_plans[*].external_id",
    "$.order.order.shipment_plans[*].id.value",
    "$.order.order.refunds[*].external_id",
    "forwarded[*].external_id",
    "forwarded[*].order.external_id",
    "forwarded[*].order.lines[*].external_id",
    "forwarded[*].order.lines[*].id.value",
    "forwarded[*].order.shipment_plans[*].external_id",
    "forwarded[*].order.shipment_plans[*].id.value",
];

/// Values shorter than this are only abstracted when a whole string equals them (a short id
/// such as `"1"` must not be replaced inside unrelated text).
const MIN_SUBSTRING_LEN: usize = 8;

/// If `s` is exactly one placeholder, its label.
pub fn as_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    is_label(inner).then_some(inner)
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
}

/// The placeholders inside `s`: `(byte start, byte end, label)`.
pub fn placeholders(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s.get(from..).and_then(|rest| rest.find("{{")) {
        let start = from + open;
        let Some(close) = s.get(start + 2..).and_then(|rest| rest.find("}}")) else {
            break;
        };
        let end = start + 2 + close + 2;
        match s.get(start + 2..end - 2) {
            Some(label) if is_label(label) => {
                out.push((start, end, label));
                from = end;
            }
            _ => from = start + 2,
        }
    }
    out
}

/// The placeholder text for a label.
pub fn placeholder(label: &str) -> String {
    format!("{{{{{label}}}}}")
}

/// The placeholder ↔ value table of one replay (or one recording).
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    by_label: BTreeMap<String, String>,
    by_value: HashMap<String, String>,
    next: u64,
}

impl Bindings {
    /// A table with `{{run}}` bound to `run_token`.
    pub fn new(run_token: &str) -> Bindings {
        let mut b = Bindings {
            next: 1,
            ..Bindings::default()
        };
        b.by_label.insert(RUN.into(), run_token.into());
        b.by_value.insert(run_token.into(), RUN.into());
        b
    }

    /// The value bound to `label`.
    pub fn get(&self, label: &str) -> Option<&str> {
        self.by_label.get(label).map(String::as_str)
    }

    /// The label bound to `value`.
    pub fn label_of(&self, value: &str) -> Option<&str> {
        self.by_value.get(value).map(String::as_str)
    }

    /// Binds `label` to `value`; an error says why it cannot (bound to something else, or
    /// the value already belongs to another placeholder).
    pub fn bind(&mut self, label: &str, value: &str) -> Result<(), String> {
        if let Some(bound) = self.by_label.get(label) {
            return if bound == value {
                Ok(())
            } else {
                Err(format!("{} is {bound:?}", placeholder(label)))
            };
        }
        if value.is_empty() {
            return Err(format!(
                "{} cannot be bound to an empty id",
                placeholder(label)
            ));
        }
        if let Some(other) = self.by_value.get(value) {
            return Err(format!(
                "{} must be a new id, but this one is already {}",
                placeholder(label),
                placeholder(other)
            ));
        }
        self.by_label.insert(label.into(), value.into());
        self.by_value.insert(value.into(), label.into());
        self.note_label(label);
        Ok(())
    }

    /// Makes later [`Bindings::fresh`] labels avoid `label` (`ext:N` labels only).
    pub fn note_label(&mut self, label: &str) {
        if let Some(n) = label
            .strip_prefix("ext:")
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.next = self.next.max(n.saturating_add(1));
        }
    }

    /// Binds `value` to the next free `ext:N` label and returns the label (or the label it
    /// already has).
    pub fn fresh(&mut self, value: &str) -> String {
        if let Some(label) = self.by_value.get(value) {
            return label.clone();
        }
        loop {
            let label = format!("ext:{}", self.next);
            self.next = self.next.saturating_add(1);
            if !self.by_label.contains_key(&label) {
                self.by_label.insert(label.clone(), value.into());
                self.by_value.insert(value.into(), label.clone());
                return label;
            }
        }
    }

    /// Binds `value` to a caller-chosen label (the recorder's content-derived labels).
    pub fn insert(&mut self, label: &str, value: &str) {
        self.by_label.insert(label.into(), value.into());
        self.by_value.insert(value.into(), label.into());
    }

    /// `s` with every placeholder replaced by its value; the error names the first
    /// placeholder that has no value yet.
    pub fn substitute_str(&self, s: &str) -> Result<String, String> {
        let found = placeholders(s);
        if found.is_empty() {
            return Ok(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (start, end, label) in found {
            let value = self.get(label).ok_or_else(|| placeholder(label))?;
            out.push_str(s.get(last..start).unwrap_or_default());
            out.push_str(value);
            last = end;
        }
        out.push_str(s.get(last..).unwrap_or_default());
        Ok(out)
    }

    /// A JSON value with placeholders substituted in every string (keys untouched).
    pub fn substitute(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(self.substitute_str(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.substitute(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(k.clone(), self.substitute(v)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// The reverse of [`Bindings::substitute_str`]: a string equal to a bound value becomes
    /// its placeholder; longer strings get bound values of 8+ characters replaced inside.
    pub fn abstract_str(&self, s: &str) -> String {
        if let Some(label) = self.by_value.get(s) {
            return placeholder(label);
        }
        let mut out = s.to_string();
        let mut values: Vec<(&String, &String)> = self
            .by_value
            .iter()
            .filter(|(v, _)| v.len() >= MIN_SUBSTRING_LEN)
            .collect();
        // Longest first, so a value that contains another is replaced whole.
        values.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        for (value, label) in values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &placeholder(label));
            }
        }
        out
    }

    /// [`Bindings::abstract_str`] over every string of a JSON value.
    pub fn abstract_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.abstract_str(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.abstract_value(i)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.abstract_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Every placeholder label in a JSON value.
pub fn labels_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.extend(placeholders(s).into_iter().map(|(_, _, l)| l.to_string())),
        Value::Array(items) => items.iter().for_each(|i| labels_in(i, out)),
        Value::Object(map) => map.values().for_each(|v| labels_in(v, out)),
        _ => {}
    }
}

/// Every string in a JSON value (the values a request mentions).
pub fn strings_in<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_and_ignores_braces_that_are_not() {
        assert_eq!(as_placeholder("{{ext:1}}"), Some("ext:1"));
        assert_eq!(as_placeholder("{{ext 1}}"), None);
        assert_eq!(as_placeholder("x{{ext:1}}"), None);
        let found: Vec<&str> = placeholders("F-{{run}}-{{ext:2}} {{ no }}")
            .into_iter()
            .map(|(_, _, l)| l)
            .collect();
        assert_eq!(found, ["run", "ext:2"]);
    }

    #[test]
    fn binds_once_substitutes_and_abstracts() {
        let mut b = Bindings::new("abcd1234");
        assert_eq!(b.bind("ext:1", "seller-1111"), Ok(()));
        assert_eq!(b.bind("ext:1", "seller-1111"), Ok(()));
        assert!(b.bind("ext:1", "other").is_err());
        assert!(b.bind("ext:2", "seller-1111").is_err());
        assert_eq!(
            b.substitute_str("F-{{run}}/{{ext:1}}").as_deref(),
            Ok("F-abcd1234/seller-1111")
        );
        assert_eq!(b.substitute_str("{{ext:9}}"), Err("{{ext:9}}".to_string()));
        assert_eq!(b.abstract_str("seller-1111"), "{{ext:1}}");
        assert_eq!(b.abstract_str("F-abcd1234-1"), "F-{{run}}-1");
        assert_eq!(b.fresh("new-id"), "ext:2");
        assert_eq!(b.fresh("new-id"), "ext:2");
    }
}
