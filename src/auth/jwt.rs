//! Fast's bearer tokens: RS256 JWTs verified against a JWKS, written directly on `rsa` so that
//! the algorithm allow-list (RS256 only) is ours.
//!
//! Order of checks: header shape, `alg` == "RS256", `kid`, key lookup, signature over
//! `header.payload`, and only then the claims `iss`, `aud`, `exp`, `nbf`, `iat`.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::Pkcs1v15Sign;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::jwks::JwksCache;
use super::{sanitize, AuthError, HeaderLookup, Principal};
use crate::clock::Clock;

/// Fast's issuer.
pub const DEFAULT_ISSUER: &str = "api.fast.co";
/// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;
/// Longest accepted token lifetime (`exp − iat`, or `exp − now` without `iat`), in seconds.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// Longer tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

const AUTHORIZATION: &str = "authorization";

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &dyn HeaderLookup) -> Result<&str, AuthError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(AuthError::MissingHeader(AUTHORIZATION))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedHeader(AUTHORIZATION))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedHeader(AUTHORIZATION));
    }
    let token = token.trim_start();
    if token.is_empty() {
        return Err(AuthError::MalformedHeader(AUTHORIZATION));
    }
    Ok(token)
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    /// Critical extensions we would have to understand (RFC 7515 §4.1.11): we understand none.
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
}

/// Verifies Fast's RS256 bearer tokens.
pub struct JwtVerifier {
    issuer: String,
    app_id: String,
    leeway_secs: i64,
    max_lifetime_secs: i64,
    jwks: Arc<JwksCache>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("app_id", &self.app_id)
            .field("leeway_secs", &self.leeway_secs)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .field("jwks", &self.jwks)
            .finish()
    }
}

impl JwtVerifier {
    /// `issuer` is the required `iss`, `app_id` the required `aud`; leeway 60 s.
    pub fn new(issuer: impl Into<String>, app_id: impl Into<String>, jwks: Arc<JwksCache>) -> Self {
        JwtVerifier {
            issuer: issuer.into(),
            app_id: app_id.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            jwks,
        }
    }

    /// Replaces the 24 h cap on a token's lifetime (`exp − iat`).
    pub fn with_max_lifetime_secs(mut self, max_lifetime_secs: i64) -> Self {
        self.max_lifetime_secs = max_lifetime_secs.max(1);
        self
    }

    /// Replaces the 60 s leeway.
    pub fn with_leeway_secs(mut self, leeway_secs: i64) -> Self {
        self.leeway_secs = leeway_secs.max(0);
        self
    }

    /// The key cache, e.g. to preload it at startup.
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Reads the bearer token from `headers` and verifies it.
    pub async fn verify(
        &self,
        headers: &dyn HeaderLookup,
        clock: &dyn Clock,
    ) -> Result<Principal, AuthError> {
        let token = bearer_token(headers)?.to_owned();
        self.verify_token(&token, clock).await
    }

    /// Verifies one compact JWS token.
    pub async fn verify_token(
        &self,
        token: &str,
        clock: &dyn Clock,
    ) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken(
                "not three dot-separated segments",
            ));
        };
        let header_bytes = decode_segment(header_b64, "header is not base64url")?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| AuthError::MalformedToken("header is not a JSON object"))?;
        match header.alg.as_deref() {
            Some("RS256") => {}
            Some(other) => return Err(AuthError::UnsupportedAlgorithm(sanitize(other))),
            None => return Err(AuthError::MalformedToken("header has no alg")),
        }
        if header.crit.is_some() {
            return Err(AuthError::MalformedToken("unsupported critical header"));
        }
        let kid = match header.kid {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(AuthError::MissingKeyId),
        };
        let payload = decode_segment(payload_b64, "payload is not base64url")?;
        let signature = decode_segment(sig_b64, "signature is not base64url")?;
        if signature.is_empty() {
            return Err(AuthError::BadSignature);
        }

        let key = self.jwks.key(&kid, clock).await?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input =
            token
                .as_bytes()
                .get(..signing_input_len)
                .ok_or(AuthError::MalformedToken(
                    "not three dot-separated segments",
                ))?;
        let digest = Sha256::digest(signing_input);
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .map_err(|_| AuthError::BadSignature)?;

        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::MalformedToken("payload is not a JSON object"))?;
        let now = i64::try_from(clock.now_ms() / 1000).unwrap_or(i64::MAX);
        self.check_claims(&claims, now)?;
        Ok(Principal {
            app_id: Some(self.app_id.clone()),
        })
    }

    fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), AuthError> {
        match &claims.iss {
            None => return Err(AuthError::MissingClaim("iss")),
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(AuthError::WrongIssuer),
        }
        let audience_ok = match &claims.aud {
            None => return Err(AuthError::MissingClaim("aud")),
            Some(Value::String(aud)) => *aud == self.app_id,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.app_id.as_str())),
            Some(_) => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        let now = i128::from(now);
        let leeway = i128::from(self.leeway_secs);
        let exp =
            numeric_claim(claims.exp.as_ref(), "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        if i128::from(exp) + leeway < now {
            return Err(AuthError::TokenExpired);
        }
        if let Some(nbf) = numeric_claim(claims.nbf.as_ref(), "nbf")? {
            if i128::from(nbf) > now + leeway {
                return Err(AuthError::TokenNotYetValid("nbf"));
            }
        }
        let iat = numeric_claim(claims.iat.as_ref(), "iat")?;
        if let Some(iat) = iat {
            if i128::from(iat) > now + leeway {
                return Err(AuthError::TokenNotYetValid("iat"));
            }
        }
        // A token valid for longer than the cap is refused however well it is signed, so a
        // leaked one cannot be used for months; without `iat`, its lifetime counts from now.
        let issued = iat.map_or(now, i128::from);
        if i128::from(exp) - issued > i128::from(self.max_lifetime_secs) + leeway {
            return Err(AuthError::TokenLifetimeTooLong);
        }
        Ok(())
    }
}

/// Strict base64url without padding.
fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::MalformedToken(what))
}

/// A NumericDate as a JSON number (fraction truncated) or a string of ASCII digits.
fn numeric_claim(value: Option<&Value>, name: &'static str) -> Result<Option<i64>, AuthError> {
    let malformed = AuthError::MalformedClaim(name);
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.trunc() as i64)),
                _ => Err(malformed),
            }
        }
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse::<i64>().map(Some).map_err(|_| malformed)
        }
        Some(_) => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::auth::jwks::JwksSource;
    use crate::clock::ManualClock;
    use hmac::{Hmac, Mac};
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const APP: &str = "app-123";

    struct Fixture {
        _dir: tempfile::TempDir,
        cache: Arc<JwksCache>,
        verifier: JwtVerifier,
        clock: ManualClock,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        write_jwks(&path, &[("k1", &key_a().to_public_key())]);
        let cache = Arc::new(JwksCache::new(JwksSource::File(path)).expect("cache"));
        let verifier = JwtVerifier::new(DEFAULT_ISSUER, APP, cache.clone());
        Fixture {
            _dir: dir,
            cache,
            verifier,
            clock: ManualClock::new(NOW as u64 * 1000),
        }
    }

    fn rs_header() -> Value {
        json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})
    }

    fn claims() -> Value {
        json!({"iss": DEFAULT_ISSUER, "aud": APP, "exp": NOW + 300, "iat": NOW})
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        base[key] = value;
        base
    }

    fn without(mut base: Value, key: &str) -> Value {
        if let Value::Object(map) = &mut base {
            map.remove(key);
        }
        base
    }

    impl Fixture {
        async fn check(&self, token: &str) -> Result<Principal, AuthError> {
            self.verifier.verify_token(token, &self.clock).await
        }
        async fn check_claims(&self, claims: Value) -> Result<Principal, AuthError> {
            self.check(&rs256_token(key_a(), &rs_header(), &claims))
                .await
        }
    }

    fn ok() -> Result<Principal, AuthError> {
        Ok(Principal {
            app_id: Some(APP.to_string()),
        })
    }

    // JWT-01
    #[tokio::test]
    async fn valid_token_is_accepted() {
        let f = fixture();
        assert_eq!(f.check_claims(claims()).await, ok());
        let h = headers(&[(
            "Authorization",
            &format!("Bearer {}", rs256_token(key_a(), &rs_header(), &claims())),
        )]);
        assert_eq!(f.verifier.verify(&h, &f.clock).await, ok());
        assert_eq!(f.cache.fetches(), 1);
        // The audience may be an array containing our app id.
        let c = with(claims(), "aud", json!(["other", APP]));
        assert_eq!(f.check_claims(c).await, ok());
    }

    // JWT-02
    #[tokio::test]
    async fn alg_none_is_rejected_before_key_use() {
        let f = fixture();
        let header = json!({"alg": "none", "kid": "k1"});
        let token = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(
            f.check(&token).await,
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
        assert_eq!(f.cache.fetches(), 0);
    }

    // JWT-03
    #[tokio::test]
    async fn hs256_with_the_public_key_is_rejected() {
        let f = fixture();
        let pem = key_a()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let header = json!({"alg": "HS256", "kid": "k1", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(pem.as_bytes()).expect("hmac");
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(
            f.check(&token).await,
            Err(AuthError::UnsupportedAlgorithm("HS256".into()))
        );
        for alg in ["RS512", "rs256", "PS256", "ES256", "RS256 ", ""] {
            let token = rs256_token(key_a(), &json!({"alg": alg, "kid": "k1"}), &claims());
            assert_eq!(
                f.check(&token).await,
                Err(AuthError::UnsupportedAlgorithm(sanitize(alg))),
                "{alg:?}"
            );
        }
        let token = rs256_token(key_a(), &json!({"kid": "k1"}), &claims());
        assert_eq!(
            f.check(&token).await,
            Err(AuthError::MalformedToken("header has no alg"))
        );
        let token = rs256_token(key_a(), &json!({"alg": 256, "kid": "k1"}), &claims());
        assert!(matches!(
            f.check(&token).await,
            Err(AuthError::MalformedToken(_))
        ));
        assert_eq!(f.cache.fetches(), 0);
    }

    #[tokio::test]
    async fn header_requirements() {
        let f = fixture();
        let token = rs256_token(key_a(), &json!({"alg": "RS256"}), &claims());
        assert_eq!(f.check(&token).await, Err(AuthError::MissingKeyId));
        let token = rs256_token(key_a(), &json!({"alg": "RS256", "kid": ""}), &claims());
        assert_eq!(f.check(&token).await, Err(AuthError::MissingKeyId));
        let token = rs256_token(
            key_a(),
            &json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
            &claims(),
        );
        assert!(matches!(
            f.check(&token).await,
            Err(AuthError::MalformedToken(_))
        ));
        // Duplicate alg keys: refused rather than last-one-wins.
        let header = r#"{"alg":"RS256","alg":"none","kid":"k1"}"#;
        let token = format!(
            "{}.{}.AAAA",
            b64(header.as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert!(matches!(
            f.check(&token).await,
            Err(AuthError::MalformedToken(_))
        ));
        assert_eq!(f.cache.fetches(), 0);
    }

    #[tokio::test]
    async fn signature_must_match() {
        let f = fixture();
        // Signed by another key under our kid.
        let token = rs256_token(key_b(), &rs_header(), &claims());
        assert_eq!(f.check(&token).await, Err(AuthError::BadSignature));
        // Payload swapped after signing.
        let good = rs256_token(key_a(), &rs_header(), &claims());
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = with(claims(), "aud", json!("another-app"));
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(forged_claims.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(f.check(&forged).await, Err(AuthError::BadSignature));
        // Truncated and empty signatures.
        let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
        assert_eq!(f.check(&truncated).await, Err(AuthError::BadSignature));
        let empty = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(f.check(&empty).await, Err(AuthError::BadSignature));
    }

    // JWT-04
    #[tokio::test]
    async fn audience_and_issuer() {
        let f = fixture();
        let cases = [
            (
                with(claims(), "aud", json!("other-app")),
                AuthError::WrongAudience,
            ),
            (
                with(claims(), "aud", json!(["a", "b"])),
                AuthError::WrongAudience,
            ),
            (with(claims(), "aud", json!([])), AuthError::WrongAudience),
            (with(claims(), "aud", json!(123)), AuthError::WrongAudience),
            (without(claims(), "aud"), AuthError::MissingClaim("aud")),
            (
                with(claims(), "iss", json!("evil.example")),
                AuthError::WrongIssuer,
            ),
            (
                with(claims(), "iss", json!(["api.fast.co"])),
                AuthError::WrongIssuer,
            ),
            (without(claims(), "iss"), AuthError::MissingClaim("iss")),
        ];
        for (c, expected) in cases {
            assert_eq!(f.check_claims(c.clone()).await, Err(expected), "{c}");
        }
        // A configured issuer other than the default.
        let sandbox = JwtVerifier::new("api.sandbox.fast.co", APP, f.cache.clone());
        let token = rs256_token(key_a(), &rs_header(), &claims());
        assert_eq!(
            sandbox.verify_token(&token, &f.clock).await,
            Err(AuthError::WrongIssuer)
        );
    }

    // JWT-05
    #[tokio::test]
    async fn time_claims_with_leeway() {
        let f = fixture();
        let exp = |v: i64| with(claims(), "exp", json!(v));
        assert_eq!(f.check_claims(exp(NOW - 30)).await, ok());
        assert_eq!(f.check_claims(exp(NOW - 60)).await, ok());
        assert_eq!(
            f.check_claims(exp(NOW - 61)).await,
            Err(AuthError::TokenExpired)
        );
        assert_eq!(
            f.check_claims(without(claims(), "exp")).await,
            Err(AuthError::MissingClaim("exp"))
        );
        assert_eq!(
            f.check_claims(with(claims(), "exp", Value::Null)).await,
            Err(AuthError::MissingClaim("exp"))
        );
        let nbf = |v: i64| with(claims(), "nbf", json!(v));
        assert_eq!(f.check_claims(nbf(NOW + 30)).await, ok());
        assert_eq!(
            f.check_claims(nbf(NOW + 120)).await,
            Err(AuthError::TokenNotYetValid("nbf"))
        );
        let iat = |v: i64| with(claims(), "iat", json!(v));
        assert_eq!(f.check_claims(iat(NOW + 60)).await, ok());
        assert_eq!(
            f.check_claims(iat(NOW + 61)).await,
            Err(AuthError::TokenNotYetValid("iat"))
        );
        assert_eq!(f.check_claims(without(claims(), "iat")).await, ok());
        // Time moves on: the same token expires 61 s after exp.
        let token = rs256_token(key_a(), &rs_header(), &exp(NOW + 10));
        assert_eq!(f.check(&token).await, ok());
        f.clock.advance_ms(70_000);
        assert_eq!(f.check(&token).await, ok());
        f.clock.advance_ms(1_000);
        assert_eq!(f.check(&token).await, Err(AuthError::TokenExpired));
    }

    // JWT-06
    #[tokio::test]
    async fn numeric_claims_as_numbers_or_strings() {
        let f = fixture();
        let as_strings = json!({
            "iss": DEFAULT_ISSUER, "aud": APP,
            "exp": (NOW + 300).to_string(), "iat": NOW.to_string(), "nbf": NOW.to_string(),
        });
        assert_eq!(f.check_claims(as_strings).await, ok());
        let expired = with(claims(), "exp", json!((NOW - 100).to_string()));
        assert_eq!(f.check_claims(expired).await, Err(AuthError::TokenExpired));
        let expired = with(claims(), "exp", json!(NOW - 100));
        assert_eq!(f.check_claims(expired).await, Err(AuthError::TokenExpired));
        let fractional = with(claims(), "exp", json!(NOW as f64 + 300.5));
        assert_eq!(f.check_claims(fractional).await, ok());
        for bad in [
            json!("soon"),
            json!(""),
            json!("1.7e9"),
            json!("+1700000300"),
            json!(" 1700000300"),
            json!(true),
            json!({"t": 1}),
            json!("99999999999999999999"),
        ] {
            let c = with(claims(), "exp", bad.clone());
            assert_eq!(
                f.check_claims(c).await,
                Err(AuthError::MalformedClaim("exp")),
                "{bad}"
            );
        }
    }

    // JWT-09
    #[tokio::test]
    async fn malformed_requests() {
        let f = fixture();
        let run = |pairs: Vec<(String, String)>| {
            let f = &f;
            async move { f.verifier.verify(&pairs, &f.clock).await }
        };
        assert_eq!(
            run(vec![]).await,
            Err(AuthError::MissingHeader("authorization"))
        );
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Token abc",
            "",
        ] {
            assert_eq!(
                run(headers(&[("Authorization", value)])).await,
                Err(AuthError::MalformedHeader("authorization")),
                "{value:?}"
            );
        }
        let long = "a".repeat(10 * 1024);
        for (token, expected) in [
            (
                "a.b",
                AuthError::MalformedToken("not three dot-separated segments"),
            ),
            (
                "a.b.c.d",
                AuthError::MalformedToken("not three dot-separated segments"),
            ),
            (
                "!!!.@@@.###",
                AuthError::MalformedToken("header is not base64url"),
            ),
            (
                "e30=.e30.AA",
                AuthError::MalformedToken("header is not base64url"),
            ),
            ("e30.e30.AA", AuthError::MalformedToken("header has no alg")),
            (
                "bm90IGpzb24.e30.AA",
                AuthError::MalformedToken("header is not a JSON object"),
            ),
            (long.as_str(), AuthError::MalformedToken("token too long")),
        ] {
            assert_eq!(
                run(headers(&[("Authorization", &format!("Bearer {token}"))])).await,
                Err(expected),
                "{token:.20}"
            );
        }
        // Lower-case scheme is fine (RFC 7235: schemes are case-insensitive).
        let token = rs256_token(key_a(), &rs_header(), &claims());
        assert_eq!(
            run(headers(&[("authorization", &format!("bearer {token}"))])).await,
            ok()
        );
        // Valid header and signature, payload not JSON.
        let token = rs256_token(key_a(), &rs_header(), &json!("just a string"));
        assert_eq!(
            f.check(&token).await,
            Err(AuthError::MalformedToken("payload is not a JSON object"))
        );
    }

    #[test]
    fn numeric_claim_parsing() {
        assert_eq!(numeric_claim(None, "exp"), Ok(None));
        assert_eq!(numeric_claim(Some(&json!(5)), "exp"), Ok(Some(5)));
        assert_eq!(numeric_claim(Some(&json!("5")), "exp"), Ok(Some(5)));
        assert_eq!(numeric_claim(Some(&json!(-5)), "exp"), Ok(Some(-5)));
        assert_eq!(numeric_claim(Some(&json!(5.9)), "exp"), Ok(Some(5)));
        assert_eq!(
            numeric_claim(Some(&json!(1e300)), "exp"),
            Err(AuthError::MalformedClaim("exp"))
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let f = fixture();
        let shown = format!("{:?}", f.verifier);
        assert!(
            shown.contains("api.fast.co") && shown.contains(APP),
            "{shown}"
        );
    }
}
