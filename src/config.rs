//! Settings of `fast-seller serve`: flag > environment > TOML file > default (contract §1).
//! Read once, validated once into typed values; a bad setting stops start-up with one line
//! naming it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Never keep idempotency records for less than this (contract §5).
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable when it is.
    Auto,
    Json,
    Pretty,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: the bundled demo catalog.
    pub catalog: Option<PathBuf>,
    pub auth: AuthMode,
    pub backend: BackendKind,
    pub idempotency_retention: Duration,
    pub body_limit: usize,
    pub body_read_timeout: Duration,
    pub cache_capacity: u64,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    /// Delivery of outbox events to the commerce backend.
    pub outbox: crate::outbox::OutboxSettings,
}

impl Settings {
    /// Defaults for a server on `listen` keeping its data in `data_dir` (tests, embedding).
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Settings {
        Settings {
            listen,
            data_dir,
            catalog: None,
            auth: AuthMode::None,
            backend: BackendKind::File,
            idempotency_retention: Duration::from_secs(7 * 24 * 3600),
            body_limit: 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            cache_capacity: 256 * 1024 * 1024,
            workers: 0,
            log_format: LogFormat::Auto,
            shutdown_timeout: Duration::from_secs(30),
            outbox: crate::outbox::OutboxSettings::default(),
        }
    }
}

/// The values as given (flags and env through clap, or the file), before validation.
/// Every field is a string so that every bad value gets the same kind of message.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "FAST_SELLER_LISTEN")]
    pub listen: Option<String>,
    /// Directory of the embedded store [default: ./data]
    #[arg(long, env = "FAST_SELLER_DATA_DIR")]
    pub data_dir: Option<String>,
    /// Catalog JSON file [default: the bundled demo catalog]
    #[arg(long, env = "FAST_SELLER_CATALOG")]
    pub catalog: Option<String>,
    /// How Fast's calls are authenticated: none | hmac | fast-jwt [default: none]
    #[arg(long, env = "FAST_SELLER_AUTH")]
    pub auth: Option<String>,
    /// Where converted orders go: file | webhook | nats [default: file]
    #[arg(long, env = "FAST_SELLER_BACKEND")]
    pub backend: Option<String>,
    /// How long request ids are remembered, e.g. "7d" (at least 24h) [default: 7d]
    #[arg(long, env = "FAST_SELLER_IDEMPOTENCY_RETENTION")]
    pub idempotency_retention: Option<String>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "FAST_SELLER_BODY_LIMIT")]
    pub body_limit: Option<String>,
    /// Deadline for receiving a whole request body, e.g. "10s" [default: 10s]
    #[arg(long, env = "FAST_SELLER_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<String>,
    /// sled page cache in bytes [default: 268435456]
    #[arg(long, env = "FAST_SELLER_CACHE_CAPACITY")]
    pub cache_capacity: Option<String>,
    /// HTTP worker threads, 0 = one per core [default: 0]
    #[arg(long, env = "FAST_SELLER_WORKERS")]
    pub workers: Option<String>,
    /// auto | json | pretty [default: auto]
    #[arg(long, env = "FAST_SELLER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// How long in-flight requests may take to finish on SIGTERM, e.g. "30s" [default: 30s]
    #[arg(long, env = "FAST_SELLER_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,
}

impl RawSettings {
    /// Fills every value not given here from `lower`.
    fn or(self, lower: RawSettings) -> RawSettings {
        RawSettings {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            catalog: self.catalog.or(lower.catalog),
            auth: self.auth.or(lower.auth),
            backend: self.backend.or(lower.backend),
            idempotency_retention: self.idempotency_retention.or(lower.idempotency_retention),
            body_limit: self.body_limit.or(lower.body_limit),
            body_read_timeout: self.body_read_timeout.or(lower.body_read_timeout),
            cache_capacity: self.cache_capacity.or(lower.cache_capacity),
            workers: self.workers.or(lower.workers),
            log_format: self.log_format.or(lower.log_format),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
        }
    }

    /// Reads a TOML file whose keys are the flag names with underscores.
    pub fn from_file(path: &Path) -> Result<RawSettings, ConfigError> {
        let file_err = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| file_err(e.message().to_string()))?;
        // Numbers may be written bare in TOML; the settings take them as text.
        let table: toml::Table = table
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::Integer(i) => (k, toml::Value::String(i.to_string())),
                other => (k, other),
            })
            .collect();
        RawSettings::deserialize(table).map_err(|e| file_err(e.message().to_string()))
    }

    /// Layers these (flags and env) over `file` and the defaults, and validates the result.
    pub fn resolve(self, file: Option<RawSettings>) -> Result<Settings, ConfigError> {
        let raw = self.or(file.unwrap_or_default());
        let defaults = Settings::new(
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            PathBuf::from("./data"),
        );
        let s = Settings {
            outbox: defaults.outbox.clone(),
            listen: parse(
                "listen",
                "FAST_SELLER_LISTEN",
                raw.listen,
                defaults.listen,
                |v| {
                    v.parse::<SocketAddr>()
                        .map_err(|_| "expected an address such as 127.0.0.1:8080".into())
                },
            )?,
            data_dir: raw.data_dir.map(PathBuf::from).unwrap_or(defaults.data_dir),
            catalog: raw.catalog.map(PathBuf::from),
            auth: parse(
                "auth",
                "FAST_SELLER_AUTH",
                raw.auth,
                defaults.auth,
                |v| match v {
                    "none" => Ok(AuthMode::None),
                    "hmac" => Ok(AuthMode::Hmac),
                    "fast-jwt" => Ok(AuthMode::FastJwt),
                    _ => Err("expected none, hmac or fast-jwt".into()),
                },
            )?,
            backend: parse(
                "backend",
                "FAST_SELLER_BACKEND",
                raw.backend,
                defaults.backend,
                |v| match v {
                    "file" => Ok(BackendKind::File),
                    "webhook" => Ok(BackendKind::Webhook),
                    "nats" => Ok(BackendKind::Nats),
                    _ => Err("expected file, webhook or nats".into()),
                },
            )?,
            idempotency_retention: parse(
                "idempotency_retention",
                "FAST_SELLER_IDEMPOTENCY_RETENTION",
                raw.idempotency_retention,
                defaults.idempotency_retention,
                |v| {
                    let d = duration(v)?;
                    if d < MIN_RETENTION {
                        return Err("must be at least 24h".into());
                    }
                    Ok(d)
                },
            )?,
            body_limit: parse(
                "body_limit",
                "FAST_SELLER_BODY_LIMIT",
                raw.body_limit,
                defaults.body_limit,
                |v| match v.parse::<usize>() {
                    Ok(n) if n >= 1024 => Ok(n),
                    _ => Err("expected a number of bytes, at least 1024".into()),
                },
            )?,
            body_read_timeout: parse(
                "body_read_timeout",
                "FAST_SELLER_BODY_READ_TIMEOUT",
                raw.body_read_timeout,
                defaults.body_read_timeout,
                duration,
            )?,
            cache_capacity: parse(
                "cache_capacity",
                "FAST_SELLER_CACHE_CAPACITY",
                raw.cache_capacity,
                defaults.cache_capacity,
                |v| {
                    v.parse::<u64>()
                        .map_err(|_| "expected a number of bytes".into())
                },
            )?,
            workers: parse(
                "workers",
                "FAST_SELLER_WORKERS",
                raw.workers,
                defaults.workers,
                |v| match v.parse::<usize>() {
                    Ok(n) if n <= 256 => Ok(n),
                    _ => Err("expected a number of threads (0 = one per core)".into()),
                },
            )?,
            log_format: parse(
                "log_format",
                "FAST_SELLER_LOG_FORMAT",
                raw.log_format,
                defaults.log_format,
                |v| match v {
                    "auto" => Ok(LogFormat::Auto),
                    "json" => Ok(LogFormat::Json),
                    "pretty" => Ok(LogFormat::Pretty),
                    _ => Err("expected auto, json or pretty".into()),
                },
            )?,
            shutdown_timeout: parse(
                "shutdown_timeout",
                "FAST_SELLER_SHUTDOWN_TIMEOUT",
                raw.shutdown_timeout,
                defaults.shutdown_timeout,
                duration,
            )?,
        };
        if s.auth != AuthMode::None {
            return Err(invalid(
                "auth",
                "FAST_SELLER_AUTH",
                "only `none` is available in this version",
            ));
        }
        if s.backend != BackendKind::File {
            return Err(invalid(
                "backend",
                "FAST_SELLER_BACKEND",
                "only `file` is available in this version",
            ));
        }
        Ok(s)
    }
}

fn invalid(key: &str, env: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: format!("{key} (--{} / {env})", key.replace('_', "-")),
        message: message.into(),
    }
}

fn parse<T>(
    key: &str,
    env: &str,
    value: Option<String>,
    default: T,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => f(v.trim()).map_err(|m| invalid(key, env, format!("`{v}`: {m}"))),
    }
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
}
