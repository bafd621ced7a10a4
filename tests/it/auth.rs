//! Authentication of Fast's calls (README.md#authentication; JWT-01…10 and AUTH-02…11) and
//! the connection-level limits that protect it (HTTP-08, 09, 13).
//!
//! `--auth fast-jwt`: RS256 bearer tokens, keys by `kid` from a JWKS that a small loopback
//! server in this file serves (it counts fetches, and can answer 500, hang, or switch to a
//! rotated key set). `--auth hmac`: Standard Webhooks headers over the raw body, computed here with our
//! own HMAC so the server's signer is not its own oracle. Both verify against the app's
//! `ManualClock`, so every `iat`/`exp` and `webhook-timestamp` is taken from that clock.
//! The command-line tests run the real binary (`fast-seller serve|sign|keys`) on real time.

use crate::helpers::{create_body, spawn_app_with, update_body, Resp, TestApp, T0_MS};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use fast_seller::clock::Clock as _;
use fast_seller::config::{AuthMode, Settings};
use fast_seller::signing::WebhookSecret;
use fast_seller::store::StoreCounts;
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------------------------

/// The app id of every request body built by the helpers; the JWT audience.
const APP_ID: &str = "test-app";
/// Fast's issuer, the server's default `jwt_issuer`.
const ISSUER: &str = "api.fast.co";
/// A product without variants at 12.50 in the demo catalog.
const MUG: &str = "mug-01";

/// Two RSA-2048 keys for the whole test binary: `a` is published as `k1`, `b` as `k2` (the
/// rotated key) and also serves as "some other key" under `k1`.
fn rsa_keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let gen = || RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA keygen");
        let other = std::thread::spawn(gen);
        let first = gen();
        (first, other.join().expect("keygen thread"))
    })
}

fn key_a() -> &'static RsaPrivateKey {
    &rsa_keys().0
}

fn key_b() -> &'static RsaPrivateKey {
    &rsa_keys().1
}

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON serialises")
}

/// A create of Fast order `F-<n>` (request id `rq-<n>`) with one mug.
fn create(n: &str) -> Vec<u8> {
    to_bytes(&create_body(
        &format!("rq-{n}"),
        &format!("F-{n}"),
        &[("l1", MUG, 1)],
    ))
}

/// A read of Fast order `fast_id`.
fn read(fast_id: &str) -> Vec<u8> {
    to_bytes(&json!({
        "type": "ENTITY_TYPE_ORDER",
        "app_id": APP_ID,
        "order": {"order_id": {"value": fast_id}}
    }))
}

/// Request headers as (name, value) pairs.
type Headers = Vec<(String, String)>;

/// POSTs `body` to `/fast/v1/<verb>` as JSON with extra `headers` (the helpers' `post` sends
/// none).
async fn send(app: &TestApp, verb: &str, body: &[u8], headers: &[(String, String)]) -> Resp {
    let mut req = app
        .client
        .post(format!("{}/fast/v1/{verb}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = req.send().await.expect("request sent");
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        bytes: r.bytes().await.expect("body read").to_vec(),
    }
}

async fn counts(app: &TestApp) -> StoreCounts {
    app.service.store().counts().await.expect("store counts")
}

/// The app's clock in whole Unix seconds (what the server verifies against).
fn now_secs(app: &TestApp) -> i64 {
    i64::try_from(app.clock.now_ms() / 1000).expect("time fits")
}

fn show(r: &Resp) -> String {
    format!("HTTP {} {}", r.status, String::from_utf8_lossy(&r.bytes))
}

fn assert_ok(what: &str, r: &Resp) {
    assert_eq!(r.status, 200, "{what}: expected 200, got {}", show(r));
}

/// Asserts an rpcStatus error with this HTTP status and gRPC code whose message contains
/// `needle`; returns the message.
fn assert_rpc(what: &str, r: &Resp, status: u16, code: i64, needle: &str) -> String {
    assert_eq!(
        r.status,
        status,
        "{what}: expected HTTP {status}, got {}",
        show(r)
    );
    let v: Value = serde_json::from_slice(&r.bytes)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {}", show(r)));
    assert_eq!(
        v["code"].as_i64(),
        Some(code),
        "{what}: gRPC code {code} expected: {}",
        show(r)
    );
    assert_eq!(v["details"], json!([]), "{what}: details: {}", show(r));
    let msg = v["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains(needle),
        "{what}: the message should name `{needle}`, got {msg:?}"
    );
    msg
}

/// 401 with rpcStatus code 16 (UNAUTHENTICATED) naming the failed check.
fn assert_401(what: &str, r: &Resp, needle: &str) -> String {
    assert_rpc(what, r, 401, 16, needle)
}

// ---------------------------------------------------------------------------------------------
// JWKS server and JWT helpers
// ---------------------------------------------------------------------------------------------

/// What the loopback JWKS endpoint does with the next request.
#[derive(Clone)]
enum JwksMode {
    /// 200 with this JWKS document.
    Keys(String),
    /// 500.
    Fail,
    /// Reads the request and never answers.
    Hang,
}

/// A JWKS endpoint on loopback. Every request is counted; `serve` (re)publishes a key set,
/// `fail` makes it answer 500, `hang` makes it accept and never answer.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicU64>,
    mode: Arc<Mutex<JwksMode>>,
    task: tokio::task::JoinHandle<()>,
}

fn jwks_doc(keys: &[(&str, &RsaPrivateKey)]) -> String {
    let public: Vec<(&str, rsa::RsaPublicKey)> = keys
        .iter()
        .map(|(k, key)| (*k, key.to_public_key()))
        .collect();
    let refs: Vec<(&str, &rsa::RsaPublicKey)> = public.iter().map(|(k, p)| (*k, p)).collect();
    fast_seller::keys::jwks_json(&refs)
}

impl JwksServer {
    async fn start(keys: &[(&str, &RsaPrivateKey)]) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("JWKS addr")
        );
        let fetches = Arc::new(AtomicU64::new(0));
        let mode = Arc::new(Mutex::new(JwksMode::Keys(jwks_doc(keys))));
        let (f, d) = (fetches.clone(), mode.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (f, d) = (f.clone(), d.clone());
                tokio::spawn(async move {
                    let _ = answer_jwks(stream, &f, &d).await;
                });
            }
        });
        JwksServer {
            url,
            fetches,
            mode,
            task,
        }
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, keys: &[(&str, &RsaPrivateKey)]) {
        *self.mode.lock().expect("mode lock") = JwksMode::Keys(jwks_doc(keys));
    }

    fn fail(&self) {
        *self.mode.lock().expect("mode lock") = JwksMode::Fail;
    }

    fn hang(&self) {
        *self.mode.lock().expect("mode lock") = JwksMode::Hang;
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer_jwks(
    mut stream: TcpStream,
    fetches: &AtomicU64,
    mode: &Mutex<JwksMode>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    fetches.fetch_add(1, Ordering::SeqCst);
    let current = mode.lock().expect("mode lock").clone();
    let response = match current {
        JwksMode::Keys(body) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        JwksMode::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return Ok(());
        }
        JwksMode::Fail => "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_string(),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A server with `--auth fast-jwt`, app id `test-app`, keys from a loopback JWKS that
/// publishes `k1` (key a).
struct JwtApp {
    app: TestApp,
    jwks: JwksServer,
}

async fn jwt_app() -> JwtApp {
    let jwks = JwksServer::start(&[("k1", key_a())]).await;
    let url = jwks.url.clone();
    let app = spawn_app_with(move |s| {
        s.auth = AuthMode::FastJwt;
        s.jwks = Some(url);
        s.app_id = Some(APP_ID.to_string());
    })
    .await;
    JwtApp { app, jwks }
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".to_string(), format!("Bearer {token}"))]
}

impl JwtApp {
    fn now(&self) -> i64 {
        now_secs(&self.app)
    }

    /// A valid token for now: `fast_seller::keys::sign_jwt` with key a as `k1`, 5 minutes.
    fn token(&self) -> String {
        self.token_for("k1", key_a())
    }

    fn token_for(&self, kid: &str, key: &RsaPrivateKey) -> String {
        fast_seller::keys::sign_jwt(key, kid, ISSUER, APP_ID, self.now(), 300).expect("sign")
    }

    /// Valid claims for now (numbers), to be changed by a test.
    fn claims(&self) -> Value {
        let now = self.now();
        json!({"iss": ISSUER, "aud": APP_ID, "iat": now, "exp": now + 300})
    }

    async fn call(&self, verb: &str, body: &[u8], token: &str) -> Resp {
        send(&self.app, verb, body, &bearer(token)).await
    }
}

fn rs_header(kid: &str) -> Value {
    json!({"alg": "RS256", "kid": kid, "typ": "JWT"})
}

/// `header.claims` signed RS256 with `key`, whatever the header says.
fn rs256(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64u(header.to_string().as_bytes()),
        b64u(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<Sha256>::new(key.clone())
        .sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes());
    format!("{input}.{}", b64u(&signature.to_vec()))
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    if let Some(map) = base.as_object_mut() {
        map.remove(key);
    }
    base
}

// ---------------------------------------------------------------------------------------------
// JWT-01 … JWT-10
// ---------------------------------------------------------------------------------------------

/// JWT-01. A valid RS256 token (`aud` = app id, `iss` = Fast, `exp` in 5 minutes) is accepted
/// for create and read; the JWKS is fetched once and then served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt01_valid_token_is_accepted() {
    let f = jwt_app().await;
    assert_eq!(f.jwks.fetches(), 1, "keys are loaded at start-up");
    assert_eq!(
        f.now(),
        i64::try_from(T0_MS / 1000).unwrap(),
        "tokens are dated by the server's manual clock"
    );
    let token = f.token();
    let r = f.call("create", &create("j1"), &token).await;
    assert_ok("create with a valid token", &r);
    let r = f.call("read", &read("F-j1"), &token).await;
    assert_ok("read with the same token", &r);
    assert_eq!(r.order()["id"]["value"], "F-j1");
    // The scheme is case-insensitive (RFC 7235).
    let lower = vec![("authorization".to_string(), format!("bearer {token}"))];
    assert_ok(
        "lower-case bearer",
        &send(&f.app, "read", &read("F-j1"), &lower).await,
    );
    assert_eq!(f.jwks.fetches(), 1, "one JWKS fetch, then the cache");
}

/// JWT-02. `alg: none` with an empty signature is refused before any key is used, in Fast's
/// error shape, and changes nothing; so are RS256 tokens with a forged signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt02_alg_none_is_401_and_changes_nothing() {
    let f = jwt_app().await;
    let before = counts(&f.app).await;
    let claims = f.claims();
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64u(
                json!({"alg": alg, "kid": "k1", "typ": "JWT"})
                    .to_string()
                    .as_bytes()
            ),
            b64u(claims.to_string().as_bytes())
        );
        let r = f.call("create", &create("j2"), &token).await;
        assert_401(&format!("alg {alg}"), &r, "unsupported algorithm");
    }
    assert_eq!(
        f.jwks.fetches(),
        1,
        "an alg:none token never reaches the keys (1: the start-up fetch)"
    );
    // RS256 but forged: signed by another key under our kid, or claims swapped after signing.
    let forged = rs256(key_b(), &rs_header("k1"), &claims);
    let r = f.call("create", &create("j2"), &forged).await;
    assert_401("signed by another key", &r, "bad signature");
    let genuine = rs256(key_a(), &rs_header("k1"), &with(claims, "aud", json!("x")));
    let parts: Vec<&str> = genuine.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64u(f.claims().to_string().as_bytes()),
        parts[2]
    );
    let r = f.call("create", &create("j2"), &swapped).await;
    assert_401("claims swapped after signing", &r, "bad signature");
    assert_eq!(counts(&f.app).await, before, "no state change");
    let r = f.call("read", &read("F-j2"), &f.token()).await;
    assert_rpc("the refused order does not exist", &r, 404, 5, "");
}

/// JWT-03. The RS256→HS256 confusion: an HS256 token whose HMAC key is the RSA public key (as
/// PEM with LF or CRLF, or DER) is refused by the algorithm allow-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt03_hs256_keyed_with_the_public_key_is_401() {
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let f = jwt_app().await;
    let before = counts(&f.app).await;
    let public = key_a().to_public_key();
    let lf = public.to_public_key_pem(LineEnding::LF).expect("pem");
    let crlf = public.to_public_key_pem(LineEnding::CRLF).expect("pem");
    let der = public.to_public_key_der().expect("der");
    let input = format!(
        "{}.{}",
        b64u(
            json!({"alg": "HS256", "kid": "k1", "typ": "JWT"})
                .to_string()
                .as_bytes()
        ),
        b64u(f.claims().to_string().as_bytes())
    );
    for (what, secret) in [
        ("PEM LF", lf.as_bytes()),
        ("PEM CRLF", crlf.as_bytes()),
        ("DER", der.as_bytes()),
    ] {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", b64u(&mac.finalize().into_bytes()));
        let r = f.call("create", &create("j3"), &token).await;
        assert_401(&format!("HS256 keyed with the {what}"), &r, "HS256");
    }
    assert_eq!(counts(&f.app).await, before, "no state change");
}

/// JWT-04. Another app's token, a token without audience and a token from another issuer are
/// each refused, and the message names the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt04_audience_and_issuer_are_checked() {
    let f = jwt_app().await;
    let before = counts(&f.app).await;
    let cases = [
        (
            "wrong aud",
            with(f.claims(), "aud", json!("other-app")),
            "wrong audience",
        ),
        (
            "aud list without us",
            with(f.claims(), "aud", json!(["a", "b"])),
            "wrong audience",
        ),
        (
            "missing aud",
            without(f.claims(), "aud"),
            "missing claim aud",
        ),
        (
            "wrong iss",
            with(f.claims(), "iss", json!("api.evil.example")),
            "wrong issuer",
        ),
        (
            "missing iss",
            without(f.claims(), "iss"),
            "missing claim iss",
        ),
    ];
    for (what, claims, needle) in cases {
        let token = rs256(key_a(), &rs_header("k1"), &claims);
        let r = f.call("create", &create("j4"), &token).await;
        assert_401(what, &r, needle);
    }
    assert_eq!(counts(&f.app).await, before, "no state change");
    // The same claims with our aud and iss are fine (the crafted tokens were otherwise valid).
    let token = rs256(key_a(), &rs_header("k1"), &f.claims());
    assert_ok("control", &f.call("create", &create("j4"), &token).await);
}

/// JWT-05. `exp` has 60 s of leeway: 30 s and 60 s past are accepted, 61 s past is not; a
/// token without `exp` is refused; `nbf` in the future is refused; and a token accepted now
/// expires when the clock moves past `exp` + 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt05_exp_has_60_seconds_leeway_and_is_required() {
    let f = jwt_app().await;
    assert_ok("create", &f.call("create", &create("j5"), &f.token()).await);
    let body = read("F-j5");
    let now = f.now();
    let check = |claims: Value| rs256(key_a(), &rs_header("k1"), &claims);
    let exp = |v: i64| with(f.claims(), "exp", json!(v));

    assert_ok(
        "exp 30 s past",
        &f.call("read", &body, &check(exp(now - 30))).await,
    );
    assert_ok(
        "exp 60 s past",
        &f.call("read", &body, &check(exp(now - 60))).await,
    );
    let r = f.call("read", &body, &check(exp(now - 61))).await;
    assert_401("exp 61 s past", &r, "token expired");
    let r = f
        .call("read", &body, &check(without(f.claims(), "exp")))
        .await;
    assert_401("no exp", &r, "missing claim exp");
    let r = f
        .call(
            "read",
            &body,
            &check(with(f.claims(), "nbf", json!(now + 120))),
        )
        .await;
    assert_401("nbf 2 min ahead", &r, "not yet valid");

    // Time moves on (the server's clock): exp = now + 10 is fine for 70 s more, not 71.
    let token = check(exp(now + 10));
    assert_ok("fresh token", &f.call("read", &body, &token).await);
    f.app.clock.advance_ms(70_000);
    assert_ok("70 s later", &f.call("read", &body, &token).await);
    f.app.clock.advance_ms(1_000);
    let r = f.call("read", &body, &token).await;
    assert_401("71 s later", &r, "token expired");
}

/// JWT-06. Fast's examples write the NumericDate claims as strings: accepted when valid,
/// refused when expired, like numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt06_numeric_claims_may_be_strings() {
    let f = jwt_app().await;
    let now = f.now();
    let as_strings = json!({
        "iss": ISSUER, "aud": APP_ID,
        "iat": now.to_string(), "nbf": now.to_string(), "exp": (now + 300).to_string(),
    });
    let token = rs256(key_a(), &rs_header("k1"), &as_strings);
    assert_ok(
        "claims as strings",
        &f.call("create", &create("j6"), &token).await,
    );
    let body = read("F-j6");
    let expired = with(as_strings.clone(), "exp", json!((now - 100).to_string()));
    let r = f
        .call("read", &body, &rs256(key_a(), &rs_header("k1"), &expired))
        .await;
    assert_401("expired, as a string", &r, "token expired");
    let expired = with(f.claims(), "exp", json!(now - 100));
    let r = f
        .call("read", &body, &rs256(key_a(), &rs_header("k1"), &expired))
        .await;
    assert_401("expired, as a number", &r, "token expired");
    let odd = with(as_strings, "exp", json!("soon"));
    let r = f
        .call("read", &body, &rs256(key_a(), &rs_header("k1"), &odd))
        .await;
    assert_401("exp not a number", &r, "malformed claim exp");
}

/// JWT-07 (just started). The keys were fetched at start-up: a first request naming an
/// unknown kid within that minute is 401 without another fetch; the known kid is served from
/// the start-up fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt07_unknown_kid_right_after_start_up_fetches_nothing_more() {
    let f = jwt_app().await;
    let r = f
        .call("create", &create("j7c"), &f.token_for("k9", key_a()))
        .await;
    assert_401("unknown kid", &r, "unknown key id");
    assert_eq!(f.jwks.fetches(), 1, "only the start-up fetch");
    assert_ok(
        "known kid",
        &f.call("create", &create("j7c"), &f.token()).await,
    );
    assert_eq!(f.jwks.fetches(), 1, "the known kid came with that fetch");
}

/// JWT-07. An unknown kid triggers exactly one refetch per minute however many requests carry
/// it (20 concurrent ones here); a rotated key set is picked up once the minute has passed, and
/// a kid dropped from the set is refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt07_unknown_kid_refetches_at_most_once_a_minute_and_rotation_is_picked_up() {
    let f = jwt_app().await;
    assert_ok(
        "warm the cache",
        &f.call("create", &create("j7"), &f.token()).await,
    );
    assert_eq!(f.jwks.fetches(), 1);
    f.app.clock.advance_ms(61_000);

    let unknown = f.token_for("k9", key_a());
    let body = read("F-j7");
    let answers =
        futures_util::future::join_all((0..20).map(|_| f.call("read", &body, &unknown))).await;
    for (i, r) in answers.iter().enumerate() {
        assert_401(&format!("unknown kid #{i}"), r, "unknown key id");
    }
    let refetches = f.jwks.fetches() - 1;
    assert!(
        refetches <= 6,
        "JWT-07: at most 6 fetches a minute, got {refetches}"
    );
    assert_eq!(
        refetches, 1,
        "an unknown kid is refetched at most once a minute (and at least once)"
    );

    // Fast rotates to k2 (key b) and drops k1. Inside the minute the new kid is not fetched.
    f.jwks.serve(&[("k2", key_b())]);
    let r = f.call("read", &body, &f.token_for("k2", key_b())).await;
    assert_401("k2 inside the refetch window", &r, "unknown key id");
    assert_eq!(f.jwks.fetches(), 2, "no fetch inside the window");
    f.app.clock.advance_ms(61_000);
    assert_ok(
        "k2 after the window",
        &f.call("read", &body, &f.token_for("k2", key_b())).await,
    );
    assert_eq!(f.jwks.fetches(), 3, "one refetch picked up the rotated set");
    let r = f.call("read", &body, &f.token()).await;
    assert_401("k1 after it left the set", &r, "unknown key id");
    assert_eq!(f.jwks.fetches(), 3, "still inside the window");
}

/// JWT-08. Once keys are cached, a JWKS outage (500) does not stop known kids: a refetch for an
/// unknown kid fails, the cached keys stay, and k1 is still accepted hours later, up to the 6 h
/// cache age; from then on tokens get 503 until the JWKS answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt08_cached_keys_survive_a_jwks_outage() {
    let f = jwt_app().await;
    assert_ok(
        "warm the cache",
        &f.call("create", &create("j8"), &f.token()).await,
    );
    f.jwks.fail();
    f.app.clock.advance_ms(61_000);
    let body = read("F-j8");
    let r = f.call("read", &body, &f.token_for("k9", key_a())).await;
    assert_401(
        "unknown kid while the JWKS is down (keys cached: 401, not 503)",
        &r,
        "unknown key id",
    );
    assert_eq!(f.jwks.fetches(), 2, "the refetch was attempted and failed");
    assert_ok(
        "known kid during the outage",
        &f.call("read", &body, &f.token()).await,
    );
    f.app.clock.advance_ms(5 * 3600 * 1000);
    assert_ok(
        "known kid 5 h into the outage",
        &f.call("read", &body, &f.token()).await,
    );
    // The refresh of a stale cache runs in the background (and fails).
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.jwks.fetches() < 3 {
        assert!(Instant::now() < deadline, "a stale cache tries a refresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.jwks.fetches(), 3, "one refresh, not one per request");
    f.app.clock.advance_ms(3600 * 1000);
    let r = f.call("read", &body, &f.token()).await;
    assert_eq!(r.status, 503, "past 6 h the cached keys are dropped");
    assert_eq!(r.json()["code"], 14);
}

/// JWT-08 (hanging JWKS). A JWKS endpoint that accepts and never answers delays only the
/// request that needs a fetch (an unknown kid: 401 once the server's 5 s fetch timeout has
/// passed); requests with cached kids are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt08_a_hanging_jwks_delays_only_requests_that_need_a_fetch() {
    let f = jwt_app().await;
    assert_ok(
        "warm the cache",
        &f.call("create", &create("j8h"), &f.token()).await,
    );
    f.jwks.hang();
    f.app.clock.advance_ms(61_000);
    let body = read("F-j8h");
    let unknown = f.token_for("k9", key_a());
    let start = Instant::now();
    let pending = f.call("read", &body, &unknown);
    let known = async {
        // Give the unknown-kid request time to start its fetch.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        let r = f.call("read", &body, &f.token()).await;
        (r, t.elapsed())
    };
    let (unknown_r, (known_r, known_took)) = tokio::join!(pending, known);
    let unknown_took = start.elapsed();
    assert_ok("cached kid while the JWKS hangs", &known_r);
    assert!(
        known_took < Duration::from_secs(2),
        "a cached kid waited {known_took:?} for a hanging JWKS fetch"
    );
    assert_401("unknown kid, JWKS hanging", &unknown_r, "unknown key id");
    assert!(
        unknown_took < Duration::from_secs(15),
        "the fetch timeout bounds the wait: {unknown_took:?}"
    );
    assert_eq!(f.jwks.fetches(), 2);
}

/// Issue 13 (JWKS refresh): once the cached keys are past their refresh age (1 h), every JWT
/// request used to wait on the refresh, so a hanging JWKS endpoint stalled all traffic for up
/// to the 5 s fetch timeout each minute. The refresh now runs in the background: while the
/// endpoint hangs, 16 concurrent requests with the cached kid are answered within the 6 h the
/// keys may be used, well before the fetch could time out, and only one fetch is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt08_stale_keys_are_refreshed_in_the_background() {
    let f = jwt_app().await;
    assert_ok(
        "warm the cache",
        &f.call("create", &create("j8b"), &f.token()).await,
    );
    f.jwks.hang();
    f.app.clock.advance_ms(2 * 3600 * 1000);
    let body = read("F-j8b");
    let token = f.token();
    let start = Instant::now();
    let answers =
        futures_util::future::join_all((0..16).map(|_| f.call("read", &body, &token))).await;
    let took = start.elapsed();
    for (i, r) in answers.iter().enumerate() {
        assert_ok(&format!("cached kid #{i} while the refresh hangs"), r);
    }
    assert!(
        took < fast_seller::auth::jwks::FETCH_TIMEOUT - Duration::from_secs(1),
        "16 requests with a cached kid took {took:?}: they waited for the hanging refresh"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.jwks.fetches() < 2 {
        assert!(
            Instant::now() < deadline,
            "the background refresh reaches the JWKS"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.jwks.fetches(), 2, "one refresh for all 16 requests");
}

/// Issue 13 (token lifetime): a token is accepted only when `exp − iat` is within
/// `--jwt-max-lifetime` (24 h by default, 60 s leeway); without `iat` the lifetime counts
/// from now. Longer-lived tokens are 401 `token_lifetime_too_long`, however well signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_lifetime_is_capped() {
    let f = jwt_app().await;
    let now = f.now();
    let claims = |iat: Option<i64>, exp: i64| {
        let mut c = json!({"iss": ISSUER, "aud": APP_ID, "exp": exp});
        if let Some(iat) = iat {
            c["iat"] = json!(iat);
        }
        rs256(key_a(), &rs_header("k1"), &c)
    };
    let day = 24 * 3600;
    let body = create("jlt");
    assert_ok(
        "exactly 24 h",
        &f.call("create", &body, &claims(Some(now), now + day)).await,
    );
    for (what, token) in [
        ("24 h and 2 minutes", claims(Some(now), now + day + 120)),
        (
            "issued an hour ago for 24 h more",
            claims(Some(now - 3600), now + day),
        ),
        ("a year, no iat", claims(None, now + 365 * day)),
    ] {
        let r = f.call("read", &read("F-jlt"), &token).await;
        assert_401(what, &r, "token lifetime");
    }
}

/// JWT-08 (no keys at all). The JWKS URL fails at start-up: the server starts but `/readyz`
/// says not ready, naming the JWKS. Calls get 503 with code 14 and Retry-After (the failure
/// is ours); after the JWKS recovers and the minute passes, the same call succeeds and the
/// server becomes ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt08_no_keys_at_all_is_503_until_the_jwks_recovers() {
    let jwks = JwksServer::start(&[("k1", key_a())]).await;
    jwks.fail();
    let url = jwks.url.clone();
    let app = spawn_app_with(move |s| {
        s.auth = AuthMode::FastJwt;
        s.jwks = Some(url);
        s.app_id = Some(APP_ID.to_string());
    })
    .await;
    let f = JwtApp { app, jwks };
    let ready = f.app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", show(&ready));
    let reason = ready.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("jwks") && reason.contains("HTTP 500"),
        "/readyz names the JWKS and why: {reason}"
    );
    let before = counts(&f.app).await;
    for _ in 0..2 {
        let r = f.call("create", &create("j8n"), &f.token()).await;
        assert_rpc("JWKS down, nothing cached", &r, 503, 14, "keys unavailable");
        assert!(r.header("retry-after").is_some(), "503 carries Retry-After");
    }
    assert_eq!(
        f.jwks.fetches(),
        1,
        "within the minute of the start-up fetch, calls fetch nothing"
    );
    assert_eq!(counts(&f.app).await, before, "no state change");
    f.jwks.serve(&[("k1", key_a())]);
    f.app.clock.advance_ms(61_000);
    assert_ok(
        "after recovery",
        &f.call("create", &create("j8n"), &f.token()).await,
    );
    assert_eq!(f.jwks.fetches(), 2);
    // The start-up watcher notices the keys (it polls every second).
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "still not ready with keys held");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// JWT-09. Missing or malformed Authorization headers and garbage tokens are 401 each, never a
/// panic and never a JWKS fetch; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt09_malformed_authorization_is_401() {
    let f = jwt_app().await;
    let before = counts(&f.app).await;
    let body = create("j9");
    let r = send(&f.app, "create", &body, &[]).await;
    assert_401("no Authorization", &r, "missing header authorization");
    let long = "a".repeat(10 * 1024);
    let long3 = format!("{0}.{0}.{0}", "b".repeat(3500));
    let cases: Vec<(String, &str)> = vec![
        (
            "Basic dXNlcjpwYXNz".into(),
            "malformed header authorization",
        ),
        ("Bearer".into(), "malformed header authorization"),
        ("Bearer ".into(), "malformed header authorization"),
        ("Token abc".into(), "malformed header authorization"),
        ("Bearer !!!.@@@.###".into(), "header is not base64url"),
        ("Bearer a.b".into(), "not three dot-separated segments"),
        ("Bearer a.b.c.d".into(), "not three dot-separated segments"),
        (
            "Bearer bm90IGpzb24.e30.AA".into(),
            "header is not a JSON object",
        ),
        ("Bearer e30.e30.e30".into(), "header has no alg"),
        (format!("Bearer {long}"), "token too long"),
        (format!("Bearer {long3}"), "token too long"),
    ];
    for (value, needle) in cases {
        let h = vec![("Authorization".to_string(), value.clone())];
        let r = send(&f.app, "create", &body, &h).await;
        assert_401(&format!("Authorization: {value:.40}"), &r, needle);
    }
    assert_eq!(
        f.jwks.fetches(),
        1,
        "malformed tokens never cause a JWKS fetch (1: the start-up fetch)"
    );
    // A valid header and signature around a payload that is not a JSON object.
    let token = rs256(key_a(), &rs_header("k1"), &json!("just a string"));
    let r = f.call("create", &body, &token).await;
    assert_401("payload not an object", &r, "payload is not a JSON object");
    assert_eq!(counts(&f.app).await, before, "no state change");
    assert_ok(
        "the server still serves",
        &f.call("create", &body, &f.token()).await,
    );
}

/// JWT-09 (app id). The token's audience is our app id; a body naming another `app_id` is
/// refused (401, code 16) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt09_request_app_id_must_match_the_token() {
    let f = jwt_app().await;
    let before = counts(&f.app).await;
    let mut other = create_body("rq-j9a", "F-j9a", &[("l1", MUG, 1)]);
    other["app_id"] = json!("other-app");
    let r = f.call("create", &to_bytes(&other), &f.token()).await;
    assert_401(
        "body app_id differs from the token's",
        &r,
        "app id mismatch",
    );
    // A token issued for that other app is refused by the audience check.
    let token = fast_seller::keys::sign_jwt(key_a(), "k1", ISSUER, "other-app", f.now(), 300)
        .expect("sign");
    let r = f.call("create", &to_bytes(&other), &token).await;
    assert_401("token for another app", &r, "wrong audience");
    assert_eq!(counts(&f.app).await, before, "no state change");
    let r = f.call("read", &read("F-j9a"), &f.token()).await;
    assert_rpc("nothing was created", &r, 404, 5, "");
}

/// JWT-10. The token does not cover the body: the same token with a different body ("tampered
/// in transit") is accepted. Body integrity rests on TLS; this test exists so that a change of
/// scheme is noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt10_token_does_not_cover_the_body() {
    let f = jwt_app().await;
    let token = f.token();
    assert_ok("original", &f.call("create", &create("j10a"), &token).await);
    let tampered = to_bytes(&create_body("rq-j10b", "F-j10b", &[("l1", MUG, 99)]));
    let r = f.call("create", &tampered, &token).await;
    assert_ok("tampered body, same token", &r);
    assert_eq!(r.order()["lines"][0]["quantity"].as_i64(), Some(99));
}

// ---------------------------------------------------------------------------------------------
// HMAC helpers
// ---------------------------------------------------------------------------------------------

/// A `whsec_` secret from `fast_seller::signing::generate_secret` with its raw key bytes.
#[derive(Clone)]
struct TestSecret {
    text: String,
    key: Vec<u8>,
}

impl TestSecret {
    fn generate() -> TestSecret {
        let text = fast_seller::signing::generate_secret();
        let key = STANDARD
            .decode(text.strip_prefix("whsec_").expect("whsec_ prefix"))
            .expect("base64 secret");
        TestSecret { text, key }
    }

    fn parsed(&self) -> WebhookSecret {
        WebhookSecret::parse(&self.text).expect("valid secret")
    }

    /// HMAC-SHA256 of `{id}.{ts}.{body}`, computed here (independent of the server).
    fn mac(&self, id: &str, ts: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// `v1,<base64 MAC>`.
    fn sig(&self, id: &str, ts: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, &ts.to_string(), body))
        )
    }

    fn headers(&self, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        hmac_headers(id, &ts.to_string(), &self.sig(id, ts, body))
    }

    /// Everything that would reveal this secret.
    fn leaks(&self) -> Vec<String> {
        vec![
            self.text.clone(),
            STANDARD.encode(&self.key),
            STANDARD_NO_PAD.encode(&self.key),
            URL_SAFE_NO_PAD.encode(&self.key),
            hex(&self.key),
        ]
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every spelling of an expected MAC a careless error message might contain.
fn mac_spellings(mac: &[u8]) -> Vec<String> {
    vec![
        STANDARD.encode(mac),
        STANDARD_NO_PAD.encode(mac),
        URL_SAFE_NO_PAD.encode(mac),
        hex(mac),
    ]
}

fn hmac_headers(id: &str, ts: &str, sig: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), ts.to_string()),
        ("webhook-signature".to_string(), sig.to_string()),
    ]
}

fn msg_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// A server with `--auth hmac` accepting two secrets (`old`, `new`: rotation).
struct HmacApp {
    app: TestApp,
    old: TestSecret,
    new: TestSecret,
}

async fn hmac_app() -> HmacApp {
    hmac_app_with(|_| {}).await
}

async fn hmac_app_with(tweak: impl FnOnce(&mut Settings)) -> HmacApp {
    let (old, new) = (TestSecret::generate(), TestSecret::generate());
    let secrets = vec![old.parsed(), new.parsed()];
    let app = spawn_app_with(move |s| {
        s.auth = AuthMode::Hmac;
        s.hmac_secrets = secrets;
        tweak(s);
    })
    .await;
    HmacApp { app, old, new }
}

impl HmacApp {
    fn now(&self) -> i64 {
        now_secs(&self.app)
    }

    /// `body` signed with the old secret, now, under a fresh message id.
    async fn signed(&self, verb: &str, body: &[u8]) -> Resp {
        let h = self.old.headers(&msg_id(), self.now(), body);
        send(&self.app, verb, body, &h).await
    }
}

/// Asserts that no 401 body contains a secret or an expected MAC.
fn assert_no_leak(what: &str, text: &str, forbidden: &[String]) {
    for f in forbidden {
        assert!(
            !text.contains(f.as_str()),
            "{what}: reveals a secret or an expected MAC ({f:.12}…): {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AUTH (inbound HMAC)
// ---------------------------------------------------------------------------------------------

/// Valid Standard Webhooks headers (our own HMAC, cross-checked with the server's signer) are
/// accepted for create, read and update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_signed_calls_are_accepted() {
    let h = hmac_app().await;
    let body = create("h1");
    let id = msg_id();
    let ts = h.now();
    assert_eq!(
        h.old.sig(&id, ts, &body),
        fast_seller::signing::sign(&h.old.parsed(), &id, ts, &body),
        "our HMAC and the server's signer agree"
    );
    assert_ok(
        "signed create",
        &send(&h.app, "create", &body, &h.old.headers(&id, ts, &body)).await,
    );
    assert_ok("signed read", &h.signed("read", &read("F-h1")).await);
    let update = to_bytes(&update_body(
        "rq-h1u",
        "F-h1",
        json!({"items": [{"item_id": {"value": "l2"}, "external_product_id": MUG, "quantity": 2}]}),
    ));
    assert_ok("signed update", &h.signed("update", &update).await);
    let r = send(&h.app, "read", &read("F-h1"), &[]).await;
    assert_401("unsigned read", &r, "missing header webhook-id");
}

/// AUTH-02. Every tampering of a signed create is 401 and changes nothing: one bit of the
/// body, one space, re-serialised JSON, the id, the timestamp, the MAC (one bit, or cut to the
/// bare `v1,`). The untampered request then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth02_tamper_matrix_is_401_without_state_change() {
    let h = hmac_app().await;
    let body = create("T");
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let ts = h.now();
    let sig = h.old.sig(id, ts, &body);
    let good = hmac_headers(id, &ts.to_string(), &sig);

    // `F-T` → `F-U`: one bit, and still a valid create of another order.
    let mut flipped = body.clone();
    let at = body
        .windows(3)
        .position(|w| w == b"F-T")
        .expect("fast id in body")
        + 2;
    flipped[at] ^= 1;
    let mut spaced = body.clone();
    spaced.insert(1, b' ');
    let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap())
        .expect("pretty");
    let mut mac = STANDARD
        .decode(sig.strip_prefix("v1,").expect("v1"))
        .expect("b64");
    mac[0] ^= 1;
    let bad_mac = format!("v1,{}", STANDARD.encode(&mac));

    let cases: Vec<(&str, Vec<u8>, Headers, &str)> = vec![
        ("body bit flip", flipped, good.clone(), "bad signature"),
        ("extra space in body", spaced, good.clone(), "bad signature"),
        ("re-serialised body", pretty, good.clone(), "bad signature"),
        (
            "id changed",
            body.clone(),
            hmac_headers("msg_p5jXN8AQM9LWM0D4loKWxJeK", &ts.to_string(), &sig),
            "bad signature",
        ),
        (
            "timestamp changed",
            body.clone(),
            hmac_headers(id, &(ts + 1).to_string(), &sig),
            "bad signature",
        ),
        (
            "MAC bit flip",
            body.clone(),
            hmac_headers(id, &ts.to_string(), &bad_mac),
            "bad signature",
        ),
        (
            "bare v1,",
            body.clone(),
            hmac_headers(id, &ts.to_string(), "v1,"),
            "malformed header webhook-signature",
        ),
        (
            "MAC cut to 8 characters",
            body.clone(),
            hmac_headers(id, &ts.to_string(), &sig[..11]),
            "malformed header webhook-signature",
        ),
    ];
    let before = counts(&h.app).await;
    for (what, b, hdrs, needle) in cases {
        let r = send(&h.app, "create", &b, &hdrs).await;
        assert_401(what, &r, needle);
    }
    assert_eq!(counts(&h.app).await, before, "no state change");
    for fast_id in ["F-T", "F-U"] {
        let r = h.signed("read", &read(fast_id)).await;
        assert_rpc(&format!("{fast_id} does not exist"), &r, 404, 5, "");
    }
    assert_ok(
        "the untampered request",
        &send(&h.app, "create", &body, &good).await,
    );
    assert_eq!(counts(&h.app).await.orders, before.orders + 1);
}

/// AUTH-03. Each of the three headers removed in turn, and all of them: 401 naming the
/// missing header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth03_each_missing_header_is_401_naming_it() {
    let h = hmac_app().await;
    let before = counts(&h.app).await;
    let body = create("h3");
    let full = h.old.headers(&msg_id(), h.now(), &body);
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let partial: Vec<(String, String)> =
            full.iter().filter(|(k, _)| k != name).cloned().collect();
        let r = send(&h.app, "create", &body, &partial).await;
        assert_401(
            &format!("without {name}"),
            &r,
            &format!("missing header {name}"),
        );
    }
    let r = send(&h.app, "create", &body, &[]).await;
    assert_401("no headers at all", &r, "missing header webhook-id");
    assert_eq!(counts(&h.app).await, before, "no state change");
    assert_ok("all three", &send(&h.app, "create", &body, &full).await);
}

/// AUTH-04. The timestamp must lie within 300 s of the server's clock, both ways: 299 s and
/// 300 s old are accepted, 301 s old and 6 min old are not; 299 s ahead is accepted, 301 s and
/// 6 min ahead are not. A request signed now is refused once the clock has moved 301 s on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth04_timestamp_window_is_300_seconds_both_ways() {
    let h = hmac_app().await;
    let cases: [(&str, i64, bool); 7] = [
        ("299 s old", -299, true),
        ("300 s old", -300, true),
        ("301 s old", -301, false),
        ("6 min old", -360, false),
        ("299 s ahead", 299, true),
        ("301 s ahead", 301, false),
        ("6 min ahead", 360, false),
    ];
    for (i, (what, offset, accepted)) in cases.into_iter().enumerate() {
        let body = create(&format!("h4-{i}"));
        let hdrs = h.old.headers(&msg_id(), h.now() + offset, &body);
        let r = send(&h.app, "create", &body, &hdrs).await;
        if accepted {
            assert_ok(what, &r);
        } else {
            assert_401(what, &r, "timestamp outside the tolerance window");
        }
    }
    // Signed now, delivered late (the server's clock moves): 299 s later fine, 301 s not.
    let ts = h.now();
    let (early, late) = (create("h4-early"), create("h4-late"));
    let early_hdrs = h.old.headers(&msg_id(), ts, &early);
    let late_hdrs = h.old.headers(&msg_id(), ts, &late);
    h.app.clock.advance_ms(299_000);
    let r = send(&h.app, "create", &early, &early_hdrs).await;
    assert_ok("delivered 299 s after signing", &r);
    h.app.clock.advance_ms(2_000);
    let r = send(&h.app, "create", &late, &late_hdrs).await;
    assert_401(
        "delivered 301 s after signing",
        &r,
        "timestamp outside the tolerance window",
    );
    let r = h.signed("read", &read("F-h4-late")).await;
    assert_rpc("the late create did nothing", &r, 404, 5, "");
}

/// AUTH-07. Rotation: a request signed with either configured secret, or carrying both
/// signatures, is accepted; one signed with a third secret is refused unless it also carries a
/// valid signature. A server configured with the new secret only refuses the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth07_rotation_accepts_either_secret_and_refuses_a_third() {
    let h = hmac_app().await;
    let third = TestSecret::generate();
    let ts = h.now();
    let sign_with = |secrets: &[&TestSecret], n: &str| {
        let body = create(n);
        let id = msg_id();
        let sig = secrets
            .iter()
            .map(|s| s.sig(&id, ts, &body))
            .collect::<Vec<_>>()
            .join(" ");
        (body, hmac_headers(&id, &ts.to_string(), &sig))
    };
    for (what, secrets, ok) in [
        ("old", vec![&h.old], true),
        ("new", vec![&h.new], true),
        ("old and new", vec![&h.old, &h.new], true),
        ("third", vec![&third], false),
        ("third then new", vec![&third, &h.new], true),
    ] {
        let (body, hdrs) = sign_with(&secrets, &format!("h7-{}", what.replace(' ', "-")));
        let r = send(&h.app, "create", &body, &hdrs).await;
        if ok {
            assert_ok(what, &r);
        } else {
            assert_401(what, &r, "bad signature");
        }
    }
    // The old secret is retired.
    let new_only = h.new.parsed();
    let rotated = spawn_app_with(move |s| {
        s.auth = AuthMode::Hmac;
        s.hmac_secrets = vec![new_only];
    })
    .await;
    let ts = now_secs(&rotated);
    let body = create("h7-r");
    let r = send(
        &rotated,
        "create",
        &body,
        &h.old.headers(&msg_id(), ts, &body),
    )
    .await;
    assert_401("old secret after retirement", &r, "bad signature");
    let r = send(
        &rotated,
        "create",
        &body,
        &h.new.headers(&msg_id(), ts, &body),
    )
    .await;
    assert_ok("new secret after retirement", &r);
}

/// AUTH-09. Order of checks: the size limit comes before authentication (a 300 KiB body under a
/// 256 KiB limit is 413 whatever its signature), and authentication before parsing (200 KiB of
/// invalid JSON with a bad signature is 401, not 400; with a good one it is 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth09_size_limit_then_signature_then_parsing() {
    const LIMIT: usize = 256 * 1024;
    let h = hmac_app_with(|s| s.body_limit = LIMIT).await;
    let third = TestSecret::generate();
    let before = counts(&h.app).await;

    let mut big = b"{\"pad\":\"".to_vec();
    big.resize(300 * 1024 - 2, b'x');
    big.extend_from_slice(b"\"}");
    let bad = third.headers(&msg_id(), h.now(), &big);
    let r = send(&h.app, "create", &big, &bad).await;
    assert_rpc("300 KiB, bad signature", &r, 413, 3, &LIMIT.to_string());
    let r = send(&h.app, "create", &big, &[]).await;
    assert_rpc("300 KiB, no signature", &r, 413, 3, &LIMIT.to_string());

    let mut junk = b"{not json ".to_vec();
    junk.resize(200 * 1024, b'x');
    let bad = third.headers(&msg_id(), h.now(), &junk);
    let r = send(&h.app, "create", &junk, &bad).await;
    assert_401("200 KiB invalid JSON, bad signature", &r, "bad signature");
    let good = h.old.headers(&msg_id(), h.now(), &junk);
    let r = send(&h.app, "create", &junk, &good).await;
    assert_rpc("200 KiB invalid JSON, good signature", &r, 400, 3, "");
    assert_eq!(counts(&h.app).await, before, "no state change");
}

/// AUTH-10. A captured signed update replayed 10 times inside the window changes the order
/// once and gets 10 byte-identical answers (the 9 replays marked `Idempotent-Replayed`); 6
/// minutes after signing it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth10_replayed_update_changes_once_and_expires_with_the_window() {
    let h = hmac_app().await;
    assert_ok("create", &h.signed("create", &create("h10")).await);
    let update = to_bytes(&update_body(
        "rq-h10u",
        "F-h10",
        json!({"items": [{"item_id": {"value": "l2"}, "external_product_id": MUG, "quantity": 3}]}),
    ));
    let captured = h.old.headers(&msg_id(), h.now(), &update);
    let before = counts(&h.app).await;
    let mut answers = Vec::new();
    for i in 0..10 {
        if i == 5 {
            h.app.clock.advance_ms(240_000); // still inside the 5 min window
        }
        let r = send(&h.app, "update", &update, &captured).await;
        assert_ok(&format!("replay #{i}"), &r);
        answers.push(r);
    }
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(
            r.bytes, answers[0].bytes,
            "answer #{i} differs from the first"
        );
        let replayed = r.header("idempotent-replayed");
        if i == 0 {
            assert_eq!(replayed, None, "the first answer is not a replay");
        } else {
            assert_eq!(replayed, Some("true"), "answer #{i} is a replay");
        }
    }
    let after = counts(&h.app).await;
    assert_eq!(
        after.idempotency_records,
        before.idempotency_records + 1,
        "one state change"
    );
    assert_eq!(after.orders, before.orders);
    let order = h.signed("read", &read("F-h10")).await.order();
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2));

    h.app.clock.advance_ms(120_000); // 6 min after signing
    let r = send(&h.app, "update", &update, &captured).await;
    assert_401(
        "replay after 6 min",
        &r,
        "timestamp outside the tolerance window",
    );
    assert_eq!(counts(&h.app).await, after, "no state change");
}

/// AUTH-11 (bodies). No 401 body contains a configured secret (any spelling) or the MAC the
/// server expected for the request; each names the failed check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth11_401_bodies_reveal_no_secret_and_no_expected_mac() {
    let h = hmac_app().await;
    let third = TestSecret::generate();
    let body = create("h11");
    let ts = h.now();
    let id = msg_id();
    let mut tampered = body.clone();
    tampered.push(b' ');
    let cases: Vec<(&str, Vec<u8>, Headers, &str)> = vec![
        (
            "unknown secret",
            body.clone(),
            third.headers(&id, ts, &body),
            "bad signature",
        ),
        (
            "tampered body",
            tampered,
            h.old.headers(&id, ts, &body),
            "bad signature",
        ),
        (
            "stale timestamp",
            body.clone(),
            h.old.headers(&id, ts - 400, &body),
            "timestamp",
        ),
        (
            "malformed signature",
            body.clone(),
            hmac_headers(&id, &ts.to_string(), "v2,abc"),
            "webhook-signature",
        ),
    ];
    for (what, b, hdrs, needle) in cases {
        let r = send(&h.app, "create", &b, &hdrs).await;
        assert_401(what, &r, needle);
        let sent_ts = hdrs[1].1.as_str();
        let mut forbidden = h.old.leaks();
        forbidden.extend(h.new.leaks());
        for s in [&h.old, &h.new] {
            forbidden.extend(mac_spellings(&s.mac(&id, sent_ts, &b)));
        }
        assert_no_leak(what, &String::from_utf8_lossy(&r.bytes), &forbidden);
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_fast-seller");

/// `fast-seller <args>` with `envs`, none of the caller's FAST_SELLER_* variables.
fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("FAST_SELLER_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied());
    cmd
}

/// Runs a tool command to completion; asserts success and returns stdout.
fn run_tool(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = command(args, envs).output().expect("run fast-seller");
    assert!(
        out.status.success(),
        "fast-seller {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A running `fast-seller serve` whose stdout and stderr lines are collected.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Server {
    async fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = command(args, envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fast-seller serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let found = lines.lock().expect("lines").iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                let addr = v["addr"].as_str()?;
                addr.rsplit(':').next()?.parse::<u16>().ok()
            });
            if let Some(port) = found {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "fast-seller serve exited with {status}: {:?}",
                    lines.lock().expect("lines")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no listening line within 30 s: {:?}",
                lines.lock().expect("lines")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Server {
            child,
            lines,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn post(&self, verb: &str, body: &[u8], headers: &[(String, String)]) -> Resp {
        let mut req = reqwest::Client::new()
            .post(format!("{}/fast/v1/{verb}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let r = req.send().await.expect("request sent");
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            bytes: r.bytes().await.expect("body").to_vec(),
        }
    }

    /// Stops the process and returns every line it wrote.
    async fn stop(mut self) -> Vec<String> {
        // Let the last log lines through the pipes first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = self.child.kill();
        let _ = self.child.wait();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lines = self.lines.lock().expect("lines").clone();
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `Name: value` lines printed by `fast-seller sign`.
fn parse_header_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn real_now_secs() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(d.as_secs()).expect("fits")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `--auth none` on 0.0.0.0 is refused at start-up (exit code 2, one line naming the listen
/// setting) unless `--insecure-allow-public` is given; then it starts and logs a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_auth_none_on_a_public_address_needs_insecure_allow_public() {
    let dir = TempDir::new().expect("tempdir");
    let data = dir.path().join("data");
    let args = [
        "serve",
        "--auth",
        "none",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        path_str(&data),
        "--log-format",
        "json",
    ];
    let mut child = command(&args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fast-seller serve --auth none --listen 0.0.0.0:0 did not exit within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code 2; stderr: {stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("FAST_SELLER_LISTEN"),
        "the message names the listen setting: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let mut allowed = args.to_vec();
    allowed.push("--insecure-allow-public");
    let server = Server::start(&allowed, &[]).await;
    let r = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert_eq!(r.status().as_u16(), 200);
    let lines = server.stop().await;
    assert!(
        lines.iter().any(|l| l.contains("AUTHENTICATION IS OFF")),
        "a loud warning is logged: {lines:?}"
    );
}

/// `fast-seller keys generate` + `fast-seller sign --auth fast-jwt` produce a header that a
/// `--auth fast-jwt` server on that JWKS file accepts; no header, or a token for another app,
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_keys_generate_and_sign_fast_jwt_are_accepted_by_the_server() {
    let dir = TempDir::new().expect("tempdir");
    let keys = dir.path().join("keys");
    let out = run_tool(&["keys", "generate", "--dir", path_str(&keys)], &[]);
    assert!(out.contains("jwks.json"), "{out}");
    let body = create("cli-jwt");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).expect("write body");
    let jwks = keys.join("jwks.json");
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "serve",
            "--auth",
            "fast-jwt",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            path_str(&data),
            "--log-format",
            "json",
        ],
        &[
            ("FAST_SELLER_JWKS", path_str(&jwks)),
            ("FAST_SELLER_APP_ID", APP_ID),
        ],
    )
    .await;
    let r = server.post("create", &body, &[]).await;
    assert_401("no token", &r, "missing header authorization");

    let sign = |app_id: &str| {
        let out = run_tool(
            &[
                "sign",
                "--auth",
                "fast-jwt",
                "--body",
                path_str(&body_file),
                "--key",
                path_str(&keys.join("private.pem")),
                "--app-id",
                app_id,
            ],
            &[],
        );
        let headers = parse_header_lines(&out);
        assert_eq!(headers.len(), 1, "one header line: {out}");
        assert_eq!(headers[0].0, "Authorization");
        assert!(headers[0].1.starts_with("Bearer "), "{out}");
        headers
    };
    let r = server.post("create", &body, &sign("another-app")).await;
    assert_401("token for another app", &r, "wrong audience");
    let r = server.post("create", &body, &sign(APP_ID)).await;
    assert_ok("signed by `fast-seller sign`", &r);
    drop(server);
}

/// `--jwt-max-lifetime` on the real binary: with `1h`, a token `fast-seller sign` makes for
/// two hours is refused (401, token lifetime), one for 30 minutes accepted; a value outside
/// 1m–30d stops start-up naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_jwt_max_lifetime_refuses_longer_tokens() {
    let dir = TempDir::new().expect("tempdir");
    let keys = dir.path().join("keys");
    run_tool(&["keys", "generate", "--dir", path_str(&keys)], &[]);
    let body = create("cli-jlt");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).expect("write body");
    let data = dir.path().join("data");
    let envs = [
        (
            "FAST_SELLER_JWKS",
            path_str(&keys.join("jwks.json")).to_string(),
        ),
        ("FAST_SELLER_APP_ID", APP_ID.to_string()),
    ];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = |lifetime: &'static str| {
        vec![
            "serve".to_string(),
            "--auth".into(),
            "fast-jwt".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            path_str(&data).into(),
            "--log-format".into(),
            "json".into(),
            "--jwt-max-lifetime".into(),
            lifetime.into(),
        ]
    };
    let refused = serve("31d");
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    let out = command(&refused, &envs).output().expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("jwt_max_lifetime"),
        "31d must stop start-up naming the setting: {stderr}"
    );
    let args = serve("1h");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, &envs).await;
    let sign = |ttl: &str| {
        let out = run_tool(
            &[
                "sign",
                "--auth",
                "fast-jwt",
                "--body",
                path_str(&body_file),
                "--key",
                path_str(&keys.join("private.pem")),
                "--app-id",
                APP_ID,
                "--ttl",
                ttl,
            ],
            &[],
        );
        parse_header_lines(&out)
    };
    let r = server.post("create", &body, &sign("7200")).await;
    assert_401("a two-hour token under a 1h cap", &r, "token lifetime");
    let r = server.post("create", &body, &sign("1800")).await;
    assert_ok("a 30-minute token", &r);
    drop(server);
}

/// `fast-seller sign --auth hmac` (first secret of FAST_SELLER_HMAC_SECRETS) produces headers
/// that a `--auth hmac` server accepts; and (AUTH-11, logs) the server's log — JSON, with its
/// own crate at trace level — never contains a secret or an expected MAC, while it does record
/// each refusal by check name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sign_hmac_is_accepted_and_logs_reveal_no_secret() {
    let dir = TempDir::new().expect("tempdir");
    let (old, new, third) = (
        TestSecret::generate(),
        TestSecret::generate(),
        TestSecret::generate(),
    );
    let secrets = format!("{},{}", old.text, new.text);
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "serve",
            "--auth",
            "hmac",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            path_str(&data),
            "--log-format",
            "json",
        ],
        &[
            ("FAST_SELLER_HMAC_SECRETS", secrets.as_str()),
            ("RUST_LOG", "info,fast_seller=trace"),
        ],
    )
    .await;
    let body = create("cli-hmac");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).expect("write body");
    let out = run_tool(
        &["sign", "--auth", "hmac", "--body", path_str(&body_file)],
        &[("FAST_SELLER_HMAC_SECRETS", secrets.as_str())],
    );
    let headers = parse_header_lines(&out);
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["webhook-id", "webhook-timestamp", "webhook-signature"],
        "{out}"
    );
    let r = server.post("create", &body, &headers).await;
    assert_ok("signed by `fast-seller sign`", &r);

    // Refusals whose logs must not leak (real time: the binary has no manual clock).
    let mut forbidden = old.leaks();
    forbidden.extend(new.leaks());
    let mut tampered = body.clone();
    tampered.push(b'\n');
    let now = real_now_secs();
    let id = msg_id();
    let cases: Vec<(&str, Vec<u8>, Headers)> = vec![
        (
            "unknown secret",
            body.clone(),
            third.headers(&id, now, &body),
        ),
        ("tampered body", tampered, old.headers(&id, now, &body)),
        (
            "stale timestamp",
            body.clone(),
            old.headers(&id, now - 400, &body),
        ),
    ];
    for (what, b, hdrs) in cases {
        let r = server.post("create", &b, &hdrs).await;
        assert_eq!(r.status, 401, "{what}: {}", show(&r));
        let sent_ts = hdrs[1].1.as_str();
        for s in [&old, &new] {
            forbidden.extend(mac_spellings(&s.mac(&id, sent_ts, &b)));
        }
        assert_no_leak(what, &String::from_utf8_lossy(&r.bytes), &forbidden);
    }
    let lines = server.stop().await;
    let refusals = lines
        .iter()
        .filter(|l| l.contains("authentication failed"))
        .count();
    assert!(
        refusals >= 3,
        "the log records each refusal (so the scan below saw the right lines): {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("bad_signature"))
            && lines.iter().any(|l| l.contains("timestamp_outside_window")),
        "refusals are logged by check name: {lines:#?}"
    );
    let all = lines.join("\n");
    assert_no_leak("server log", &all, &forbidden);
}

// ---------------------------------------------------------------------------------------------
// HTTP-08, HTTP-09, HTTP-13: connection-level limits (raw TCP)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Raw {
    /// A response with this status arrived (completely, or before the connection closed).
    Status(u16),
    /// The connection closed (or was reset) without a response.
    Closed,
    /// Nothing within the wait.
    Silent,
}

fn host_port(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

fn status_of(buf: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(buf);
    let line = text.lines().next()?;
    if !line.starts_with("HTTP/1.") {
        return None;
    }
    line.split(' ').nth(1)?.parse().ok()
}

/// Reads one response (head plus Content-Length body) from `rd` within `wait`.
async fn read_response(rd: &mut (impl AsyncRead + Unpin), wait: Duration) -> Raw {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    if k.trim().eq_ignore_ascii_case("content-length") {
                        v.trim().parse::<usize>().ok()
                    } else {
                        None
                    }
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                if let Some(status) = status_of(&buf) {
                    return Raw::Status(status);
                }
            }
        }
        match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
            Err(_) => return Raw::Silent,
            Ok(Ok(0) | Err(_)) => {
                return status_of(&buf).map_or(Raw::Closed, Raw::Status);
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `bytes` on a fresh connection (write errors ignored: the server may close early) and
/// reads one response within `wait`.
async fn raw_exchange(app: &TestApp, bytes: Vec<u8>, wait: Duration) -> Raw {
    let stream = TcpStream::connect(host_port(app)).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        let _ = wr.flush().await;
        wr
    });
    let got = read_response(&mut rd, wait).await;
    writer.abort();
    got
}

fn healthz_with_headers(extra: usize, value_len: usize) -> Vec<u8> {
    let mut req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".to_string();
    let value = "v".repeat(value_len);
    for i in 0..extra {
        req.push_str(&format!("X-Filler-{i}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A signed create must still go through (the "normal traffic" after abuse).
async fn assert_still_serving(h: &HmacApp, n: &str) {
    assert_ok(
        &format!("signed create {n} after the abuse"),
        &h.signed("create", &create(n)).await,
    );
}

/// HTTP-08. 96 headers are fine; 97 headers, or one header of 130 KiB, are refused with 431
/// (or the connection is closed); the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http08_too_many_or_too_large_headers_are_431_and_the_server_keeps_serving() {
    let h = hmac_app().await;
    let wait = Duration::from_secs(5);
    // Host + Connection + 94 fillers = 96 headers.
    let got = raw_exchange(&h.app, healthz_with_headers(94, 8), wait).await;
    assert_eq!(got, Raw::Status(200), "96 headers are within actix's limit");
    let got = raw_exchange(&h.app, healthz_with_headers(95, 8), wait).await;
    assert!(
        matches!(got, Raw::Status(431) | Raw::Closed),
        "97 headers: expected 431 or close, got {got:?}"
    );
    let got = raw_exchange(&h.app, healthz_with_headers(1, 130 * 1024), wait).await;
    assert!(
        matches!(got, Raw::Status(431) | Raw::Closed),
        "one 130 KiB header: expected 431 or close, got {got:?}"
    );
    assert_still_serving(&h, "h8").await;
}

/// HTTP-09. A head trickled one byte per 300 ms is cut off by the server's head timeout
/// (actix's client_request_timeout, 5 s): 408 or close well within 10 s; the server keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http09_slow_head_gets_408_or_close_within_10_seconds() {
    let h = hmac_app().await;
    let stream = TcpStream::connect(host_port(&h.app))
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    // 100+ bytes at 300 ms each would take over 30 s to complete.
    let head = format!(
        "POST /fast/v1/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(40)
    );
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for b in head.bytes() {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let got = read_response(&mut rd, Duration::from_secs(10)).await;
    let elapsed = start.elapsed();
    writer.abort();
    assert!(
        matches!(got, Raw::Status(408) | Raw::Closed),
        "slow head: expected 408 or close, got {got:?} after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "cut off after {elapsed:?}"
    );
    assert_still_serving(&h, "h9").await;
}

/// HTTP-13. 200 idle keep-alive connections (each has made one request) do not keep normal
/// requests from being answered, and the server closes them after its keep-alive time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http13_idle_keep_alive_connections_do_not_block_traffic() {
    let h = hmac_app().await;
    let addr = host_port(&h.app);
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        let got = read_response(&mut s, Duration::from_secs(5)).await;
        assert_eq!(got, Raw::Status(200), "keep-alive connection #{i}");
        idle.push(s);
    }
    let start = Instant::now();
    let traffic = async {
        for i in 0..10 {
            assert_still_serving(&h, &format!("h13-{i}")).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), traffic)
        .await
        .expect("10 requests beside 200 idle connections are answered within 20 s");
    let took = start.elapsed();
    // actix's keep-alive is 5 s: every idle connection is closed by then.
    let closed = futures_util::future::join_all(
        idle.iter_mut()
            .map(|s| read_response(s, Duration::from_secs(15))),
    )
    .await;
    let still_open = closed.iter().filter(|r| **r != Raw::Closed).count();
    assert_eq!(
        still_open, 0,
        "idle connections not closed after the keep-alive time (traffic took {took:?})"
    );
}
