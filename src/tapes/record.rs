//! `fast-seller serve --record DIR`: every exchange appended to a tape, secrets scrubbed.
//!
//! One tape per Fast order, `DIR/<order id>.jsonl` (the id made file-name safe); exchanges
//! where no order id is visible (shipping-zone reads, a delete by an unknown seller id, a
//! malformed request) go to `DIR/day-YYYY-MM-DD.jsonl` (UTC). Seller ids in answers become
//! placeholders named after a hash of the value (`{{ext:3fa9c1d2}}`), so the same id gets the
//! same placeholder even after a restart, and later requests that mention it are written with
//! the placeholder: a recorded tape replays against a fresh server.
//!
//! Scrubbed (value replaced by `"[scrubbed]"`): the headers `Authorization`,
//! `Proxy-Authorization`, `Cookie`, `webhook-signature`, `X-Fast-App-Auth`, and any header
//! whose name contains `auth`, `secret`, `token`, `password`, `credential`, `signature` or
//! `api-key`; in request and answer bodies any field whose name contains `secret`, `token`,
//! `password`, `credential` or `api_key` (case-insensitive).

use super::bind::{self, SELLER_ID_PATHS};
use super::compare::{JsonPath, Pattern};
use super::format::{step_value, ExpectedResponse, Step, TapeHeader};
use super::TapeError;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What a scrubbed value is replaced with.
pub const SCRUBBED: &str = "[scrubbed]";

/// Headers always scrubbed.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "webhook-signature",
    "x-fast-app-auth",
    "x-fast-platform-credentials",
];

/// A header name containing one of these is scrubbed too.
const SECRET_HEADER_WORDS: &[&str] = &[
    "auth",
    "secret",
    "token",
    "password",
    "credential",
    "signature",
    "api-key",
];

/// Tape states kept in memory; beyond this they are dropped and read back from their files
/// when needed again (the placeholders are derived from the values, so nothing is lost).
const MAX_OPEN_TAPES: usize = 4096;
/// Seller id → Fast id entries kept; beyond this the map starts over (an update that names
/// only a forgotten seller id then goes to the day's tape).
const MAX_KNOWN_SELLER_IDS: usize = 100_000;

/// A body field whose name contains one of these is scrubbed.
const SECRET_FIELD_WORDS: &[&str] = &["secret", "token", "password", "credential", "api_key"];

/// Headers not worth recording (the HTTP client sets them).
const SKIPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "accept",
    "keep-alive",
];

/// Whether a header's value must not be written down.
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&lower.as_str())
        || SECRET_HEADER_WORDS.iter().any(|w| lower.contains(w))
}

/// Whether a body field's value must not be written down.
pub fn is_secret_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_FIELD_WORDS.iter().any(|w| lower.contains(w))
}

/// `v` with every secret field's value replaced by [`SCRUBBED`].
pub fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_field(k) {
                        Value::String(SCRUBBED.into())
                    } else {
                        scrub(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(scrub).collect()),
        other => other.clone(),
    }
}

/// The placeholder label of a recorded seller id: stable across restarts.
fn label_for(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("ext:{hex}")
}

/// What the recorder remembers about one tape file.
#[derive(Debug, Default)]
struct FileState {
    steps: u64,
    /// Labels of the seller ids this tape has seen.
    labels: HashSet<String>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, FileState>,
    /// Seller order id → Fast order id, learnt from answers (post-conversion updates and
    /// deletes name only the seller id).
    fast_id_of: HashMap<String, String>,
}

/// Writes every exchange it is shown as tapes. Thread-safe; share it behind an `Arc`.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    catalog: Option<String>,
    id_paths: Vec<Pattern>,
    state: Mutex<State>,
}

impl Recorder {
    /// Records into `dir` (created if needed). A `dir` that is a symbolic link, or not a
    /// directory, is refused: tapes are written only where the operator said.
    pub fn new(dir: &Path) -> Result<Self, TapeError> {
        let refuse = |what: &str| {
            TapeError::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the record directory {what}; give a real directory"),
                ),
            )
        };
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse("is a symbolic link"));
            }
            Ok(meta) if !meta.is_dir() => return Err(refuse("is not a directory")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| TapeError::io(dir, e))?;
            }
            Err(e) => return Err(TapeError::io(dir, e)),
        }
        Ok(Recorder {
            dir: dir.to_path_buf(),
            catalog: None,
            id_paths: SELLER_ID_PATHS
                .iter()
                .filter_map(|p| Pattern::parse(p).ok())
                .collect(),
            state: Mutex::new(State::default()),
        })
    }

    /// Names the server's catalog file in the header of new tapes, so that a replay without
    /// `--target` prices with the same catalog (`None`: the bundled demo catalog).
    pub fn with_catalog(mut self, catalog: Option<&Path>) -> Self {
        self.catalog = catalog.map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        });
        self
    }

    /// The directory tapes are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one exchange (`endpoint`: `create`, `read`, `update` or `delete`) to its tape.
    /// Never fails the request: a write error is logged.
    pub fn record(
        &self,
        endpoint: &str,
        request_headers: &[(String, String)],
        request_body: &[u8],
        status: u16,
        response_body: &[u8],
    ) {
        if let Err(e) = self.try_record(
            endpoint,
            request_headers,
            request_body,
            status,
            response_body,
        ) {
            tracing::warn!(error = %e, "recording the exchange failed");
        }
    }

    /// [`Recorder::record`], returning the tape written to.
    pub fn try_record(
        &self,
        endpoint: &str,
        request_headers: &[(String, String)],
        request_body: &[u8],
        status: u16,
        response_body: &[u8],
    ) -> Result<PathBuf, TapeError> {
        let request: Option<Value> = serde_json::from_slice(request_body).ok();
        let response: Value = serde_json::from_slice(response_body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(response_body).into_owned()));
        let request = request.as_ref().map(scrub);
        let response = scrub(&response);

        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(fast), Some(seller)) = (
            response
                .pointer("/order/order/id/value")
                .and_then(Value::as_str),
            response
                .pointer("/order/order/external_id")
                .and_then(Value::as_str),
        ) {
            if !fast.is_empty() && !seller.is_empty() {
                if state.fast_id_of.len() >= MAX_KNOWN_SELLER_IDS {
                    state.fast_id_of.clear();
                }
                state
                    .fast_id_of
                    .insert(seller.to_string(), fast.to_string());
            }
        }
        let order_id = order_id_of(request.as_ref(), &response, &state.fast_id_of);
        let (path, name) = match &order_id {
            Some(id) => (
                self.dir.join(format!("{}.jsonl", file_safe(id))),
                id.clone(),
            ),
            None => {
                let day = today();
                (
                    self.dir.join(format!("day-{day}.jsonl")),
                    format!("day-{day}"),
                )
            }
        };
        let file = match state.files.remove(&path) {
            Some(f) => f,
            None => self.open(&path, &name)?,
        };
        let mut file = file;

        // Seller ids: fresh ones in the answer that the request did not mention.
        let mut mentioned = Vec::new();
        if let Some(r) = &request {
            bind::strings_in(r, &mut mentioned);
        }
        let mentioned: HashSet<&str> = mentioned.into_iter().collect();
        let mut fresh = Vec::new();
        self.collect_ids(&response, &JsonPath::root("$"), &mentioned, &mut fresh);
        file.labels.extend(fresh.iter().map(|v| label_for(v)));

        let request_value = request.as_ref().map(|r| abstract_known(r, &file.labels));
        let request_raw = match &request {
            Some(_) => None,
            None if request_body.is_empty() => None,
            None => {
                let text = String::from_utf8_lossy(request_body).into_owned();
                let lower = text.to_ascii_lowercase();
                Some(if SECRET_FIELD_WORDS.iter().any(|w| lower.contains(w)) {
                    SCRUBBED.to_string()
                } else {
                    text
                })
            }
        };
        let mut headers = Map::new();
        for (k, v) in request_headers {
            let lower = k.to_ascii_lowercase();
            if SKIPPED_HEADERS.contains(&lower.as_str()) {
                continue;
            }
            let value = if is_secret_header(&lower) {
                SCRUBBED.to_string()
            } else {
                v.clone()
            };
            headers.insert(lower, Value::String(value));
        }
        file.steps += 1;
        let step = Step {
            step: file.steps,
            name: step_name(endpoint, request.as_ref()),
            endpoint: endpoint.to_string(),
            headers,
            request: request_value,
            request_raw,
            response: Some(ExpectedResponse {
                status,
                headers: Map::new(),
                body: Some(abstract_known(&response, &file.labels)),
            }),
            forwarded: Vec::new(),
            ignore: Vec::new(),
            extra: Map::new(),
        };
        let mut line = step_value(&step).to_string();
        line.push('\n');
        let written = append(&path, line.as_bytes());
        if state.files.len() >= MAX_OPEN_TAPES {
            state.files.clear();
        }
        state.files.insert(path.clone(), file);
        written.map(|()| path)
    }

    /// State of a tape file not seen since start-up: created with a header, or (after a
    /// restart) its step count and known id labels read back.
    fn open(&self, path: &Path, name: &str) -> Result<FileState, TapeError> {
        let mut state = FileState::default();
        match read_no_follow(path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if !line.trim_start().starts_with("{\"tape\"") {
                        state.steps += 1;
                    }
                    for (_, _, label) in bind::placeholders(line) {
                        state.labels.insert(label.to_string());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let header = TapeHeader {
                    name: name.to_string(),
                    description: format!(
                        "recorded by fast-seller serve --record, started {}",
                        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    ),
                    catalog: self.catalog.clone(),
                    forwarded: false,
                    ..TapeHeader::default()
                };
                let tape = super::format::Tape {
                    path: path.to_path_buf(),
                    header,
                    has_header: true,
                    steps: Vec::new(),
                };
                append(path, tape.to_text().as_bytes())?;
            }
            Err(e) => return Err(TapeError::io(path, e)),
        }
        Ok(state)
    }

    fn collect_ids(
        &self,
        v: &Value,
        path: &JsonPath,
        mentioned: &HashSet<&str>,
        out: &mut Vec<String>,
    ) {
        match v {
            Value::String(s)
                if !s.is_empty()
                    && !mentioned.contains(s.as_str())
                    && self.id_paths.iter().any(|p| p.matches(path)) =>
            {
                out.push(s.clone());
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.collect_ids(item, &path.index(i), mentioned, out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    self.collect_ids(item, &path.key(k), mentioned, out);
                }
            }
            _ => {}
        }
    }
}

/// Strings whose label the tape knows become that placeholder.
fn abstract_known(v: &Value, labels: &HashSet<String>) -> Value {
    match v {
        Value::String(s) if !s.is_empty() => {
            let label = label_for(s);
            if labels.contains(&label) {
                Value::String(bind::placeholder(&label))
            } else {
                v.clone()
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| abstract_known(i, labels)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), abstract_known(v, labels)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The Fast order id an exchange is about, if visible.
fn order_id_of(
    request: Option<&Value>,
    response: &Value,
    fast_id_of: &HashMap<String, String>,
) -> Option<String> {
    let id_at = |v: &Value, pointer: &str| -> Option<String> {
        let found = v.pointer(pointer)?;
        let s = found
            .as_str()
            .or_else(|| found.get("value").and_then(Value::as_str))?;
        (!s.is_empty()).then(|| s.to_string())
    };
    if let Some(r) = request {
        for pointer in ["/order/order/id", "/order/order_id"] {
            if let Some(id) = id_at(r, pointer) {
                return Some(id);
            }
        }
    }
    if let Some(id) = id_at(response, "/order/order/id") {
        return Some(id);
    }
    let r = request?;
    ["/order/external_id", "/order/external_order_id"]
        .iter()
        .filter_map(|p| id_at(r, p))
        .find_map(|seller| fast_id_of.get(&seller).cloned())
}

/// `update: items, coupon`, `read shipping zones`, `create`.
fn step_name(endpoint: &str, request: Option<&Value>) -> String {
    let Some(r) = request else {
        return endpoint.to_string();
    };
    let entity = r
        .get("type")
        .or_else(|| r.get("entity_type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if entity.contains("SHIPPING_ZONES") {
        return format!("{endpoint} shipping zones");
    }
    if endpoint != "update" {
        return endpoint.to_string();
    }
    let Some(order) = r.get("order").and_then(Value::as_object) else {
        return endpoint.to_string();
    };
    let segments: Vec<String> = [
        "items",
        "coupon",
        "bill_to",
        "shipments",
        "shipping_option",
        "status",
        "convert_cart_to_order",
    ]
    .iter()
    .filter(|k| order.contains_key(**k))
    .map(|k| match (*k, order.get(*k).and_then(Value::as_str)) {
        ("status", Some(s)) => format!("status {s}"),
        ("convert_cart_to_order", _) => "convert".to_string(),
        (k, _) => k.to_string(),
    })
    .collect();
    if segments.is_empty() {
        endpoint.to_string()
    } else {
        format!("{endpoint}: {}", segments.join(", "))
    }
}

/// An id made safe as a file name: letters, digits, `-`, `_`, `.`; at most 100 characters.
/// When that changed the id, a hash of the original is appended so that two ids never share
/// a tape (`F/1` and `F_1`).
fn file_safe(id: &str) -> String {
    let safe = sanitize(id);
    if safe == id {
        return safe;
    }
    let hash = label_for(id);
    format!("{safe}-{}", hash.trim_start_matches("ext:"))
}

fn sanitize(id: &str) -> String {
    let mut out: String = id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    now.get(..10).unwrap_or("unknown-day").to_string()
}

/// Opens a tape without following a symbolic link (`O_NOFOLLOW`): a link planted in the
/// record directory fails the open (logged), and nothing is written through it.
fn open_no_follow(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    options.custom_flags(libc::O_NOFOLLOW).open(path)
}

fn read_no_follow(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    open_no_follow(std::fs::OpenOptions::new().read(true), path)?.read_to_string(&mut text)?;
    Ok(text)
}

fn append(path: &Path, bytes: &[u8]) -> Result<(), TapeError> {
    let mut f = open_no_follow(std::fs::OpenOptions::new().create(true).append(true), path)
        .map_err(|e| TapeError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TapeError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_file_names() {
        assert_eq!(file_safe("F-1"), "F-1");
        assert!(file_safe("F-1/../x y").starts_with("F-1_.._x_y-"));
        assert_ne!(file_safe("F/1"), file_safe("F_1"));
        assert!(file_safe("..").starts_with("_..-"));
        let r = serde_json::json!({"order": {"items": [], "coupon": "X", "status": "ORDER_STATUS_BOOKED"}});
        assert_eq!(
            step_name("update", Some(&r)),
            "update: items, coupon, status ORDER_STATUS_BOOKED"
        );
        assert!(label_for("abc").starts_with("ext:"));
        assert_eq!(label_for("abc"), label_for("abc"));
    }

    #[test]
    fn scrubs_secret_fields_and_headers() {
        let v = serde_json::json!({"payment": {"token": "tok_1", "expire_on": "x"},
                                   "a": [{"client_secret": "s", "Password": "p"}]});
        assert_eq!(
            scrub(&v),
            serde_json::json!({"payment": {"token": SCRUBBED, "expire_on": "x"},
                               "a": [{"client_secret": SCRUBBED, "Password": SCRUBBED}]})
        );
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("webhook-signature"));
        assert!(is_secret_header("X-Fast-App-Auth"));
        assert!(!is_secret_header("webhook-id"));
        assert!(!is_secret_header("content-type"));
    }
}
