//! The composition root: opens the store, loads the catalog, builds the service and the
//! HTTP server on a bound listener (port 0 allowed), and runs until SIGTERM/SIGINT.
//! Tests build exactly this.

use crate::auth::jwks::JwksCache;
use crate::auth::Authenticator;
use crate::backend::fast::{FastClient, Router};
use crate::backend::file::FileBackend;
use crate::backend::webhook::WebhookBackend;
use crate::backend::CommerceBackend;
use crate::catalog::SharedCatalog;
use crate::clock::{Clock, SystemClock};
use crate::commerce::vendure::{
    Auth, TaxZoneStrategy, VendureBridge, VendureClient, PLACEMENTS_AT_ONCE, PLACEMENT_TIMEOUT,
};
use crate::config::{
    AuthMode, BackendKind, Settings, StoreConfig, VendureCredentials, VendureTaxZone,
};
use crate::domain::CatalogError;
use crate::http::body::{BodyBudget, BodyLimits};
use crate::http::{self, AppState, Readiness};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::preflight::{self, JwksLoad};
use crate::service::admin::OutboxAdmin;
use crate::service::{Pruned, Service, ServiceSettings};
use crate::store::postgres::PgStore;
use crate::store::sled::SledStore;
use crate::store::{Store, StoreError};
use crate::tapes::Recorder;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How often expired idempotency records and delivered outbox entries are pruned (and the
/// store gauges refreshed).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting to fix (data directory, listen address, JWKS…): one line naming it.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
    #[error("backend: {0}")]
    Backend(String),
    #[error("auth: {0}")]
    Auth(String),
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    service: Arc<Service>,
    store: Arc<dyn Store>,
    readiness: Arc<Readiness>,
    outbox: Arc<Outbox>,
    /// A JWKS URL that has not answered with keys yet: retried (by this clock) until it does.
    jwks_pending: Option<(Arc<JwksCache>, Arc<dyn Clock>)>,
    /// Reads the platform's catalog again now and then.
    refresh: Option<Refresh>,
}

/// The catalog refresh of a commerce platform.
struct Refresh {
    bridge: Arc<VendureBridge>,
    catalog: Arc<SharedCatalog>,
    every: Duration,
    clock: Arc<dyn Clock>,
}

impl Refresh {
    async fn run(self) {
        loop {
            tokio::time::sleep(self.every).await;
            match self.bridge.sync(self.clock.now_ms()).await {
                Ok(synced) => {
                    tracing::info!(
                        variants = synced.snapshot.catalog.variants.len(),
                        unmapped = synced.snapshot.catalog.unmapped.len(),
                        "catalog read from Vendure"
                    );
                    self.catalog
                        .replace(synced.catalog, synced.snapshot.fetched_at_ms);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catalog refresh failed: serving the last good catalog")
                }
            }
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Application::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        preflight::data_dir(&settings.data_dir)?;
        let platform = platform(&settings)?;
        let catalog = Arc::new(match &platform {
            None => SharedCatalog::new(
                crate::catalog::load(settings.catalog.as_deref())?,
                if settings.catalog.is_some() {
                    "file"
                } else {
                    "demo"
                },
                0,
            ),
            Some(bridge) => vendure_catalog(bridge, clock.as_ref()).await?,
        });
        let store = open_store(&settings).await?;
        let wake = Arc::new(Notify::new());
        let metrics =
            Arc::new(Metrics::new().map_err(|e| StartupError::Server(std::io::Error::other(e)))?);
        let service = Service::new(
            store.clone(),
            catalog.clone(),
            clock.clone(),
            ServiceSettings {
                idempotency_retention: settings.idempotency_retention,
                outbox_retention: settings.outbox_retention,
                limits: settings.limits,
                ..ServiceSettings::default()
            },
            wake.clone(),
            metrics.clone(),
        );
        let service = Arc::new(match &platform {
            Some(bridge) => service.with_platform(bridge.clone()),
            None => service,
        });
        let backend = build_backend(&settings, clock.clone(), platform.clone()).await?;
        let clock_for_refresh = clock.clone();
        let fast = FastClient::new(
            &settings.fast_api_url,
            settings.app_id.clone(),
            settings.fast_api_token.clone(),
            settings.outbox.attempt_timeout,
        )
        .map_err(StartupError::Backend)?;
        if settings.admin_token.is_some() && settings.fast_api_token.is_none() {
            tracing::warn!(
                "FAST_SELLER_FAST_API_TOKEN is not set: cancels, refunds and business events \
                 from /admin/v1/orders wait in the outbox until it is"
            );
        }
        let backend: Arc<dyn CommerceBackend> = Arc::new(Router::new(backend, fast));
        let mut outbox_settings = settings.outbox.clone();
        if platform.is_some() {
            outbox_settings.attempt_timeout =
                outbox_settings.attempt_timeout.max(PLACEMENT_TIMEOUT);
            outbox_settings.concurrency = outbox_settings.concurrency.min(PLACEMENTS_AT_ONCE);
        }
        let auth = Arc::new(build_authenticator(&settings)?);
        let readiness = Arc::new(Readiness::default());
        let jwks_pending = match &*auth {
            Authenticator::FastJwt(verifier) => {
                match preflight::load_jwks(verifier.jwks().clone(), clock.as_ref()).await? {
                    JwksLoad::Loaded(_) => None,
                    JwksLoad::NotYet(cache, reason) => {
                        tracing::warn!(%reason, "not ready until the JWKS loads");
                        readiness.wait_for("jwks", reason);
                        Some((cache, clock.clone()))
                    }
                }
            }
            _ => None,
        };
        tracing::info!(auth = auth.scheme(), backend = backend.name(), "configured");
        let outbox = Arc::new(Outbox::new(
            store.clone(),
            backend,
            clock.clone(),
            outbox_settings,
            wake.clone(),
            metrics.clone(),
        ));
        let recorder = match &settings.record {
            Some(dir) => Some(Arc::new(
                Recorder::new(dir)
                    .map_err(|e| StartupError::Server(std::io::Error::other(e)))?
                    .with_catalog(settings.catalog.as_deref()),
            )),
            None => None,
        };
        let state = web::Data::new(AppState {
            service: service.clone(),
            limits: BodyLimits {
                max_bytes: settings.body_limit,
                read_timeout: settings.body_read_timeout,
            },
            body_budget: BodyBudget::new(settings.body_bytes_in_flight),
            readiness: readiness.clone(),
            auth,
            outbox: Arc::new(OutboxAdmin::new(store.clone(), clock.clone(), wake)),
            clock,
            admin_token: settings.admin_token.clone(),
            metrics: metrics.clone(),
            recorder,
            console: Arc::new(http::console::Console::new(&settings)),
        });
        let listener = TcpListener::bind(settings.listen)
            .map_err(|e| preflight::listen_error(settings.listen, &e))?;
        let addr = listener.local_addr()?;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(http::configure)
                .default_service(web::to(http::not_found))
                .wrap_fn({
                    let metrics = metrics.clone();
                    move |req, srv| http::traced(req, srv, metrics.clone())
                })
        })
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs().max(1));
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(addr = %addr, "listening on http://{addr}");
        let refresh = platform
            .zip(settings.vendure.as_ref())
            .map(|(bridge, v)| Refresh {
                bridge,
                catalog,
                every: v.catalog_refresh,
                clock: clock_for_refresh,
            });
        Ok(Application {
            port: addr.port(),
            server,
            service,
            store,
            readiness,
            outbox,
            jwks_pending,
            refresh,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// The delivery worker (tests drive it step by step with `run_once`).
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    /// Stops the server from elsewhere (tests; `run_until_stopped` then flushes and returns).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT, then stops accepting, lets in-flight requests finish,
    /// flushes the store and returns.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let Application {
            server,
            service,
            store,
            readiness,
            outbox,
            jwks_pending,
            refresh,
            ..
        } = self;
        let pruner = tokio::spawn(prune_forever(service));
        let jwks_wait = jwks_pending
            .map(|(cache, clock)| tokio::spawn(wait_for_jwks(cache, readiness.clone(), clock)));
        let refresher = refresh.map(|r| tokio::spawn(r.run()));
        let (stop_outbox, stopped) = watch::channel(false);
        let worker = tokio::spawn(outbox.run(stopped));
        let handle = server.handle();
        readiness.set(true);
        let mut server = std::pin::pin!(server);
        let result = tokio::select! {
            r = &mut server => r,
            () = shutdown_signal() => {
                tracing::info!("shutdown requested: draining in-flight requests");
                readiness.set(false);
                // The server future must keep running to carry out the stop command.
                let (_, stopped) = tokio::join!(handle.stop(true), server.as_mut());
                stopped
            }
        };
        pruner.abort();
        if let Some(task) = jwks_wait {
            task.abort();
        }
        if let Some(r) = refresher {
            r.abort();
        }
        let _ = stop_outbox.send(true);
        if worker.await.is_err() {
            tracing::error!("the outbox worker panicked");
        }
        store.flush().await?;
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// The store `--store` names: sled in the data directory, or PostgreSQL (migrated first).
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StartupError> {
    match &settings.store {
        StoreConfig::Sled => open_sled(&settings.data_dir, settings.cache_capacity)
            .await
            .map_err(preflight::store_error),
        StoreConfig::Postgres { url, pool_size } => {
            let (store, applied) = open_postgres(url.expose(), *pool_size).await?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "database migrated");
            }
            Ok(store)
        }
    }
}

/// The sled store in `data_dir` (created if need be) with `cache_capacity` bytes of cache;
/// refused while another process has it open.
pub async fn open_sled(data_dir: &Path, cache_capacity: u64) -> Result<Arc<dyn Store>, StoreError> {
    let store = SledStore::open_blocking(data_dir.to_path_buf(), cache_capacity).await?;
    Ok(Arc::new(store))
}

/// The PostgreSQL store at `url` with a pool of `pool_size` connections, migrated first;
/// with the names of the migrations this applied.
pub async fn open_postgres(
    url: &str,
    pool_size: usize,
) -> Result<(Arc<dyn Store>, Vec<String>), StoreError> {
    let store = PgStore::connect(url, None, pool_size).await?;
    let applied = store.migrate().await?;
    Ok((Arc::new(store), applied))
}

/// The commerce platform's bridge, with `--backend vendure`.
pub fn platform(settings: &Settings) -> Result<Option<Arc<VendureBridge>>, StartupError> {
    let Some(v) = &settings.vendure else {
        return Ok(None);
    };
    let auth = match &v.credentials {
        VendureCredentials::ApiKey(key) => Auth::ApiKey(key.expose().to_owned()),
        VendureCredentials::Login { username, password } => Auth::Login {
            username: username.clone(),
            password: password.expose().to_owned(),
        },
    };
    let client = VendureClient::new(v.url.clone(), auth, v.channel_token.clone())
        .map_err(|e| StartupError::Backend(e.to_string()))?;
    let strategy = match v.tax_zone {
        VendureTaxZone::Auto => None,
        VendureTaxZone::Address => Some(TaxZoneStrategy::Address),
        VendureTaxZone::Channel => Some(TaxZoneStrategy::Channel),
    };
    Ok(Some(Arc::new(VendureBridge::new(
        client,
        strategy,
        v.payment_method.clone(),
        settings.data_dir.clone(),
    ))))
}

/// The catalog read from Vendure; while Vendure cannot be read, the last good snapshot.
async fn vendure_catalog(
    bridge: &VendureBridge,
    clock: &dyn Clock,
) -> Result<SharedCatalog, StartupError> {
    let fresh = bridge.sync(clock.now_ms()).await;
    let synced = match fresh {
        Ok(synced) => synced,
        Err(e) => match bridge.stored() {
            Ok(Some(stored)) => {
                tracing::warn!(error = %e, "Vendure cannot be read: starting with the stored catalog");
                stored
            }
            Ok(None) => {
                return Err(StartupError::Backend(format!(
                    "{e} (and there is no stored catalog to start from yet: check --vendure-url and the credentials)"
                )))
            }
            Err(stored) => return Err(StartupError::Backend(format!("{e}; {stored}"))),
        },
    };
    tracing::info!(
        variants = synced.snapshot.catalog.variants.len(),
        unmapped = synced.snapshot.catalog.unmapped.len(),
        "catalog read from Vendure"
    );
    Ok(SharedCatalog::new(
        synced.catalog,
        "vendure",
        synced.snapshot.fetched_at_ms,
    ))
}

/// The commerce backend `--backend` names.
async fn build_backend(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    platform: Option<Arc<VendureBridge>>,
) -> Result<Arc<dyn CommerceBackend>, StartupError> {
    if let Some(bridge) = platform {
        return Ok(bridge);
    }
    Ok(match settings.backend {
        BackendKind::File => Arc::new(FileBackend::new(settings.data_dir.join("forwarded.jsonl"))),
        BackendKind::Webhook => {
            let (Some(url), Some(secret)) = (&settings.webhook_url, &settings.webhook_secret)
            else {
                return Err(StartupError::Backend(
                    "webhook backend needs FAST_SELLER_WEBHOOK_URL and FAST_SELLER_WEBHOOK_SECRET"
                        .into(),
                ));
            };
            Arc::new(
                WebhookBackend::new(
                    url.clone(),
                    secret.clone(),
                    clock,
                    settings.outbox.attempt_timeout,
                )
                .map_err(StartupError::Backend)?,
            )
        }
        #[cfg(feature = "nats")]
        BackendKind::Nats => Arc::new(
            crate::backend::nats::NatsBackend::connect(&settings.nats_url)
                .await
                .map_err(StartupError::Backend)?,
        ),
        #[cfg(not(feature = "nats"))]
        BackendKind::Nats => {
            return Err(StartupError::Backend(
                "this build has no nats backend (built without the `nats` feature)".into(),
            ))
        }
        BackendKind::Vendure => {
            return Err(StartupError::Backend(
                "--backend vendure needs the Vendure settings".into(),
            ))
        }
    })
}

/// The authenticator `--auth` names.
fn build_authenticator(settings: &Settings) -> Result<Authenticator, StartupError> {
    match settings.auth {
        AuthMode::None => Ok(Authenticator::None),
        AuthMode::Hmac => Ok(Authenticator::Hmac {
            secrets: settings.hmac_secrets.clone(),
            tolerance_secs: i64::try_from(settings.hmac_tolerance.as_secs()).unwrap_or(i64::MAX),
        }),
        AuthMode::FastJwt => Authenticator::fast_jwt_from_config(
            settings.jwks.as_deref().unwrap_or_default(),
            &settings.jwt_issuer,
            settings.app_id.as_deref().unwrap_or_default(),
        )
        .map(|a| a.with_max_token_lifetime(settings.jwt_max_lifetime))
        .map_err(StartupError::Auth),
    }
}

/// Retries a JWKS URL that did not answer at start-up (as often as the cache's
/// once-a-minute limit allows, by `clock`) until keys are held, then lets `/readyz` say ready.
async fn wait_for_jwks(cache: Arc<JwksCache>, readiness: Arc<Readiness>, clock: Arc<dyn Clock>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match cache.fetch_if_empty(clock.as_ref()).await {
            Ok(Some(keys)) => {
                tracing::info!(keys, source = %cache.source().describe(), "JWKS loaded: ready");
                readiness.done_waiting("jwks");
                return;
            }
            Ok(None) => {}
            Err(e) => readiness.wait_for("jwks", preflight::jwks_not_yet(&cache, &e)),
        }
    }
}

async fn prune_forever(service: Arc<Service>) {
    loop {
        match service.prune().await {
            Ok(pruned) if pruned == Pruned::default() => {}
            Ok(pruned) => tracing::info!(
                idempotency_records = pruned.idempotency_records,
                outbox_entries = pruned.outbox_entries,
                "expired records removed"
            ),
            Err(e) => tracing::warn!(error = %e, "pruning expired records failed"),
        }
        if let Err(e) = service.store_stats().await {
            tracing::warn!(error = %e, "reading the store's sizes failed");
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
