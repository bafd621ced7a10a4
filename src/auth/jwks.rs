//! RSA signing keys from a JWKS (a file or an http(s) URL), cached by `kid`.
//!
//! Loaded on first use; refreshed in the background when used older than an hour (the request
//! is answered with the cached key meanwhile, so a slow or hanging JWKS endpoint never holds
//! up a known `kid`); refetched on an unknown `kid` at most once a minute (every fetch attempt,
//! failed or not, starts that minute). A failed
//! fetch keeps the keys already held, for at most 6 hours after they were fetched: past that,
//! tokens are refused (503, logged) until the source answers again, so a key Fast has rotated
//! out cannot stay trusted through a long outage. Time comes from the injected [`Clock`].

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;

use super::{sanitize, AuthError};
use crate::clock::Clock;

/// Minimum interval between two fetches.
pub const MIN_FETCH_INTERVAL_MS: u64 = 60_000;
/// Keys older than this are refreshed on next use.
pub const REFRESH_AFTER_MS: u64 = 60 * 60 * 1000;
/// Keys older than this are no longer used (the source has been failing since).
pub const MAX_KEY_AGE_MS: u64 = 6 * 60 * 60 * 1000;
/// Timeout of one HTTP fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS document larger than this is refused.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;
/// RSA keys shorter than this are ignored (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// Where the JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// `http://…` or `https://…` (scheme case-insensitive) is a URL; anything else a file path.
    pub fn from_config(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("JWKS source is empty (expected a file path or an http(s) URL)".into());
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(JwksSource::Url(text.to_string()))
        } else {
            Ok(JwksSource::File(PathBuf::from(text)))
        }
    }

    /// For logs: the path, or the URL without user info, query and fragment.
    pub fn describe(&self) -> String {
        match self {
            JwksSource::File(path) => path.display().to_string(),
            JwksSource::Url(url) => {
                let cut = url.find(['?', '#']).unwrap_or(url.len());
                let url = &url[..cut];
                match (url.find("://"), url.rfind('@')) {
                    (Some(scheme_end), Some(at)) if at > scheme_end => {
                        format!("{}<redacted>@{}", &url[..scheme_end + 3], &url[at + 1..])
                    }
                    _ => url.to_string(),
                }
            }
        }
    }
}

/// Why a JWKS could not be fetched or used. Never contains key material or URL secrets.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot read JWKS file: {0}")]
    Read(std::io::Error),
    #[error("JWKS fetch failed: {0}")]
    Http(String),
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("JWKS is not valid JSON: {0}")]
    Json(String),
    #[error("JWKS contains no usable RSA signing key")]
    NoUsableKeys,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

type KeyMap = HashMap<String, Arc<RsaPublicKey>>;

/// Parses a JWKS document into RSA signing keys by `kid`. Keys that are not RSA, have a `use`
/// other than `sig`, an `alg` other than RS256, no `kid`, bad `n`/`e` or fewer than 2048 bits
/// are skipped; the first of two keys with the same `kid` wins.
pub fn parse_jwks(bytes: &[u8]) -> Result<HashMap<String, Arc<RsaPublicKey>>, JwksError> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| JwksError::Json(e.to_string()))?;
    let mut keys = KeyMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::warn!("JWKS: skipping a key that is not a JSON object of strings");
            continue;
        };
        if jwk.kty.as_deref() != Some("RSA") {
            continue;
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        if jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
            continue;
        }
        let Some(kid) = jwk.kid.filter(|k| !k.is_empty()) else {
            tracing::warn!("JWKS: skipping an RSA key without kid");
            continue;
        };
        let kid_shown = sanitize(&kid);
        let (Some(n), Some(e)) = (jwk.n, jwk.e) else {
            tracing::warn!(kid = %kid_shown, "JWKS: skipping an RSA key without n or e");
            continue;
        };
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
            tracing::warn!(kid = %kid_shown, "JWKS: skipping an RSA key whose n or e is not base64url");
            continue;
        };
        let key = match RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)) {
            Ok(key) => key,
            Err(err) => {
                tracing::warn!(kid = %kid_shown, error = %err, "JWKS: skipping an invalid RSA key");
                continue;
            }
        };
        if key.n().bits() < MIN_RSA_BITS {
            tracing::warn!(kid = %kid_shown, bits = key.n().bits(), "JWKS: skipping an RSA key shorter than 2048 bits");
            continue;
        }
        if keys.contains_key(&kid) {
            tracing::warn!(kid = %kid_shown, "JWKS: duplicate kid, keeping the first");
            continue;
        }
        keys.insert(kid, Arc::new(key));
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(keys)
}

#[derive(Default)]
struct State {
    keys: KeyMap,
    /// When the current keys were fetched.
    loaded_at_ms: Option<u64>,
    /// When the last fetch (successful or not) started.
    last_attempt_ms: Option<u64>,
}

impl State {
    fn fresh(&self, now_ms: u64) -> bool {
        self.loaded_at_ms
            .is_some_and(|t| now_ms.abs_diff(t) < REFRESH_AFTER_MS)
    }

    /// Whether the keys may still be used (fetched under [`MAX_KEY_AGE_MS`] ago).
    fn usable(&self, now_ms: u64) -> bool {
        self.loaded_at_ms
            .is_some_and(|t| now_ms.abs_diff(t) < MAX_KEY_AGE_MS)
    }

    fn may_fetch(&self, now_ms: u64) -> bool {
        self.last_attempt_ms
            .is_none_or(|t| now_ms.abs_diff(t) >= MIN_FETCH_INTERVAL_MS)
    }

    /// The key for `kid`; none once the keys outlived [`MAX_KEY_AGE_MS`].
    fn lookup(&self, kid: &str, now_ms: u64) -> Result<Arc<RsaPublicKey>, AuthError> {
        let expired = self
            .loaded_at_ms
            .is_some_and(|t| now_ms.abs_diff(t) >= MAX_KEY_AGE_MS);
        if expired {
            return Err(AuthError::KeysUnavailable);
        }
        match self.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if self.keys.is_empty() => Err(AuthError::KeysUnavailable),
            None => Err(AuthError::UnknownKeyId(sanitize(kid))),
        }
    }
}

/// A cache of RSA public keys by `kid`, shared by all requests.
pub struct JwksCache {
    inner: Arc<Inner>,
}

/// What a background refresh shares with the requests.
struct Inner {
    source: JwksSource,
    client: Option<reqwest::Client>,
    state: Mutex<State>,
    /// Serialises fetches so that concurrent misses cause one fetch.
    fetch_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    /// The latest background refresh, for [`JwksCache::settle`].
    background: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("source", &self.inner.source.describe())
            .field("keys", &self.inner.lock_state().keys.len())
            .field("fetches", &self.fetches())
            .finish()
    }
}

impl JwksCache {
    /// A cache that has not fetched anything yet. Fails only if the HTTP client cannot be built.
    pub fn new(source: JwksSource) -> Result<Self, JwksError> {
        let client = match &source {
            JwksSource::File(_) => None,
            JwksSource::Url(_) => Some(
                reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .connect_timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    .build()
                    .map_err(|e| JwksError::Client(e.without_url().to_string()))?,
            ),
        };
        Ok(JwksCache {
            inner: Arc::new(Inner {
                source,
                client,
                state: Mutex::new(State::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
                background: Mutex::new(None),
            }),
        })
    }

    /// Where the keys come from.
    pub fn source(&self) -> &JwksSource {
        &self.inner.source
    }

    /// How many fetches were attempted so far (successful or not).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Fetches now, ignoring the rate limit, and returns how many keys are usable; on failure
    /// the keys held are kept. Meant for a startup check.
    pub async fn load(&self, clock: &dyn Clock) -> Result<usize, JwksError> {
        let _guard = self.inner.fetch_lock.lock().await;
        self.inner.fetch_and_store(clock.now_ms()).await
    }

    /// For a server that started without keys (the URL did not answer): fetches when no
    /// keys are held and the once-a-minute limit allows. `Some(n)` once `n` keys are held,
    /// `None` when it is not time to fetch again yet.
    pub async fn fetch_if_empty(&self, clock: &dyn Clock) -> Result<Option<usize>, JwksError> {
        let _guard = self.inner.fetch_lock.lock().await;
        let now = clock.now_ms();
        {
            let state = self.inner.lock_state();
            if !state.keys.is_empty() {
                return Ok(Some(state.keys.len()));
            }
            if !state.may_fetch(now) {
                return Ok(None);
            }
        }
        self.inner.fetch_and_store(now).await.map(Some)
    }

    /// The key for `kid`. A known `kid` is answered from the cache at once (its keys past the
    /// refresh age are refreshed in the background); an unknown one, or keys no longer
    /// usable, wait for a fetch when one is allowed.
    pub async fn key(&self, kid: &str, clock: &dyn Clock) -> Result<Arc<RsaPublicKey>, AuthError> {
        let now = clock.now_ms();
        {
            let state = self.inner.lock_state();
            if let Some(key) = state.keys.get(kid).filter(|_| state.usable(now)) {
                let key = key.clone();
                let stale = !state.fresh(now);
                drop(state);
                if stale {
                    self.refresh_in_background(now);
                }
                return Ok(key);
            }
        }
        let _guard = self.inner.fetch_lock.lock().await;
        let now = clock.now_ms();
        {
            // Another task may have fetched while this one waited for the lock.
            let state = self.inner.lock_state();
            let known = state.keys.contains_key(kid);
            if (known && state.usable(now)) || !state.may_fetch(now) {
                return state.lookup(kid, now);
            }
        }
        // A failure is logged inside and leaves the old keys in place (until they expire).
        let _ = self.inner.fetch_and_store(now).await;
        self.inner.lock_state().lookup(kid, now)
    }

    /// Starts one fetch in the background unless one ran in the last minute or is running:
    /// the attempt is claimed (its minute starts) before the task is spawned, so requests
    /// arriving meanwhile spawn no more.
    fn refresh_in_background(&self, now_ms: u64) {
        {
            let mut state = self.inner.lock_state();
            if !state.may_fetch(now_ms) {
                return;
            }
            state.last_attempt_ms = Some(now_ms);
        }
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            // A fetch already running (an unknown kid's) refreshes the keys as well.
            let Ok(_guard) = inner.fetch_lock.try_lock() else {
                return;
            };
            let _ = inner.fetch_and_store(now_ms).await;
        });
        *self
            .inner
            .background
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(task);
    }

    /// Waits until the latest background refresh, if any, has finished (tests use it to
    /// look at the cache after a refresh without polling).
    pub async fn settle(&self) {
        let task = self
            .inner
            .background
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One fetch attempt; the caller holds `fetch_lock`.
    async fn fetch_and_store(&self, now_ms: u64) -> Result<usize, JwksError> {
        self.lock_state().last_attempt_ms = Some(now_ms);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = match self.fetch_bytes().await {
            Ok(bytes) => parse_jwks(&bytes),
            Err(e) => Err(e),
        };
        let mut state = self.lock_state();
        match result {
            Ok(keys) => {
                let count = keys.len();
                tracing::debug!(source = %self.source.describe(), keys = count, "JWKS loaded");
                state.keys = keys;
                state.loaded_at_ms = Some(now_ms);
                Ok(count)
            }
            Err(e) => {
                let age_ms = state.loaded_at_ms.map(|t| now_ms.saturating_sub(t));
                if age_ms.is_some_and(|a| a >= MAX_KEY_AGE_MS) {
                    tracing::error!(
                        source = %self.source.describe(),
                        error = %e,
                        "JWKS fetch failed and the cached keys are over 6 h old: \
                         refusing Fast's tokens until the JWKS answers"
                    );
                } else {
                    tracing::warn!(
                        source = %self.source.describe(),
                        error = %e,
                        cached_keys = state.keys.len(),
                        "JWKS fetch failed; keeping the keys already cached"
                    );
                }
                Err(e)
            }
        }
    }

    async fn fetch_bytes(&self) -> Result<Vec<u8>, JwksError> {
        match (&self.source, &self.client) {
            (JwksSource::File(path), _) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_capped(&path))
                    .await
                    .map_err(|e| JwksError::Read(std::io::Error::other(e.to_string())))?
            }
            (JwksSource::Url(url), Some(client)) => fetch_url(client, url).await,
            (JwksSource::Url(_), None) => Err(JwksError::Client("no HTTP client".into())),
        }
    }
}

fn read_capped(path: &std::path::Path) -> Result<Vec<u8>, JwksError> {
    let file = std::fs::File::open(path).map_err(JwksError::Read)?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(JwksError::Read)?;
    if bytes.len() as u64 > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    Ok(bytes)
}

async fn fetch_url(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwksError> {
    // reqwest's own text is "error sending request"; the cause ("Connection refused", a
    // DNS failure, a TLS error) is in its sources. The URL is left out (it may hold secrets).
    let http = |e: reqwest::Error| {
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        JwksError::Http(text)
    };
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    if !response.status().is_success() {
        return Err(JwksError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES)
    {
        return Err(JwksError::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if (bytes.len() + chunk.len()) as u64 > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::clock::ManualClock;
    use serde_json::json;

    const START_MS: u64 = 1_700_000_000_000;

    fn setup(keys: &[(&str, &RsaPublicKey)]) -> (tempfile::TempDir, PathBuf, JwksCache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        write_jwks(&path, keys);
        let cache = JwksCache::new(JwksSource::File(path.clone())).expect("cache");
        (dir, path, cache)
    }

    #[test]
    fn source_from_config() {
        assert_eq!(
            JwksSource::from_config("https://api.fast.co/v1/oauth2/jwks"),
            Ok(JwksSource::Url("https://api.fast.co/v1/oauth2/jwks".into()))
        );
        assert_eq!(
            JwksSource::from_config("HTTP://127.0.0.1:9/jwks"),
            Ok(JwksSource::Url("HTTP://127.0.0.1:9/jwks".into()))
        );
        assert_eq!(
            JwksSource::from_config(" ./keys/jwks.json "),
            Ok(JwksSource::File(PathBuf::from("./keys/jwks.json")))
        );
        assert!(JwksSource::from_config("  ").is_err());
        let s = JwksSource::Url("https://user:pw@example.com/jwks?token=abc#x".into());
        assert_eq!(s.describe(), "https://<redacted>@example.com/jwks");
    }

    #[test]
    fn parse_filters_keys() {
        let pk = key_a().to_public_key();
        let n = b64(&pk.n().to_bytes_be());
        let e = b64(&pk.e().to_bytes_be());
        let doc = json!({"keys": [
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": e},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": e},
            {"kty": "RSA", "n": n, "e": e},
            {"kty": "RSA", "kid": "no-e", "n": n},
            {"kty": "RSA", "kid": "bad-n", "n": "!!", "e": e},
            {"kty": "RSA", "kid": "small", "n": b64(&[0xC5; 64]), "e": e},
            "not an object",
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": n, "e": e},
            {"kty": "RSA", "kid": "plain", "n": n, "e": e},
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).expect("parses");
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["good", "plain"]);
        assert_eq!(*keys["good"], pk);
        assert!(matches!(
            parse_jwks(b"{\"keys\":[]}"),
            Err(JwksError::NoUsableKeys)
        ));
        assert!(matches!(parse_jwks(b"nope"), Err(JwksError::Json(_))));
        assert!(matches!(parse_jwks(b"{}"), Err(JwksError::Json(_))));
    }

    #[tokio::test]
    async fn loads_on_first_use_and_serves_from_cache() {
        let (_dir, _path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let clock = ManualClock::new(START_MS);
        assert_eq!(cache.fetches(), 0);
        let key = cache.key("k1", &clock).await.expect("key");
        assert_eq!(*key, key_a().to_public_key());
        for _ in 0..10 {
            cache.key("k1", &clock).await.expect("key");
        }
        assert_eq!(cache.fetches(), 1);
        assert!(format!("{cache:?}").contains("keys: 1"));
    }

    // JWT-07
    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_a_minute() {
        let (_dir, _path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let clock = ManualClock::new(START_MS);
        cache.key("k1", &clock).await.expect("key");
        assert_eq!(cache.fetches(), 1);
        // Within the minute of the first load: no refetch.
        assert_eq!(
            cache.key("nope", &clock).await,
            Err(AuthError::UnknownKeyId("nope".into()))
        );
        assert_eq!(cache.fetches(), 1);
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        for _ in 0..20 {
            assert_eq!(
                cache.key("nope", &clock).await,
                Err(AuthError::UnknownKeyId("nope".into()))
            );
            clock.advance_ms(1_000);
        }
        assert_eq!(
            cache.fetches(),
            2,
            "20 unknown kids in a minute: one refetch"
        );
        clock.advance_ms(40_000);
        let _ = cache.key("nope", &clock).await;
        assert_eq!(cache.fetches(), 3);
        // Known keys never wait for the rate limit.
        cache.key("k1", &clock).await.expect("key");
        assert_eq!(cache.fetches(), 3);
    }

    #[tokio::test]
    async fn rotation_of_kid() {
        let (_dir, path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let clock = ManualClock::new(START_MS);
        cache.key("k1", &clock).await.expect("k1");
        // Fast publishes the next key beside the current one, then drops the old one.
        write_jwks(
            &path,
            &[
                ("k1", &key_a().to_public_key()),
                ("k2", &key_b().to_public_key()),
            ],
        );
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        let k2 = cache.key("k2", &clock).await.expect("k2 after refetch");
        assert_eq!(*k2, key_b().to_public_key());
        cache.key("k1", &clock).await.expect("k1 still there");
        write_jwks(&path, &[("k2", &key_b().to_public_key())]);
        clock.advance_ms(REFRESH_AFTER_MS);
        cache.key("k2", &clock).await.expect("k2");
        cache.settle().await;
        assert_eq!(
            cache.key("k1", &clock).await,
            Err(AuthError::UnknownKeyId("k1".into()))
        );
        assert_eq!(cache.fetches(), 3);
    }

    // JWT-08
    #[tokio::test]
    async fn keys_kept_when_the_source_fails() {
        let (_dir, path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let clock = ManualClock::new(START_MS);
        cache.key("k1", &clock).await.expect("k1");
        std::fs::remove_file(&path).expect("remove");
        // Stale after an hour: a refresh is attempted, fails, and the old key still serves.
        clock.advance_ms(REFRESH_AFTER_MS + 1);
        cache.key("k1", &clock).await.expect("k1 kept");
        cache.settle().await;
        assert_eq!(cache.fetches(), 2);
        // Retries of a stale cache are rate limited too.
        cache.key("k1", &clock).await.expect("k1 kept");
        assert_eq!(cache.fetches(), 2);
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        cache.key("k1", &clock).await.expect("k1 kept");
        cache.settle().await;
        assert_eq!(cache.fetches(), 3);
        // Garbage in the file is a failure too.
        std::fs::write(&path, "{not json").expect("write");
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        cache.key("k1", &clock).await.expect("k1 kept");
        cache.settle().await;
        assert_eq!(cache.fetches(), 4);
        // Up to the age limit the key serves; from it on, nothing does.
        clock.advance_ms(START_MS + MAX_KEY_AGE_MS - 1 - clock.now_ms());
        cache.key("k1", &clock).await.expect("k1 just inside 6 h");
        cache.settle().await;
        clock.advance_ms(1);
        assert_eq!(
            cache.key("k1", &clock).await,
            Err(AuthError::KeysUnavailable)
        );
        clock.advance_ms(1);
        assert_eq!(
            cache.key("k1", &clock).await,
            Err(AuthError::KeysUnavailable),
            "also between two (rate-limited) fetches"
        );
        // The source recovers.
        write_jwks(&path, &[("k2", &key_b().to_public_key())]);
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        cache.key("k2", &clock).await.expect("k2");
        assert_eq!(cache.fetches(), 6);
    }

    /// Keys past the refresh age are refreshed in the background: the request that notices it
    /// gets the cached key without waiting (the source here is gone and would fail), and the
    /// refresh happens once a minute at most, whatever the number of requests.
    #[tokio::test]
    async fn stale_keys_answer_at_once_and_refresh_in_the_background() {
        let (_dir, path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let clock = ManualClock::new(START_MS);
        cache.key("k1", &clock).await.expect("k1");
        write_jwks(
            &path,
            &[
                ("k1", &key_a().to_public_key()),
                ("k2", &key_b().to_public_key()),
            ],
        );
        clock.advance_ms(REFRESH_AFTER_MS + 1);
        for _ in 0..20 {
            cache.key("k1", &clock).await.expect("k1 from the cache");
        }
        cache.settle().await;
        assert_eq!(cache.fetches(), 2, "20 stale uses: one background refresh");
        cache
            .key("k2", &clock)
            .await
            .expect("k2 from the refreshed keys");
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn no_keys_at_all_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.json");
        let cache = JwksCache::new(JwksSource::File(path.clone())).expect("cache");
        let clock = ManualClock::new(START_MS);
        assert_eq!(
            cache.key("k1", &clock).await,
            Err(AuthError::KeysUnavailable)
        );
        assert_eq!(
            cache.key("k1", &clock).await,
            Err(AuthError::KeysUnavailable)
        );
        assert_eq!(cache.fetches(), 1);
        assert!(matches!(cache.load(&clock).await, Err(JwksError::Read(_))));
        write_jwks(&path, &[("k1", &key_a().to_public_key())]);
        assert_eq!(cache.load(&clock).await.expect("loads"), 1);
        cache.key("k1", &clock).await.expect("k1");
        assert_eq!(cache.fetches(), 3);
    }

    #[tokio::test]
    async fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.json");
        std::fs::write(&path, vec![b' '; MAX_JWKS_BYTES as usize + 1]).expect("write");
        let cache = JwksCache::new(JwksSource::File(path)).expect("cache");
        let clock = ManualClock::new(START_MS);
        assert!(matches!(cache.load(&clock).await, Err(JwksError::TooLarge)));
    }

    #[tokio::test]
    async fn concurrent_misses_fetch_once() {
        let (_dir, _path, cache) = setup(&[("k1", &key_a().to_public_key())]);
        let cache = Arc::new(cache);
        let clock = Arc::new(ManualClock::new(START_MS));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                let clock = clock.clone();
                tokio::spawn(async move { cache.key("k1", clock.as_ref()).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("key");
        }
        assert_eq!(cache.fetches(), 1);
    }

    /// A JWKS served over loopback HTTP by a one-shot server.
    #[tokio::test]
    async fn fetches_over_http() {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let body = crate::keys::jwks_json(&[("k1", &key_a().to_public_key())]);
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "500 Internal Server Error"] {
                let (stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).expect("read") > 2 {
                    line.clear();
                }
                let mut stream = stream;
                let payload = if status.starts_with("200") {
                    body.as_str()
                } else {
                    ""
                };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                    payload.len()
                )
                .expect("write");
            }
        });
        let source = JwksSource::from_config(&format!("http://{addr}/jwks")).expect("source");
        let cache = JwksCache::new(source).expect("cache");
        let clock = ManualClock::new(START_MS);
        cache.key("k1", &clock).await.expect("k1 over http");
        clock.advance_ms(MIN_FETCH_INTERVAL_MS);
        assert!(matches!(
            cache.load(&clock).await,
            Err(JwksError::Status(500))
        ));
        cache.key("k1", &clock).await.expect("k1 kept");
        server.join().expect("server");
        assert_eq!(cache.fetches(), 2);
    }
}
