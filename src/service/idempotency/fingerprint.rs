//! The fingerprint of a request: SHA-256 over the endpoint and the canonical form of the
//! body (object keys sorted, insignificant whitespace removed, strings and number text
//! untouched), so a harmless re-serialisation by Fast is still "the same request" while
//! `"29.99"` and `"29.990"` are not.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn fingerprint(endpoint: &str, body: &Value) -> [u8; 32] {
    let mut canonical = Vec::with_capacity(256);
    write_canonical(body, &mut canonical);
    let mut h = Sha256::new();
    h.update(endpoint.as_bytes());
    h.update([0u8]);
    h.update(&canonical);
    h.finalize().into()
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar Value cannot fail; an empty write would only weaken the hash.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(endpoint: &str, s: &str) -> [u8; 32] {
        fingerprint(endpoint, &serde_json::from_str(s).unwrap())
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter_but_values_and_endpoint_do() {
        let a = fp("update", r#"{"a": 1, "b": {"y": "29.99", "x": [1, 2]}}"#);
        let b = fp("update", r#"{"b":{"x":[1,2],"y":"29.99"},"a":1}"#);
        assert_eq!(a, b);
        assert_ne!(
            a,
            fp("update", r#"{"a": 1, "b": {"y": "29.990", "x": [1, 2]}}"#)
        );
        assert_ne!(
            a,
            fp("update", r#"{"a": 1, "b": {"y": "29.99", "x": [2, 1]}}"#)
        );
        assert_ne!(
            a,
            fp("create", r#"{"a": 1, "b": {"y": "29.99", "x": [1, 2]}}"#)
        );
        assert_ne!(fp("u", r#"{"a": 1.10}"#), fp("u", r#"{"a": 1.1}"#));
    }
}
