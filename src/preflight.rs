//! The checks `serve` makes before it takes traffic, shared with `fast-seller config check`
//! so that the two always agree: the data directory, the catalog, the store, the JWKS and
//! the listen address. A refusal is a [`ConfigError`]: one line naming the setting and
//! saying what to do.

use crate::auth::jwks::{JwksCache, JwksSource};
use crate::clock::{Clock, SystemClock};
use crate::config::{invalid, AuthMode, ConfigError, Settings, StoreConfig};
use crate::store::StoreError;
use std::net::SocketAddr;
use std::path::Path;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    /// Not a configuration problem, but `serve` would not work right now (the port is taken,
    /// another process holds the data directory, the JWKS URL does not answer yet).
    Warn(String),
    /// `serve` refuses to start: the line it prints.
    Fail(String),
}

/// One check of `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The setting it is about (file key).
    pub setting: &'static str,
    pub verdict: Verdict,
}

impl Check {
    fn new(setting: &'static str, verdict: Verdict) -> Check {
        Check { setting, verdict }
    }
}

/// Every check `serve` makes, in its order, without binding the port or keeping anything
/// open. The first `Fail` is the line `serve` would stop with.
pub async fn check_all(settings: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(Check::new(
        "catalog",
        match crate::catalog::load(settings.catalog.as_deref()) {
            Ok(catalog) => Verdict::Ok(format!(
                "{} products, currency {}",
                catalog.products().len(),
                catalog.currency
            )),
            Err(e) => Verdict::Fail(crate::startup::StartupError::from(e).to_string()),
        },
    ));
    checks.push(Check::new(
        "data_dir",
        match data_dir(&settings.data_dir) {
            Err(e) => Verdict::Fail(e.to_string()),
            Ok(()) => sled_verdict(settings).await,
        },
    ));
    if let StoreConfig::Postgres { url, .. } = &settings.store {
        let verdict = match crate::store::postgres::PgStore::connect(url.expose(), None, 1).await {
            Ok(_) => Verdict::Ok("reachable".into()),
            Err(e) => Verdict::Fail(format!("store: {e}")),
        };
        checks.push(Check::new("store", verdict));
    }
    if settings.auth == AuthMode::FastJwt {
        checks.push(Check::new(
            "jwks",
            match jwks(settings).await {
                Ok(JwksLoad::Loaded(n)) => Verdict::Ok(format!("{n} signing keys")),
                Ok(JwksLoad::NotYet(_, reason)) => Verdict::Warn(format!(
                    "{reason}: serve starts, and /readyz says not ready until it loads"
                )),
                Err(e) => Verdict::Fail(e.to_string()),
            },
        ));
    }
    checks.push(Check::new(
        "listen",
        match std::net::TcpListener::bind(settings.listen) {
            Ok(_) => Verdict::Ok("free".into()),
            Err(e) => Verdict::Warn(listen_error(settings.listen, &e).to_string()),
        },
    ));
    checks
}

/// The sled store's verdict when it already exists: opened and closed again (its lock, its
/// format, the cache size); otherwise that `serve` will create it.
async fn sled_verdict(settings: &Settings) -> Verdict {
    if settings.store != StoreConfig::Sled {
        return Verdict::Ok("the file backend's directory".into());
    }
    if !crate::store::sled::SledStore::exists_in(&settings.data_dir) {
        return Verdict::Ok("no store yet: serve creates it".into());
    }
    match crate::startup::open_sled(&settings.data_dir, settings.cache_capacity).await {
        Ok(_) => Verdict::Ok("store opens".into()),
        Err(e @ StoreError::Locked(_)) => Verdict::Warn(store_error(e).to_string()),
        Err(e) => Verdict::Fail(store_error(e).to_string()),
    }
}

/// `--data-dir` must be a directory, or a path where one can be created.
pub fn data_dir(dir: &Path) -> Result<(), ConfigError> {
    let mut path = dir;
    loop {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_dir() {
                return Ok(());
            }
            let what = if path == dir {
                format!("`{}` is a file, not a directory", dir.display())
            } else {
                format!(
                    "`{}` cannot be created: `{}` is a file",
                    dir.display(),
                    path.display()
                )
            };
            return Err(invalid(
                "data_dir",
                format!("{what}: give a directory (it is created when missing)"),
            ));
        }
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => path = parent,
            _ => return Ok(()),
        }
    }
}

/// A store that could not be opened, as a setting to fix where one is to blame.
pub fn store_error(e: StoreError) -> crate::startup::StartupError {
    match e {
        StoreError::Locked(path) => {
            let holder = lock_holder(&Path::new(&path).join("db"))
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            invalid(
                "data_dir",
                format!(
                    "{path} is locked by another fast-seller process{holder}: one process per \
                     data directory; stop it, or reach the running server with --url"
                ),
            )
            .into()
        }
        other => crate::startup::StartupError::Store(other),
    }
}

/// The process holding a lock on `file`, from Linux's `/proc/locks` (`None` elsewhere, or
/// when nobody else holds one).
pub fn lock_holder(file: &Path) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(file).ok()?.ino();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        let me = std::process::id();
        locks.lines().find_map(|line| {
            // `1: FLOCK  ADVISORY  WRITE 20313 fe:00:5417956 0 EOF`
            let fields: Vec<&str> = line.split_whitespace().collect();
            let pid: u32 = fields.get(4)?.parse().ok()?;
            let ino: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
            (ino == inode && pid != me).then_some(pid)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// Why `--listen` could not be bound, and what to do about it.
pub fn listen_error(addr: SocketAddr, e: &std::io::Error) -> ConfigError {
    use std::io::ErrorKind;
    let message = match e.kind() {
        ErrorKind::AddrInUse => format!(
            "{addr} is already in use by another process (another fast-seller?): stop it, or \
             choose another port with --listen (`ss -ltnp 'sport = :{}'` shows who has it)",
            addr.port()
        ),
        ErrorKind::PermissionDenied => format!(
            "{addr}: permission denied (ports below 1024 need privileges): choose a port from \
             1024 up with --listen"
        ),
        ErrorKind::AddrNotAvailable => format!(
            "{addr}: {} is not an address of this machine: use one of its addresses, \
             127.0.0.1 or 0.0.0.0",
            addr.ip()
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    };
    invalid("listen", message)
}

/// How the JWKS of `--auth fast-jwt` loaded at start-up.
pub enum JwksLoad {
    /// This many usable keys.
    Loaded(usize),
    /// A URL that did not answer usefully yet: the cache to keep trying, and why.
    NotYet(std::sync::Arc<JwksCache>, String),
}

/// Loads the JWKS once: a file must load (or start-up fails), a URL may fail for now.
/// The cache is the one to hand to the authenticator.
pub async fn load_jwks(
    cache: std::sync::Arc<JwksCache>,
    clock: &dyn Clock,
) -> Result<JwksLoad, ConfigError> {
    match cache.load(clock).await {
        Ok(n) => Ok(JwksLoad::Loaded(n)),
        Err(e) => match cache.source() {
            JwksSource::File(path) => Err(invalid(
                "jwks",
                format!(
                    "{}: {e}: give the JWKS file of Fast's signing keys, or their https:// URL",
                    path.display()
                ),
            )),
            JwksSource::Url(_) => Ok(JwksLoad::NotYet(cache.clone(), jwks_not_yet(&cache, &e))),
        },
    }
}

/// Why a JWKS URL is not ready, for `/readyz` and the log.
pub fn jwks_not_yet(cache: &JwksCache, e: &crate::auth::jwks::JwksError) -> String {
    format!(
        "{} does not answer with keys yet: {e}",
        cache.source().describe()
    )
}

/// The JWKS `settings` name, loaded once (for `config check`).
async fn jwks(settings: &Settings) -> Result<JwksLoad, ConfigError> {
    let source = JwksSource::from_config(settings.jwks.as_deref().unwrap_or_default())
        .map_err(|e| invalid("jwks", e))?;
    let cache = JwksCache::new(source).map_err(|e| invalid("jwks", e.to_string()))?;
    load_jwks(std::sync::Arc::new(cache), &SystemClock).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_not_a_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = data_dir(&file).unwrap_err().to_string();
        assert!(
            e.contains("FAST_SELLER_DATA_DIR") && e.contains("not a directory"),
            "{e}"
        );
        let e = data_dir(&file.join("below")).unwrap_err().to_string();
        assert!(e.contains("cannot be created"), "{e}");
        assert!(data_dir(&dir.path().join("new/deeper")).is_ok());
        assert!(data_dir(Path::new("relative-missing")).is_ok());
    }
}
