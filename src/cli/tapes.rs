//! `fast-seller replay` and `fast-seller validate`: fixture tapes and protocol checks against
//! a seller. Without `--target`, `replay` starts a fresh in-process server per tape here
//! (through start-up), so `crate::tapes` never reaches up to the application.

use super::{fail, CommandError};
use crate::config::Settings;
use crate::startup::Application;
use crate::tapes::replay::{ServerFactory, TapeServer, Target};
use crate::tapes::{ReplayOptions, ReplayReport, Signing, TapeError, ValidateOptions};
use std::path::PathBuf;
use std::time::Duration;

/// How the tools sign the requests they send (the target's `--auth`).
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// none | hmac (first secret of FAST_SELLER_HMAC_SECRETS) | fast-jwt (--key)
    #[arg(long, default_value = "none")]
    pub auth: String,
    /// Private key (PEM) for fast-jwt
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Key id the fast-jwt tokens name (the target's JWKS must have it)
    #[arg(long, default_value = "local-1")]
    pub kid: String,
    /// App id: the requests' app_id and the tokens' audience
    #[arg(
        long,
        env = "FAST_SELLER_APP_ID",
        default_value = "fast-seller-validate"
    )]
    pub app_id: String,
    /// Issuer of the fast-jwt tokens
    #[arg(long, default_value = "api.fast.co")]
    pub issuer: String,
}

impl SigningArgs {
    fn signing(&self) -> Result<Signing, CommandError> {
        match self.auth.as_str() {
            "none" => Ok(Signing::None),
            "hmac" => {
                let secrets = std::env::var("FAST_SELLER_HMAC_SECRETS")
                    .map_err(|_| fail("set FAST_SELLER_HMAC_SECRETS for --auth hmac"))?;
                Signing::hmac(&secrets).map_err(fail)
            }
            "fast-jwt" => {
                let key = self
                    .key
                    .as_ref()
                    .ok_or_else(|| fail("--key is required for fast-jwt"))?;
                Signing::fast_jwt(key, &self.kid, &self.issuer, &self.app_id).map_err(fail)
            }
            other => Err(fail(format!(
                "--auth `{other}`: expected none, hmac or fast-jwt"
            ))),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Tape files or directories of tapes
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// A running server (default: an in-process one per tape)
    #[arg(long)]
    pub target: Option<String>,
    /// Rewrite the tapes with the answers received (after a deliberate change)
    #[arg(long)]
    pub update: bool,
    /// Also write JUnit XML here
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// The target's forwarded.jsonl (file backend), to compare forwarded events
    #[arg(long)]
    pub forwarded: Option<PathBuf>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The seller backend to check (its base URL)
    #[arg(long)]
    pub target: String,
    /// A product of the seller's catalog
    #[arg(long, default_value = "hoodie-01")]
    pub product_id: String,
    /// A variant of that product, when it has variants
    #[arg(long)]
    pub variant_id: Option<String>,
    /// Only these flows (new_user, create_cart, read_cart, update_bill_to,
    /// update_shipment_contact, update_shipping_option, convert_cart_to_order, delete)
    #[arg(long = "operation")]
    pub operations: Vec<String>,
    /// Also write JUnit XML here
    #[arg(long)]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

/// `fast-seller replay`: the report, and whether it passed.
pub async fn run_replay(args: &ReplayArgs) -> Result<(String, bool), CommandError> {
    let options = ReplayOptions {
        update: args.update,
        junit: args.junit.clone(),
        signing: args.signing.signing()?,
        forwarded_file: args.forwarded.clone(),
        ..ReplayOptions::default()
    };
    let report = replay(&args.paths, args.target.as_deref(), options)
        .await
        .map_err(fail)?;
    Ok((report.render(), report.passed()))
}

/// `fast-seller validate`: the report, and whether it passed.
pub async fn run_validate(args: &ValidateArgs) -> Result<(String, bool), CommandError> {
    let operations = args
        .operations
        .iter()
        .map(|o| o.parse().map_err(fail))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ValidateOptions {
        product_id: args.product_id.clone(),
        variant_id: args.variant_id.clone(),
        signing: args.signing.signing()?,
        app_id: args.signing.app_id.clone(),
        operations,
        junit: args.junit.clone(),
        ..ValidateOptions::default()
    };
    let report = crate::tapes::validate(&args.target, options)
        .await
        .map_err(fail)?;
    Ok((report.render(), report.passed()))
}

/// Replays the tapes at `paths` (files, or directories searched for `*.jsonl`) against
/// `target` (a base URL such as `http://127.0.0.1:8080`), or, when `None`, against a fresh
/// in-process server per tape (which needs no signing). See [`crate::tapes::replay()`].
pub async fn replay(
    paths: &[PathBuf],
    target: Option<&str>,
    options: ReplayOptions,
) -> Result<ReplayReport, TapeError> {
    match target {
        Some(base) => crate::tapes::replay(paths, Target::Url(base), options).await,
        None => {
            let options = ReplayOptions {
                signing: Signing::None,
                ..options
            };
            crate::tapes::replay(paths, Target::PerTape(&InProcess), options).await
        }
    }
}

/// Starts each tape's server in this process: on a fresh temporary directory, `--auth none`,
/// the file backend, 127.0.0.1 on a free port.
struct InProcess;

#[async_trait::async_trait]
impl ServerFactory for InProcess {
    fn name(&self) -> String {
        "in-process server".to_string()
    }

    async fn start(&self, catalog: Option<PathBuf>) -> Result<Box<dyn TapeServer>, TapeError> {
        Ok(Box::new(LocalServer::start(catalog).await?))
    }
}

/// A fresh server for one tape, on a temporary directory removed when it stops.
struct LocalServer {
    base: String,
    dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<()>,
}

impl LocalServer {
    async fn start(catalog: Option<PathBuf>) -> Result<LocalServer, TapeError> {
        let dir = std::env::temp_dir().join(format!(
            "fast-seller-replay-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| TapeError::io(&dir, e))?;
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut settings = Settings::new(listen, dir.clone());
        settings.catalog = catalog;
        settings.workers = 2;
        settings.cache_capacity = 16 * 1024 * 1024;
        settings.outbox.poll_interval = Duration::from_millis(50);
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(TapeError::Server(e.to_string()));
            }
        };
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped().await {
                tracing::warn!(error = %e, "in-process replay server stopped with an error");
            }
        });
        Ok(LocalServer {
            base,
            dir,
            handle,
            task,
        })
    }
}

#[async_trait::async_trait]
impl TapeServer for LocalServer {
    fn base(&self) -> &str {
        &self.base
    }

    fn forwarded_file(&self) -> PathBuf {
        self.dir.join("forwarded.jsonl")
    }

    async fn stop(self: Box<Self>) {
        self.handle.stop(true).await;
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
