//! Reading a request body, once: the checks serde_json does not make on its own (UTF-8 of
//! ignored fields, the nesting of the whole body), the JSON value (the fingerprint's input)
//! and the typed request, with errors that name the offending field.
//!
//! The value is read first and the typed request built from it. When that fails, or when the
//! body repeats an object key (serde refuses a repeated *known* field, a value keeps the last
//! one), the typed request is read from the bytes instead, so a refused body is refused with
//! the same words and position as ever.

use super::envelope::{CreateRequest, DeleteRequest, Header, ReadRequest, UpdateRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a body is not a request. Every cause is the client's (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON: bad UTF-8, too deep, a syntax error or trailing characters.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON of the wrong shape; the message starts with the field's path.
    #[error("{0}")]
    Invalid(String),
    /// A field the request does not have (merchant requests refuse them).
    #[error("{path}: unknown field (expected one of: {expected})")]
    UnknownField { path: String, expected: String },
}

impl ProtocolError {
    /// The stable machine-readable code of the cause.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Malformed(_) => "malformed_json",
            ProtocolError::Invalid(_) => "invalid_field",
            ProtocolError::UnknownField { .. } => "unknown_field",
        }
    }
}

/// A body read once: the typed request and the JSON value it came from.
#[derive(Debug)]
pub struct Parsed<T> {
    pub request: T,
    pub value: Value,
}

/// serde_json's own recursion limit, applied to the whole body.
const MAX_NESTING: usize = 128;

/// The fields a merchant request may carry, at its top level and in each of its `lines`.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub top: &'static [&'static str],
    /// More top-level fields (a variant of another request).
    pub also: &'static [&'static str],
    pub line: &'static [&'static str],
}

/// Parses a body into `T`, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<Parsed<T>, ProtocolError> {
    let scan = scan(body)?;
    let read = read_value(body);
    typed(body, scan, read)
}

/// Parses a merchant request, refusing fields it does not know (a misspelt `reason` must not
/// silently cancel with none). The request types flatten the actor, which serde's
/// `deny_unknown_fields` cannot combine with, hence this check on the value.
pub fn parse_known<T: DeserializeOwned>(
    body: &[u8],
    fields: &Fields,
) -> Result<Parsed<T>, ProtocolError> {
    let scan = scan(body)?;
    let read = read_value(body);
    match &read {
        Ok(value) => fields.check(value)?,
        Err(e) => return Err(value_error(body, e)),
    }
    typed(body, scan, read)
}

impl Fields {
    fn check(&self, value: &Value) -> Result<(), ProtocolError> {
        let unknown = |obj: &Map<String, Value>, allowed: &[&str], at: &str| {
            obj.keys()
                .find(|k| !allowed.contains(&k.as_str()))
                .map(|k| ProtocolError::UnknownField {
                    path: format!("{at}{k}"),
                    expected: allowed.join(", "),
                })
        };
        let Some(obj) = value.as_object() else {
            return Ok(());
        };
        let top: Vec<&str> = self.top.iter().chain(self.also).copied().collect();
        if let Some(e) = unknown(obj, &top, "") {
            return Err(e);
        }
        let lines = obj.get("lines").and_then(Value::as_array);
        for (i, line) in lines.into_iter().flatten().enumerate() {
            if let Some(e) = line
                .as_object()
                .and_then(|l| unknown(l, self.line, &format!("lines[{i}].")))
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The four operations Fast calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Read,
    Update,
    Delete,
}

impl Verb {
    pub fn parse(name: &str) -> Option<Verb> {
        match name {
            "create" => Some(Verb::Create),
            "read" => Some(Verb::Read),
            "update" => Some(Verb::Update),
            "delete" => Some(Verb::Delete),
            _ => None,
        }
    }
}

/// One of Fast's calls, parsed.
#[derive(Debug)]
pub enum FastRequest {
    Create(CreateRequest),
    Read(ReadRequest),
    Update(UpdateRequest),
    Delete(DeleteRequest),
}

impl FastRequest {
    /// Reads the body of a `verb` call, once.
    pub fn parse(verb: Verb, body: &[u8]) -> Result<(FastRequest, Value), ProtocolError> {
        fn wrap<T>(p: Parsed<T>, f: fn(T) -> FastRequest) -> (FastRequest, Value) {
            (f(p.request), p.value)
        }
        Ok(match verb {
            Verb::Create => wrap(parse(body)?, FastRequest::Create),
            Verb::Read => wrap(parse(body)?, FastRequest::Read),
            Verb::Update => wrap(parse(body)?, FastRequest::Update),
            Verb::Delete => wrap(parse(body)?, FastRequest::Delete),
        })
    }
}

/// What the byte scan found: how many object members the body spells out.
#[derive(Debug, Clone, Copy)]
struct Scan {
    members: usize,
}

/// UTF-8 and nesting of the whole body (serde_json checks neither for ignored fields), and
/// the count of object members (a `:` outside strings), to spot repeated keys later.
fn scan(body: &[u8]) -> Result<Scan, ProtocolError> {
    std::str::from_utf8(body).map_err(|e| {
        ProtocolError::Malformed(format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    let (mut depth, mut members) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ProtocolError::Malformed(format!(
                        "nested deeper than {MAX_NESTING} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b':' => members += 1,
            _ => {}
        }
    }
    Ok(Scan { members })
}

fn read_value(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Value::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Object members in a value (a repeated key counts once).
fn members(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len() + map.values().map(members).sum::<usize>(),
        Value::Array(items) => items.iter().map(members).sum(),
        _ => 0,
    }
}

/// The typed request from the value when it is the whole truth, else from the bytes.
fn typed<T: DeserializeOwned>(
    body: &[u8],
    scan: Scan,
    read: Result<Value, serde_json::Error>,
) -> Result<Parsed<T>, ProtocolError> {
    if let Ok(value) = &read {
        if members(value) == scan.members {
            if let Ok(request) = T::deserialize(value) {
                return read
                    .map(|value| Parsed { request, value })
                    .map_err(|e| ProtocolError::Malformed(e.to_string()));
            }
        }
    }
    let request = from_bytes(body)?;
    let value = read.map_err(|e| value_error(body, &e))?;
    Ok(Parsed { request, value })
}

/// Reads `T` from the bytes, naming the offending field on failure.
fn from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ProtocolError::Malformed(inner.to_string())
        } else if path == "." {
            // The envelope fields are flattened into each request type, which hides their
            // path: look at them on their own to name the field.
            envelope_error(body)
                .unwrap_or_else(|| ProtocolError::Invalid(format!("invalid request: {inner}")))
        } else {
            ProtocolError::Invalid(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    Ok(value)
}

/// The error of reading the body as a plain JSON value, worded as [`from_bytes`] words it.
fn value_error(body: &[u8], e: &serde_json::Error) -> ProtocolError {
    if e.is_syntax() || e.is_eof() {
        ProtocolError::Malformed(e.to_string())
    } else {
        envelope_error(body)
            .unwrap_or_else(|| ProtocolError::Invalid(format!("invalid request: {e}")))
    }
}

/// The error of the envelope fields (`type`, `request_id`, `app_id`) with its path, if any.
fn envelope_error(body: &[u8]) -> Option<ProtocolError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let e = serde_path_to_error::deserialize::<_, Header>(&mut de).err()?;
    let path = e.path().to_string();
    Some(ProtocolError::Invalid(format!(
        "{path}: {}",
        e.into_inner()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_known_field_is_refused_as_from_the_bytes() {
        let body = br#"{"order": {"order_id": "a"}, "order": {"order_id": "b"}}"#;
        let e = parse::<DeleteRequest>(body).unwrap_err();
        assert!(e.to_string().contains("duplicate field `order`"), "{e}");
    }

    #[test]
    fn the_value_and_the_request_come_from_one_read() {
        let body = br#"{"order": {"order_id": {"value": "F-1"}}, "x": 1.10}"#;
        let parsed = parse::<DeleteRequest>(body).unwrap();
        assert_eq!(parsed.request.order.fast_id(), Some("F-1"));
        assert_eq!(parsed.value["x"].to_string(), "1.10");
    }

    #[test]
    fn bad_utf8_deep_nesting_and_trailing_text_are_malformed() {
        let deep = "[".repeat(MAX_NESTING + 1);
        for body in [&b"{\"a\": \"\xff\"}"[..], deep.as_bytes(), b"{} x"] {
            let e = parse::<Value>(body).unwrap_err();
            assert!(matches!(e, ProtocolError::Malformed(_)), "{e}");
        }
    }

    #[test]
    fn unknown_merchant_fields_are_named_with_their_path() {
        let fields = Fields {
            top: &["lines"],
            also: &[],
            line: &["line_id"],
        };
        let e = parse_known::<Value>(br#"{"lines": [{"line_id": "a", "qty": 1}]}"#, &fields)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "lines[0].qty: unknown field (expected one of: line_id)"
        );
    }
}
