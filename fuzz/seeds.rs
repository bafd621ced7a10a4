//! How the `seed-*` files of `fuzz/corpus/` were made: valid and near-valid inputs for each
//! target. Rewritten by `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`, which
//! also makes a new RSA key for `jwks.json` (its private half is thrown away, so the JWT
//! seeds can only be remade all together). Files not named `seed-*` (inputs found by fuzzing)
//! are left alone.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use fast_seller::signing::{self, WebhookSecret};
use rsa::pkcs1v15::SigningKey;
use rsa::sha2::Sha256;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use super::checks::{
    webhook_frame, BASE_CHECKOUT, BASE_CONVERT, BASE_CREATE, JWT_APP_ID, JWT_KID, JWT_NOW_SECS,
    WEBHOOK_NOW_SECS, WEBHOOK_SECRETS,
};

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signer = SigningKey::<Sha256>::new(key.clone());
    let sig = signer.sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes());
    format!("{input}.{}", b64(&sig.to_vec()))
}

/// Tokens against `jwks.json`, and the JWKS to write there.
fn jwt_seeds(key: &RsaPrivateKey) -> Seeds {
    let now = i64::try_from(JWT_NOW_SECS).expect("in range");
    let header = json!({"alg": "RS256", "kid": JWT_KID, "typ": "JWT"});
    let claims = json!({"iss": "api.fast.co", "aud": JWT_APP_ID, "exp": now + 3600, "iat": now});
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let valid = token(key, &header, &claims);
    let parts: Vec<&str> = valid.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(with("aud", json!("another-app")).to_string().as_bytes()),
        parts[2]
    );
    let hs256_input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": JWT_KID})
            .to_string()
            .as_bytes()),
        parts[1]
    );
    let short_key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("rsa keygen");
    let jwks_with_short =
        fast_seller::keys::jwks_json(&[("short", &short_key.to_public_key())]).into_bytes();
    let s = |t: String| t.into_bytes();
    vec![
        ("seed-valid", s(valid.clone())),
        ("seed-valid-bearer", s(format!("Bearer {valid}"))),
        ("seed-valid-lowercase-bearer", s(format!("bearer   {valid}"))),
        (
            "seed-valid-aud-array",
            s(token(key, &header, &with("aud", json!(["x", JWT_APP_ID])))),
        ),
        (
            "seed-valid-string-claims",
            s(token(
                key,
                &header,
                &with("exp", json!((now + 60).to_string())),
            )),
        ),
        (
            "seed-valid-fractional-exp",
            s(token(key, &header, &with("exp", json!(now as f64 + 0.5)))),
        ),
        ("seed-expired", s(token(key, &header, &with("exp", json!(now - 61))))),
        ("seed-nbf-future", s(token(key, &header, &with("nbf", json!(now + 600))))),
        ("seed-wrong-aud", s(token(key, &header, &with("aud", json!("other"))))),
        ("seed-wrong-iss", s(token(key, &header, &with("iss", json!("evil"))))),
        ("seed-bad-exp", s(token(key, &header, &with("exp", json!("1.7e9"))))),
        ("seed-payload-not-json", s(token(key, &header, &json!("just a string")))),
        ("seed-forged-payload", s(forged)),
        ("seed-truncated-signature", s(format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]))),
        ("seed-empty-signature", s(format!("{}.{}.", parts[0], parts[1]))),
        ("seed-alg-none", s(format!("{}.{}.", b64(br#"{"alg":"none","kid":"fuzz-k1"}"#), parts[1]))),
        ("seed-hs256", s(format!("{hs256_input}.{}", b64(&[7; 32])))),
        (
            "seed-rs512",
            s(token(key, &json!({"alg": "RS512", "kid": JWT_KID}), &claims)),
        ),
        ("seed-unknown-kid", s(token(key, &json!({"alg": "RS256", "kid": "k9"}), &claims))),
        ("seed-no-kid", s(token(key, &json!({"alg": "RS256"}), &claims))),
        (
            "seed-crit",
            s(token(key, &json!({"alg": "RS256", "kid": JWT_KID, "crit": ["exp"]}), &claims)),
        ),
        (
            "seed-duplicate-alg",
            s(format!("{}.{}.AAAA", b64(br#"{"alg":"RS256","alg":"none","kid":"fuzz-k1"}"#), parts[1])),
        ),
        ("seed-two-segments", s(format!("{}.{}", parts[0], parts[1]))),
        ("seed-four-segments", s(format!("{valid}.AAAA"))),
        ("seed-padded-base64", b"e30=.e30.AA".to_vec()),
        ("seed-not-base64", b"!!!.@@@.###".to_vec()),
        ("seed-basic-auth", b"Basic dXNlcjpwYXNz".to_vec()),
        ("seed-bearer-empty", b"Bearer    ".to_vec()),
        ("seed-jwks", fast_seller::keys::jwks_json(&[(JWT_KID, &key.to_public_key())]).into_bytes()),
        ("seed-jwks-short-key", jwks_with_short),
        (
            "seed-jwks-odd-keys",
            br#"{"keys":[{"kty":"EC","kid":"e"},{"kty":"RSA","kid":"","n":"AQAB","e":"AQAB"},{"kty":"RSA","kid":"x","n":"!!","e":"AQAB"},7,{"kty":"RSA","kid":"z","use":"enc"}]}"#.to_vec(),
        ),
    ]
}

fn webhook_seeds() -> Seeds {
    let secrets: Vec<WebhookSecret> = WEBHOOK_SECRETS
        .iter()
        .map(|s| WebhookSecret::parse(s).expect("fixed secret"))
        .collect();
    let now = WEBHOOK_NOW_SECS;
    let body: &[u8] = br#"{"test": 2432232314}"#;
    let sig = |i: usize, id: &str, ts: i64, body: &[u8]| signing::sign(&secrets[i], id, ts, body);
    let reference = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let ts = now.to_string();
    let order = BASE_CREATE.as_bytes();
    let f = webhook_frame;
    vec![
        ("seed-valid-reference", f(id, &ts, reference, body)),
        (
            "seed-valid-second-secret",
            f("msg_2", &ts, &sig(1, "msg_2", now, order), order),
        ),
        (
            "seed-valid-among-others",
            f(id, &ts, &format!("v2,abc v1,AAAA {reference} v1a,x"), body),
        ),
        (
            "seed-valid-edge-of-window",
            f(
                "msg_3",
                &(now - 300).to_string(),
                &sig(0, "msg_3", now - 300, b""),
                b"",
            ),
        ),
        (
            "seed-valid-empty-body",
            f("msg_4", &ts, &sig(0, "msg_4", now, b""), b""),
        ),
        (
            "seed-outside-window",
            f(
                "msg_5",
                &(now + 301).to_string(),
                &sig(0, "msg_5", now + 301, body),
                body,
            ),
        ),
        (
            "seed-changed-body",
            f(id, &ts, reference, br#"{"test": 2432232315}"#),
        ),
        ("seed-id-with-dot", f("msg.1", &ts, reference, body)),
        ("seed-empty-id", f("", &ts, reference, body)),
        (
            "seed-signed-timestamp",
            f(id, &format!("+{ts}"), reference, body),
        ),
        (
            "seed-leading-zero-timestamp",
            f(id, &format!("0{ts}"), reference, body),
        ),
        (
            "seed-huge-timestamp",
            f(id, "99999999999999999999", reference, body),
        ),
        (
            "seed-v2-only",
            f(
                id,
                &ts,
                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                body,
            ),
        ),
        ("seed-short-mac", f(id, &ts, "v1,g0hM9SsE", body)),
        ("seed-not-base64", f(id, &ts, "v1,!!!!", body)),
        (
            "seed-double-space",
            f(id, &ts, &format!("  {reference}  "), body),
        ),
        ("seed-missing-signature", format!("{id}\n{ts}").into_bytes()),
        ("seed-missing-all", Vec::new()),
        (
            "seed-secret-line",
            f(WEBHOOK_SECRETS[1], &ts, reference, body),
        ),
        (
            "seed-bare-secret-line",
            f("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &ts, reference, body),
        ),
        (
            "seed-short-secret-line",
            f("whsec_c2hvcnQ=", &ts, reference, body),
        ),
        (
            "seed-secret-list-line",
            f(&WEBHOOK_SECRETS.join(","), &ts, reference, body),
        ),
        (
            "seed-binary-body",
            f(
                "msg_6",
                &ts,
                &sig(0, "msg_6", now, &[0, 255, 10, 13]),
                &[0, 255, 10, 13],
            ),
        ),
        (
            "seed-other-secret-base64",
            f(id, &ts, &format!("v1,{}", STANDARD.encode([1u8; 32])), body),
        ),
    ]
}

/// The checkout of tests/it/checkout.rs as the four verbs, then near-valid and hostile bodies.
fn request_seeds() -> Seeds {
    let s = |v: Value| v.to_string().into_bytes();
    let update = |segment: Value| {
        let mut order = json!({"order_id": {"value": "F-100"}, "is_cart": true});
        if let (Some(o), Value::Object(extra)) = (order.as_object_mut(), segment) {
            o.extend(extra);
        }
        s(json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                 "request_id": {"value": "u-1"}, "order": order}))
    };
    let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
    vec![
        ("seed-create", BASE_CREATE.as_bytes().to_vec()),
        ("seed-update-checkout", BASE_CHECKOUT.as_bytes().to_vec()),
        ("seed-update-convert", BASE_CONVERT.as_bytes().to_vec()),
        ("seed-read-fast-id", s(json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "order": {"order_id": {"value": "F-100"}}}))),
        ("seed-read-seller-id", s(json!({"type": "ENTITY_TYPE_ORDER", "order": {"is_cart": true, "external_order_id": "fz-1"}}))),
        ("seed-read-shipping-zones", s(json!({"type": "ENTITY_TYPE_SHIPPING_ZONES", "request_id": {"value": "z"}}))),
        ("seed-delete", s(json!({"type": "ENTITY_TYPE_ORDER", "request_id": {"value": "d-1"}, "order": {"order_id": {"value": "F-100"}}}))),
        ("seed-update-items", update(json!({"items": [{"item_id": {"value": "L-1"}, "quantity": 3}, {"external_product_id": "sticker-01", "quantity": "2"}]}))),
        ("seed-update-item-remove", update(json!({"items": [{"id": "L-2", "quantity": 0}]}))),
        ("seed-update-variant-options", update(json!({"items": [{"external_product_id": "tee-01", "external_options": [{"key": "size", "value": "L"}], "quantity": 1}]}))),
        ("seed-update-coupon-string", update(json!({"coupon": "FIVE"}))),
        ("seed-update-coupon-remove", update(json!({"coupon": {"code": "SAVE10", "remove": true}}))),
        ("seed-update-bill-to", update(json!({"bill_to": {"first_name": "Ada", "state_province_code": "CA", "country": "US", "country_code": "US", "postal_code": "94105"}}))),
        ("seed-update-shipments", update(json!({"shipments": [{"ship_to": {"country_code": "CA"}, "line_refs": [{"id": {"value": "L-1"}, "quantity": 1}]}]}))),
        ("seed-update-shipping-option", update(json!({"shipping_option": {"plan_id": {"value": "fz-101"}, "option_id": {"value": "express"}}}))),
        ("seed-update-status", update(json!({"status": "ORDER_STATUS_BOOKED", "convert_cart_to_order": true}))),
        ("seed-update-status-number", update(json!({"status": 8}))),
        ("seed-update-unknown-fields", update(json!({"device_info": {"ip_address": "1.2.3.4"}, "payment": {"amount": "29.99"}}))),
        ("seed-unknown-exact-numbers", br#"{"type":"ENTITY_TYPE_ORDER","order":{"is_cart":true,"order":{"id":{"value":"F-9"},"lines":[{"external_product_id":"mug-01","quantity":1,"big":12345678901234567890123}],"later":{"a":1.10,"b":-0.0,"c":1E+2}}}}"#.to_vec()),
        ("seed-seed-document-forms", br#"{"entity_type":"ENTITY_ORDER","order":{"items":[{"id":"item_1","quantity":2}],"coupon":"COUPONCODE"}}"#.to_vec()),
        ("seed-id-wrapper-extra-key", br#"{"order":{"order_id":{"value":"F-100"},"items":[{"item_id":{"value":"L-2","quanity":2}}]}}"#.to_vec()),
        ("seed-money-forms", br#"{"order":{"is_cart":true,"order":{"id":{"value":"F-7"},"sub_total":29.999,"total_tax":"1e400","lines":[{"external_product_id":"hoodie-01","quantity":1,"unit_price":"-5.00","total_amount":"29.999999999999999999999999999"}]}}}"#.to_vec()),
        ("seed-quantity-hostile", update(json!({"items": [{"item_id": {"value": "L-1"}, "quantity": "18446744073709551616"}, {"item_id": {"value": "L-2"}, "quantity": -1}]}))),
        ("seed-quantity-huge", update(json!({"items": [{"item_id": {"value": "L-1"}, "quantity": 9223372036854775807_i64}]}))),
        ("seed-duplicate-keys", br#"{"type":"ENTITY_TYPE_ORDER","type":"ENTITY_TYPE_USER","order":{"order_id":{"value":"a"},"order_id":{"value":"b"},"x":1,"x":2}}"#.to_vec()),
        ("seed-entity-number", br#"{"type":4,"entity_type":"1","order":{"order_id":"F-100"}}"#.to_vec()),
        ("seed-long-id", format!(r#"{{"order":{{"order_id":{{"value":"{}"}}}}}}"#, "x".repeat(256)).into_bytes()),
        ("seed-deep-nesting", format!(r#"{{"order":{{"order_id":"F-100","extra":{deep}}}}}"#).into_bytes()),
        ("seed-trailing-garbage", format!("{BASE_CONVERT} x").into_bytes()),
        ("seed-bom", [&[0xEF, 0xBB, 0xBF][..], BASE_CONVERT.as_bytes()].concat()),
        ("seed-invalid-utf8-in-unknown", b"{\"order\":{\"order_id\":\"F-100\",\"note\":\"\xff\"}}".to_vec()),
        ("seed-nan", br#"{"order":{"order_id":"F-100","items":[{"id":"L-1","quantity":NaN}]}}"#.to_vec()),
        ("seed-single-quotes", br#"{'order':{'order_id':'F-100'}}"#.to_vec()),
        // serde_json's arbitrary_precision token: this unknown object comes back as 1.5.
        ("seed-serde-number-token", br#"{"type":"ENTITY_TYPE_ORDER","order":{"order_id":{"value":"F-100"},"note":{"$serde_json::private::Number":"1.5"}}}"#.to_vec()),
        ("seed-empty", Vec::new()),
        ("seed-null", b"null".to_vec()),
        ("seed-array", b"[]".to_vec()),
    ]
}

fn money_seeds() -> Seeds {
    let t = |s: &str| s.as_bytes().to_vec();
    vec![
        ("seed-plain", t("29.99")),
        ("seed-integer", t("45")),
        ("seed-zero-scale-one", t("0.0")),
        ("seed-half-up", t("0.005")),
        ("seed-half-down-negative", t("-0.005")),
        ("seed-float-noise", t("31.990000000000002")),
        ("seed-28-digits", t("29.999999999999999999999999999")),
        ("seed-max-decimal", t("79228162514264337593543950335")),
        ("seed-over-max", t("79228162514264337593543950336")),
        ("seed-exponent", t("1e400")),
        ("seed-negative", t("-5.00")),
        ("seed-leading-dot", t(".5")),
        ("seed-trailing-dot", t("5.")),
        ("seed-minus-only", t("-")),
        ("seed-two-dots", t("1.2.3")),
        ("seed-whitespace", t(" 12.50 ")),
        ("seed-quoted-int", t("\"7\"")),
        ("seed-u64-overflow", t("18446744073709551616")),
        ("seed-i64-min", t("-9223372036854775808")),
        ("seed-letters", t("abc")),
        ("seed-empty", Vec::new()),
        (
            "seed-bits-max",
            [[0xFF; 12].as_slice(), &[0, 0, 0, 0]].concat(),
        ),
        (
            "seed-bits-scale-28",
            [
                [0x39, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].as_slice(),
                &[1, 28, 0, 0],
            ]
            .concat(),
        ),
        (
            "seed-bits-half-cent",
            [
                [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].as_slice(),
                &[0, 3, 0, 0],
            ]
            .concat(),
        ),
    ]
}

fn write(dir: &Path, seeds: Seeds) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    for entry in std::fs::read_dir(dir).expect("read corpus dir") {
        let path = entry.expect("entry").path();
        let is_seed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        if is_seed {
            std::fs::remove_file(&path).expect("remove old seed");
        }
    }
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Rewrites `fuzz/jwks.json` (new key) and every `seed-*` file of `fuzz/corpus/`.
pub fn write_all(fuzz_dir: &Path) {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa keygen");
    std::fs::write(
        fuzz_dir.join("jwks.json"),
        fast_seller::keys::jwks_json(&[(JWT_KID, &key.to_public_key())]),
    )
    .expect("write jwks.json");
    let corpus = fuzz_dir.join("corpus");
    write(&corpus.join("jwt_token"), jwt_seeds(&key));
    write(&corpus.join("signature_headers"), webhook_seeds());
    write(&corpus.join("request_body"), request_seeds());
    write(&corpus.join("money"), money_seeds());
    write(&corpus.join("service_handle"), service_seeds());
}

/// The request seeds, each behind the byte that makes `service_handle` send it to its verb
/// (0 create, 1 read, 2 update, 3 delete; a body of no verb goes to create).
fn service_seeds() -> Seeds {
    request_seeds()
        .into_iter()
        .map(|(name, body)| {
            let verb: u8 = if name.contains("read") {
                1
            } else if name.contains("update") {
                2
            } else if name.contains("delete") {
                3
            } else {
                0
            };
            (name, [&[verb][..], &body].concat())
        })
        .collect()
}
