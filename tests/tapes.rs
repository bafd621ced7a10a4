//! Fixture tapes: the format, id binding, ignore rules and diff output; every tape of
//! `fixtures/flows` replays green against an in-process server; an altered answer fails with
//! a useful diff; `--update` and the recorder round-trip; `validate` passes against our server
//! and names the broken invariant against loopback servers that answer wrongly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use fast_seller::cli::tapes::replay;
use fast_seller::config::{AuthMode, Settings};
use fast_seller::startup::Application;
use fast_seller::tapes::bind::Bindings;
use fast_seller::tapes::compare::{diff, IgnoreRules, JsonPath, Mismatch};
use fast_seller::tapes::format::Tape;
use fast_seller::tapes::validate::Operation;
use fast_seller::tapes::{validate, Recorder, ReplayOptions, Signing, ValidateOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn flows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flows")
}

/// Regenerates the expected answers of `fixtures/flows` from our server (what
/// `fast-seller replay fixtures/flows --update` does). Run by hand after a deliberate change:
/// `cargo test --test tapes -- --ignored regenerate_library`, then review the diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rewrites fixtures/flows; run by hand after a deliberate change"]
async fn regenerate_library() {
    let report = replay(
        &[flows_dir()],
        None,
        ReplayOptions {
            update: true,
            ..ReplayOptions::default()
        },
    )
    .await
    .expect("replay runs");
    println!("{}", report.render());
    assert!(report.passed(), "{}", report.render());
}

/// The library is the regression suite: every tape must replay without a difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tape_in_fixtures_flows_replays_green() {
    let report = replay(&[flows_dir()], None, ReplayOptions::default())
        .await
        .expect("replay runs");
    assert!(
        report.tapes.len() >= 14,
        "the library must cover every checkout flow (fixtures/README.md): {}",
        report.render()
    );
    assert!(report.passed(), "{}", report.render());
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Our server on a temporary directory (demo catalog), as `replay --target` would see it.
struct Server {
    base: String,
    dir: TempDir,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut Settings)) -> Server {
        let dir = TempDir::new().unwrap();
        let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        settings.workers = 2;
        settings.cache_capacity = 16 * 1024 * 1024;
        settings.outbox.poll_interval = std::time::Duration::from_millis(50);
        tweak(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        Server {
            base,
            dir,
            handle,
            task,
        }
    }

    fn forwarded_file(&self) -> PathBuf {
        self.dir.path().join("forwarded.jsonl")
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

/// Copies tapes of the library into a temporary directory (to alter them).
fn copy_tapes(names: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for name in names {
        let from = flows_dir().join(format!("{name}.jsonl"));
        std::fs::copy(&from, dir.path().join(format!("{name}.jsonl"))).unwrap();
    }
    dir
}

/// Rewrites one field of one step's expected answer body.
fn alter(path: &Path, step: u64, pointer: &str, value: Value) {
    let mut tape = Tape::load(path).unwrap();
    let s = tape.steps.iter_mut().find(|s| s.step == step).unwrap();
    let body = s.response.as_mut().unwrap().body.as_mut().unwrap();
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in step {step}")) = value;
    tape.save().unwrap();
}

fn diff_values(
    expected: &Value,
    got: &Value,
    rules: &IgnoreRules,
    b: &mut Bindings,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    diff(
        expected,
        Some(got),
        &JsonPath::root("$"),
        rules,
        b,
        &mut out,
    );
    out
}

/// The CLI may run these on any tokio task: their futures must be `Send`, the recorder
/// shareable between HTTP workers.
#[test]
fn public_futures_are_send_and_the_recorder_is_shareable() {
    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>() {}
    let paths = [flows_dir()];
    let r = replay(&paths, None, ReplayOptions::default());
    send(&r);
    let v = validate("http://127.0.0.1:9", ValidateOptions::default());
    send(&v);
    shared::<Recorder>();
}

// ---------------------------------------------------------------------------------------
// Format, binding, ignore rules, decimals, diff lines
// ---------------------------------------------------------------------------------------

/// A tape survives a read/write round trip (unknown keys included) and a bad line is
/// reported with its file and line number, so a hand-edited tape is easy to fix.
#[test]
fn tape_format_round_trips_and_names_bad_lines() {
    let text = r#"{"tape":{"name":"t","description":"d","catalog":"demo","ignore":["$.x"],"check":["forwarded[*].id"],"forwarded":false,"owner":"qa"}}
{"step":1,"name":"create","endpoint":"create","headers":{"x-trace":"1"},"request":{"a":1.50},"response":{"status":200,"headers":{"idempotent-replayed":null},"body":{"b":"{{ext:1}}"}},"forwarded":[{"type":"order.converted"}],"ignore":["$.y"],"note":"kept"}

{"step":2,"endpoint":"/fast/v1/read","request_raw":"{\"broken\": "}
"#;
    let path = Path::new("mem.jsonl");
    let tape = Tape::parse(path, text).expect("a valid tape");
    assert_eq!(tape.header.name, "t");
    assert_eq!(tape.header.ignore, ["$.x"]);
    assert_eq!(tape.header.check, ["forwarded[*].id"]);
    assert!(!tape.header.forwarded);
    assert_eq!(tape.header.extra["owner"], "qa");
    assert_eq!(tape.steps.len(), 2);
    let s1 = &tape.steps[0];
    assert_eq!(s1.label(), "step 1 (create)");
    assert_eq!(
        s1.request.as_ref().unwrap().to_string(),
        r#"{"a":1.50}"#,
        "number text kept"
    );
    assert_eq!(
        s1.response.as_ref().unwrap().headers["idempotent-replayed"],
        Value::Null
    );
    assert_eq!(s1.extra["note"], "kept");
    assert_eq!(tape.steps[1].request_raw.as_deref(), Some(r#"{"broken": "#));
    assert_eq!(tape.steps[1].label(), "step 2");
    let again = Tape::parse(path, &tape.to_text()).unwrap();
    assert_eq!(again, tape, "writing and reading a tape changes nothing");

    for (bad, line, why) in [
        ("{\"step\":1}\n", 1, "endpoint"),
        ("{\"endpoint\":\"read\"}\n[1]\n", 2, "JSON object"),
        ("{\"endpoint\":\"read\"}\n{\"tape\":{}}\n", 2, "first line"),
        ("\n{not json\n", 2, "not a JSON line"),
        (
            "{\"endpoint\":\"read\",\"response\":{\"status\":\"ok\"}}\n",
            1,
            "status",
        ),
        (
            "{\"endpoint\":\"read\",\"request\":{},\"request_raw\":\"\"}\n",
            1,
            "not both",
        ),
    ] {
        let err = Tape::parse(path, bad).expect_err(bad).to_string();
        assert!(
            err.starts_with(&format!("mem.jsonl:{line}: ")) && err.contains(why),
            "{bad:?} must fail at line {line} mentioning {why:?}, got {err}"
        );
    }
}

/// Seller ids are unknown in advance: a placeholder binds on first sight, must keep its
/// value, can never be shared by two ids, and is substituted into later requests.
#[test]
fn seller_ids_bind_on_first_sight_and_are_substituted_into_requests() {
    let rules = IgnoreRules::new(&[], &[]).unwrap();
    let mut b = Bindings::new("RUNTOKEN42");
    let expected = json!({"order": {"order": {"external_id": "{{ext:1}}",
        "lines": [{"external_id": "{{ext:2}}"}, {"external_id": "{{ext:3}}"}]}}});
    let got = json!({"order": {"order": {"external_id": "S-1",
        "lines": [{"external_id": "S-L1"}, {"external_id": "S-L2"}]}}});
    assert_eq!(diff_values(&expected, &got, &rules, &mut b), []);
    assert_eq!(b.get("ext:1"), Some("S-1"));

    let request = json!({"order": {"external_order_id": "{{ext:1}}", "id": "F-{{run}}"}});
    assert_eq!(
        b.substitute(&request).unwrap(),
        json!({"order": {"external_order_id": "S-1", "id": "F-RUNTOKEN42"}})
    );
    assert_eq!(
        b.substitute(&json!({"x": "{{ext:7}}"})).unwrap_err(),
        "{{ext:7}}",
        "an unbound placeholder in a request is an error naming it"
    );

    // The seller changed its id: the same placeholder now sees another value.
    let moved = json!({"order": {"order": {"external_id": "S-9",
        "lines": [{"external_id": "S-L1"}, {"external_id": "S-L1"}]}}});
    let lines: Vec<String> = diff_values(&expected, &moved, &rules, &mut b)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            r#"$.order.order.external_id expected "{{ext:1}}" got "S-9" ({{ext:1}} is "S-1")"#,
            r#"$.order.order.lines[1].external_id expected "{{ext:3}}" got "S-L1" ({{ext:3}} is "S-L2")"#,
        ]
    );
    // Two placeholders never share an id (a duplicated line would).
    let mut fresh = Bindings::new("t0000000000");
    let dup = diff_values(
        &json!(["{{ext:1}}", "{{ext:2}}"]),
        &json!(["same", "same"]),
        &rules,
        &mut fresh,
    );
    assert_eq!(dup.len(), 1);
    assert_eq!(
        dup[0].note.as_deref(),
        Some("{{ext:2}} must be a new id, but this one is already {{ext:1}}")
    );
    // {{any}} accepts anything present, but not absence.
    let any = diff_values(
        &json!({"a": "{{any}}", "b": "{{any}}"}),
        &json!({"a": [1]}),
        &rules,
        &mut fresh,
    );
    assert_eq!(any.len(), 1);
    assert_eq!(any[0].to_string(), r#"$.b expected "{{any}}" got nothing"#);
}

/// Volatile fields come from one central list; a tape can ignore more or check one of them.
#[test]
fn ignore_rules_use_the_central_list_plus_per_tape_overrides() {
    let mut b = Bindings::default();
    let expected =
        json!([{"type": "order.converted", "id": "e-1", "occurred_at": "2026-01-01T00:00:00Z"}]);
    let got =
        json!([{"type": "order.converted", "id": "e-2", "occurred_at": "2026-06-01T00:00:00Z"}]);
    let forwarded = |rules: &IgnoreRules, b: &mut Bindings| {
        let mut out = Vec::new();
        diff(
            &expected,
            Some(&got),
            &JsonPath::root("forwarded"),
            rules,
            b,
            &mut out,
        );
        out.iter().map(|m| m.path.clone()).collect::<Vec<_>>()
    };
    let central = IgnoreRules::new(&[], &[]).unwrap();
    assert_eq!(
        forwarded(&central, &mut b),
        Vec::<String>::new(),
        "event id and time are volatile"
    );
    let checked = IgnoreRules::new(&["forwarded[*].occurred_at".to_string()], &[]).unwrap();
    assert_eq!(
        forwarded(&checked, &mut b),
        ["forwarded[0].occurred_at"],
        "`check` re-enables one entry"
    );

    let tape_rules = IgnoreRules::new(&[], &["$.order.order.lines[*].name".to_string()]).unwrap();
    let step_rules = tape_rules.with(&["$..image_url".to_string()]).unwrap();
    let e =
        json!({"order": {"order": {"lines": [{"name": "A", "image_url": "x", "quantity": 1}]}}});
    let g = json!({"order": {"order": {"lines": [{"name": "B", "image_url": "y", "quantity": 2, "new": true}]}}});
    let paths = |rules: &IgnoreRules| -> Vec<String> {
        diff_values(&e, &g, rules, &mut Bindings::default())
            .into_iter()
            .map(|m| m.path)
            .collect()
    };
    assert_eq!(
        paths(&central),
        [
            "$.order.order.lines[0].name",
            "$.order.order.lines[0].image_url",
            "$.order.order.lines[0].quantity",
            "$.order.order.lines[0].new"
        ]
    );
    assert_eq!(
        paths(&step_rules),
        [
            "$.order.order.lines[0].quantity",
            "$.order.order.lines[0].new"
        ],
        "tape and step ignore lists apply, unexpected fields are still reported"
    );
    assert!(IgnoreRules::new(&[], &["order.[".to_string()]).is_err());
}

/// Money is compared as decimals ("5.0" == "5.00"); everything else exactly.
#[test]
fn money_is_compared_as_decimals() {
    let rules = IgnoreRules::default();
    let mut b = Bindings::default();
    let e = json!({"cost": "5.00", "total": "45", "qty": 2, "rate": 0.5, "id": "0123"});
    let same = json!({"cost": "5.0", "total": "45.00", "qty": 2.0, "rate": 0.50, "id": "0123"});
    assert_eq!(diff_values(&e, &same, &rules, &mut b), []);
    let off = json!({"cost": "5.01", "total": "45.00", "qty": "2", "rate": 0.5, "id": "123"});
    let lines: Vec<String> = diff_values(&e, &off, &rules, &mut b)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            r#"$.cost expected "5.00" got "5.01""#,
            r#"$.qty expected 2 got "2""#,
            r#"$.id expected "0123" got "123""#,
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------

/// A changed answer must fail replay with one precise line per difference, exit status
/// included, and the JUnit report must carry the same lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_answer_fails_with_a_useful_diff_and_junit() {
    let dir = copy_tapes(&["new-shopper-pdp", "shipping-zones"]);
    let tape = dir.path().join("new-shopper-pdp.jsonl");
    alter(&tape, 6, "/order/order/total_amount", json!("50.93"));
    alter(&tape, 6, "/order/order/lines/0/quantity", json!(2));
    // The conversion's event is no longer expected: the forwarded event must be reported.
    let mut t = Tape::load(&tape).unwrap();
    t.steps[6].forwarded.clear();
    t.save().unwrap();
    let junit = dir.path().join("junit.xml");
    let report = replay(
        &[dir.path().to_path_buf()],
        None,
        ReplayOptions {
            junit: Some(junit.clone()),
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !report.passed(),
        "an altered tape must fail: {}",
        report.render()
    );
    let text = report.render();
    for line in [
        r#"  step 6 (select Express by plan external_id): $.order.order.total_amount expected "50.93" got "50.92""#,
        r#"  step 6 (select Express by plan external_id): $.order.order.lines[0].quantity expected 2 got 1"#,
        "  step 7 (timer expires: convert): forwarded[0] expected nothing got {\"id\":",
        "PASS ",
        "2 tapes: 1 passed, 1 failed (3 differences)",
    ] {
        assert!(
            text.contains(line),
            "the report must contain {line:?}:\n{text}"
        );
    }
    let failed = &report.tapes.iter().find(|t| !t.passed()).unwrap();
    assert_eq!(failed.differences(), 3, "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="fast-seller replay" tests="10" failures="2">"#),
        "{xml}"
    );
    assert!(
        xml.contains("$.order.order.total_amount expected &quot;50.93&quot; got &quot;50.92&quot;"),
        "{xml}"
    );
}

/// `--update` after a deliberate change rewrites the tape (placeholders kept), and the
/// rewritten tape replays green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_rewrites_a_tape_that_then_replays_green() {
    let dir = copy_tapes(&["coupons"]);
    let tape = dir.path().join("coupons.jsonl");
    let original = std::fs::read_to_string(&tape).unwrap();
    alter(&tape, 2, "/order/order/total_discounts", json!("9.99"));
    let paths = [dir.path().to_path_buf()];
    let report = replay(
        &paths,
        None,
        ReplayOptions {
            update: true,
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.render());
    assert!(report.render().contains("UPDATED "), "{}", report.render());
    assert_eq!(
        std::fs::read_to_string(&tape).unwrap(),
        original,
        "the rewritten tape is the library's again (same placeholders, same text)"
    );
    let again = replay(&paths, None, ReplayOptions::default())
        .await
        .unwrap();
    assert!(again.passed(), "{}", again.render());
}

/// New steps without answers get them from `--update`, seller ids as fresh placeholders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_fills_in_new_steps_with_placeholders() {
    let dir = TempDir::new().unwrap();
    let tape = dir.path().join("new.jsonl");
    std::fs::write(
        &tape,
        r#"{"tape":{"name":"new"}}
{"step":1,"endpoint":"create","request":{"type":"ENTITY_TYPE_ORDER","request_id":{"value":"{{run}}-1"},"order":{"is_cart":true,"order":{"id":{"value":"F-{{run}}"},"lines":[{"id":{"value":"L-1"},"external_product_id":"mug-01","quantity":2}]}}}}
{"step":2,"endpoint":"read","request":{"type":"ENTITY_TYPE_ORDER","order":{"external_order_id":"{{ext:1}}"}}}
"#,
    )
    .unwrap();
    let paths = [tape.clone()];
    let report = replay(
        &paths,
        None,
        ReplayOptions {
            update: true,
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.render());
    let t = Tape::load(&tape).unwrap();
    let body = t.steps[1].response.as_ref().unwrap().body.as_ref().unwrap();
    assert_eq!(body["order"]["order"]["external_id"], "{{ext:1}}");
    assert_eq!(
        body["order"]["order"]["lines"][0]["external_id"],
        "{{ext:2}}"
    );
    assert_eq!(body["order"]["order"]["id"]["value"], "F-{{run}}");
    assert_eq!(body["order"]["order"]["total_amount"], "25.00");
    let again = replay(&paths, None, ReplayOptions::default())
        .await
        .unwrap();
    assert!(again.passed(), "{}", again.render());
}

/// Replaying against a running server (`--target`), forwarded events read from its file
/// backend; `{{run}}` keeps two runs on the same server apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_against_a_running_target_twice() {
    let server = Server::start(|_| {}).await;
    let tapes = [
        flows_dir().join("new-shopper-pdp.jsonl"),
        flows_dir().join("convert-canceled.jsonl"),
        flows_dir().join("idempotency.jsonl"),
    ];
    for run in 1..=2 {
        let report = replay(
            &tapes,
            Some(&server.base),
            ReplayOptions {
                forwarded_file: Some(server.forwarded_file()),
                ..ReplayOptions::default()
            },
        )
        .await
        .unwrap();
        assert!(report.passed(), "run {run}: {}", report.render());
        assert!(report.tapes.iter().all(|t| t.forwarded_checked));
    }
    server.stop().await;
}

/// A target that is down fails every step with the connection error, and `replay` of a
/// path without tapes is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_and_empty_directory() {
    let report = replay(
        &[flows_dir().join("shipping-zones.jsonl")],
        Some("http://127.0.0.1:9"),
        ReplayOptions::default(),
    )
    .await
    .unwrap();
    assert!(!report.passed());
    assert!(
        report
            .render()
            .contains("step 1 (zones by name): POST http://127.0.0.1:9/fast/v1/read"),
        "{}",
        report.render()
    );
    let empty = TempDir::new().unwrap();
    let err = replay(
        &[empty.path().to_path_buf()],
        None,
        ReplayOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("no tapes"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------

async fn exchange(
    client: &reqwest::Client,
    server: &Server,
    recorder: &Recorder,
    endpoint: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Value {
    let bytes = body.to_string().into_bytes();
    let mut req = client
        .post(format!("{}/fast/v1/{endpoint}", server.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(bytes.clone()).send().await.unwrap();
    let status = resp.status().as_u16();
    let answer = resp.bytes().await.unwrap().to_vec();
    let mut sent: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sent.push(("content-type".into(), "application/json".into()));
    sent.push(("host".into(), "example".into()));
    recorder.record(endpoint, &sent, &bytes, status, &answer);
    serde_json::from_slice(&answer).unwrap_or(Value::Null)
}

/// `serve --record`: one tape per Fast order (and a per-day tape without one), secrets
/// scrubbed, seller ids as placeholders; the recorded tapes replay green on a fresh server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_tapes_are_scrubbed_and_replay_green() {
    let server = Server::start(|_| {}).await;
    let out = TempDir::new().unwrap();
    let recorder = Recorder::new(&out.path().join("tapes")).unwrap();
    let client = reqwest::Client::new();
    let auth = [
        ("authorization", "Bearer sekrit-jwt"),
        ("webhook-signature", "v1,c2Vrcml0"),
        ("x-trace", "t-1"),
    ];
    let created = exchange(&client, &server, &recorder, "create", &auth, &json!({
        "type": "ENTITY_TYPE_ORDER", "request_id": {"value": "rec-1"},
        "order": {"is_cart": true, "order": {"id": {"value": "F-rec/1"},
            "lines": [{"id": {"value": "L-1"}, "external_product_id": "hoodie-01", "quantity": 1}]}}})).await;
    let seller = created["order"]["order"]["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    exchange(
        &client,
        &server,
        &recorder,
        "read",
        &auth,
        &json!({
        "type": "ENTITY_TYPE_ORDER", "order": {"external_order_id": seller}}),
    )
    .await;
    exchange(
        &client,
        &server,
        &recorder,
        "update",
        &auth,
        &json!({
        "type": "ENTITY_TYPE_ORDER", "request_id": {"value": "rec-2"},
        "order": {"order_id": {"value": "F-rec/1"}, "convert_cart_to_order": true,
                  "convert_mode": "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT",
                  "payment": {"token": "tok_live_sekrit", "expire_on": "2030-01-01"}}}),
    )
    .await;
    // Post-conversion: only the seller id; the recorder knows which order it is.
    exchange(&client, &server, &recorder, "update", &auth, &json!({
        "type": "ENTITY_TYPE_ORDER", "request_id": {"value": "rec-3"},
        "order": {"external_id": seller, "convert_cart_to_order": true, "status": "ORDER_STATUS_BOOKED"}})).await;
    exchange(
        &client,
        &server,
        &recorder,
        "read",
        &[],
        &json!({
        "type": "ENTITY_TYPE_SHIPPING_ZONES", "shipping_zones": {}, "api_key": "sekrit-key"}),
    )
    .await;

    let mut files: Vec<String> = std::fs::read_dir(recorder.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("F-rec_1-") && files[0].ends_with(".jsonl"),
        "the order's tape is named after the Fast id (made file-name safe): {files:?}"
    );
    assert!(
        files[1].starts_with("day-") && files[1].ends_with(".jsonl"),
        "{files:?}"
    );
    let order_tape = std::fs::read_to_string(recorder.dir().join(&files[0])).unwrap();
    let all = format!(
        "{order_tape}{}",
        std::fs::read_to_string(recorder.dir().join(&files[1])).unwrap()
    );
    for secret in ["sekrit", "c2Vrcml0", "tok_live"] {
        assert!(!all.contains(secret), "{secret} must be scrubbed:\n{all}");
    }
    assert!(
        !all.contains(&seller),
        "the seller id must be a placeholder:\n{all}"
    );
    assert!(all.contains("\"authorization\":\"[scrubbed]\""), "{all}");
    assert!(
        all.contains("\"x-trace\":\"t-1\""),
        "other headers are kept: {all}"
    );
    assert!(
        !all.contains("\"host\""),
        "transport headers are not recorded: {all}"
    );
    let tape = Tape::load(&recorder.dir().join(&files[0])).unwrap();
    assert_eq!(
        tape.steps.len(),
        4,
        "four exchanges of F-rec/1: {order_tape}"
    );
    assert!(
        !tape.header.forwarded,
        "the recorder cannot see forwarded events"
    );
    assert_eq!(
        tape.steps[3].name,
        "update: status ORDER_STATUS_BOOKED, convert"
    );
    let read = tape.steps[1].request.as_ref().unwrap();
    let label = read["order"]["external_order_id"].as_str().unwrap();
    assert!(
        label.starts_with("{{ext:"),
        "the read names the seller id by placeholder: {read}"
    );

    // After a restart the recorder continues the same tape with the same placeholders.
    let recorder2 = Recorder::new(recorder.dir()).unwrap();
    exchange(
        &client,
        &server,
        &recorder2,
        "read",
        &[],
        &json!({
        "type": "ENTITY_TYPE_ORDER", "order": {"external_id": seller}}),
    )
    .await;
    let tape = Tape::load(&recorder.dir().join(&files[0])).unwrap();
    assert_eq!(tape.steps.len(), 5);
    assert_eq!(tape.steps[4].step, 5);
    assert_eq!(
        tape.steps[4].request.as_ref().unwrap()["order"]["external_id"],
        label
    );
    server.stop().await;

    let report = replay(
        &[recorder.dir().to_path_buf()],
        None,
        ReplayOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        report.passed(),
        "recorded tapes must replay on a fresh server: {}",
        report.render()
    );
}

// ---------------------------------------------------------------------------------------
// Validate
// ---------------------------------------------------------------------------------------

/// Our own server passes every flow of the validator, without a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_passes_against_our_server() {
    let server = Server::start(|_| {}).await;
    let dir = TempDir::new().unwrap();
    let junit = dir.path().join("validate.xml");
    let report = validate(
        &server.base,
        ValidateOptions {
            junit: Some(junit.clone()),
            ..ValidateOptions::default()
        },
    )
    .await
    .unwrap();
    let text = report.render();
    assert!(report.passed(), "{text}");
    assert_eq!(report.flows.len(), 8, "{text}");
    assert!(
        !text.contains("WARN"),
        "our server follows every convention: {text}"
    );
    assert!(text.contains("8 flows: 8 passed, 0 failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"new_user\""), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    // One flow at a time, as the old validator's -operation did.
    let one = validate(
        &server.base,
        ValidateOptions {
            operations: vec!["update_shipping_option".parse::<Operation>().unwrap()],
            ..ValidateOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(one.passed(), "{}", one.render());
    assert_eq!(one.flows.len(), 1);
    assert!("nope".parse::<Operation>().is_err());
    server.stop().await;
}

/// With `--auth hmac` the validator signs its requests; unsigned requests are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_signs_requests_for_an_hmac_server() {
    let secret = fast_seller::signing::generate_secret();
    let secrets = fast_seller::signing::parse_secrets(&secret).unwrap();
    let server = Server::start(|s| {
        s.auth = AuthMode::Hmac;
        s.hmac_secrets = secrets;
    })
    .await;
    let signed = validate(
        &server.base,
        ValidateOptions {
            signing: Signing::hmac(&secret).unwrap(),
            operations: vec![Operation::NewUser, Operation::Delete],
            ..ValidateOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(signed.passed(), "{}", signed.render());
    let unsigned = validate(
        &server.base,
        ValidateOptions {
            operations: vec![Operation::CreateCart],
            ..ValidateOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!unsigned.passed());
    assert_eq!(
        unsigned.failed_invariants(),
        ["http_status"],
        "{}",
        unsigned.render()
    );
    assert!(
        unsigned.render().contains("expected HTTP 200, got 401"),
        "{}",
        unsigned.render()
    );
    // Replay signs too.
    let report = replay(
        &[flows_dir().join("new-shopper-pdp.jsonl")],
        Some(&server.base),
        ReplayOptions {
            signing: Signing::hmac(&secret).unwrap(),
            forwarded_file: Some(server.forwarded_file()),
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.render());
    server.stop().await;
}

/// With `--auth fast-jwt` the validator and replay send a fresh RS256 token per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_replay_sign_fast_jwt_requests() {
    let keys = TempDir::new().unwrap();
    let generated = fast_seller::keys::generate(&keys.path().join("k"), "local-1").unwrap();
    let jwks = generated.jwks.display().to_string();
    let server = Server::start(|s| {
        s.auth = AuthMode::FastJwt;
        s.jwks = Some(jwks);
        s.app_id = Some("demo-app".into());
    })
    .await;
    let signing =
        Signing::fast_jwt(&generated.private_key, "local-1", "api.fast.co", "demo-app").unwrap();
    let report = validate(
        &server.base,
        ValidateOptions {
            signing: signing.clone(),
            app_id: "demo-app".into(),
            operations: vec![Operation::NewUser],
            ..ValidateOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.render());
    let replayed = replay(
        &[flows_dir().join("convert-booked-fulfillment.jsonl")],
        Some(&server.base),
        ReplayOptions {
            signing,
            forwarded_file: Some(server.forwarded_file()),
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(replayed.passed(), "{}", replayed.render());
    server.stop().await;
}

/// How the loopback seller gets Fast wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Breakage {
    /// total_amount one cent off.
    WrongTotals,
    /// No request_id in the answers.
    NoRequestIdEcho,
    /// A retried update adds its line again.
    DuplicateLineOnReplay,
}

struct Loopback {
    upstream: String,
    breakage: Breakage,
    client: reqwest::Client,
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

async fn loopback_handler(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<Loopback>,
) -> actix_web::HttpResponse {
    let url = format!("{}{}", state.upstream, req.path());
    let resp = state
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let mut answer: Value = resp.json().await.unwrap_or(Value::Null);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let rid = request
        .pointer("/request_id/value")
        .and_then(Value::as_str)
        .map(str::to_string);
    let repeated = rid.is_some_and(|r| !state.seen.lock().unwrap().insert(r));
    match state.breakage {
        Breakage::WrongTotals => {
            if let Some(t) = answer.pointer_mut("/order/order/total_amount") {
                let cents: rust_decimal::Decimal = t.as_str().unwrap().parse().unwrap();
                *t = json!((cents + rust_decimal::Decimal::new(1, 2)).to_string());
            }
        }
        Breakage::NoRequestIdEcho => {
            if let Some(o) = answer.as_object_mut() {
                o.remove("request_id");
            }
        }
        Breakage::DuplicateLineOnReplay => {
            if repeated && request.pointer("/order/items").is_some() {
                if let Some(lines) = answer
                    .pointer_mut("/order/order/lines")
                    .and_then(Value::as_array_mut)
                {
                    let last = lines.last().cloned().unwrap();
                    lines.push(last);
                }
            }
        }
    }
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(answer.to_string())
}

/// A seller in front of ours that answers wrongly in one way.
async fn start_loopback(
    upstream: &str,
    breakage: Breakage,
) -> (String, actix_web::dev::ServerHandle) {
    let state = actix_web::web::Data::new(Loopback {
        upstream: upstream.to_string(),
        breakage,
        client: reqwest::Client::new(),
        seen: Default::default(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .default_service(actix_web::web::to(loopback_handler))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
}

/// The validator must catch each way of answering Fast wrongly and name the invariant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_names_the_broken_invariant_of_a_wrong_server() {
    let server = Server::start(|_| {}).await;
    for (breakage, invariant, detail) in [
        (
            Breakage::WrongTotals,
            "totals_consistent",
            "FAIL create: totals_consistent: total_amount 33.00 ≠ sub_total − total_discounts + total_tax + total_shipping = 32.99 − 0.00 + 0.00 + 0.00 = 32.99",
        ),
        (
            Breakage::NoRequestIdEcho,
            "request_id_echo",
            "FAIL create: request_id_echo: request_id \"fs-test-",
        ),
        (
            Breakage::DuplicateLineOnReplay,
            "idempotent_replay",
            "FAIL add_item (replayed): idempotent_replay: the replayed answer differs: $.order.order.lines[2] expected nothing got",
        ),
    ] {
        let (base, handle) = start_loopback(&server.base, breakage).await;
        let report = validate(&base, ValidateOptions::default()).await.unwrap();
        let text = report.render();
        println!("{breakage:?}:\n{text}");
        assert!(!report.passed(), "{breakage:?} must fail validation:\n{text}");
        assert_eq!(
            report.failed_invariants(),
            [invariant],
            "{breakage:?} must break exactly {invariant}:\n{text}"
        );
        assert!(text.contains(detail), "{breakage:?}: the report must say {detail:?}:\n{text}");
        assert!(text.contains(&format!("broken invariants: {invariant}")), "{text}");
        handle.stop(true).await;
    }
    server.stop().await;
}
