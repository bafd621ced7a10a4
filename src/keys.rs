//! Local RS256 key sets: generate a key pair with its JWKS, load the private key, sign tokens.
//!
//! For `fast-seller keys` / `fast-seller sign` and for tests that stand in for Fast.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

/// Size of generated keys.
pub const KEY_BITS: usize = 2048;
/// File name of the private key written by [`generate`].
pub const PRIVATE_KEY_FILE: &str = "private.pem";
/// File name of the public JWKS written by [`generate`].
pub const JWKS_FILE: &str = "jwks.json";

/// Why a key operation failed. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("invalid kid {0:?}: 1 to 128 printable ASCII characters, no spaces")]
    InvalidKid(String),
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not an RSA private key in PKCS#8 or PKCS#1 PEM")]
    NotAPrivateKey(PathBuf),
    #[error("RSA operation failed: {0}")]
    Rsa(String),
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKeys {
    pub kid: String,
    pub private_key: PathBuf,
    pub jwks: PathBuf,
}

fn check_kid(kid: &str) -> Result<(), KeysError> {
    if kid.is_empty() || kid.len() > 128 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeysError::InvalidKid(crate::auth::sanitize(kid)));
    }
    Ok(())
}

/// Generates a 2048-bit RSA key and writes `dir/private.pem` (PKCS#8, mode 0600 on Unix) and
/// `dir/jwks.json` (its public half, `kid`, `alg` RS256, `use` sig). Creates `dir` if needed;
/// refuses to overwrite either file.
pub fn generate(dir: &Path, kid: &str) -> Result<GeneratedKeys, KeysError> {
    check_kid(kid)?;
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let jwks_path = dir.join(JWKS_FILE);
    for path in [&private_path, &jwks_path] {
        if path.exists() {
            return Err(KeysError::Exists(path.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| KeysError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|e| KeysError::Rsa(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeysError::Rsa(e.to_string()))?;
    write_new(&private_path, pem.as_bytes(), true)?;
    let jwks = jwks_json(&[(kid, &key.to_public_key())]);
    write_new(&jwks_path, jwks.as_bytes(), false)?;
    Ok(GeneratedKeys {
        kid: kid.to_string(),
        private_key: private_path,
        jwks: jwks_path,
    })
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeysError> {
    let err = |source| KeysError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// A JWKS document (pretty JSON) with one RS256 signing key per `(kid, key)`.
pub fn jwks_json(keys: &[(&str, &RsaPublicKey)]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(kid, key)| {
            serde_json::json!({
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            })
        })
        .collect();
    let doc = serde_json::json!({ "keys": keys });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
    text.push('\n');
    text
}

/// Reads an RSA private key from PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn load_private(path: &Path) -> Result<RsaPrivateKey, KeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    RsaPrivateKey::from_pkcs8_pem(&text)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&text))
        .map_err(|_| KeysError::NotAPrivateKey(path.to_path_buf()))
}

/// An RS256 JWT with header `{alg, kid, typ}` and claims `iss`, `aud`, `iat` = `now_secs`,
/// `exp` = `now_secs + ttl_secs` (numbers).
pub fn sign_jwt(
    private_key: &RsaPrivateKey,
    kid: &str,
    issuer: &str,
    audience: &str,
    now_secs: i64,
    ttl_secs: i64,
) -> Result<String, KeysError> {
    let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "iat": now_secs,
        "exp": now_secs.saturating_add(ttl_secs),
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // Randomized signing blinds the private-key operation.
    let signature = SigningKey::<Sha256>::new(private_key.clone())
        .try_sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes())
        .map_err(|e| KeysError::Rsa(e.to_string()))?;
    Ok(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwks::{JwksCache, JwksSource};
    use crate::auth::jwt::{JwtVerifier, DEFAULT_ISSUER};
    use crate::auth::{AuthError, Principal};
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[tokio::test]
    async fn generated_key_signs_tokens_the_verifier_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("keys");
        let generated = generate(&out, "local-1").expect("generate");
        assert_eq!(generated.private_key, out.join("private.pem"));
        assert_eq!(generated.jwks, out.join("jwks.json"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&generated.private_key)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = std::fs::read_to_string(&generated.private_key).expect("read");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let jwks: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&generated.jwks).expect("read"))
                .expect("json");
        assert_eq!(jwks["keys"][0]["kid"], "local-1");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert!(jwks["keys"][0].get("d").is_none(), "no private parts");

        let key = load_private(&generated.private_key).expect("load");
        let now = 1_700_000_000;
        let token = sign_jwt(&key, "local-1", DEFAULT_ISSUER, "app-9", now, 300).expect("sign");
        let cache =
            Arc::new(JwksCache::new(JwksSource::File(generated.jwks.clone())).expect("cache"));
        let verifier = JwtVerifier::new(DEFAULT_ISSUER, "app-9", cache);
        let clock = ManualClock::new(now as u64 * 1000);
        assert_eq!(
            verifier.verify_token(&token, &clock).await,
            Ok(Principal {
                app_id: Some("app-9".into())
            })
        );
        clock.advance_ms(361_000);
        assert_eq!(
            verifier.verify_token(&token, &clock).await,
            Err(AuthError::TokenExpired)
        );
        let other = sign_jwt(&key, "local-1", DEFAULT_ISSUER, "app-other", now, 300).expect("sign");
        let fresh = ManualClock::new(now as u64 * 1000);
        assert_eq!(
            verifier.verify_token(&other, &fresh).await,
            Err(AuthError::WrongAudience)
        );

        // Never overwrite an existing key.
        assert!(matches!(
            generate(&out, "local-2"),
            Err(KeysError::Exists(_))
        ));
        // PKCS#1 PEM loads too.
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let pkcs1 = dir.path().join("pkcs1.pem");
        std::fs::write(
            &pkcs1,
            key.to_pkcs1_pem(LineEnding::LF).expect("pem").as_bytes(),
        )
        .expect("write");
        assert_eq!(load_private(&pkcs1).expect("pkcs1"), key);
    }

    #[test]
    fn bad_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        for kid in ["", "has space", "tab\t", &"k".repeat(129)] {
            assert!(matches!(
                generate(dir.path(), kid),
                Err(KeysError::InvalidKid(_))
            ));
        }
        let not_key = dir.path().join("x.pem");
        std::fs::write(&not_key, "hello").expect("write");
        let err = load_private(&not_key).expect_err("not a key");
        assert!(matches!(err, KeysError::NotAPrivateKey(_)));
        assert!(matches!(
            load_private(&dir.path().join("missing.pem")),
            Err(KeysError::Read { .. })
        ));
    }
}
