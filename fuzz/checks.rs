//! The body of every fuzz target (FUZZ-01), as plain functions over `&[u8]`.
//!
//! Two users include this file with `#[path]`: the libFuzzer targets in `fuzz_targets/`
//! (nightly, `cargo fuzz`) and `tests/fuzz_corpus.rs`, which replays every committed corpus
//! file through the same functions on stable. A check fails by panicking, so "no panic" and
//! the stated properties are the same thing to both.
//!
//! Fixed inputs: the file JWKS next to this file (`jwks.json`, one RSA key `fuzz-k1`), a
//! `ManualClock` that never moves, two Standard Webhooks secrets and the bundled demo catalog.

use std::fmt::Debug;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use fast_seller::auth::jwks::{parse_jwks, JwksCache, JwksSource};
use fast_seller::auth::jwt::{bearer_token, JwtVerifier, DEFAULT_ISSUER};
use fast_seller::auth::AuthError;
use fast_seller::catalog::{SharedCatalog, DEMO_CATALOG};
use fast_seller::clock::{Clock as _, ManualClock};
use fast_seller::domain::limits::Limits;
use fast_seller::domain::{self, Catalog, ErrorKind, IdSource};
use fast_seller::metrics::Metrics;
use fast_seller::protocol::Verb;
use fast_seller::protocol::{
    CreateRequest, DeleteRequest, EntityType, FastOrder, Header, Int64, Money, OrderResponse,
    OrderResponseSegment, ReadRequest, SegmentStatus, UpdateRequest, MAX_MONEY,
};
use fast_seller::service::{Caller, Service, ServiceSettings};
use fast_seller::signing::{
    self, WebhookSecret, DEFAULT_TOLERANCE_SECS, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use fast_seller::store::sled::SledStore;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// jwt_token: bytes as a bearer token (and as a JWKS document).

/// The verifier's clock: 2023-11-14T22:13:20Z, in seconds.
pub const JWT_NOW_SECS: u64 = 1_700_000_000;
/// The `aud` the verifier requires.
pub const JWT_APP_ID: &str = "fuzz-app";
/// The `kid` of the one key in `jwks.json`.
pub const JWT_KID: &str = "fuzz-k1";
/// The fixed JWKS (public key only; the seed tokens were signed with its private half, which
/// is not kept).
pub const JWKS: &str = include_str!("jwks.json");

struct JwtFixture {
    runtime: tokio::runtime::Runtime,
    verifier: JwtVerifier,
    clock: ManualClock,
}

fn jwt_fixture() -> &'static JwtFixture {
    static FIXTURE: OnceLock<JwtFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime");
        // The cache reads a file: write the fixed JWKS once, load it, remove it. With the
        // clock standing still the cache never fetches again (keys fresh for 6 h, at most
        // one fetch a minute), so every input sees the same key set.
        let path =
            std::env::temp_dir().join(format!("fast-seller-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&path, JWKS).expect("write the fixed JWKS");
        let cache = Arc::new(JwksCache::new(JwksSource::File(path.clone())).expect("cache"));
        let clock = ManualClock::new(JWT_NOW_SECS * 1000);
        let loaded = runtime.block_on(cache.load(&clock));
        let _ = std::fs::remove_file(&path);
        assert_eq!(loaded.expect("the fixed JWKS loads"), 1, "one usable key");
        JwtFixture {
            runtime,
            verifier: JwtVerifier::new(DEFAULT_ISSUER, JWT_APP_ID, cache),
            clock,
        }
    })
}

/// An auth error's Display goes into 401 bodies and logs: short and printable, whatever the
/// attacker sent.
fn check_auth_message(e: &AuthError) {
    let shown = e.to_string();
    assert!(
        shown.len() <= 200 && !shown.chars().any(char::is_control),
        "error message is too long or has control characters: {shown:?}"
    );
}

/// `data` (lossy UTF-8) as a compact token, and as the whole `Authorization` header value.
/// Properties: no panic; an accepted token authenticates as the configured app; the header
/// path agrees with `bearer_token` + `verify_token`; error messages stay short and printable;
/// the key cache is never refetched. Also feeds `data` to `parse_jwks`.
pub fn jwt_token(data: &[u8]) {
    let _ = parse_jwks(data);

    let f = jwt_fixture();
    let text = String::from_utf8_lossy(data);
    let direct = f.runtime.block_on(f.verifier.verify_token(&text, &f.clock));
    match &direct {
        Ok(principal) => assert_eq!(principal.app_id.as_deref(), Some(JWT_APP_ID)),
        Err(e) => check_auth_message(e),
    }

    let headers = vec![("Authorization", text.as_ref())];
    let via_header = f.runtime.block_on(f.verifier.verify(&headers, &f.clock));
    let expected = match bearer_token(&headers) {
        Ok(token) => f.runtime.block_on(f.verifier.verify_token(token, &f.clock)),
        Err(e) => Err(e),
    };
    assert_eq!(via_header, expected, "verify disagrees with bearer_token");
    if let Err(e) = &via_header {
        check_auth_message(e);
    }
    assert_eq!(f.verifier.jwks().fetches(), 1, "the JWKS was fetched again");
}

/// Whether `data` authenticates, as a compact token or as an `Authorization` value.
pub fn jwt_accepted(data: &[u8]) -> bool {
    let f = jwt_fixture();
    let text = String::from_utf8_lossy(data);
    let headers = vec![("Authorization", text.as_ref())];
    f.runtime
        .block_on(f.verifier.verify_token(&text, &f.clock))
        .is_ok()
        || f.runtime
            .block_on(f.verifier.verify(&headers, &f.clock))
            .is_ok()
}

// ---------------------------------------------------------------------------------------------
// signature_headers: Standard Webhooks headers and body.

/// The verifier's clock, in seconds (the Standard Webhooks reference vector's timestamp).
pub const WEBHOOK_NOW_SECS: i64 = 1_614_265_330;
/// The accepted secrets (rotation: both verify). The first is the reference vector's.
pub const WEBHOOK_SECRETS: [&str; 2] = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_ZmFzdC1zZWxsZXIgZnV6eiBzZWNyZXQgbnVtYmVyIDI=",
];

struct WebhookFixture {
    secrets: Vec<WebhookSecret>,
    clock: ManualClock,
}

fn webhook_fixture() -> &'static WebhookFixture {
    static FIXTURE: OnceLock<WebhookFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| WebhookFixture {
        secrets: WEBHOOK_SECRETS
            .iter()
            .map(|s| WebhookSecret::parse(s).expect("fixed secret"))
            .collect(),
        clock: ManualClock::new(WEBHOOK_NOW_SECS as u64 * 1000),
    })
}

/// Splits the framing `webhook-id \n webhook-timestamp \n webhook-signature \n body`: the
/// first three lines are the header values (lossy UTF-8; a header whose line is missing is
/// absent), the rest is the body, byte for byte.
pub fn split_webhook_frame(data: &[u8]) -> (Vec<String>, &[u8]) {
    let mut lines = Vec::with_capacity(3);
    let mut rest = data;
    while lines.len() < 3 {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if !rest.is_empty() {
                lines.push(String::from_utf8_lossy(rest).into_owned());
            }
            return (lines, &[]);
        };
        lines.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end + 1..];
    }
    (lines, rest)
}

/// The inverse of [`split_webhook_frame`] for three headers.
pub fn webhook_frame(id: &str, timestamp: &str, signature: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{id}\n{timestamp}\n{signature}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// The header lines of a frame under their Standard Webhooks names.
fn frame_headers(lines: &[String]) -> Vec<(&'static str, &str)> {
    [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE]
        .into_iter()
        .zip(lines.iter().map(String::as_str))
        .collect()
}

/// Whether the framed headers and body verify.
pub fn webhook_accepted(data: &[u8]) -> bool {
    let f = webhook_fixture();
    let now = i64::try_from(f.clock.now_ms() / 1000).expect("clock in range");
    let (lines, body) = split_webhook_frame(data);
    let headers = frame_headers(&lines);
    signing::verify(&f.secrets, &headers, body, now, DEFAULT_TOLERANCE_SECS).is_ok()
}

/// Properties: no panic; an accepted request fails once its body changes; whenever the id and
/// timestamp are acceptable, headers made by `signing::headers` with either secret verify
/// (also with the fuzzed signature entries in front), and are refused only for the window;
/// the first line, read as a secret, never panics and a parsed secret signs and verifies.
pub fn signature_headers(data: &[u8]) {
    let f = webhook_fixture();
    let now = i64::try_from(f.clock.now_ms() / 1000).expect("clock in range");
    let (lines, body) = split_webhook_frame(data);
    let headers = frame_headers(&lines);
    let verify = |h: &Vec<(&str, &str)>, body: &[u8]| {
        signing::verify(&f.secrets, h, body, now, DEFAULT_TOLERANCE_SECS).map_err(AuthError::from)
    };

    let result = verify(&headers, body);
    if result.is_ok() {
        let mut tampered = body.to_vec();
        tampered.push(b'x');
        assert_eq!(
            verify(&headers, &tampered),
            Err(AuthError::BadSignature),
            "a changed body still verified"
        );
    }

    if let [id, timestamp, ..] = lines.as_slice() {
        let canonical = timestamp
            .parse::<i64>()
            .ok()
            .filter(|t| *t >= 0 && t.to_string() == *timestamp);
        if let (Some(ts), false) = (canonical, id.is_empty() || id.contains('.')) {
            let in_window =
                (i128::from(now) - i128::from(ts)).abs() <= i128::from(DEFAULT_TOLERANCE_SECS);
            for secret in &f.secrets {
                let signed = signing::headers(secret, id, ts, body);
                let good = signed[2].1.clone();
                let mut h: Vec<(&str, &str)> =
                    signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let expected = if in_window {
                    Ok(())
                } else {
                    Err(AuthError::TimestampOutsideWindow)
                };
                assert_eq!(verify(&h, body), expected, "freshly signed headers");
                if let Some(fuzzed) = lines.get(2) {
                    let both = format!("{fuzzed} {good}");
                    h[2].1 = &both;
                    assert_eq!(verify(&h, body), expected, "signature list {both:?}");
                }
            }
        }
    }

    if let Some(first) = lines.first() {
        if let Ok(secret) = WebhookSecret::parse(first) {
            assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
            let h = signing::headers(&secret, "msg_fuzz", now, body);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(
                signing::verify(&[secret], &h, body, now, DEFAULT_TOLERANCE_SECS),
                Ok(())
            );
        }
        let _ = signing::parse_secrets(first);
    }
}

// ---------------------------------------------------------------------------------------------
// request_body: bytes as the body of create, read, update and delete.

/// Deterministic ids for the domain (the service uses random UUIDs).
struct Counter(u64);

impl IdSource for Counter {
    fn new_id(&mut self) -> String {
        self.0 += 1;
        format!("fz-{}", self.0)
    }
}

/// The create request behind the fixed carts (the shape of tests/it/checkout.rs).
pub const BASE_CREATE: &str = r#"{"type":"ENTITY_TYPE_ORDER","app_id":"test-app",
 "request_id":{"value":"base-1"},"order":{"is_cart":true,"order":{
 "id":{"value":"F-100"},"order_type":"ORDER_TYPE_CART","status":"ORDER_STATUS_CART",
 "bill_to":{},"lines":[
  {"id":{"value":"L-1"},"external_product_id":"hoodie-01","quantity":1},
  {"id":{"value":"L-2"},"external_product_id":"tee-01","external_variant_id":"tee-01-M",
   "quantity":2}]}}}"#;

/// Segments that take the fresh cart through a checkout: address, plan, option, coupon.
pub const BASE_CHECKOUT: &str = r#"{"type":"ENTITY_TYPE_ORDER","order":{
 "order_id":{"value":"F-100"},"is_cart":true,
 "bill_to":{"first_name":"Ada","state_province_code":"CA","country_code":"US"},
 "shipments":[{"ship_to":{"state_province_code":"NY","country_code":"US"},
   "line_refs":[{"id":{"value":"L-1"},"quantity":1},{"id":{"value":"L-2"},"quantity":2}]}],
 "coupon":{"code":"SAVE10"}}}"#;

/// Converts the checked-out cart to an order.
pub const BASE_CONVERT: &str = r#"{"type":"ENTITY_TYPE_ORDER","order":{
 "order_id":{"value":"F-100"},"convert_cart_to_order":true,
 "convert_mode":"CART_TO_ORDER_CONVERT_ONLY"}}"#;

struct Orders {
    catalog: Catalog,
    /// A fresh cart; the same after checkout (plan, option, coupon); converted to an order.
    bases: Vec<FastOrder>,
}

fn orders() -> &'static Orders {
    static ORDERS: OnceLock<Orders> = OnceLock::new();
    ORDERS.get_or_init(|| {
        let catalog = Catalog::parse(DEMO_CATALOG).expect("demo catalog");
        let create: CreateRequest = parse(BASE_CREATE.as_bytes()).expect("base create");
        let cart = domain::create_cart(
            create.order.order,
            create.order.is_cart,
            &catalog,
            &Limits::default(),
            &mut Counter(0),
        )
        .expect("base cart");
        let mut bases = vec![cart];
        for update in [BASE_CHECKOUT, BASE_CONVERT] {
            let req: UpdateRequest = parse(update.as_bytes()).expect("base update");
            let last = bases.last().expect("a base");
            let outcome = domain::apply_update(
                last,
                &req.order,
                &catalog,
                &Limits::default(),
                &mut Counter(100),
            );
            assert!(
                outcome.statuses.iter().all(|s| s.status),
                "base update refused: {:?}",
                outcome.statuses
            );
            bases.push(outcome.order);
        }
        Orders { catalog, bases }
    })
}

/// What the service's `parse` accepts: UTF-8 as a whole, one JSON value of shape `T`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    std::str::from_utf8(body).ok()?;
    serde_json::from_slice(body).ok()
}

/// Parses `body` as `T`; when that succeeds, the body re-serialised (through
/// `serde_json::Value`) parses again to the same value. Covers the request types that only
/// implement `Deserialize`.
fn parse_and_reparse<T: DeserializeOwned + Debug>(body: &[u8], what: &str) -> Option<T> {
    let first: T = parse(body)?;
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        // serde_json skips fields a type does not declare without its 128-level depth limit,
        // so a body nested deeper inside such a field is a valid `T` but not a `Value`.
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => return Some(first),
        Err(e) => panic!("{what}: the body parses, but not as a JSON value: {e}"),
    };
    let again = serde_json::to_vec(&value).expect("a JSON value serialises");
    let second: T = parse(&again).unwrap_or_else(|| {
        panic!(
            "{what}: the re-serialised body no longer parses: {}",
            String::from_utf8_lossy(&again)
        )
    });
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "{what}: the re-serialised body parses to another value"
    );
    Some(first)
}

/// Serialising a typed value and parsing it back is stable: money is rounded to cents on the
/// first write, after which write → parse → write gives the same bytes and an equal value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, what: &str) {
    let first = serde_json::to_vec(value).expect("serialise");
    let parsed: T = serde_json::from_slice(&first).unwrap_or_else(|e| {
        panic!(
            "{what}: own output does not parse ({e}): {}",
            String::from_utf8_lossy(&first)
        )
    });
    let second = serde_json::to_vec(&parsed).expect("serialise again");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "{what}: serialisation is not stable"
    );
    let reparsed: T = serde_json::from_slice(&second).expect("parse again");
    assert_eq!(reparsed, parsed, "{what}: re-parse differs");
}

fn amount(m: Option<Money>) -> Decimal {
    m.unwrap_or_default().0
}

/// A priced order adds up: per line and in total, discounts never above the subtotal.
fn check_totals(order: &FastOrder, what: &str) {
    let Some(sub_total) = order.sub_total else {
        return;
    };
    let lines_sub: Decimal = order.lines.iter().map(|l| amount(l.subtotal_amount)).sum();
    let lines_disc: Decimal = order
        .lines
        .iter()
        .map(|l| amount(l.line_discount_amount))
        .sum();
    assert_eq!(sub_total.0, lines_sub, "{what}: sub_total != sum of lines");
    assert_eq!(
        amount(order.total_discounts),
        lines_disc,
        "{what}: total_discounts != sum of line discounts"
    );
    assert!(
        lines_disc >= Decimal::ZERO && lines_disc <= sub_total.0,
        "{what}: discounts {lines_disc} outside 0..={}",
        sub_total.0
    );
    for line in &order.lines {
        assert_eq!(
            amount(line.total_amount),
            amount(line.subtotal_amount) - amount(line.line_discount_amount)
                + amount(line.tax_amount),
            "{what}: line {:?} does not add up",
            line.id
        );
    }
    assert_eq!(
        amount(order.total_amount),
        sub_total.0 - amount(order.total_discounts)
            + amount(order.total_tax)
            + amount(order.total_shipping),
        "{what}: total_amount does not add up"
    );
}

/// What the service answers with for `order`: it serialises, and is JSON.
fn check_response(header: &Header, order: &FastOrder, status: Option<&[SegmentStatus]>) {
    let body = serde_json::to_vec(&OrderResponse {
        entity_type: EntityType::Order,
        request_id: header.request_id.as_ref(),
        order: OrderResponseSegment { order, status },
    })
    .expect("the answer serialises");
    serde_json::from_slice::<Value>(&body).expect("the answer is JSON");
}

fn check_order(order: &FastOrder, what: &str) {
    round_trip(order, what);
    check_totals(order, what);
}

/// `data` as the body of each verb. Properties: no panic; a body that parses re-serialises
/// and re-parses to the same value (typed round trip for `FastOrder` and `Address`, through
/// `Value` for the request types); every order the domain returns round-trips, adds up and
/// serialises as an answer.
pub fn request_body(data: &[u8]) {
    let o = orders();
    // Only parsed: `Header` skips the segment it does not declare, and serde_json skips
    // without the 128-level depth limit, so a header can parse where a `Value` cannot. The
    // request types flatten the header, which buffers the whole body under that limit.
    let _ = parse::<Header>(data);

    if let Some(req) = parse_and_reparse::<CreateRequest>(data, "create") {
        let _ = req.header.entity();
        round_trip(&req.order.order, "create: incoming order");
        let lines = req.order.order.lines.len();
        if let Ok(cart) = domain::create_cart(
            req.order.order.clone(),
            req.order.is_cart,
            &o.catalog,
            &Limits::default(),
            &mut Counter(0),
        ) {
            assert_eq!(cart.lines.len(), lines, "create: lines lost or added");
            check_order(&cart, "create: new cart");
            check_response(&req.header, &cart, None);
        }
    }

    if let Some(req) = parse_and_reparse::<ReadRequest>(data, "read") {
        let _ = req.header.entity();
        if let Some(lookup) = &req.order {
            let _ = (lookup.fast_id(), lookup.seller_id());
        }
    }

    if let Some(req) = parse_and_reparse::<UpdateRequest>(data, "update") {
        let seg = &req.order;
        if let Some(bill_to) = &seg.bill_to {
            round_trip(bill_to, "update: bill_to");
        }
        round_trip(&seg.extra, "update: unknown fields");
        let lookup = seg.lookup();
        let _ = (lookup.fast_id(), lookup.seller_id());
        if domain::validate_update(seg).is_ok() {
            for base in &o.bases {
                let outcome = domain::apply_update(
                    base,
                    seg,
                    &o.catalog,
                    &Limits::default(),
                    &mut Counter(1000),
                );
                check_order(&outcome.order, "update: merged order");
                check_response(&req.header, &outcome.order, Some(&outcome.statuses));
                let _ = domain::event_for(base, &outcome.order);
            }
        }
    }

    if let Some(req) = parse_and_reparse::<DeleteRequest>(data, "delete") {
        let _ = (req.order.fast_id(), req.order.seller_id());
        for base in &o.bases {
            let deleted = domain::delete(base);
            assert_eq!(domain::delete(&deleted), deleted, "delete is idempotent");
            let _ = domain::event_for(base, &deleted);
            check_order(&deleted, "delete");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// money: Money::parse and the Int64 / Money wire forms.

/// `true` for `-?digits.dd`: the wire form of an amount.
fn is_two_decimals(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    match digits.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.len() == 2
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Largest amount with two decimals that a `Decimal` (96-bit mantissa) can hold.
fn max_two_decimals() -> Decimal {
    Decimal::MAX / Decimal::ONE_HUNDRED
}

/// `to_wire` writes exactly two decimals where a `Decimal` can hold them (above about 7.9e26
/// it cannot: `rescale` keeps what fits); `parse(to_wire(x)) == round(x)` for amounts below
/// `MAX_MONEY`, and from there on `parse` refuses the amount.
fn check_wire(x: Money, what: &str) {
    let wire = x.to_wire();
    let rounded = Money::cents(x.0);
    assert!(
        is_two_decimals(&wire) || rounded.0.abs() > max_two_decimals(),
        "{what}: to_wire({x:?}) = {wire:?} is not -?digits.dd"
    );
    if rounded.0.abs() >= Decimal::from(MAX_MONEY) {
        assert!(
            Money::parse(&wire).is_err(),
            "{what}: {wire} is out of range and must be refused"
        );
        return;
    }
    assert_eq!(
        Money::parse(&wire),
        Ok(Money::cents(x.0)),
        "{what}: parse(to_wire({x:?})) != round({x:?})"
    );
    assert_eq!(
        serde_json::from_str::<Money>(&serde_json::to_string(&x).expect("serialise")).ok(),
        Some(Money::cents(x.0)),
        "{what}: Money's serde round trip"
    );
}

/// Properties: no panic; for every amount `Money::parse` accepts (and every decimal made from
/// the input's bits) the wire form has two decimals and parses back to the amount rounded to
/// cents; a JSON string and a JSON number deserialise as `Money::parse` says; `Int64`
/// round-trips through its wire form.
pub fn money(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = Money::parse(&text);
    if let Ok(x) = parsed {
        check_wire(x, "parsed");
    }
    let quoted = serde_json::to_string(text.as_ref()).expect("a string serialises");
    assert_eq!(
        serde_json::from_str::<Money>(&quoted).ok(),
        parsed.clone().ok(),
        "Money from the JSON string {quoted}"
    );
    if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(&text) {
        // A JSON number is read through its exact text.
        assert_eq!(
            serde_json::from_str::<Money>(&text).ok(),
            Money::parse(&n.to_string()).ok(),
            "Money from the JSON number {text}"
        );
    }

    if let Ok(n) = serde_json::from_str::<Int64>(&text) {
        let wire = serde_json::to_string(&n).expect("serialise");
        assert_eq!(serde_json::from_str::<Int64>(&wire).ok(), Some(n), "{wire}");
    }

    if let Some(bits) = data.get(..16) {
        let word = |i: usize| u32::from_le_bytes([bits[i], bits[i + 1], bits[i + 2], bits[i + 3]]);
        let x = Decimal::from_parts(
            word(0),
            word(4),
            word(8),
            bits[12] & 1 == 1,
            u32::from(bits[13]) % (Decimal::MAX_SCALE + 1),
        );
        check_wire(Money(x), "from bits");
        let i = i64::from_le_bytes([
            bits[0], bits[1], bits[2], bits[3], bits[4], bits[5], bits[6], bits[7],
        ]);
        let wire = serde_json::to_string(&Int64(i)).expect("serialise");
        assert_eq!(serde_json::from_str::<Int64>(&wire).ok(), Some(Int64(i)));
        let quoted = format!("\"{i}\"");
        assert_eq!(serde_json::from_str::<Int64>(&quoted).ok(), Some(Int64(i)));
    }
}

// ---------------------------------------------------------------------------------------------
// Service::handle end to end
// ---------------------------------------------------------------------------------------------

/// One service for the whole process: a sled store in a fresh temporary directory, the demo
/// catalog, default limits, a clock that never moves, and a runtime to drive it.
struct ServiceHarness {
    runtime: tokio::runtime::Runtime,
    service: Arc<Service>,
}

fn service_harness() -> &'static ServiceHarness {
    static HARNESS: OnceLock<ServiceHarness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // The store cannot be removed while the process uses it: each run removes the ones
        // left by processes that have ended.
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ended = name
                .strip_prefix("fast-seller-fuzz-")
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists());
            if ended {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("fast-seller-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SledStore::open(&dir, 16 * 1024 * 1024).expect("sled store");
        let catalog = Catalog::parse(DEMO_CATALOG).expect("demo catalog");
        let service = Service::new(
            Arc::new(store),
            Arc::new(SharedCatalog::new(catalog, "demo", 0)),
            Arc::new(ManualClock::new(1_767_225_600_000)),
            ServiceSettings::default(),
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(Metrics::new().expect("metrics")),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        ServiceHarness {
            runtime,
            service: Arc::new(service),
        }
    })
}

/// The first byte picks the verb (create, read, update, delete), the rest is the body, run
/// through `Service::handle` as an unauthenticated caller against one long-lived store.
/// Invariants: no panic; no input makes the server fail on its own account (an internal
/// error or an unavailable store); every answer is a JSON object; an order an answer names
/// can be read back afterwards (nothing stored poisons later reads).
pub fn service_handle(data: &[u8]) {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let verbs = [Verb::Create, Verb::Read, Verb::Update, Verb::Delete];
    let verb = verbs[usize::from(*first) % verbs.len()];
    let h = service_harness();
    let caller = Caller::default();
    h.runtime.block_on(async {
        match h.service.handle(verb, body, &caller).await {
            Ok(reply) => {
                let answer: Value = serde_json::from_slice(&reply.body).expect("an answer is JSON");
                assert!(answer.is_object(), "{verb:?}: the answer is not an object");
                let id = answer
                    .pointer("/order/order/id/value")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty());
                if let Some(id) = id {
                    let read = serde_json::json!({
                        "type": "ENTITY_TYPE_ORDER",
                        "order": {"order_id": {"value": id}}
                    });
                    let again = h
                        .service
                        .handle(Verb::Read, read.to_string().as_bytes(), &caller)
                        .await;
                    assert!(
                        again.is_ok(),
                        "{verb:?}: order {id:?} was answered but cannot be read back: {:?}",
                        again.err()
                    );
                }
            }
            Err(e) => assert!(
                !matches!(e.kind(), ErrorKind::Internal | ErrorKind::Unavailable),
                "{verb:?}: the server failed on its own account: {e}"
            ),
        }
    });
}
