//! `fast-seller replay`: sends each step of each tape to a seller and compares the answers
//! (and the events forwarded to the commerce backend) with the recorded ones.
//!
//! The seller is a [`Target`]: one running server at a base URL, or a fresh server per tape
//! from a [`ServerFactory`] (the command line's in-process server, on a temporary directory
//! with the tape's catalog, so tapes never see each other's orders). With `--update` the tapes
//! are rewritten with what the server answered (placeholders kept, new seller ids turned into
//! new placeholders, ignored fields kept as they were).

mod report;
mod update;

pub use report::{ReplayReport, StepResult, TapeResult};

use super::bind::{self, Bindings, SELLER_ID_PATHS};
use super::compare::{self, IgnoreRules, JsonPath, Mismatch, Pattern};
use super::format::{ExpectedResponse, Step, Tape};
use super::{endpoint_url, post, Answer, Signing, TapeError};
use serde_json::Value;
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

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Rewrite the tapes with the answers received (after a deliberate change).
    pub update: bool,
    /// Also write a JUnit XML report here (one test suite per tape, one test case per step).
    pub junit: Option<PathBuf>,
    /// How requests are signed (the target's `--auth`).
    pub signing: Signing,
    /// With a [`Target::Url`]: its `forwarded.jsonl` (file backend), to compare forwarded
    /// events. Without it, forwarded events are not compared against such a target.
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

/// The seller the tapes are replayed against.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// A running server, shared by all tapes (its base URL, e.g. `http://127.0.0.1:8080`).
    Url(&'a str),
    /// A fresh server per tape.
    PerTape(&'a dyn ServerFactory),
}

/// Starts a fresh seller for one tape.
#[async_trait::async_trait]
pub trait ServerFactory: Send + Sync {
    /// How the report names these servers.
    fn name(&self) -> String;

    /// A server with this catalog (`None`: the bundled demo catalog).
    async fn start(&self, catalog: Option<PathBuf>) -> Result<Box<dyn TapeServer>, TapeError>;
}

/// A seller started for one tape.
#[async_trait::async_trait]
pub trait TapeServer: Send {
    /// Its base URL.
    fn base(&self) -> &str;

    /// Its file backend's `forwarded.jsonl`.
    fn forwarded_file(&self) -> PathBuf;

    async fn stop(self: Box<Self>);
}

/// Replays the tapes at `paths` (files, or directories searched for `*.jsonl`) against
/// `target`. Differences are reported, not returned as errors; `Err` means nothing could be
/// replayed (no tapes, the JUnit file cannot be written).
pub async fn replay(
    paths: &[PathBuf],
    target: Target<'_>,
    options: ReplayOptions,
) -> Result<ReplayReport, TapeError> {
    let files = super::format::collect(paths)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| TapeError::Http(e.to_string()))?;
    let mut report = ReplayReport {
        target: match target {
            Target::Url(base) => base.to_string(),
            Target::PerTape(factory) => factory.name(),
        },
        update: options.update,
        tapes: Vec::new(),
    };
    for file in files {
        let started = Instant::now();
        let mut result = match Tape::load(&file) {
            Ok(mut tape) => run_on(&mut tape, target, &client, &options).await,
            Err(e) => TapeResult::failed(&file, e.to_string()),
        };
        result.duration = started.elapsed();
        report.tapes.push(result);
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report.junit_xml()).map_err(|e| TapeError::io(path, e))?;
    }
    Ok(report)
}

/// Runs one tape on `target`, starting (and afterwards stopping) its own server if need be.
async fn run_on(
    tape: &mut Tape,
    target: Target<'_>,
    client: &reqwest::Client,
    options: &ReplayOptions,
) -> TapeResult {
    let factory = match target {
        Target::Url(base) => {
            let forwarded = options.forwarded_file.clone();
            return run_tape(tape, base, forwarded, client, options).await;
        }
        Target::PerTape(factory) => factory,
    };
    let catalog = match catalog_for(tape) {
        Ok(c) => c,
        Err(e) => return TapeResult::failed(&tape.path, e),
    };
    let server = match factory.start(catalog).await {
        Ok(s) => s,
        Err(e) => return TapeResult::failed(&tape.path, e.to_string()),
    };
    let forwarded = Some(server.forwarded_file());
    let result = run_tape(tape, server.base(), forwarded, client, options).await;
    server.stop().await;
    result
}

/// The catalog of a tape's own server: `demo` / none = bundled, else a path relative to the
/// tape's directory.
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
    let rules = match IgnoreRules::new(&tape.header.check, &tape.header.ignore) {
        Ok(r) => r,
        Err(e) => return TapeResult::failed(&tape.path, e),
    };
    let mut result = TapeResult::new(&tape.path, tape.name());
    let mut run = Run {
        base,
        client,
        options,
        rules,
        id_paths: SELLER_ID_PATHS
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect(),
        bindings: bindings_for(tape),
        mentioned: HashSet::new(),
        forwarded: None,
    };
    run.watch_forwarded(forwarded_file.filter(|_| tape.header.forwarded))
        .await;
    result.forwarded_checked = run.forwarded.is_some();
    let mut changed = false;
    for slot in &mut tape.steps {
        let (step_result, updated) = run.step(slot).await;
        result.steps.push(step_result);
        if let Some(updated) = updated.filter(|u| u != slot) {
            *slot = updated;
            changed = true;
        }
    }
    if options.update && changed && !result.has_errors() {
        match tape.save() {
            Ok(()) => result.updated = true,
            Err(e) => result.error = Some(e.to_string()),
        }
    }
    result
}

/// Fresh bindings for one run of `tape`. New placeholders written by `--update` continue
/// after those its answers already use.
fn bindings_for(tape: &Tape) -> Bindings {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let token = format!(
        "{}{}",
        crate::tapes::TEST_ORDER_MARK,
        token.get(..10).unwrap_or(&token)
    );
    let mut bindings = Bindings::new(&token);
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
    bindings
}

/// One tape's run against one server: what its steps have bound and sent so far.
struct Run<'a> {
    base: &'a str,
    client: &'a reqwest::Client,
    options: &'a ReplayOptions,
    rules: IgnoreRules,
    /// Where answers carry ids the seller generates (turned into placeholders by `--update`).
    id_paths: Vec<Pattern>,
    bindings: Bindings,
    /// Every string the requests sent: ids that came from Fast, not from the seller.
    mentioned: HashSet<String>,
    /// The server's forwarded events, when they are compared.
    forwarded: Option<ForwardedSource>,
}

impl Run<'_> {
    /// Starts comparing the events in `path`. Those already there (or still being
    /// delivered) belong to someone else.
    async fn watch_forwarded(&mut self, path: Option<PathBuf>) {
        let Some(path) = path else {
            return;
        };
        let mut source = ForwardedSource {
            path,
            seen: HashSet::new(),
        };
        wait_for_outbox(self.client, self.base, self.options.outbox_wait).await;
        source.take_new();
        self.forwarded = Some(source);
    }

    /// Carries out one step; with `--update`, also the step rewritten with the answer.
    async fn step(&mut self, step: &Step) -> (StepResult, Option<Step>) {
        let started = Instant::now();
        let mut mismatches = Vec::new();
        let (error, updated) = match self.exchange(step, &mut mismatches).await {
            Ok(updated) => (None, updated),
            Err(e) => (Some(e), None),
        };
        let result = StepResult {
            number: step.step,
            label: step.label(),
            mismatches,
            error,
            duration: started.elapsed(),
        };
        (result, updated)
    }

    /// Sends the step's request and compares the answer and the forwarded events with the
    /// step's. `Err`: the step could not be carried out.
    async fn exchange(
        &mut self,
        step: &Step,
        mismatches: &mut Vec<Mismatch>,
    ) -> Result<Option<Step>, String> {
        let rules = self.rules.with(&step.ignore)?;
        let (body, headers, sent) = build_request(step, &self.bindings, &self.options.signing)?;
        self.mention(&body, sent.as_ref());
        let url = endpoint_url(self.base, &step.endpoint);
        let answer = post(self.client, &url, &headers, body, &self.options.signing)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(expected) = &step.response {
            compare_answer(expected, &answer, &rules, &mut self.bindings, mismatches);
        }
        let events = self.compare_forwarded(step, &rules, mismatches).await;
        Ok(self.options.update.then(|| {
            update::updated_step(
                step,
                &answer,
                events.as_ref(),
                &rules,
                &self.id_paths,
                &self.mentioned,
                &mut self.bindings,
            )
        }))
    }

    /// Notes the strings a request sends (the whole body when it is not JSON).
    fn mention(&mut self, body: &[u8], sent: Option<&Value>) {
        match sent {
            Some(v) => {
                let mut strings = Vec::new();
                bind::strings_in(v, &mut strings);
                self.mentioned
                    .extend(strings.into_iter().map(str::to_string));
            }
            None => {
                self.mentioned
                    .insert(String::from_utf8_lossy(body).into_owned());
            }
        }
    }

    /// Compares the events forwarded since the previous step with the step's, once the
    /// outbox has delivered; returns them (`None` when events are not compared).
    async fn compare_forwarded(
        &mut self,
        step: &Step,
        rules: &IgnoreRules,
        mismatches: &mut Vec<Mismatch>,
    ) -> Option<Value> {
        let source = self.forwarded.as_mut()?;
        wait_for_outbox(self.client, self.base, self.options.outbox_wait).await;
        let got = Value::Array(source.take_mine(&self.mentioned, &self.bindings));
        let want = Value::Array(step.forwarded.clone());
        compare::diff(
            &want,
            Some(&got),
            &JsonPath::root("forwarded"),
            rules,
            &mut self.bindings,
            mismatches,
        );
        Some(got)
    }
}
