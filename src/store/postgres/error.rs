//! Errors of the PostgreSQL store, and what keeps secrets and stored values out of them.
//!
//! Errors never carry SQL text, parameters or server DETAIL lines (which quote key values):
//! only the operation, a short description and the SQLSTATE. Connection URLs are shown
//! with their password hidden ([`redact_url`]).

use std::time::Duration;

use deadpool_postgres::PoolError;
use rand::Rng;
use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// Why one try of an operation failed: a database error (maybe retryable) or a result.
pub(super) enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// Serialization failure or deadlock: the transaction may succeed when run again.
pub(super) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Exponential backoff with jitter: about 10, 20, 40, 80, 160 ms.
pub(super) async fn backoff(retry: u32) {
    let base = 5u64 << retry.min(8);
    let jitter = rand::thread_rng().gen_range(0..=base / 2);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// A driver error as [`StoreError::Io`]: the operation, a description and the SQLSTATE,
/// never the SQL, its parameters or the server's DETAIL (which quotes values).
pub(super) fn db_error(op: &str, e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // Driver-side kinds ("error connecting to server") and their I/O causes.
        return StoreError::Io(format!("{op}: {}", with_causes(e)));
    };
    let code = db.code();
    let class = code.code().get(..2).unwrap_or("");
    let what = if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME {
        "the database schema is missing or not migrated (run `fast-seller migrate`)".to_owned()
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        "the database is read-only".to_owned()
    } else if *code == SqlState::QUERY_CANCELED {
        "the statement was cancelled or timed out".to_owned()
    } else {
        match class {
            "08" => "the database connection failed".to_owned(),
            // Connection-phase messages name a user or a database, never data.
            "28" | "3D" | "53" => db.message().to_owned(),
            "57" => "the database is shutting down or not accepting connections".to_owned(),
            "40" => "the transaction was rolled back by the database".to_owned(),
            "23" => "a database constraint was violated".to_owned(),
            _ => "database error".to_owned(),
        }
    };
    StoreError::Io(format!("{op}: {what} (SQLSTATE {})", code.code()))
}

/// A driver error and its causes (the driver's `Display` shows only the kind). Not for
/// database errors, whose causes quote values.
pub(super) fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

pub(super) fn pool_error(op: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => db_error(op, &e),
        PoolError::Timeout(kind) => StoreError::Io(format!(
            "{op}: no database connection available ({kind:?} timeout)"
        )),
        other => StoreError::Io(format!("{op}: {other}")),
    }
}

/// Hides the password of a PostgreSQL URL (`postgres://user:***@host/db`) or key-value
/// connection string (`password=***`), for logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_key_values(url);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (location, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let location = match location.rfind('@') {
        Some(at) => {
            let (userinfo, host) = location.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => location.to_owned(),
            }
        }
        None => location.to_owned(),
    };
    let query = match query.strip_prefix('?') {
        Some(params) => {
            let params: Vec<String> = params
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("?{}", params.join("&"))
        }
        None => String::new(),
    };
    format!("{scheme}{location}{query}")
}

fn is_secret_key(key: &str) -> bool {
    key.trim().to_ascii_lowercase().ends_with("password")
}

/// `key=value key='quoted value'` with every password value replaced.
fn redact_key_values(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return "(unparseable connection string)".into();
        };
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return "(unparseable connection string)".into();
        }
        let value_and_rest = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(quoted) = value_and_rest.strip_prefix('\'') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                return "(unparseable connection string)".into();
            };
            (&value_and_rest[..end + 2], &quoted[end + 1..])
        } else {
            let end = value_and_rest
                .find(char::is_whitespace)
                .unwrap_or(value_and_rest.len());
            value_and_rest.split_at(end)
        };
        if is_secret_key(key) {
            out.push(format!("{key}=***"));
        } else {
            out.push(format!("{key}={value}"));
        }
        rest = next.trim_start();
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("postgres://fast:s3cret@db.example:5432/fast"),
            "postgres://fast:***@db.example:5432/fast"
        );
        assert_eq!(
            redact_url("postgresql://fast@db/fast?sslmode=disable&password=x&a=b"),
            "postgresql://fast@db/fast?sslmode=disable&password=***&a=b"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss:w@rd@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("host=db user=fast password=s3cret dbname=fast"),
            "host=db user=fast password=*** dbname=fast"
        );
        assert_eq!(
            redact_url("host=db password = 'it\\'s a secret' user=u"),
            "host=db password=*** user=u"
        );
        assert!(!redact_url("password='unterminated secret").contains("secret"));
        assert!(!redact_url("password='it''s secret' user=u").contains("secret"));
    }
}
