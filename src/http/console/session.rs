//! The console's sign-in session and CSRF tokens, stateless and keyed by the admin token.
//!
//! A session is a cookie `<expires_ms>.<nonce>.<mac>`: the MAC (HMAC-SHA256 under a key
//! derived from `FAST_SELLER_ADMIN_TOKEN`) proves that this server issued it after someone
//! gave the token. Nothing is kept per session, so sessions work on every instance sharing
//! the token and survive restarts; changing the token ends every session. A form's CSRF
//! token is the MAC of the session's nonce, so it is valid only with that session's cookie.
//! Sign-out clears the cookie and remembers the nonce (in this process) until it expires.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// The session cookie.
pub const COOKIE: &str = "fs_console";
/// The sign-in form's own cookie (its CSRF token needs something to be bound to).
pub const SIGN_IN_COOKIE: &str = "fs_console_sign_in";
/// How long a session lasts.
pub const LIFETIME_MS: u64 = 12 * 3600 * 1000;
/// How long a sign-in form stays usable.
pub const SIGN_IN_LIFETIME_MS: u64 = 3600 * 1000;

/// Why a cookie or a form token is not accepted (for logs; the page says less).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed session cookie")]
    Malformed,
    #[error("session cookie not issued with the current admin token")]
    BadMac,
    #[error("session expired")]
    Expired,
}

/// A valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub nonce: String,
    pub expires_ms: u64,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// The MAC key, derived from the admin token.
pub struct Keys {
    key: [u8; 32],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random nonce (128 bits, hex).
pub fn nonce() -> String {
    hex(&rand::random::<[u8; 16]>())
}

impl Keys {
    pub fn from_token(token: &str) -> Keys {
        let mut h = Sha256::new();
        h.update(b"fast-seller console session v1\0");
        h.update(token.as_bytes());
        Keys {
            key: h.finalize().into(),
        }
    }

    fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    fn sign(&self, parts: &[&str]) -> String {
        hex(&self.mac(parts).finalize().into_bytes())
    }

    /// Constant-time check of a hex MAC.
    fn check(&self, parts: &[&str], given: &str) -> bool {
        let Some(bytes) = unhex(given) else {
            return false;
        };
        self.mac(parts).verify_slice(&bytes).is_ok()
    }

    /// A new session cookie value, valid until `now_ms + LIFETIME_MS`.
    pub fn issue(&self, now_ms: u64, nonce: &str) -> String {
        let expires = (now_ms.saturating_add(LIFETIME_MS)).to_string();
        let mac = self.sign(&["session", &expires, nonce]);
        format!("{expires}.{nonce}.{mac}")
    }

    /// The session a cookie value stands for.
    pub fn verify(&self, cookie: &str, now_ms: u64) -> Result<Session, SessionError> {
        let mut parts = cookie.splitn(3, '.');
        let (Some(expires), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let expires_ms: u64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SessionError::Malformed);
        }
        if !self.check(&["session", expires, nonce], mac) {
            return Err(SessionError::BadMac);
        }
        if now_ms >= expires_ms {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            csrf: self.csrf(nonce),
            nonce: nonce.to_string(),
            expires_ms,
        })
    }

    /// The CSRF token of the session (or sign-in form) with this nonce.
    pub fn csrf(&self, nonce: &str) -> String {
        self.sign(&["csrf", nonce])
    }

    /// Whether `given` is the CSRF token of `nonce`, in constant time.
    pub fn csrf_ok(&self, nonce: &str, given: &str) -> bool {
        self.check(&["csrf", nonce], given)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Nonces of signed-out sessions, each until its session would have expired.
#[derive(Debug, Default)]
pub struct SignedOut(Mutex<HashMap<String, u64>>);

impl SignedOut {
    pub fn add(&self, session: &Session, now_ms: u64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, expires| *expires > now_ms);
        map.insert(session.nonce.clone(), session.expires_ms);
    }

    pub fn contains(&self, nonce: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(nonce)
    }
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/console`, `Secure` when the
/// request came over TLS; `max_age_s` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/console; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_under_its_token() {
        let keys = Keys::from_token("admin-token-0123456789");
        let cookie = keys.issue(NOW, &nonce());
        let session = keys.verify(&cookie, NOW + 1).expect("valid");
        assert_eq!(session.expires_ms, NOW + LIFETIME_MS);
        assert_eq!(
            keys.verify(&cookie, NOW + LIFETIME_MS),
            Err(SessionError::Expired)
        );
        let other = Keys::from_token("another-token-0123456789");
        assert_eq!(other.verify(&cookie, NOW), Err(SessionError::BadMac));
    }

    #[test]
    fn a_changed_expiry_or_nonce_breaks_the_mac() {
        let keys = Keys::from_token("admin-token-0123456789");
        let cookie = keys.issue(NOW, "00ff");
        let (_, rest) = cookie.split_once('.').unwrap();
        let later = format!("{}.{rest}", NOW + 10 * LIFETIME_MS);
        assert_eq!(keys.verify(&later, NOW), Err(SessionError::BadMac));
        let swapped = cookie.replace(".00ff.", ".00fe.");
        assert_eq!(keys.verify(&swapped, NOW), Err(SessionError::BadMac));
        for bad in ["", "1.2", "x.00ff.aa", "1.zz.aa", "1..aa"] {
            assert_eq!(
                keys.verify(bad, NOW),
                Err(SessionError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(keys.verify("1.00ff.zz", NOW), Err(SessionError::BadMac));
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let keys = Keys::from_token("admin-token-0123456789");
        let token = keys.csrf("00aa");
        assert!(keys.csrf_ok("00aa", &token));
        assert!(!keys.csrf_ok("00ab", &token));
        assert!(!keys.csrf_ok("00aa", ""));
        assert!(!keys.csrf_ok("00aa", "not hex"));
    }

    #[test]
    fn signed_out_sessions_are_remembered_until_they_expire() {
        let out = SignedOut::default();
        let old = Session {
            nonce: "01".into(),
            expires_ms: NOW,
            csrf: String::new(),
        };
        out.add(&old, NOW - 1);
        assert!(out.contains("01"));
        let new = Session {
            nonce: "02".into(),
            expires_ms: NOW + 5,
            ..old
        };
        out.add(&new, NOW);
        assert!(!out.contains("01"), "expired entries are dropped");
        assert!(out.contains("02"));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = set_cookie(COOKIE, "v", 60, false);
        assert_eq!(
            plain,
            "fs_console=v; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie(COOKIE, "v", 60, true).ends_with("; Secure"));
    }
}
