//! Request authentication: none, Standard Webhooks HMAC, or Fast's RS256 JWT.
//!
//! Every check that fails has its own [`AuthError`] variant; its Display names the check and
//! never a secret, a token or an expected MAC, so it may go into a 401 body and into logs.

pub mod admin;
pub mod jwks;
pub mod jwt;

use std::future::Future;
use std::sync::Arc;

use crate::clock::Clock;
use crate::signing::{self, VerifyError, WebhookSecret};

pub use crate::signing::HeaderLookup;

/// Why a request was not authenticated. Display names the failed check only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("bad signature")]
    BadSignature,
    #[error("timestamp outside the tolerance window")]
    TimestampOutsideWindow,
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("token has no key id")]
    MissingKeyId,
    #[error("unknown key id {0:?}")]
    UnknownKeyId(String),
    #[error("signing keys unavailable")]
    KeysUnavailable,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    #[error("malformed claim {0}")]
    MalformedClaim(&'static str),
    #[error("token expired")]
    TokenExpired,
    #[error("token not yet valid ({0})")]
    TokenNotYetValid(&'static str),
    #[error("token lifetime (exp - iat) is longer than accepted")]
    TokenLifetimeTooLong,
    #[error("wrong audience")]
    WrongAudience,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("app id mismatch")]
    AppIdMismatch,
}

impl AuthError {
    /// A stable snake_case name of the failed check, for metrics and structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::MissingHeader(_) => "missing_header",
            AuthError::MalformedHeader(_) => "malformed_header",
            AuthError::BadSignature => "bad_signature",
            AuthError::TimestampOutsideWindow => "timestamp_outside_window",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            AuthError::MissingKeyId => "missing_key_id",
            AuthError::UnknownKeyId(_) => "unknown_key_id",
            AuthError::KeysUnavailable => "keys_unavailable",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::MalformedClaim(_) => "malformed_claim",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid(_) => "token_not_yet_valid",
            AuthError::TokenLifetimeTooLong => "token_lifetime_too_long",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::AppIdMismatch => "app_id_mismatch",
        }
    }

    /// True when the failure is ours (no keys could be loaded), not the caller's:
    /// the HTTP layer may answer 503 instead of 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable)
    }
}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> AuthError {
        match e {
            VerifyError::MissingHeader(name) => AuthError::MissingHeader(name),
            VerifyError::MalformedHeader(name) => AuthError::MalformedHeader(name),
            VerifyError::BadSignature => AuthError::BadSignature,
            VerifyError::TimestampOutsideWindow => AuthError::TimestampOutsideWindow,
        }
    }
}

/// Keeps at most 64 printable ASCII characters of attacker-supplied text for an error message.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Who the request was authenticated as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The JWT audience (our Fast app id) for `FastJwt`; `None` for the other schemes.
    pub app_id: Option<String>,
}

impl Principal {
    /// Fails with [`AuthError::AppIdMismatch`] when the token names an app id other than
    /// the request's; passes when the scheme carries no app id.
    pub fn check_app_id(&self, request_app_id: &str) -> Result<(), AuthError> {
        match &self.app_id {
            Some(id) if id != request_app_id => Err(AuthError::AppIdMismatch),
            _ => Ok(()),
        }
    }
}

/// The configured authentication scheme.
#[derive(Debug)]
pub enum Authenticator {
    /// No check at all (local testing, replay of recorded fixtures).
    None,
    /// Standard Webhooks v1 signatures over the raw body.
    Hmac {
        secrets: Vec<WebhookSecret>,
        tolerance_secs: i64,
    },
    /// Fast's `Authorization: Bearer` RS256 JWT.
    FastJwt(jwt::JwtVerifier),
}

impl Authenticator {
    /// HMAC mode from a comma-separated `whsec_…` list; the tolerance must be positive.
    pub fn hmac_from_config(secrets: &str, tolerance_secs: i64) -> Result<Self, String> {
        if tolerance_secs <= 0 {
            return Err(format!(
                "HMAC timestamp tolerance must be positive, got {tolerance_secs} s"
            ));
        }
        let secrets = signing::parse_secrets(secrets)?;
        Ok(Authenticator::Hmac {
            secrets,
            tolerance_secs,
        })
    }

    /// Fast JWT mode: `jwks` is a file path or an http(s) URL, `issuer` the expected `iss`
    /// (Fast's is [`jwt::DEFAULT_ISSUER`]), `app_id` the expected `aud`.
    pub fn fast_jwt_from_config(jwks: &str, issuer: &str, app_id: &str) -> Result<Self, String> {
        if issuer.trim().is_empty() {
            return Err("JWT issuer must not be empty".to_string());
        }
        if app_id.trim().is_empty() {
            return Err("the Fast app id (JWT audience) must not be empty".to_string());
        }
        let source = jwks::JwksSource::from_config(jwks)?;
        let cache = jwks::JwksCache::new(source).map_err(|e| e.to_string())?;
        Ok(Authenticator::FastJwt(jwt::JwtVerifier::new(
            issuer,
            app_id,
            Arc::new(cache),
        )))
    }

    /// Caps the lifetime (`exp − iat`) of the tokens `fast-jwt` accepts; other schemes are
    /// returned as they are.
    pub fn with_max_token_lifetime(self, max: std::time::Duration) -> Self {
        match self {
            Authenticator::FastJwt(verifier) => Authenticator::FastJwt(
                verifier.with_max_lifetime_secs(i64::try_from(max.as_secs()).unwrap_or(i64::MAX)),
            ),
            other => other,
        }
    }

    /// The scheme's name as written in configuration: `none`, `hmac` or `fast-jwt`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Authenticator::None => "none",
            Authenticator::Hmac { .. } => "hmac",
            Authenticator::FastJwt(_) => "fast-jwt",
        }
    }

    /// Checks one request. HMAC verifies `body`, the raw bytes as received, before any parsing.
    ///
    /// The headers and body are read before the returned future first runs, so the future
    /// borrows neither and is `Send`.
    pub fn verify<'a>(
        &'a self,
        headers: &dyn HeaderLookup,
        body: &[u8],
        clock: &'a dyn Clock,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send + 'a {
        enum Step<'v> {
            Done(Result<Principal, AuthError>),
            Jwt(&'v jwt::JwtVerifier, String),
        }
        let step = match self {
            Authenticator::None => Step::Done(Ok(Principal::default())),
            Authenticator::Hmac {
                secrets,
                tolerance_secs,
            } => {
                let now_secs = i64::try_from(clock.now_ms() / 1000).unwrap_or(i64::MAX);
                Step::Done(
                    signing::verify(secrets, headers, body, now_secs, *tolerance_secs)
                        .map(|()| Principal::default())
                        .map_err(AuthError::from),
                )
            }
            Authenticator::FastJwt(verifier) => match jwt::bearer_token(headers) {
                Ok(token) => Step::Jwt(verifier, token.to_owned()),
                Err(e) => Step::Done(Err(e)),
            },
        };
        async move {
            match step {
                Step::Done(result) => result,
                Step::Jwt(verifier, token) => verifier.verify_token(&token, clock).await,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures: RSA keys (slow to generate in debug builds, so made once), tokens
    //! with arbitrary headers and claims, JWKS files.

    use std::path::Path;
    use std::sync::OnceLock;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rsa::pkcs1v15::SigningKey;
    use rsa::sha2::Sha256;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};
    use rsa::{RsaPrivateKey, RsaPublicKey};

    /// Two distinct 2048-bit keys, generated in parallel on first use.
    pub fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
        static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let gen = || RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa keygen");
            let other = std::thread::spawn(gen);
            let first = gen();
            (first, other.join().expect("keygen thread"))
        })
    }

    pub fn key_a() -> &'static RsaPrivateKey {
        &keys().0
    }

    pub fn key_b() -> &'static RsaPrivateKey {
        &keys().1
    }

    pub fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `header.payload` signed RS256 with `key`, whatever the header says.
    pub fn rs256_token(
        key: &RsaPrivateKey,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signer = SigningKey::<Sha256>::new(key.clone());
        let sig = signer.sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes());
        format!("{input}.{}", b64(&sig.to_vec()))
    }

    pub fn write_jwks(path: &Path, keys: &[(&str, &RsaPublicKey)]) {
        std::fs::write(path, crate::keys::jwks_json(keys)).expect("write jwks");
    }

    pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn errors_name_the_check() {
        assert_eq!(
            AuthError::MissingHeader("webhook-id").to_string(),
            "missing header webhook-id"
        );
        assert_eq!(
            AuthError::UnsupportedAlgorithm("HS256".into()).to_string(),
            "unsupported algorithm \"HS256\""
        );
        assert!(AuthError::KeysUnavailable.is_unavailable());
        assert!(!AuthError::BadSignature.is_unavailable());
        assert_eq!(AuthError::TokenExpired.kind(), "token_expired");
        assert_eq!(sanitize("a\u{7}b c"), "a?b?c");
    }

    #[test]
    fn principal_app_id_check() {
        let p = Principal {
            app_id: Some("app-1".into()),
        };
        assert_eq!(p.check_app_id("app-1"), Ok(()));
        assert_eq!(p.check_app_id("app-2"), Err(AuthError::AppIdMismatch));
        assert_eq!(Principal::default().check_app_id("anything"), Ok(()));
    }

    #[test]
    fn config_constructors_reject_bad_values() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(Authenticator::hmac_from_config(secret, 0).is_err());
        assert!(Authenticator::hmac_from_config("", 300).is_err());
        let a = Authenticator::hmac_from_config(secret, 300).expect("valid");
        assert_eq!(a.scheme(), "hmac");
        assert!(!format!("{a:?}").contains("MfKQ9r8G"));
        assert!(Authenticator::fast_jwt_from_config("", "api.fast.co", "app").is_err());
        assert!(Authenticator::fast_jwt_from_config("/tmp/x.json", "api.fast.co", " ").is_err());
        assert!(Authenticator::fast_jwt_from_config("/tmp/x.json", "", "app").is_err());
        let j = Authenticator::fast_jwt_from_config("/tmp/x.json", "api.fast.co", "app")
            .expect("valid");
        assert_eq!(j.scheme(), "fast-jwt");
    }

    #[tokio::test]
    async fn none_accepts_everything() {
        let clock = ManualClock::new(0);
        let h: Vec<(String, String)> = Vec::new();
        let p = Authenticator::None.verify(&h, b"x", &clock).await;
        assert_eq!(p, Ok(Principal::default()));
    }

    #[tokio::test]
    async fn hmac_mode_uses_the_injected_clock() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let a = Authenticator::hmac_from_config(secret, 300).expect("valid");
        let s = WebhookSecret::parse(secret).expect("valid");
        let body = br#"{"test": 2432232314}"#;
        let h: Vec<(String, String)> = signing::headers(&s, "msg_1", 1_614_265_330, body)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let clock = ManualClock::new(1_614_265_330_000 + 299_999);
        assert_eq!(a.verify(&h, body, &clock).await, Ok(Principal::default()));
        clock.advance_ms(2_000);
        assert_eq!(
            a.verify(&h, body, &clock).await,
            Err(AuthError::TimestampOutsideWindow)
        );
    }

    /// JWT-10: the token does not cover the body; integrity rests on TLS.
    #[tokio::test]
    async fn jwt_mode_does_not_cover_the_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        write_jwks(&path, &[("k1", &key_a().to_public_key())]);
        let a = Authenticator::fast_jwt_from_config(
            path.to_str().expect("utf-8 path"),
            "api.fast.co",
            "app-1",
        )
        .expect("valid");
        let now = 1_700_000_000;
        let token = rs256_token(
            key_a(),
            &serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            &serde_json::json!({"iss": "api.fast.co", "aud": "app-1", "exp": now + 300, "iat": now}),
        );
        let h = headers(&[("Authorization", &format!("Bearer {token}"))]);
        let clock = ManualClock::new(now as u64 * 1000);
        let expected = Ok(Principal {
            app_id: Some("app-1".into()),
        });
        assert_eq!(a.verify(&h, b"{\"a\":1}", &clock).await, expected);
        assert_eq!(a.verify(&h, b"{\"a\":2}", &clock).await, expected);
        let missing: Vec<(String, String)> = Vec::new();
        assert_eq!(
            a.verify(&missing, b"", &clock).await,
            Err(AuthError::MissingHeader("authorization"))
        );
    }

    #[test]
    fn verify_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let clock = ManualClock::new(0);
        let h: Vec<(String, String)> = Vec::new();
        let fut = Authenticator::None.verify(&h, b"", &clock);
        assert_send(&fut);
    }
}
