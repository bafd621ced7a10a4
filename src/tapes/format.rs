//! The tape file: JSON Lines, an optional header line, then one line per interaction.
//!
//! ```text
//! {"tape": {"name": "…", "description": "…", "catalog": "demo", "ignore": ["$.…"]}}
//! {"step": 1, "name": "create the cart", "endpoint": "create", "request": {…},
//!  "response": {"status": 200, "body": {…}}, "forwarded": [{…}]}
//! ```
//!
//! Lines are parsed by hand (not with `#[serde(flatten)]`, which loses number text under
//! `arbitrary_precision`), unknown keys are kept and written back, and blank lines are skipped.
//! See `fixtures/README.md` for every field.

use super::TapeError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The optional first line, `{"tape": {...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TapeHeader {
    pub name: String,
    pub description: String,
    /// `"demo"` (the bundled catalog, also the default) or a catalog file path relative to
    /// the tape's directory: the catalog of the in-process server.
    pub catalog: Option<String>,
    /// Extra paths never compared in this tape (see [`super::compare::IgnoreRules`]).
    pub ignore: Vec<String>,
    /// Entries of the central volatile list this tape compares after all.
    pub check: Vec<String>,
    /// Whether the events forwarded to the commerce backend are compared (default true;
    /// tapes recorded by `serve --record` say false: the recorder cannot see them).
    pub forwarded: bool,
    /// Keys this version does not know, written back unchanged.
    pub extra: Map<String, Value>,
}

impl Default for TapeHeader {
    fn default() -> Self {
        TapeHeader {
            name: String::new(),
            description: String::new(),
            catalog: None,
            ignore: Vec::new(),
            check: Vec::new(),
            forwarded: true,
            extra: Map::new(),
        }
    }
}

/// The expected answer of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedResponse {
    pub status: u16,
    /// Response headers to check (names case-insensitive); `null` means "must be absent".
    pub headers: Map<String, Value>,
    /// `None`: the body is not checked.
    pub body: Option<Value>,
}

/// One interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step number shown in reports (1-based; the line order is what counts).
    pub step: u64,
    pub name: String,
    /// `create`, `read`, `update`, `delete`, or a path starting with `/`.
    pub endpoint: String,
    /// Request headers to send besides `content-type: application/json` (which is the
    /// default). Recorded tapes carry the scrubbed headers; values `"[scrubbed]"` are not sent.
    pub headers: Map<String, Value>,
    /// The request body as JSON (placeholders substituted before sending).
    pub request: Option<Value>,
    /// Or the exact request text (malformed-JSON cases); placeholders substituted too.
    pub request_raw: Option<String>,
    /// `None`: sent but not checked (a new step before `--update` fills it in).
    pub response: Option<ExpectedResponse>,
    /// Events the server must forward to the commerce backend because of this step.
    pub forwarded: Vec<Value>,
    /// Paths ignored for this step only.
    pub ignore: Vec<String>,
    pub extra: Map<String, Value>,
}

impl Step {
    /// `step 3 (update shipping)`.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("step {}", self.step)
        } else {
            format!("step {} ({})", self.step, self.name)
        }
    }
}

/// A whole tape file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tape {
    pub path: PathBuf,
    pub header: TapeHeader,
    /// Whether the file has a header line (written back only if it had one or gained one).
    pub has_header: bool,
    pub steps: Vec<Step>,
}

impl Tape {
    /// The tape's name: the header's, else the file stem.
    pub fn name(&self) -> String {
        if !self.header.name.is_empty() {
            return self.header.name.clone();
        }
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn load(path: &Path) -> Result<Tape, TapeError> {
        let text = std::fs::read_to_string(path).map_err(|e| TapeError::io(path, e))?;
        Tape::parse(path, &text)
    }

    /// Parses tape text; errors name the file and line.
    pub fn parse(path: &Path, text: &str) -> Result<Tape, TapeError> {
        let err = |line: usize, message: String| TapeError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut tape = Tape {
            path: path.to_path_buf(),
            header: TapeHeader::default(),
            has_header: false,
            steps: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .map_err(|e| err(line_no, format!("not a JSON line: {e}")))?;
            let Value::Object(mut object) = value else {
                return Err(err(line_no, "each line must be a JSON object".into()));
            };
            if let Some(header) = object.remove("tape") {
                if tape.has_header || !tape.steps.is_empty() {
                    return Err(err(
                        line_no,
                        "the {\"tape\": …} header must be the first line".into(),
                    ));
                }
                if !object.is_empty() {
                    return Err(err(
                        line_no,
                        "the header line holds only {\"tape\": {…}}".into(),
                    ));
                }
                tape.header = parse_header(header).map_err(|m| err(line_no, m))?;
                tape.has_header = true;
                continue;
            }
            let number = u64::try_from(tape.steps.len() + 1).unwrap_or(u64::MAX);
            let step = parse_step(object, number).map_err(|m| err(line_no, m))?;
            tape.steps.push(step);
        }
        Ok(tape)
    }

    /// The tape as text: one line per header/step, each ending in a newline.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.has_header {
            let mut line = Map::new();
            line.insert("tape".into(), header_value(&self.header));
            out.push_str(&Value::Object(line).to_string());
            out.push('\n');
        }
        for step in &self.steps {
            out.push_str(&step_value(step).to_string());
            out.push('\n');
        }
        out
    }

    /// Writes the tape (to a temporary file beside it, then renamed over it).
    pub fn save(&self) -> Result<(), TapeError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, self.to_text()).map_err(|e| TapeError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| TapeError::io(&self.path, e))
    }
}

/// The tapes named by `paths`: files as given, directories searched recursively for
/// `*.jsonl` (sorted by path, so the order is stable).
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, TapeError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| TapeError::io(path, e))?;
        if meta.is_dir() {
            let before = out.len();
            walk(path, &mut out)?;
            if out.len() == before {
                return Err(TapeError::NoTapes(path.clone()));
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TapeError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TapeError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

fn take_string(object: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}` must be a string, got {other}")),
    }
}

fn take_strings(object: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("`{key}` must list strings, got {other}")),
            })
            .collect(),
        Some(other) => Err(format!("`{key}` must be a list of strings, got {other}")),
    }
}

fn take_object(object: &mut Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(format!("`{key}` must be an object, got {other}")),
    }
}

fn parse_header(value: Value) -> Result<TapeHeader, String> {
    let Value::Object(mut object) = value else {
        return Err("`tape` must be an object".into());
    };
    let forwarded = match object.remove("forwarded") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(format!("`tape.forwarded` must be a boolean, got {other}")),
    };
    Ok(TapeHeader {
        name: take_string(&mut object, "name")?.unwrap_or_default(),
        description: take_string(&mut object, "description")?.unwrap_or_default(),
        catalog: take_string(&mut object, "catalog")?,
        ignore: take_strings(&mut object, "ignore")?,
        check: take_strings(&mut object, "check")?,
        forwarded,
        extra: object,
    })
}

fn parse_step(mut object: Map<String, Value>, default_number: u64) -> Result<Step, String> {
    let step = match object.remove("step") {
        None | Some(Value::Null) => default_number,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("`step` must be a positive integer, got {v}"))?,
    };
    let endpoint = take_string(&mut object, "endpoint")?
        .filter(|e| !e.is_empty())
        .ok_or("`endpoint` is required (create, read, update, delete)")?;
    let response = match object.remove("response") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut r)) => {
            let status = r
                .remove("status")
                .and_then(|s| s.as_u64())
                .and_then(|s| u16::try_from(s).ok())
                .ok_or("`response.status` must be an HTTP status code")?;
            let headers = take_object(&mut r, "headers")?;
            let body = r.remove("body");
            if let Some(key) = r.keys().next() {
                return Err(format!("`response.{key}` is not a response field"));
            }
            Some(ExpectedResponse {
                status,
                headers,
                body,
            })
        }
        Some(other) => return Err(format!("`response` must be an object, got {other}")),
    };
    let forwarded = match object.remove("forwarded") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(events)) => events,
        Some(other) => return Err(format!("`forwarded` must be a list, got {other}")),
    };
    let request = object.remove("request");
    let request_raw = take_string(&mut object, "request_raw")?;
    if request.is_some() && request_raw.is_some() {
        return Err("give `request` or `request_raw`, not both".into());
    }
    Ok(Step {
        step,
        name: take_string(&mut object, "name")?.unwrap_or_default(),
        endpoint,
        headers: take_object(&mut object, "headers")?,
        request,
        request_raw,
        response,
        forwarded,
        ignore: take_strings(&mut object, "ignore")?,
        extra: object,
    })
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

fn header_value(h: &TapeHeader) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(h.name.clone()));
    if !h.description.is_empty() {
        m.insert("description".into(), Value::String(h.description.clone()));
    }
    if let Some(c) = &h.catalog {
        m.insert("catalog".into(), Value::String(c.clone()));
    }
    if !h.ignore.is_empty() {
        m.insert("ignore".into(), strings(&h.ignore));
    }
    if !h.check.is_empty() {
        m.insert("check".into(), strings(&h.check));
    }
    if !h.forwarded {
        m.insert("forwarded".into(), Value::Bool(false));
    }
    m.extend(h.extra.clone());
    Value::Object(m)
}

/// A step as its JSON line (fixed key order: step, name, endpoint, headers, request,
/// response, forwarded, ignore, then unknown keys).
pub fn step_value(s: &Step) -> Value {
    let mut m = Map::new();
    m.insert("step".into(), Value::from(s.step));
    if !s.name.is_empty() {
        m.insert("name".into(), Value::String(s.name.clone()));
    }
    m.insert("endpoint".into(), Value::String(s.endpoint.clone()));
    if !s.headers.is_empty() {
        m.insert("headers".into(), Value::Object(s.headers.clone()));
    }
    if let Some(r) = &s.request {
        m.insert("request".into(), r.clone());
    }
    if let Some(r) = &s.request_raw {
        m.insert("request_raw".into(), Value::String(r.clone()));
    }
    if let Some(r) = &s.response {
        let mut resp = Map::new();
        resp.insert("status".into(), Value::from(r.status));
        if !r.headers.is_empty() {
            resp.insert("headers".into(), Value::Object(r.headers.clone()));
        }
        if let Some(b) = &r.body {
            resp.insert("body".into(), b.clone());
        }
        m.insert("response".into(), Value::Object(resp));
    }
    if !s.forwarded.is_empty() {
        m.insert("forwarded".into(), Value::Array(s.forwarded.clone()));
    }
    if !s.ignore.is_empty() {
        m.insert("ignore".into(), strings(&s.ignore));
    }
    m.extend(s.extra.clone());
    Value::Object(m)
}
