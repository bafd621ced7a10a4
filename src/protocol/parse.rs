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
    if let Ok(value) = &read {
        storable(body, value)?;
    }
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
        Ok(value) => {
            storable(body, value)?;
            fields.check(value)?;
        }
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

/// Refuses text no store can hold: the NUL character (`\u0000`), which PostgreSQL's `text`
/// refuses, anywhere in the body (a key or a string, known field or not). Refused here, as
/// the client's error, rather than by the store as a failure Fast would retry for ever.
fn storable(body: &[u8], value: &Value) -> Result<(), ProtocolError> {
    // JSON can spell a NUL only as this escape; most bodies never need the walk.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    match nul_at(value) {
        Some(path) => Err(ProtocolError::Invalid(format!(
            "{path}: text must not contain the NUL character (\\u0000)"
        ))),
        None => Ok(()),
    }
}

/// The path (`order.lines[0].id.value`) of the first key or string holding a NUL.
fn nul_at(value: &Value) -> Option<String> {
    let mut steps = Vec::new();
    nul_steps(value, &mut steps).then(|| {
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Index(i) => path.push_str(&format!("[{i}]")),
                Step::Key(k) if path.is_empty() => path.push_str(&path_key(k)),
                Step::Key(k) => path.push_str(&format!(".{}", path_key(k))),
            }
        }
        if path.is_empty() {
            path.push('.');
        }
        path
    })
}

enum Step<'a> {
    Index(usize),
    Key(&'a str),
}

/// Whether `value` holds a NUL; if so, `steps` gets the way to it, innermost first.
fn nul_steps<'a>(value: &'a Value, steps: &mut Vec<Step<'a>>) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let found = nul_steps(item, steps);
            if found {
                steps.push(Step::Index(i));
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(key, item)| {
            let found = key.contains('\0') || nul_steps(item, steps);
            if found {
                steps.push(Step::Key(key));
            }
            found
        }),
        _ => false,
    }
}

/// A key as a path shows it: at most 64 characters, control and non-ASCII ones escaped.
fn path_key(key: &str) -> String {
    let mut out: String = key
        .chars()
        .take(64)
        .flat_map(|c| {
            let plain = c == ' ' || (c.is_ascii_graphic() && c != '\\');
            let escaped: Vec<char> = if plain {
                vec![c]
            } else {
                c.escape_default().collect()
            };
            escaped
        })
        .collect();
    if key.chars().nth(64).is_some() {
        out.push('…');
    }
    out
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
    fn a_nul_anywhere_is_refused_naming_its_path() {
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"order": {"lines": [{"id": {"value": "L\u0000"}}]}}"#,
                "order.lines[0].id.value: ",
            ),
            (
                br#"{"request_id": {"value": "\u0000"}}"#,
                "request_id.value: ",
            ),
            (br#"{"x": {"a\u0000b": 1}}"#, "x.a\\u{0}b: "),
            (br#""\u0000""#, ".: "),
        ];
        for (body, path) in cases {
            let e = parse::<Value>(body).unwrap_err();
            assert!(matches!(e, ProtocolError::Invalid(_)), "{e}");
            assert!(e.to_string().starts_with(path), "{e}");
        }
        // An escaped backslash followed by `u0000` is six ordinary characters.
        assert!(parse::<Value>(br#"{"x": "\\u0000"}"#).is_ok());
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
