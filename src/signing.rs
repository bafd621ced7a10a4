//! Standard Webhooks v1: HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, `v1,` prefix.
//!
//! Used to sign what we send and, in `--auth hmac` mode, to verify what we receive.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time in integer Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying a space-separated list of `v1,<base64 MAC>` entries.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The spec's default tolerance, in seconds, in both directions.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

const PREFIX: &str = "whsec_";
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;
const MAC_BYTES: usize = 32;

/// Standard alphabet, padding optional (secrets are often pasted without it).
const SECRET_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Read access to request headers; names are matched case-insensitively.
pub trait HeaderLookup {
    /// The first value of header `name`, if present and readable as text.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        HeaderLookup::get(self.as_slice(), name)
    }
}

/// Why a signed request was refused. Display names the failed check only, never a secret
/// or an expected MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("bad signature")]
    BadSignature,
    #[error("timestamp outside the tolerance window")]
    TimestampOutsideWindow,
}

/// Why a secret was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret is empty")]
    Empty,
    #[error("secret is empty after the whsec_ prefix")]
    EmptyAfterPrefix,
    #[error("secret is not valid base64 (standard alphabet)")]
    NotBase64,
    #[error("secret decodes to {0} bytes; at least 24 are required")]
    TooShort(usize),
    #[error("secret decodes to {0} bytes; at most 64 are allowed")]
    TooLong(usize),
}

/// A Standard Webhooks secret (24 to 64 random bytes). Debug and Display are redacted.
#[derive(Clone)]
pub struct WebhookSecret {
    /// HMAC state keyed with the secret, cloned for every use.
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` or bare `<base64>`; padding optional; surrounding whitespace
    /// ignored.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::EmptyAfterPrefix);
        }
        let bytes = SECRET_B64
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(bytes.len()));
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong(bytes.len()));
        }
        // HMAC accepts keys of any length; the error branch cannot be taken.
        let mac = HmacSha256::new_from_slice(&bytes).map_err(|_| SecretError::Empty)?;
        Ok(WebhookSecret { mac })
    }

    /// The MAC state after absorbing `{id}.{timestamp}.{body}`.
    fn absorb(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_<redacted>")
    }
}

/// Parses a comma-separated list of secrets (rotation: all are accepted when verifying; the
/// first is the one to sign with). Empty entries are refused.
pub fn parse_secrets(list: &str) -> Result<Vec<WebhookSecret>, String> {
    if list.trim().is_empty() {
        return Err("no HMAC secret configured (expected whsec_<base64>, comma-separated)".into());
    }
    list.split(',')
        .enumerate()
        .map(|(i, item)| {
            WebhookSecret::parse(item).map_err(|e| format!("HMAC secret #{}: {e}", i + 1))
        })
        .collect()
}

/// A new random 32-byte secret as `whsec_<base64>`.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_secs}.{body}">`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mac = secret
        .absorb(msg_id, &timestamp_secs.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(mac))
}

/// The three Standard Webhooks headers for one delivery attempt.
pub fn headers(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, msg_id.to_string()),
        (HEADER_TIMESTAMP, timestamp_secs.to_string()),
        (HEADER_SIGNATURE, sign(secret, msg_id, timestamp_secs, body)),
    ]
}

/// Integer Unix seconds: ASCII digits only, no sign, no spaces, no exponent, fits in i64.
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// Verifies the Standard Webhooks headers against the raw `body`.
///
/// Checks, in order: the three headers are present; the id is non-empty without `.`; the
/// timestamp is an integer within `tolerance_secs` of `now_secs` either way; some well-formed
/// `v1` entry matches some secret (constant-time comparison of the decoded MAC).
pub fn verify(
    secrets: &[WebhookSecret],
    headers: &dyn HeaderLookup,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let msg_id = headers
        .get(HEADER_ID)
        .ok_or(VerifyError::MissingHeader(HEADER_ID))?;
    let timestamp = headers
        .get(HEADER_TIMESTAMP)
        .ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = headers
        .get(HEADER_SIGNATURE)
        .ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;

    if msg_id.is_empty() || msg_id.contains('.') {
        return Err(VerifyError::MalformedHeader(HEADER_ID));
    }
    let ts = parse_timestamp(timestamp).ok_or(VerifyError::MalformedHeader(HEADER_TIMESTAMP))?;
    let skew = (i128::from(now_secs) - i128::from(ts)).abs();
    if skew > i128::from(tolerance_secs) {
        return Err(VerifyError::TimestampOutsideWindow);
    }

    let macs: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| {
            let (version, encoded) = entry.split_once(',')?;
            if version != "v1" {
                return None;
            }
            STANDARD
                .decode(encoded)
                .ok()
                .filter(|mac| mac.len() == MAC_BYTES)
        })
        .collect();
    if macs.is_empty() {
        return Err(VerifyError::MalformedHeader(HEADER_SIGNATURE));
    }

    for secret in secrets {
        let state = secret.absorb(msg_id, timestamp, body);
        if macs
            .iter()
            .any(|mac| state.clone().verify_slice(mac).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SW_A_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_A_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_A_TS: i64 = 1_614_265_330;
    const SW_A_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_A_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const SW_B_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_B_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_B_TS: i64 = 1_649_367_553;
    const SW_B_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_B_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).expect("valid secret")
    }

    fn hdrs(id: &str, ts: &str, sig: &str) -> Vec<(String, String)> {
        vec![
            (HEADER_ID.to_string(), id.to_string()),
            (HEADER_TIMESTAMP.to_string(), ts.to_string()),
            (HEADER_SIGNATURE.to_string(), sig.to_string()),
        ]
    }

    fn check(
        secrets: &[WebhookSecret],
        h: &[(String, String)],
        body: &[u8],
    ) -> Result<(), VerifyError> {
        verify(secrets, &h.to_vec(), body, SW_A_TS, DEFAULT_TOLERANCE_SECS)
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_returns_the_first() {
        let h = vec![
            ("Webhook-ID".to_string(), "a".to_string()),
            ("webhook-id".to_string(), "b".to_string()),
        ];
        assert_eq!(h.get("webhook-id"), Some("a"));
        assert_eq!(h.get("WEBHOOK-ID"), Some("a"));
        assert_eq!(h.get("webhook-timestamp"), None);
        let borrowed: &[(&str, &str)] = &[("Authorization", "Bearer x")];
        assert_eq!(
            HeaderLookup::get(borrowed, "authorization"),
            Some("Bearer x")
        );
    }

    fn sw_a_headers(sig: &str) -> Vec<(String, String)> {
        hdrs(SW_A_ID, &SW_A_TS.to_string(), sig)
    }

    // AUTH-01
    #[test]
    fn known_answer_vectors() {
        assert_eq!(
            sign(&secret(SW_A_SECRET), SW_A_ID, SW_A_TS, SW_A_BODY),
            SW_A_SIG
        );
        assert_eq!(
            sign(&secret(SW_B_SECRET), SW_B_ID, SW_B_TS, SW_B_BODY),
            SW_B_SIG
        );

        let a = [secret(SW_A_SECRET)];
        assert_eq!(check(&a, &sw_a_headers(SW_A_SIG), SW_A_BODY), Ok(()));
        let b = [secret(SW_B_SECRET)];
        let hb = hdrs(SW_B_ID, &SW_B_TS.to_string(), SW_B_SIG);
        assert_eq!(verify(&b, &hb, SW_B_BODY, SW_B_TS + 10, 300), Ok(()));
    }

    #[test]
    fn near_miss_is_rejected() {
        let near = SW_A_SIG.replace("1OE=", "1OA=");
        assert_ne!(near, SW_A_SIG);
        let a = [secret(SW_A_SECRET)];
        assert_eq!(
            check(&a, &sw_a_headers(&near), SW_A_BODY),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn headers_round_trip() {
        let s = secret(SW_A_SECRET);
        let h = headers(&s, SW_A_ID, SW_A_TS, SW_A_BODY);
        assert_eq!(h[0], ("webhook-id", SW_A_ID.to_string()));
        assert_eq!(h[1], ("webhook-timestamp", "1614265330".to_string()));
        assert_eq!(h[2], ("webhook-signature", SW_A_SIG.to_string()));
        let as_lookup: Vec<(&str, String)> = h.to_vec();
        assert_eq!(verify(&[s], &as_lookup, SW_A_BODY, SW_A_TS, 300), Ok(()));
    }

    // AUTH-02
    #[test]
    fn tamper_matrix() {
        let a = [secret(SW_A_SECRET)];
        let ok = sw_a_headers(SW_A_SIG);
        assert_eq!(check(&a, &ok, SW_A_BODY), Ok(()));

        let mut body = SW_A_BODY.to_vec();
        body[3] ^= 1;
        assert_eq!(check(&a, &ok, &body), Err(VerifyError::BadSignature));
        assert_eq!(
            check(&a, &ok, br#"{"test":  2432232314}"#),
            Err(VerifyError::BadSignature)
        );
        // Re-serialised JSON (no space): different bytes, so rejected.
        assert_eq!(
            check(&a, &ok, br#"{"test":2432232314}"#),
            Err(VerifyError::BadSignature)
        );
        let h = hdrs(
            "msg_p5jXN8AQM9LWM0D4loKWxJeK",
            &SW_A_TS.to_string(),
            SW_A_SIG,
        );
        assert_eq!(check(&a, &h, SW_A_BODY), Err(VerifyError::BadSignature));
        let h = hdrs(SW_A_ID, &(SW_A_TS + 1).to_string(), SW_A_SIG);
        assert_eq!(check(&a, &h, SW_A_BODY), Err(VerifyError::BadSignature));
        // Flip one bit of the MAC.
        let mut mac = STANDARD.decode(&SW_A_SIG[3..]).expect("b64");
        mac[0] ^= 0x80;
        let flipped = format!("v1,{}", STANDARD.encode(&mac));
        assert_eq!(
            check(&a, &sw_a_headers(&flipped), SW_A_BODY),
            Err(VerifyError::BadSignature)
        );
        // Wrong secret.
        let other = [secret(SW_B_SECRET)];
        assert_eq!(
            check(&other, &ok, SW_A_BODY),
            Err(VerifyError::BadSignature)
        );
        // No secrets configured: nothing can match.
        assert_eq!(check(&[], &ok, SW_A_BODY), Err(VerifyError::BadSignature));
    }

    // AUTH-03
    #[test]
    fn each_missing_header_is_named() {
        let a = [secret(SW_A_SECRET)];
        let full = sw_a_headers(SW_A_SIG);
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let h: Vec<(String, String)> =
                full.iter().filter(|(k, _)| k != name).cloned().collect();
            let err = check(&a, &h, SW_A_BODY).expect_err("must fail");
            assert_eq!(err, VerifyError::MissingHeader(name));
            assert!(err.to_string().contains(name));
        }
        assert_eq!(
            check(&a, &[], SW_A_BODY),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let a = [secret(SW_A_SECRET)];
        let h = vec![
            ("Webhook-Id".to_string(), SW_A_ID.to_string()),
            ("WEBHOOK-TIMESTAMP".to_string(), SW_A_TS.to_string()),
            ("Webhook-Signature".to_string(), SW_A_SIG.to_string()),
        ];
        assert_eq!(check(&a, &h, SW_A_BODY), Ok(()));
    }

    // AUTH-04
    #[test]
    fn tolerance_window_both_directions() {
        let a = [secret(SW_A_SECRET)];
        let h = sw_a_headers(SW_A_SIG);
        let at = |now: i64| verify(&a, &h, SW_A_BODY, now, 300);
        assert_eq!(at(SW_A_TS + 299), Ok(()));
        assert_eq!(at(SW_A_TS + 300), Ok(()));
        assert_eq!(at(SW_A_TS + 301), Err(VerifyError::TimestampOutsideWindow));
        assert_eq!(at(SW_A_TS + 360), Err(VerifyError::TimestampOutsideWindow));
        assert_eq!(at(SW_A_TS - 299), Ok(()));
        assert_eq!(at(SW_A_TS - 300), Ok(()));
        assert_eq!(at(SW_A_TS - 301), Err(VerifyError::TimestampOutsideWindow));
        assert_eq!(at(SW_A_TS - 360), Err(VerifyError::TimestampOutsideWindow));
        assert_eq!(at(i64::MAX), Err(VerifyError::TimestampOutsideWindow));
        assert_eq!(at(i64::MIN), Err(VerifyError::TimestampOutsideWindow));
    }

    // AUTH-05
    #[test]
    fn timestamps_must_be_plain_integers() {
        let a = [secret(SW_A_SECRET)];
        for ts in [
            "hello",
            "",
            "1.5e9",
            "1614265330.0",
            "+1614265330",
            "-1614265330",
            " 1614265330",
            "1614265330 ",
            "0x6037b7f2",
            "１614265330",
            "99999999999999999999",
        ] {
            let h = hdrs(SW_A_ID, ts, SW_A_SIG);
            assert_eq!(
                check(&a, &h, SW_A_BODY),
                Err(VerifyError::MalformedHeader(HEADER_TIMESTAMP)),
                "timestamp {ts:?}"
            );
        }
        // Milliseconds parse as an integer but lie far outside the window.
        let ms = (SW_A_TS * 1000).to_string();
        let h = hdrs(SW_A_ID, &ms, SW_A_SIG);
        assert_eq!(
            check(&a, &h, SW_A_BODY),
            Err(VerifyError::TimestampOutsideWindow)
        );
    }

    #[test]
    fn message_id_must_not_contain_a_dot() {
        let a = [secret(SW_A_SECRET)];
        for id in ["msg.1", "", "."] {
            let h = hdrs(id, &SW_A_TS.to_string(), SW_A_SIG);
            assert_eq!(
                check(&a, &h, SW_A_BODY),
                Err(VerifyError::MalformedHeader(HEADER_ID))
            );
        }
    }

    // AUTH-06
    #[test]
    fn signature_lists() {
        let a = [secret(SW_A_SECRET)];
        let mac = &SW_A_SIG[3..];
        let malformed = Err(VerifyError::MalformedHeader(HEADER_SIGNATURE));
        for sig in [
            "v1",
            "v1,",
            "v1,,",
            "garbage",
            "",
            " ",
            &format!("v2,{mac}"),
            &format!("v1a,{mac}"),
            &format!("V1,{mac}"),
            &format!("v1,{}", &mac[..8]),
            &format!("v1,{}", mac.trim_end_matches('=')),
            &format!("v1, {mac}"),
        ] {
            assert_eq!(
                check(&a, &sw_a_headers(sig), SW_A_BODY),
                malformed,
                "{sig:?}"
            );
        }

        let wrong = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        let mut list: Vec<String> = vec![wrong.to_string(); 50];
        assert_eq!(
            check(&a, &sw_a_headers(&list.join(" ")), SW_A_BODY),
            Err(VerifyError::BadSignature)
        );
        list.push(SW_A_SIG.to_string());
        assert_eq!(check(&a, &sw_a_headers(&list.join(" ")), SW_A_BODY), Ok(()));

        for sig in [
            format!("v2,{mac} {SW_A_SIG}"),
            format!("v1 v1, garbage {SW_A_SIG}"),
            format!("{SW_A_SIG}  {wrong}"),
            format!("  {SW_A_SIG}  "),
            format!("{wrong} {SW_A_SIG} "),
            format!("v1a,{mac} {SW_A_SIG}"),
        ] {
            assert_eq!(check(&a, &sw_a_headers(&sig), SW_A_BODY), Ok(()), "{sig:?}");
        }
    }

    // AUTH-07
    #[test]
    fn rotation() {
        let old = secret(SW_A_SECRET);
        let new = secret(SW_B_SECRET);
        let sig_old = sign(&old, SW_A_ID, SW_A_TS, SW_A_BODY);
        let sig_new = sign(&new, SW_A_ID, SW_A_TS, SW_A_BODY);
        let both = [old.clone(), new.clone()];
        for sig in [
            sig_old.clone(),
            sig_new.clone(),
            format!("{sig_old} {sig_new}"),
        ] {
            assert_eq!(check(&both, &sw_a_headers(&sig), SW_A_BODY), Ok(()));
        }
        let only_new = [new];
        assert_eq!(
            check(&only_new, &sw_a_headers(&sig_old), SW_A_BODY),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(check(&only_new, &sw_a_headers(&sig_new), SW_A_BODY), Ok(()));
    }

    // AUTH-08
    #[test]
    fn secret_parsing() {
        assert_eq!(WebhookSecret::parse("").err(), Some(SecretError::Empty));
        assert_eq!(WebhookSecret::parse("  ").err(), Some(SecretError::Empty));
        assert_eq!(
            WebhookSecret::parse("whsec_").err(),
            Some(SecretError::EmptyAfterPrefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").err(),
            Some(SecretError::NotBase64)
        );
        // 18 bytes, 65 bytes.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 18]));
        assert_eq!(
            WebhookSecret::parse(&short).err(),
            Some(SecretError::TooShort(18))
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            WebhookSecret::parse(&long).err(),
            Some(SecretError::TooLong(65))
        );
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 64]))).is_ok());

        // Without prefix, and unpadded needing 0, 1 and 2 padding characters: same key.
        let s = secret(SW_A_SECRET);
        let bare = secret(SW_A_SECRET.trim_start_matches("whsec_"));
        assert_eq!(sign(&bare, "m", 1, b""), sign(&s, "m", 1, b""));
        for n in [24usize, 25, 26] {
            let bytes: Vec<u8> = (0..n as u8).collect();
            let padded = STANDARD.encode(&bytes);
            let unpadded = padded.trim_end_matches('=');
            assert_eq!(padded.len() - unpadded.len(), [0, 2, 1][n - 24]);
            let a = secret(&format!("whsec_{padded}"));
            let b = secret(&format!("whsec_{unpadded}"));
            assert_eq!(sign(&a, "m", 1, b"x"), sign(&b, "m", 1, b"x"));
        }
        // A pasted trailing newline is tolerated.
        assert!(WebhookSecret::parse(&format!("{SW_A_SECRET}\n")).is_ok());
    }

    #[test]
    fn secret_lists() {
        let list = format!("{SW_A_SECRET}, {SW_B_SECRET}");
        assert_eq!(parse_secrets(&list).expect("valid").len(), 2);
        assert!(parse_secrets("").is_err());
        let err = parse_secrets(&format!("{SW_A_SECRET},")).expect_err("empty entry");
        assert!(err.contains("#2"), "{err}");
        let err = parse_secrets(&format!("{SW_A_SECRET},whsec_")).expect_err("bare prefix");
        assert!(err.contains("#2") && err.contains("empty after"), "{err}");
        assert!(!err.contains("MfKQ9r8G"));
    }

    #[test]
    fn secrets_are_redacted() {
        let s = secret(SW_A_SECRET);
        let shown = format!("{s:?} {s} {:?}", vec![s.clone()]);
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        assert!(shown.contains("redacted"));
        for e in [
            SecretError::Empty,
            SecretError::NotBase64,
            SecretError::TooShort(3),
        ] {
            assert!(!e.to_string().contains("MfKQ"));
        }
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert!(WebhookSecret::parse(&a).is_ok());
    }
}
