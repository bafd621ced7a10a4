//! `--update`: a step rewritten with what the server answered, keeping what the old
//! expectation already said (placeholders, ignored fields) and turning new seller ids into
//! new placeholders.

use crate::tapes::bind::{self, Bindings};
use crate::tapes::compare::{self, IgnoreRules, JsonPath, Pattern};
use crate::tapes::format::{ExpectedResponse, Step};
use crate::tapes::Answer;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The step rewritten with what the server answered.
pub(super) fn updated_step(
    step: &Step,
    answer: &Answer,
    events: Option<&Value>,
    rules: &IgnoreRules,
    id_paths: &[Pattern],
    mentioned: &HashSet<String>,
    bindings: &mut Bindings,
) -> Step {
    let mut new = step.clone();
    let old = step.response.as_ref();
    let mut headers = Map::new();
    for (name, _) in old.map(|o| o.headers.iter()).into_iter().flatten() {
        let value = answer
            .header(name)
            .map_or(Value::Null, |v| Value::String(v.to_string()));
        headers.insert(name.clone(), value);
    }
    let mut rw = Rewriter {
        rules,
        id_paths,
        mentioned,
        bindings,
    };
    let body = rw.rewrite(
        old.and_then(|o| o.body.as_ref()),
        &answer.json(),
        &JsonPath::root("$"),
    );
    new.response = Some(ExpectedResponse {
        status: answer.status,
        headers,
        body: Some(body),
    });
    if let Some(events) = events {
        let old_events = Value::Array(step.forwarded.clone());
        if let Value::Array(list) =
            rw.rewrite(Some(&old_events), events, &JsonPath::root("forwarded"))
        {
            new.forwarded = list;
        }
    }
    new
}

/// Turns a received value into an expectation, keeping what the old one already said.
struct Rewriter<'a> {
    rules: &'a IgnoreRules,
    id_paths: &'a [Pattern],
    mentioned: &'a HashSet<String>,
    bindings: &'a mut Bindings,
}

impl Rewriter<'_> {
    fn rewrite(&mut self, old: Option<&Value>, got: &Value, path: &JsonPath) -> Value {
        match old {
            Some(old) if self.rules.ignored(path) || self.still_matches(old, got) => {
                return old.clone();
            }
            // Not compared: say so instead of writing down a value that will never matter.
            None if self.rules.ignored(path) => return Value::String(bind::placeholder(bind::ANY)),
            _ => {}
        }
        match got {
            Value::Object(map) => {
                let old_map = old.and_then(Value::as_object);
                let mut out = Map::with_capacity(map.len());
                for (k, v) in map {
                    let child = self.rewrite(old_map.and_then(|m| m.get(k)), v, &path.key(k));
                    out.insert(k.clone(), child);
                }
                // An ignored field the server stopped sending stays expected as it was.
                for (k, v) in old_map.into_iter().flatten() {
                    if !map.contains_key(k) && self.rules.ignored(&path.key(k)) {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let old_items = old.and_then(Value::as_array);
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            self.rewrite(old_items.and_then(|o| o.get(i)), v, &path.index(i))
                        })
                        .collect(),
                )
            }
            Value::String(s) => {
                let is_id_path = self.id_paths.iter().any(|p| p.matches(path));
                if is_id_path
                    && !s.is_empty()
                    && !self.mentioned.contains(s)
                    && self.bindings.label_of(s).is_none()
                {
                    let label = self.bindings.fresh(s);
                    return Value::String(bind::placeholder(&label));
                }
                Value::String(self.bindings.abstract_str(s))
            }
            other => other.clone(),
        }
    }

    /// A leaf the old expectation still accepts (placeholders included) is kept as written.
    fn still_matches(&self, old: &Value, got: &Value) -> bool {
        match (old, got) {
            (Value::String(o), Value::String(g)) => {
                if let Some(label) = bind::as_placeholder(o) {
                    return label == bind::ANY || self.bindings.get(label) == Some(g.as_str());
                }
                self.bindings
                    .substitute_str(o)
                    .is_ok_and(|o| compare::strings_equal(&o, g))
            }
            (Value::String(o), _) => bind::as_placeholder(o) == Some(bind::ANY),
            (Value::Number(o), Value::Number(g)) => compare::numbers_equal(o, g),
            (Value::Bool(o), Value::Bool(g)) => o == g,
            (Value::Null, Value::Null) => true,
            _ => false,
        }
    }
}
