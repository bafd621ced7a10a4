//! `fast-seller replay`: sends each step of each tape to a seller and compares the answers
//! (and the events forwarded to the commerce backend) with the recorded ones.
//!
//! Without a target every tape gets its own fresh in-process server (`Application::build` on
//! a temporary directory, the tape's catalog, `--auth none`, 127.0.0.1:0), so tapes never see
//! each other's orders. With `--update` the tapes are rewritten with what the server answered
//! (placeholders kept, new seller ids turned into new placeholders, ignored fields kept as
//! they were).

use super::bind::{self, Bindings, SELLER_ID_PATHS};
use super::compare::{self, IgnoreRules, JsonPath, Mismatch, Pattern};
use super::format::{ExpectedResponse, Step, Tape};
use super::{endpoint_url, junit, post, Answer, Signing, TapeError};
use crate::config::Settings;
use crate::startup::Application;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Request headers never replayed from a tape (the client sets its own).
const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "keep-alive",
    "expect",
];

/// Authentication headers: replaced by fresh ones when the replay signs its requests.
const AUTH_HEADERS: &[&str] = &[
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// At most this many differences are printed per step.
const MAX_LINES_PER_STEP: usize = 40;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Rewrite the tapes with the answers received (after a deliberate change).
    pub update: bool,
    /// Also write a JUnit XML report here (one test suite per tape, one test case per step).
    pub junit: Option<PathBuf>,
    /// How requests are signed (the target's `--auth`); the in-process server needs none.
    pub signing: Signing,
    /// With a target: its `forwarded.jsonl` (file backend), to compare forwarded events.
    /// Without it, forwarded events are not compared against a target.
    pub forwarded_file: Option<PathBuf>,
    /// How long to wait after each step for the outbox to deliver (polled on `/readyz`).
    pub outbox_wait: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            update: false,
            junit: None,
            signing: Signing::None,
            forwarded_file: None,
            outbox_wait: Duration::from_secs(5),
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub number: u64,
    /// `step 3 (update shipping)`.
    pub label: String,
    pub mismatches: Vec<Mismatch>,
    /// The step could not be carried out (request failed, placeholder not bound…).
    pub error: Option<String>,
    pub duration: Duration,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

/// The outcome of one tape.
#[derive(Debug, Clone)]
pub struct TapeResult {
    pub path: PathBuf,
    pub name: String,
    pub steps: Vec<StepResult>,
    /// The tape could not be run at all (unreadable, bad ignore pattern, server start…).
    pub error: Option<String>,
    pub duration: Duration,
    /// Rewritten by `--update`.
    pub updated: bool,
    /// Whether forwarded events were compared.
    pub forwarded_checked: bool,
}

impl TapeResult {
    pub fn differences(&self) -> usize {
        self.steps.iter().map(|s| s.mismatches.len()).sum()
    }

    fn has_errors(&self) -> bool {
        self.error.is_some() || self.steps.iter().any(|s| s.error.is_some())
    }

    pub fn passed(&self) -> bool {
        !self.has_errors() && self.differences() == 0
    }
}

/// What [`replay`] found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// `http://…` or `in-process`.
    pub target: String,
    pub update: bool,
    pub tapes: Vec<TapeResult>,
}

impl ReplayReport {
    /// True when every tape ran and matched. With `--update`, differences were written into
    /// the tapes, so only tapes that could not run (or steps that failed to send) count.
    pub fn passed(&self) -> bool {
        self.tapes
            .iter()
            .all(|t| !t.has_errors() && (self.update || t.differences() == 0))
    }

    /// The human report: one line per tape, and under a failing tape one line per
    /// difference, `step 3 (update shipping): $.order.order.total_amount expected "94.47"
    /// got "94.46"`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "replay against {}{}\n",
            self.target,
            if self.update { " (--update)" } else { "" }
        );
        for t in &self.tapes {
            let verdict = if t.has_errors() {
                "FAIL"
            } else if t.updated {
                "UPDATED"
            } else if t.passed() {
                "PASS"
            } else {
                "FAIL"
            };
            out.push_str(&format!(
                "{verdict} {} ({} steps, {:.1} s{}{})\n",
                t.path.display(),
                t.steps.len(),
                t.duration.as_secs_f64(),
                if t.forwarded_checked {
                    ""
                } else {
                    ", forwarded events not checked"
                },
                if t.updated { ", rewritten" } else { "" }
            ));
            if let Some(e) = &t.error {
                out.push_str(&format!("  {e}\n"));
            }
            for s in &t.steps {
                if let Some(e) = &s.error {
                    out.push_str(&format!("  {}: {e}\n", s.label));
                }
                for m in s.mismatches.iter().take(MAX_LINES_PER_STEP) {
                    out.push_str(&format!("  {}: {m}\n", s.label));
                }
                if s.mismatches.len() > MAX_LINES_PER_STEP {
                    out.push_str(&format!(
                        "  {}: … and {} more differences\n",
                        s.label,
                        s.mismatches.len() - MAX_LINES_PER_STEP
                    ));
                }
            }
        }
        let failed = self.tapes.iter().filter(|t| !t.passed()).count();
        let diffs: usize = self.tapes.iter().map(TapeResult::differences).sum();
        let rewritten = self.tapes.iter().filter(|t| t.updated).count();
        out.push_str(&format!(
            "{} tapes: {} passed, {} failed ({} differences){}\n",
            self.tapes.len(),
            self.tapes.len() - failed,
            failed,
            diffs,
            if self.update {
                format!(", {rewritten} rewritten")
            } else {
                String::new()
            }
        ));
        out
    }
}

/// Replays the tapes at `paths` (files, or directories searched for `*.jsonl`) against
/// `target` (a base URL such as `http://127.0.0.1:8080`), or, when `None`, against a fresh
/// in-process server per tape. Differences are reported, not returned as errors; `Err` means
/// nothing could be replayed (no tapes, the JUnit file cannot be written).
pub async fn replay(
    paths: &[PathBuf],
    target: Option<&str>,
    options: ReplayOptions,
) -> Result<ReplayReport, TapeError> {
    let files = super::format::collect(paths)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| TapeError::Http(e.to_string()))?;
    let mut report = ReplayReport {
        target: target.map_or_else(|| "in-process server".to_string(), str::to_string),
        update: options.update,
        tapes: Vec::new(),
    };
    for file in files {
        let started = Instant::now();
        let mut result = match Tape::load(&file) {
            Ok(mut tape) => run_tape_somewhere(&mut tape, target, &client, &options).await,
            Err(e) => failed_tape(&file, e.to_string()),
        };
        result.duration = started.elapsed();
        report.tapes.push(result);
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, junit::replay_xml(&report)).map_err(|e| TapeError::io(path, e))?;
    }
    Ok(report)
}

fn failed_tape(path: &Path, error: String) -> TapeResult {
    TapeResult {
        path: path.to_path_buf(),
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        steps: Vec::new(),
        error: Some(error),
        duration: Duration::ZERO,
        updated: false,
        forwarded_checked: false,
    }
}

async fn run_tape_somewhere(
    tape: &mut Tape,
    target: Option<&str>,
    client: &reqwest::Client,
    options: &ReplayOptions,
) -> TapeResult {
    match target {
        Some(base) => {
            let forwarded = options.forwarded_file.clone();
            run_tape(tape, base, forwarded, client, options).await
        }
        None => {
            let catalog = match catalog_for(tape) {
                Ok(c) => c,
                Err(e) => return failed_tape(&tape.path, e),
            };
            let server = match LocalServer::start(catalog).await {
                Ok(s) => s,
                Err(e) => return failed_tape(&tape.path, e.to_string()),
            };
            let forwarded = Some(server.forwarded_file());
            let mut options = options.clone();
            options.signing = Signing::None;
            let result = run_tape(tape, &server.base, forwarded, client, &options).await;
            server.stop().await;
            result
        }
    }
}

/// The catalog of the in-process server: `demo` / none = bundled, else a path relative to
/// the tape's directory.
fn catalog_for(tape: &Tape) -> Result<Option<PathBuf>, String> {
    match tape.header.catalog.as_deref() {
        None | Some("") | Some("demo") => Ok(None),
        Some(rel) => {
            let dir = tape.path.parent().unwrap_or_else(|| Path::new("."));
            let path = dir.join(rel);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(format!("catalog {} not found", path.display()))
            }
        }
    }
}

/// A fresh server for one tape, on a temporary directory removed when it stops.
pub(crate) struct LocalServer {
    pub base: String,
    dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<()>,
}

impl LocalServer {
    pub async fn start(catalog: Option<PathBuf>) -> Result<LocalServer, TapeError> {
        let dir = std::env::temp_dir().join(format!(
            "fast-seller-replay-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| TapeError::io(&dir, e))?;
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut settings = Settings::new(listen, dir.clone());
        settings.catalog = catalog;
        settings.workers = 2;
        settings.cache_capacity = 16 * 1024 * 1024;
        settings.outbox.poll_interval = Duration::from_millis(50);
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(TapeError::Server(e.to_string()));
            }
        };
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped().await {
                tracing::warn!(error = %e, "in-process replay server stopped with an error");
            }
        });
        Ok(LocalServer {
            base,
            dir,
            handle,
            task,
        })
    }

    pub fn forwarded_file(&self) -> PathBuf {
        self.dir.join("forwarded.jsonl")
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The events of a file backend's `forwarded.jsonl` not yet seen (deduplicated by `id`).
struct ForwardedSource {
    path: PathBuf,
    seen: HashSet<String>,
}

impl ForwardedSource {
    /// The new events about orders this tape has named (its Fast order ids and seller ids);
    /// events of other orders (other traffic on a shared target) are skipped.
    fn take_mine(&mut self, mentioned: &HashSet<String>, bindings: &Bindings) -> Vec<Value> {
        self.take_new()
            .into_iter()
            .filter(|e| {
                ["order_id", "external_id"].iter().any(|k| {
                    e.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|id| mentioned.contains(id) || bindings.label_of(id).is_some())
                })
            })
            .collect()
    }

    fn take_new(&mut self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let id = event
                .get("id")
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .unwrap_or_else(|| line.to_string());
            if self.seen.insert(id) {
                out.push(event);
            }
        }
        out
    }
}

/// Waits until the server's outbox has nothing pending (`GET /readyz` → `outbox.pending`),
/// at most `limit`. Servers without that field are not waited for.
async fn wait_for_outbox(client: &reqwest::Client, base: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    loop {
        let pending = match client.get(&url).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v.pointer("/outbox/pending").and_then(Value::as_u64)),
            Err(_) => None,
        };
        match pending {
            Some(0) | None => return,
            Some(_) if Instant::now() >= deadline => return,
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// What a step sends: body bytes, headers, and the body as JSON when it is JSON.
type Outgoing = (Vec<u8>, Vec<(String, String)>, Option<Value>);

/// What a step sends, placeholders substituted.
fn build_request(step: &Step, bindings: &Bindings, signing: &Signing) -> Result<Outgoing, String> {
    let unbound = |p: String| format!("the request uses {p} before any answer bound it");
    let (body, sent) = match (&step.request, &step.request_raw) {
        (Some(v), _) => {
            let v = bindings.substitute(v).map_err(unbound)?;
            (v.to_string().into_bytes(), Some(v))
        }
        (None, Some(raw)) => (
            bindings.substitute_str(raw).map_err(unbound)?.into_bytes(),
            None,
        ),
        (None, None) => (Vec::new(), None),
    };
    let mut headers = Vec::new();
    let mut has_content_type = false;
    for (name, value) in &step.headers {
        let lower = name.to_ascii_lowercase();
        let Some(value) = value.as_str() else {
            continue;
        };
        if TRANSPORT_HEADERS.contains(&lower.as_str())
            || value == super::record::SCRUBBED
            || (!matches!(signing, Signing::None) && AUTH_HEADERS.contains(&lower.as_str()))
        {
            continue;
        }
        has_content_type |= lower == "content-type";
        headers.push((lower, bindings.substitute_str(value).map_err(unbound)?));
    }
    if !has_content_type {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok((body, headers, sent))
}

/// Compares one answer with a step's expectations.
fn compare_answer(
    expected: &ExpectedResponse,
    answer: &Answer,
    rules: &IgnoreRules,
    bindings: &mut Bindings,
    out: &mut Vec<Mismatch>,
) {
    let status_path = JsonPath::root("status");
    if expected.status != answer.status && !rules.ignored(&status_path) {
        out.push(Mismatch {
            path: "status".into(),
            expected: Some(Value::from(expected.status)),
            got: Some(Value::from(answer.status)),
            note: None,
        });
    }
    for (name, want) in &expected.headers {
        let path = JsonPath::root("headers").key(&name.to_ascii_lowercase());
        if rules.ignored(&path) {
            continue;
        }
        let got = answer.header(name).map(|v| Value::String(v.to_string()));
        match (want, &got) {
            (Value::Null, None) => {}
            (Value::Null, Some(_)) => out.push(Mismatch {
                path: path.to_string(),
                expected: None,
                got,
                note: Some("this header must be absent".into()),
            }),
            (want, got) => compare::diff(want, got.as_ref(), &path, rules, bindings, out),
        }
    }
    if let Some(body) = &expected.body {
        let actual = answer.json();
        compare::diff(
            body,
            Some(&actual),
            &JsonPath::root("$"),
            rules,
            bindings,
            out,
        );
    }
}

/// Runs one tape against `base`.
async fn run_tape(
    tape: &mut Tape,
    base: &str,
    forwarded_file: Option<PathBuf>,
    client: &reqwest::Client,
    options: &ReplayOptions,
) -> TapeResult {
    let mut result = failed_tape(&tape.path, String::new());
    result.error = None;
    result.name = tape.name();
    let rules = match IgnoreRules::new(&tape.header.check, &tape.header.ignore) {
        Ok(r) => r,
        Err(e) => return failed_tape(&tape.path, e),
    };
    let id_paths: Vec<Pattern> = SELLER_ID_PATHS
        .iter()
        .filter_map(|p| Pattern::parse(p).ok())
        .collect();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut bindings = Bindings::new(token.get(..10).unwrap_or(&token));
    // New placeholders written by --update continue after those the answers already use.
    for step in &tape.steps {
        let mut labels = Vec::new();
        if let Some(b) = step.response.as_ref().and_then(|r| r.body.as_ref()) {
            bind::labels_in(b, &mut labels);
        }
        step.forwarded
            .iter()
            .for_each(|e| bind::labels_in(e, &mut labels));
        labels.iter().for_each(|l| bindings.note_label(l));
    }
    let mut source = forwarded_file
        .filter(|_| tape.header.forwarded)
        .map(|path| ForwardedSource {
            path,
            seen: HashSet::new(),
        });
    result.forwarded_checked = source.is_some();
    if let Some(src) = source.as_mut() {
        // Events already in the file (or still being delivered) belong to someone else.
        wait_for_outbox(client, base, options.outbox_wait).await;
        src.take_new();
    }
    let mut mentioned: HashSet<String> = HashSet::new();
    let mut changed = false;

    let step_count = tape.steps.len();
    for index in 0..step_count {
        let Some(step) = tape.steps.get(index).cloned() else {
            break;
        };
        let started = Instant::now();
        let mut sr = StepResult {
            number: step.step,
            label: step.label(),
            mismatches: Vec::new(),
            error: None,
            duration: Duration::ZERO,
        };
        let step_rules = match rules.with(&step.ignore) {
            Ok(r) => r,
            Err(e) => {
                sr.error = Some(e);
                result.steps.push(sr);
                continue;
            }
        };
        let (body, headers, sent) = match build_request(&step, &bindings, &options.signing) {
            Ok(x) => x,
            Err(e) => {
                sr.error = Some(e);
                result.steps.push(sr);
                continue;
            }
        };
        if let Some(v) = &sent {
            let mut strings = Vec::new();
            bind::strings_in(v, &mut strings);
            mentioned.extend(strings.into_iter().map(str::to_string));
        } else {
            mentioned.insert(String::from_utf8_lossy(&body).into_owned());
        }
        let url = endpoint_url(base, &step.endpoint);
        let answer = match post(client, &url, &headers, body, &options.signing).await {
            Ok(a) => a,
            Err(e) => {
                sr.error = Some(e.to_string());
                sr.duration = started.elapsed();
                result.steps.push(sr);
                continue;
            }
        };
        if let Some(expected) = &step.response {
            compare_answer(
                expected,
                &answer,
                &step_rules,
                &mut bindings,
                &mut sr.mismatches,
            );
        }
        let mut events = None;
        if let Some(src) = source.as_mut() {
            wait_for_outbox(client, base, options.outbox_wait).await;
            let got = Value::Array(src.take_mine(&mentioned, &bindings));
            let want = Value::Array(step.forwarded.clone());
            compare::diff(
                &want,
                Some(&got),
                &JsonPath::root("forwarded"),
                &step_rules,
                &mut bindings,
                &mut sr.mismatches,
            );
            events = Some(got);
        }
        if options.update {
            let updated = updated_step(
                &step,
                &answer,
                events.as_ref(),
                &step_rules,
                &id_paths,
                &mentioned,
                &mut bindings,
            );
            if updated != step {
                changed = true;
                if let Some(slot) = tape.steps.get_mut(index) {
                    *slot = updated;
                }
            }
        }
        sr.duration = started.elapsed();
        result.steps.push(sr);
    }
    if options.update && changed && !result.has_errors() {
        match tape.save() {
            Ok(()) => result.updated = true,
            Err(e) => result.error = Some(e.to_string()),
        }
    }
    result
}

/// The step rewritten with what the server answered.
fn updated_step(
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
