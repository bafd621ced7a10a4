//! Settings of `fast-seller serve`: flag > environment > TOML file > default (README "Configuration").
//! Read once, validated once into typed values; a bad setting stops start-up with one line
//! naming it.

use crate::domain::limits::{self, Limits};
mod vendure;

pub use vendure::{VendureCredentials, VendureSettings, VendureTaxZone};

use crate::signing::{self, WebhookSecret};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Never keep idempotency records for less than this (docs/idempotency.md "Retention").
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Fast's production order-management API.
pub const DEFAULT_FAST_API_URL: &str = "https://api.fast.co/v1";

/// An http(s) URL setting with a host.
fn http_url(v: &str) -> Result<String, String> {
    url_with_scheme(v, &["http", "https"], "an http:// or https:// URL")
}

/// A URL whose scheme is one of `schemes` and that names a host.
fn url_with_scheme(v: &str, schemes: &[&str], expected: &str) -> Result<String, String> {
    match reqwest::Url::parse(v) {
        Ok(url)
            if schemes.contains(&url.scheme()) && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(v.to_string())
        }
        Ok(_) => Err(format!("expected {expected}")),
        Err(e) => Err(format!("not a URL ({e}): expected {expected}")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Hmac,
    FastJwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    File,
    Webhook,
    Nats,
    /// Orders placed in Vendure, the catalog read from it.
    Vendure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable when it is.
    Auto,
    Json,
    Pretty,
}

/// Where orders are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store in the data directory.
    Sled,
    /// PostgreSQL at this URL (its password is a secret), with a pool of this size.
    Postgres { url: Secret, pool_size: usize },
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    /// `None`: the bundled demo catalog.
    pub catalog: Option<PathBuf>,
    pub auth: AuthMode,
    pub backend: BackendKind,
    pub idempotency_retention: Duration,
    /// How long delivered outbox entries are kept after their delivery.
    pub outbox_retention: Duration,
    pub body_limit: usize,
    /// Bytes of request bodies held in memory at once, across requests.
    pub body_bytes_in_flight: usize,
    pub body_read_timeout: Duration,
    /// How big one order may grow (lines, units a line, coupons, shipment plans).
    pub limits: Limits,
    pub cache_capacity: u64,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    /// Delivery of outbox events to the commerce backend.
    pub outbox: OutboxSettings,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<WebhookSecret>,
    pub nats_url: String,
    /// `whsec_` secrets accepted from senders with `--auth hmac` (several during rotation).
    pub hmac_secrets: Vec<WebhookSecret>,
    pub hmac_tolerance: Duration,
    /// JWKS file path or http(s) URL, with `--auth fast-jwt`.
    pub jwks: Option<String>,
    /// The merchant's Fast app id: the JWT audience.
    pub app_id: Option<String>,
    pub jwt_issuer: String,
    /// Longest accepted token lifetime (`exp − iat`).
    pub jwt_max_lifetime: Duration,
    /// Bearer token of the admin API.
    pub admin_token: Option<Secret>,
    /// Base URL of Fast's order-management API (seller → Fast calls).
    pub fast_api_url: String,
    /// `X-Fast-App-Auth` token of those calls; without it they wait in the outbox.
    pub fast_api_token: Option<Secret>,
    /// Allow `--auth none` on a non-loopback address.
    pub insecure_allow_public: bool,
    /// Record every Fast exchange as tapes here.
    pub record: Option<PathBuf>,
    /// With `--backend vendure`.
    pub vendure: Option<VendureSettings>,
}

impl Settings {
    /// Defaults for a server on `listen` keeping its data in `data_dir` (tests, embedding).
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Settings {
        Settings {
            listen,
            data_dir,
            store: StoreConfig::Sled,
            catalog: None,
            auth: AuthMode::None,
            backend: BackendKind::File,
            idempotency_retention: Duration::from_secs(7 * 24 * 3600),
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            body_limit: 1024 * 1024,
            body_bytes_in_flight: 16 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            cache_capacity: 256 * 1024 * 1024,
            workers: 0,
            log_format: LogFormat::Auto,
            shutdown_timeout: Duration::from_secs(30),
            outbox: OutboxSettings::default(),
            webhook_url: None,
            webhook_secret: None,
            nats_url: "nats://127.0.0.1:4222".into(),
            hmac_secrets: Vec::new(),
            hmac_tolerance: Duration::from_secs(300),
            jwks: None,
            app_id: None,
            jwt_issuer: "api.fast.co".into(),
            jwt_max_lifetime: Duration::from_secs(24 * 3600),
            admin_token: None,
            fast_api_url: DEFAULT_FAST_API_URL.into(),
            fast_api_token: None,
            insecure_allow_public: false,
            record: None,
            vendure: None,
        }
    }
}

/// Delivery of outbox events: the retry schedule, parallelism and timeouts.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub policy: RetryPolicy,
    /// Deliveries in flight at once (each to a different order).
    pub concurrency: usize,
    pub attempt_timeout: Duration,
    /// Longest sleep between looks at the queue.
    pub poll_interval: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            policy: RetryPolicy::default(),
            concurrency: 16,
            attempt_timeout: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The retry schedule of outbox deliveries (the worker applies it in `outbox::schedule`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the 1st, 2nd, … failure; after the last one the entry is dead.
    pub delays: Vec<Duration>,
    /// Largest extra fraction of a delay added at random (0.1 = up to 10 %).
    pub jitter: f64,
    /// `Retry-After` values are honoured up to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let s = Duration::from_secs;
        RetryPolicy {
            delays: vec![
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(14 * 3600),
                s(20 * 3600),
                s(24 * 3600),
            ],
            jitter: 0.1,
            max_retry_after: s(10 * 3600),
        }
    }
}

/// A secret value: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Defines [`RawSettings`]: every setting as text (so every bad value gets the same kind of
/// message), with its flag and env var (clap) or, for secrets, its env var only, plus the
/// file key (serde; the flag name with underscores).
macro_rules! raw_settings {
    (
        settings { $( $(#[$attr:meta])* $name:ident = $env:literal, )* }
        secrets { $( $(#[$sattr:meta])* $sname:ident = $senv:literal, )* }
    ) => {
        /// The values as given (flags and env through clap, or the file), before validation.
        #[derive(Clone, Default, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct RawSettings {
            $( $(#[$attr])* #[arg(long, env = $env)] pub $name: Option<String>, )*
            $( $(#[$sattr])* #[arg(skip)] pub $sname: Option<String>, )*
        }

        impl RawSettings {
            /// Fills every value not given here from `lower`.
            fn or(self, lower: RawSettings) -> RawSettings {
                RawSettings {
                    $( $name: self.$name.or(lower.$name), )*
                    $( $sname: self.$sname.or(lower.$sname), )*
                }
            }

            /// Secrets come from the environment or the file only, never from flags.
            fn with_secret_env(mut self) -> RawSettings {
                $( if let Ok(v) = std::env::var($senv) { self.$sname = Some(v); } )*
                self
            }
        }

        impl std::fmt::Debug for RawSettings {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("RawSettings")
                    $( .field(stringify!($name), &self.$name) )*
                    $( .field(stringify!($sname), &self.$sname.as_ref().map(|_| "<redacted>")) )*
                    .finish()
            }
        }

        /// Every setting's file key: flags first, then the secrets.
        pub const KEYS: &[&str] = &[ $( stringify!($name), )* $( stringify!($sname), )* ];

        impl RawSettings {
            /// The value given for `key` (as text, before validation), if any.
            pub fn given(&self, key: &str) -> Option<&str> {
                match key {
                    $( stringify!($name) => self.$name.as_deref(), )*
                    $( stringify!($sname) => self.$sname.as_deref(), )*
                    _ => None,
                }
            }
        }

        /// Env var of each setting, for messages.
        pub fn env_name(key: &str) -> &'static str {
            match key {
                $( stringify!($name) => $env, )*
                $( stringify!($sname) => $senv, )*
                _ => "",
            }
        }

        /// Whether a setting is a secret (env or file only).
        pub fn is_secret(key: &str) -> bool {
            matches!(key, $( stringify!($sname) )|* )
        }
    };
}

raw_settings! {
    settings {
        /// Address to listen on [default: 127.0.0.1:8080]
        listen = "FAST_SELLER_LISTEN",
        /// Directory of the embedded store [default: ./data]
        data_dir = "FAST_SELLER_DATA_DIR",
        /// `sled` (embedded, one process) or a postgres://… URL (several instances) [default: sled]
        store = "FAST_SELLER_STORE",
        /// Connections of the PostgreSQL pool [default: 16]
        store_pool_size = "FAST_SELLER_STORE_POOL_SIZE",
        /// Catalog JSON file [default: the bundled demo catalog]
        catalog = "FAST_SELLER_CATALOG",
        /// How Fast's calls are authenticated: none | hmac | fast-jwt [default: none]
        auth = "FAST_SELLER_AUTH",
        /// Where converted orders go: file | webhook | nats | vendure [default: file]
        backend = "FAST_SELLER_BACKEND",
        /// How long request ids are remembered, e.g. "7d" (at least 24h) [default: 7d]
        idempotency_retention = "FAST_SELLER_IDEMPOTENCY_RETENTION",
        /// Largest request body in bytes [default: 1048576]
        body_limit = "FAST_SELLER_BODY_LIMIT",
        /// Bytes of request bodies held in memory at once, at least body_limit [default: 16777216]
        body_bytes_in_flight = "FAST_SELLER_BODY_BYTES_IN_FLIGHT",
        /// Deadline for receiving a whole request body, e.g. "10s" [default: 10s]
        body_read_timeout = "FAST_SELLER_BODY_READ_TIMEOUT",
        /// Lines one order may have, 1 to 5000 [default: 500]
        max_order_lines = "FAST_SELLER_MAX_ORDER_LINES",
        /// Units one line may have, 1 to 100000 [default: 100000]
        max_line_units = "FAST_SELLER_MAX_LINE_UNITS",
        /// Coupons one order may have, 1 to 100 [default: 10]
        max_order_coupons = "FAST_SELLER_MAX_ORDER_COUPONS",
        /// Shipment plans one order may have, 1 to 200 [default: 20]
        max_shipment_plans = "FAST_SELLER_MAX_SHIPMENT_PLANS",
        /// sled page cache in bytes [default: 268435456]
        cache_capacity = "FAST_SELLER_CACHE_CAPACITY",
        /// HTTP worker threads, 0 = one per core [default: 0]
        workers = "FAST_SELLER_WORKERS",
        /// auto | json | pretty [default: auto]
        log_format = "FAST_SELLER_LOG_FORMAT",
        /// How long in-flight requests may take to finish on SIGTERM, e.g. "30s" [default: 30s]
        shutdown_timeout = "FAST_SELLER_SHUTDOWN_TIMEOUT",
        /// Write every Fast exchange as fixture tapes into this directory (secrets scrubbed)
        record = "FAST_SELLER_RECORD",
        /// URL the webhook backend posts events to
        webhook_url = "FAST_SELLER_WEBHOOK_URL",
        /// NATS server of the nats backend [default: nats://127.0.0.1:4222]
        nats_url = "FAST_SELLER_NATS_URL",
        /// How long delivered outbox events are kept, from 1h to 3650d [default: 7d]
        outbox_retention = "FAST_SELLER_OUTBOX_RETENTION",
        /// Outbox deliveries in flight at once [default: 16]
        outbox_concurrency = "FAST_SELLER_OUTBOX_CONCURRENCY",
        /// Time one delivery attempt may take, e.g. "15s" [default: 15s]
        outbox_attempt_timeout = "FAST_SELLER_OUTBOX_ATTEMPT_TIMEOUT",
        /// JWKS of Fast's signing keys (file path or http(s) URL), for --auth fast-jwt
        jwks = "FAST_SELLER_JWKS",
        /// Your Fast app id (the JWT audience), for --auth fast-jwt
        app_id = "FAST_SELLER_APP_ID",
        /// Base URL of Fast's order-management API [default: https://api.fast.co/v1]
        fast_api_url = "FAST_SELLER_FAST_API_URL",
        /// Expected JWT issuer [default: api.fast.co]
        jwt_issuer = "FAST_SELLER_JWT_ISSUER",
        /// Longest lifetime (exp - iat) of an accepted JWT, from 1m to 30d [default: 24h]
        jwt_max_lifetime = "FAST_SELLER_JWT_MAX_LIFETIME",
        /// Accepted clock difference of HMAC-signed calls, e.g. "5m" [default: 5m]
        hmac_tolerance = "FAST_SELLER_HMAC_TOLERANCE",
        /// Admin API of the Vendure server, with --backend vendure (e.g. http://127.0.0.1:3000/admin-api)
        vendure_url = "FAST_SELLER_VENDURE_URL",
        /// Vendure channel token (default: the default channel)
        vendure_channel_token = "FAST_SELLER_VENDURE_CHANNEL_TOKEN",
        /// The Vendure server's tax zone strategy: auto | address | channel [default: auto]
        vendure_tax_zone = "FAST_SELLER_VENDURE_TAX_ZONE",
        /// Code of the Vendure payment method Fast's payments are recorded with [default: fast]
        vendure_payment_method = "FAST_SELLER_VENDURE_PAYMENT_METHOD",
        /// How often the catalog is read again from Vendure, e.g. "5m" [default: 5m]
        catalog_refresh = "FAST_SELLER_CATALOG_REFRESH",
        /// Allow --auth none on a non-loopback address (never in production)
        #[arg(num_args = 0..=1, default_missing_value = "true")]
        insecure_allow_public = "FAST_SELLER_INSECURE_ALLOW_PUBLIC",
    }
    secrets {
        hmac_secrets = "FAST_SELLER_HMAC_SECRETS",
        webhook_secret = "FAST_SELLER_WEBHOOK_SECRET",
        admin_token = "FAST_SELLER_ADMIN_TOKEN",
        fast_api_token = "FAST_SELLER_FAST_API_TOKEN",
        vendure_api_key = "FAST_SELLER_VENDURE_API_KEY",
        vendure_username = "FAST_SELLER_VENDURE_USERNAME",
        vendure_password = "FAST_SELLER_VENDURE_PASSWORD",
    }
}

impl RawSettings {
    /// Reads a TOML file whose keys are the flag names with underscores.
    pub fn from_file(path: &Path) -> Result<RawSettings, ConfigError> {
        let file_err = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| file_err(e.message().to_string()))?;
        // Numbers and booleans may be written bare in TOML; the settings take them as text.
        let table: toml::Table = table
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::Integer(i) => (k, toml::Value::String(i.to_string())),
                toml::Value::Boolean(b) => (k, toml::Value::String(b.to_string())),
                other => (k, other),
            })
            .collect();
        RawSettings::deserialize(table).map_err(|e| file_err(e.message().to_string()))
    }

    /// Layers these (flags and env) over `file` and the defaults, and validates the result.
    /// Settings are checked in the order of [`Settings`]' fields; the first bad one is named.
    pub fn resolve(self, file: Option<RawSettings>) -> Result<Settings, ConfigError> {
        let raw = self.with_secret_env().or(file.unwrap_or_default());
        let d = Settings::new(
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            PathBuf::from("./data"),
        );
        let outbox = outbox(raw.outbox_concurrency, raw.outbox_attempt_timeout, d.outbox)?;
        let backend = value("backend", raw.backend, d.backend, backend_kind)?;
        let vendure = vendure::resolve(
            vendure::Given {
                url: raw.vendure_url,
                channel_token: raw.vendure_channel_token,
                tax_zone: raw.vendure_tax_zone,
                payment_method: raw.vendure_payment_method,
                catalog_refresh: raw.catalog_refresh,
                api_key: raw.vendure_api_key,
                username: raw.vendure_username,
                password: raw.vendure_password,
            },
            backend == BackendKind::Vendure,
        )?;
        let s = Settings {
            listen: value("listen", raw.listen, d.listen, socket_addr)?,
            data_dir: raw.data_dir.map(PathBuf::from).unwrap_or(d.data_dir),
            record: non_blank(raw.record).map(PathBuf::from),
            store: store(raw.store, raw.store_pool_size)?,
            catalog: raw.catalog.map(PathBuf::from),
            auth: value("auth", raw.auth, d.auth, auth_mode)?,
            backend,
            idempotency_retention: value(
                "idempotency_retention",
                raw.idempotency_retention,
                d.idempotency_retention,
                retention,
            )?,
            outbox_retention: value(
                "outbox_retention",
                raw.outbox_retention,
                d.outbox_retention,
                outbox_retention,
            )?,
            body_limit: value("body_limit", raw.body_limit, d.body_limit, body_limit)?,
            body_bytes_in_flight: value(
                "body_bytes_in_flight",
                raw.body_bytes_in_flight,
                d.body_bytes_in_flight,
                |v| match v.parse::<usize>() {
                    Ok(n) if (1024..=1 << 32).contains(&n) => Ok(n),
                    _ => Err("expected a number of bytes from 1024 to 4294967296 (4 GiB)".into()),
                },
            )?,
            body_read_timeout: value(
                "body_read_timeout",
                raw.body_read_timeout,
                d.body_read_timeout,
                |v| duration_in(v, Duration::from_millis(100), HOUR),
            )?,
            limits: order_limits(
                [
                    raw.max_order_lines,
                    raw.max_line_units,
                    raw.max_order_coupons,
                    raw.max_shipment_plans,
                ],
                d.limits,
            )?,
            cache_capacity: value(
                "cache_capacity",
                raw.cache_capacity,
                d.cache_capacity,
                cache_capacity,
            )?,
            workers: value("workers", raw.workers, d.workers, workers)?,
            log_format: value("log_format", raw.log_format, d.log_format, log_format)?,
            shutdown_timeout: value(
                "shutdown_timeout",
                raw.shutdown_timeout,
                d.shutdown_timeout,
                |v| duration_in(v, Duration::from_secs(1), HOUR),
            )?,
            outbox,
            webhook_url: optional("webhook_url", raw.webhook_url, http_url)?,
            webhook_secret: optional("webhook_secret", raw.webhook_secret, |v| {
                WebhookSecret::parse(v).map_err(|e| e.to_string())
            })?,
            nats_url: value("nats_url", raw.nats_url, d.nats_url, nats_url)?,
            hmac_secrets: value(
                "hmac_secrets",
                raw.hmac_secrets,
                Vec::new(),
                signing::parse_secrets,
            )?,
            hmac_tolerance: value(
                "hmac_tolerance",
                raw.hmac_tolerance,
                d.hmac_tolerance,
                |v| duration_in(v, Duration::from_secs(1), 24 * HOUR),
            )?,
            jwks: non_blank(raw.jwks),
            app_id: non_blank(raw.app_id),
            jwt_issuer: value("jwt_issuer", raw.jwt_issuer, d.jwt_issuer, text)?,
            jwt_max_lifetime: value(
                "jwt_max_lifetime",
                raw.jwt_max_lifetime,
                d.jwt_max_lifetime,
                |v| {
                    duration(v).and_then(|d| {
                        (Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600))
                            .contains(&d)
                            .then_some(d)
                            .ok_or_else(|| format!("`{v}`: must be from 1m to 30d"))
                    })
                },
            )?,
            admin_token: optional("admin_token", raw.admin_token, admin_token)?,
            fast_api_url: value("fast_api_url", raw.fast_api_url, d.fast_api_url, |v| {
                http_url(v).map(|u| u.trim_end_matches('/').to_string())
            })?,
            fast_api_token: optional("fast_api_token", raw.fast_api_token, |v| {
                Ok(Secret::new(v.trim()))
            })?,
            insecure_allow_public: value(
                "insecure_allow_public",
                raw.insecure_allow_public,
                false,
                boolean,
            )?,
            vendure,
        };
        s.check_combination()?;
        Ok(s)
    }
}

/// The outbox settings: `defaults` with the given concurrency and attempt timeout.
fn outbox(
    concurrency: Option<String>,
    attempt_timeout: Option<String>,
    defaults: OutboxSettings,
) -> Result<OutboxSettings, ConfigError> {
    Ok(OutboxSettings {
        concurrency: value(
            "outbox_concurrency",
            concurrency,
            defaults.concurrency,
            |v| count_in(v, 1, 1024),
        )?,
        attempt_timeout: value(
            "outbox_attempt_timeout",
            attempt_timeout,
            defaults.attempt_timeout,
            |v| duration_in(v, Duration::from_secs(1), HOUR),
        )?,
        ..defaults
    })
}

/// The order limits, each given value within its bounds ([`limits::BOUNDS`]).
fn order_limits(given: [Option<String>; 4], d: Limits) -> Result<Limits, ConfigError> {
    let [lines, units, coupons, plans] = given;
    let count = |key: &str, given: Option<String>, default: usize| {
        let (_, min, max) = limits::BOUNDS
            .into_iter()
            .find(|(k, _, _)| *k == key)
            .unwrap_or((key, default, default));
        value(key, given, default, |v| count_in(v, min, max))
    };
    let units = count(
        "max_line_units",
        units,
        usize::try_from(d.units).unwrap_or(0),
    )?;
    Ok(Limits {
        lines: count("max_order_lines", lines, d.lines)?,
        units: i64::try_from(units).unwrap_or(d.units),
        coupons: count("max_order_coupons", coupons, d.coupons)?,
        plans: count("max_shipment_plans", plans, d.plans)?,
    })
}

/// `sled`, or PostgreSQL with its pool size.
fn store(given: Option<String>, pool_size: Option<String>) -> Result<StoreConfig, ConfigError> {
    let pool_size = value("store_pool_size", pool_size, 16, |v| count_in(v, 1, 512))?;
    value("store", given, StoreConfig::Sled, |v| {
        if v == "sled" {
            Ok(StoreConfig::Sled)
        } else if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            Ok(StoreConfig::Postgres {
                url: Secret::new(v),
                pool_size,
            })
        } else {
            Err("expected sled or a postgres:// URL".into())
        }
    })
}

// Parsers of single values; their messages follow the setting's name and value.

fn count_in(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from {min} to {max}")),
    }
}

/// An IP address and port; a host name is not resolved (the message says what to write).
fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = v.parse() {
        return Ok(addr);
    }
    let examples = "such as 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface)";
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("add a port: an IP address and port {examples}"));
    }
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            if host.eq_ignore_ascii_case("localhost") {
                Err(format!(
                    "an IP address is needed, not a host name: write 127.0.0.1:{port}"
                ))
            } else {
                Err(format!(
                    "`{host}` is a host name; an IP address is needed, e.g. 127.0.0.1:{port} \
                     (this machine only) or 0.0.0.0:{port} (every interface)"
                ))
            }
        }
        _ => Err(format!("expected an IP address and port {examples}")),
    }
}

fn auth_mode(v: &str) -> Result<AuthMode, String> {
    match v {
        "none" => Ok(AuthMode::None),
        "hmac" => Ok(AuthMode::Hmac),
        "fast-jwt" => Ok(AuthMode::FastJwt),
        _ => Err("expected none, hmac or fast-jwt".into()),
    }
}

fn backend_kind(v: &str) -> Result<BackendKind, String> {
    match v {
        "file" => Ok(BackendKind::File),
        "webhook" => Ok(BackendKind::Webhook),
        "nats" => Ok(BackendKind::Nats),
        "vendure" => Ok(BackendKind::Vendure),
        _ => Err("expected file, webhook, nats or vendure".into()),
    }
}

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "auto" => Ok(LogFormat::Auto),
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        _ => Err("expected auto, json or pretty".into()),
    }
}

const HOUR: Duration = Duration::from_secs(3600);
/// Ten years: longer durations are typos, and overflow millisecond arithmetic.
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 24 * 3600);

fn retention(v: &str) -> Result<Duration, String> {
    let dur = duration(v)?;
    if dur < MIN_RETENTION {
        return Err("must be at least 24h".into());
    }
    if dur > MAX_RETENTION {
        return Err("must be at most 3650d".into());
    }
    Ok(dur)
}

/// Delivered events stay long enough to look into a delivery, and not forever.
fn outbox_retention(v: &str) -> Result<Duration, String> {
    let dur = duration(v)?;
    if dur < Duration::from_secs(3600) || dur > Duration::from_secs(3650 * 86400) {
        return Err("must be from 1h to 3650d".into());
    }
    Ok(dur)
}

/// A duration from `min` to `max`, both included.
fn duration_in(v: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let dur = duration(v)?;
    if dur < min || dur > max {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        return Err(format!("must be from {} to {}", show(min), show(max)));
    }
    Ok(dur)
}

fn body_limit(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1024..=1 << 30).contains(&n) => Ok(n),
        _ => Err("expected a number of bytes from 1024 to 1073741824 (1 GiB)".into()),
    }
}

/// sled's page cache: below a megabyte sled thrashes (and below 256 bytes it panics).
fn cache_capacity(v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (1 << 20..=1 << 40).contains(&n) => Ok(n),
        _ => Err("expected a number of bytes from 1048576 (1 MiB) to 1099511627776 (1 TiB)".into()),
    }
}

fn workers(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n <= 256 => Ok(n),
        _ => Err("expected a number of threads from 0 to 256 (0 = one per core)".into()),
    }
}

fn admin_token(v: &str) -> Result<Secret, String> {
    if v.len() < 16 {
        return Err("must be at least 16 characters".into());
    }
    Ok(Secret::new(v))
}

fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A NATS server: a nats://, tls://, ws:// or wss:// URL, or a bare host:port.
fn nats_url(v: &str) -> Result<String, String> {
    let full = if v.contains("://") {
        v.to_string()
    } else {
        format!("nats://{v}")
    };
    url_with_scheme(
        &full,
        &["nats", "tls", "ws", "wss"],
        "a NATS server such as nats://127.0.0.1:4222",
    )?;
    Ok(v.to_string())
}

fn text(v: &str) -> Result<String, String> {
    Ok(v.to_string())
}

/// A free-form setting; blank counts as not given.
fn non_blank(given: Option<String>) -> Option<String> {
    given.filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Settings that only make sense together.
    fn check_combination(&self) -> Result<(), ConfigError> {
        if self.body_bytes_in_flight < self.body_limit {
            return Err(invalid(
                "body_bytes_in_flight",
                format!(
                    "{} is below body_limit ({}): a body of the largest size could never be read",
                    self.body_bytes_in_flight, self.body_limit
                ),
            ));
        }
        match self.auth {
            AuthMode::Hmac if self.hmac_secrets.is_empty() => {
                return Err(invalid("hmac_secrets", "is required with --auth hmac"));
            }
            AuthMode::FastJwt if self.jwks.is_none() => {
                return Err(invalid("jwks", "is required with --auth fast-jwt"));
            }
            AuthMode::FastJwt if self.app_id.is_none() => {
                return Err(invalid("app_id", "is required with --auth fast-jwt"));
            }
            AuthMode::None if !self.listen.ip().is_loopback() && !self.insecure_allow_public => {
                return Err(invalid(
                    "listen",
                    format!(
                        "refusing to serve {} without authentication: use --auth hmac or --auth fast-jwt (or --insecure-allow-public for a throwaway test)",
                        self.listen
                    ),
                ));
            }
            _ => {}
        }
        if self.backend == BackendKind::Vendure && self.catalog.is_some() {
            return Err(invalid(
                "catalog",
                "cannot be used with --backend vendure: the catalog comes from Vendure (remove --catalog / FAST_SELLER_CATALOG)",
            ));
        }
        if self.backend == BackendKind::Webhook {
            if self.webhook_url.is_none() {
                return Err(invalid("webhook_url", "is required with --backend webhook"));
            }
            if self.webhook_secret.is_none() {
                return Err(invalid(
                    "webhook_secret",
                    "is required with --backend webhook",
                ));
            }
        }
        Ok(())
    }
}

/// The setting's name as a person would look for it: file key, flag (or "secret"), env var.
pub fn describe(key: &str) -> String {
    let how = if is_secret(key) {
        "env or file only".to_string()
    } else {
        format!("--{}", key.replace('_', "-"))
    };
    format!("{key} ({how} / {})", env_name(key))
}

/// A bad value of setting `key` (file key), with a message saying what to do.
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: describe(key),
        message: message.into(),
    }
}

/// Parses a given value, or takes the default.
fn value<T>(
    key: &str,
    given: Option<String>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    Ok(optional(key, given, parse)?.unwrap_or(default))
}

fn optional<T>(
    key: &str,
    given: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    let Some(v) = given else {
        return Ok(None);
    };
    // A store URL may carry a password.
    let shown = if is_secret(key) || key == "store" {
        "<redacted>"
    } else {
        v.as_str()
    };
    parse(v.trim())
        .map(Some)
        .map_err(|m| invalid(key, format!("`{shown}`: {m}")))
}

fn duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("{e} (write e.g. 10s, 5m, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let flags = RawSettings {
            listen: Some("127.0.0.1:9000".into()),
            ..Default::default()
        };
        let file = RawSettings {
            listen: Some("127.0.0.1:7000".into()),
            data_dir: Some("/var/lib/fs".into()),
            ..Default::default()
        };
        let s = flags.resolve(Some(file)).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/fs"));
        assert_eq!(s.body_limit, 1024 * 1024);
        assert_eq!(s.idempotency_retention, Duration::from_secs(7 * 86400));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            (
                RawSettings {
                    listen: Some("nowhere".into()),
                    ..Default::default()
                },
                "FAST_SELLER_LISTEN",
            ),
            (
                RawSettings {
                    auth: Some("magic".into()),
                    ..Default::default()
                },
                "FAST_SELLER_AUTH",
            ),
            (
                RawSettings {
                    idempotency_retention: Some("1h".into()),
                    ..Default::default()
                },
                "at least 24h",
            ),
            (
                RawSettings {
                    outbox_retention: Some("10m".into()),
                    ..Default::default()
                },
                "FAST_SELLER_OUTBOX_RETENTION",
            ),
            (
                RawSettings {
                    body_limit: Some("-3".into()),
                    ..Default::default()
                },
                "FAST_SELLER_BODY_LIMIT",
            ),
        ];
        for (raw, expected) in cases {
            let e = raw.resolve(None).unwrap_err().to_string();
            assert!(e.contains(expected), "`{e}` should mention {expected}");
        }
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_accepts_bare_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbody_limit = 4096\n").unwrap();
        let raw = RawSettings::from_file(&path).unwrap();
        assert_eq!(
            RawSettings::default()
                .resolve(Some(raw))
                .unwrap()
                .body_limit,
            4096
        );
        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = RawSettings::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
    }

    /// The shipped example file documents every setting with its default: it must parse and
    /// resolve to exactly the defaults, or it has rotted.
    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/fast-seller.example.toml");
        let raw = RawSettings::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let resolved = RawSettings::default()
            .resolve(Some(raw))
            .unwrap_or_else(|e| panic!("{e}"));
        let defaults = Settings::new(([127, 0, 0, 1], 8080).into(), "./data".into());
        assert_eq!(format!("{resolved:?}"), format!("{defaults:?}"));
    }
}
