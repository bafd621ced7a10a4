//! The command line: `fast-seller serve` and the operator's tools (signing, keys, outbox).

use crate::clock::{Clock, SystemClock};
use crate::config::RawSettings;
use crate::service::admin::{parse_state, OutboxAdmin};
use crate::store::sled::SledStore;
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "fast-seller",
    version,
    about = "The seller side of the Fast checkout platform"
)]
#[command(arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (Fast's /fast/v1/create|read|update|delete, /healthz, /readyz, /admin/v1).
    Serve(Box<ServeArgs>),
    /// Print the authentication headers for a request body, one `Name: value` per line
    /// (use with `curl -H @headers.txt`).
    Sign(SignArgs),
    /// Local RSA keys for testing `--auth fast-jwt`.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect and retry events for the commerce backend.
    Outbox(OutboxArgs),
    /// Check the configuration `serve` would use.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Replay fixture tapes against a server (an in-process one on a temp dir when no
    /// --target is given); exit 1 on any difference.
    Replay(ReplayArgs),
    /// Play Fast against any seller backend and check the protocol's invariants.
    Validate(ValidateArgs),
    /// Apply the PostgreSQL store's migrations (serve also does this at start-up).
    Migrate {
        /// postgres://… URL of the store
        #[arg(long, env = "FAST_SELLER_STORE")]
        store: String,
    },
    /// Operate on whole stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Exit 0 when the server answers 200 on its readiness URL (container healthchecks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything (orders, idempotency records, the outbox and its attempt history)
    /// from one store into another, then verify the counts; stop the servers first.
    Migrate {
        /// The source: sled:DIR or a postgres://… URL
        #[arg(long)]
        from: crate::store::copy::Location,
        /// The target: a postgres://… URL or sled:DIR (migrated or created as needed)
        #[arg(long)]
        to: crate::store::copy::Location,
        /// Add to a target that holds data already (rows are never overwritten)
        #[arg(long)]
        allow_non_empty: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted); exit 2 on any bad value
    Check(Box<ServeArgs>),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names with underscores)
    #[arg(long, env = "FAST_SELLER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: RawSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignScheme {
    /// Standard Webhooks headers with the first secret of FAST_SELLER_HMAC_SECRETS
    Hmac,
    /// `Authorization: Bearer <RS256 JWT>` signed with --key
    FastJwt,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Scheme of the headers
    #[arg(long)]
    pub auth: SignScheme,
    /// The exact request body (a file, or - for standard input)
    #[arg(long)]
    pub body: PathBuf,
    /// Message id for hmac [default: a new UUID]
    #[arg(long)]
    pub id: Option<String>,
    /// Private key (PEM) for fast-jwt, e.g. from `fast-seller keys generate`
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Key id for fast-jwt
    #[arg(long, default_value = "local-1")]
    pub kid: String,
    /// Audience (your Fast app id) for fast-jwt
    #[arg(long, env = "FAST_SELLER_APP_ID")]
    pub app_id: Option<String>,
    /// Issuer for fast-jwt
    #[arg(long, default_value = "api.fast.co")]
    pub issuer: String,
    /// Token lifetime in seconds for fast-jwt
    #[arg(long, default_value_t = 300)]
    pub ttl: i64,
}

/// How the tools sign the requests they send (the target's `--auth`).
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// none | hmac (first secret of FAST_SELLER_HMAC_SECRETS) | fast-jwt (--key)
    #[arg(long, default_value = "none")]
    pub auth: String,
    /// Private key (PEM) for fast-jwt
    #[arg(long)]
    pub key: Option<PathBuf>,
    #[arg(long, default_value = "local-1")]
    pub kid: String,
    #[arg(
        long,
        env = "FAST_SELLER_APP_ID",
        default_value = "fast-seller-validate"
    )]
    pub app_id: String,
    #[arg(long, default_value = "api.fast.co")]
    pub issuer: String,
}

impl SigningArgs {
    fn signing(&self) -> Result<crate::tapes::Signing, CommandError> {
        match self.auth.as_str() {
            "none" => Ok(crate::tapes::Signing::None),
            "hmac" => {
                let secrets = std::env::var("FAST_SELLER_HMAC_SECRETS")
                    .map_err(|_| fail("set FAST_SELLER_HMAC_SECRETS for --auth hmac"))?;
                crate::tapes::Signing::hmac(&secrets).map_err(fail)
            }
            "fast-jwt" => {
                let key = self
                    .key
                    .as_ref()
                    .ok_or_else(|| fail("--key is required for fast-jwt"))?;
                crate::tapes::Signing::fast_jwt(key, &self.kid, &self.issuer, &self.app_id)
                    .map_err(fail)
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
    #[arg(long)]
    pub variant_id: Option<String>,
    /// Only these flows (new_user, create_cart, read_cart, update_bill_to,
    /// update_shipment_contact, update_shipping_option, convert_cart_to_order, delete)
    #[arg(long = "operation")]
    pub operations: Vec<String>,
    #[arg(long)]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write private.pem and jwks.json (for FAST_SELLER_JWKS) into a directory
    Generate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "local-1")]
        kid: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// Admin API of a running server (token from FAST_SELLER_ADMIN_TOKEN); without it the
    /// data directory is opened directly, which needs the server stopped
    #[arg(long, env = "FAST_SELLER_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// Data directory of a stopped server
    #[arg(
        long,
        env = "FAST_SELLER_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List events (all, or one state)
    List {
        /// Only dead letters
        #[arg(long)]
        dead: bool,
        /// Only this state: pending, delivered or dead
        #[arg(long, conflicts_with = "dead")]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One event with its attempt log
    Show { id: String },
    /// Re-queue a dead letter (same event id, fresh schedule), or all of them
    Retry {
        #[arg(required_unless_present = "all_dead")]
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all_dead: bool,
    },
}

/// Why a tool command failed (printed as one line; exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

fn fail(e: impl std::fmt::Display) -> CommandError {
    CommandError(e.to_string())
}

/// `fast-seller sign`
pub fn sign(args: &SignArgs) -> Result<String, CommandError> {
    let body = if args.body.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(fail)?;
        buf
    } else {
        std::fs::read(&args.body).map_err(|e| fail(format!("{}: {e}", args.body.display())))?
    };
    let now_secs = i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(i64::MAX);
    match args.auth {
        SignScheme::Hmac => {
            let secrets = std::env::var("FAST_SELLER_HMAC_SECRETS")
                .map_err(|_| fail("set FAST_SELLER_HMAC_SECRETS to the whsec_ secret(s)"))?;
            let secret = crate::signing::parse_secrets(&secrets)
                .map_err(fail)?
                .into_iter()
                .next()
                .ok_or_else(|| fail("FAST_SELLER_HMAC_SECRETS is empty"))?;
            let id = args
                .id
                .clone()
                .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
            let headers = crate::signing::headers(&secret, &id, now_secs, &body);
            Ok(headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect())
        }
        SignScheme::FastJwt => {
            let key_path = args
                .key
                .as_ref()
                .ok_or_else(|| fail("--key is required for fast-jwt"))?;
            let app_id = args
                .app_id
                .as_deref()
                .ok_or_else(|| fail("--app-id (or FAST_SELLER_APP_ID) is required for fast-jwt"))?;
            let key = crate::keys::load_private(key_path).map_err(fail)?;
            let token =
                crate::keys::sign_jwt(&key, &args.kid, &args.issuer, app_id, now_secs, args.ttl)
                    .map_err(fail)?;
            Ok(format!("Authorization: Bearer {token}\n"))
        }
    }
}

/// `fast-seller config check`: the effective settings, or the first bad one.
pub fn config_check(args: &ServeArgs) -> Result<String, CommandError> {
    let file = args
        .config
        .as_deref()
        .map(RawSettings::from_file)
        .transpose()
        .map_err(fail)?;
    let settings = args.settings.clone().resolve(file).map_err(fail)?;
    Ok(format!("{settings:#?}\nconfiguration OK\n"))
}

/// `fast-seller replay`: the report, and whether it passed.
pub async fn replay(args: &ReplayArgs) -> Result<(String, bool), CommandError> {
    let options = crate::tapes::ReplayOptions {
        update: args.update,
        junit: args.junit.clone(),
        signing: args.signing.signing()?,
        forwarded_file: args.forwarded.clone(),
        ..crate::tapes::ReplayOptions::default()
    };
    let report = crate::tapes::replay(&args.paths, args.target.as_deref(), options)
        .await
        .map_err(fail)?;
    Ok((report.render(), report.passed()))
}

/// `fast-seller validate`: the report, and whether it passed.
pub async fn validate(args: &ValidateArgs) -> Result<(String, bool), CommandError> {
    let operations = args
        .operations
        .iter()
        .map(|o| o.parse().map_err(fail))
        .collect::<Result<Vec<_>, _>>()?;
    let options = crate::tapes::ValidateOptions {
        product_id: args.product_id.clone(),
        variant_id: args.variant_id.clone(),
        signing: args.signing.signing()?,
        app_id: args.signing.app_id.clone(),
        operations,
        junit: args.junit.clone(),
        ..crate::tapes::ValidateOptions::default()
    };
    let report = crate::tapes::validate(&args.target, options)
        .await
        .map_err(fail)?;
    Ok((report.render(), report.passed()))
}

/// `fast-seller migrate`
pub async fn migrate(url: &str) -> Result<String, CommandError> {
    let store = crate::store::postgres::PgStore::connect(url, None, 1)
        .await
        .map_err(fail)?;
    let applied = store.migrate().await.map_err(fail)?;
    Ok(if applied.is_empty() {
        "the database is up to date\n".to_string()
    } else {
        format!("applied: {}\n", applied.join(", "))
    })
}

/// `fast-seller store migrate`
pub async fn store(command: &StoreCommand) -> Result<String, CommandError> {
    let StoreCommand::Migrate {
        from,
        to,
        allow_non_empty,
    } = command;
    let source = from.open(true).await.map_err(fail)?;
    let target = to.open(false).await.map_err(fail)?;
    let options = crate::store::copy::CopyOptions {
        allow_non_empty: *allow_non_empty,
    };
    let copied = crate::store::copy::copy(&*source, &*target, options)
        .await
        .map_err(fail)?;
    Ok(format!("copied {from} to {to} and verified: {copied}\n"))
}

/// `fast-seller healthcheck`
pub async fn healthcheck(url: &str) -> Result<String, CommandError> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(fail)?;
    let resp = client.get(url).send().await.map_err(fail)?;
    if resp.status().is_success() {
        Ok(format!("{url}: {}\n", resp.status()))
    } else {
        Err(fail(format!("{url}: {}", resp.status())))
    }
}

/// `fast-seller keys generate`
pub fn keys(command: &KeysCommand) -> Result<String, CommandError> {
    match command {
        KeysCommand::Generate { dir, kid } => {
            crate::keys::generate(dir, kid).map_err(fail)?;
            Ok(format!(
                "wrote {0}/private.pem and {0}/jwks.json (kid {kid})\n\
                 serve with: FAST_SELLER_JWKS={0}/jwks.json FAST_SELLER_APP_ID=<app id> fast-seller serve --auth fast-jwt\n",
                dir.display()
            ))
        }
    }
}

/// `fast-seller outbox …`: through the admin API when `--url` is given, else on the store.
pub async fn outbox(args: &OutboxArgs) -> Result<String, CommandError> {
    let json = match &args.url {
        Some(url) => outbox_remote(url, &args.command).await?,
        None => outbox_local(args).await?,
    };
    serde_json::to_string_pretty(&json)
        .map(|s| s + "\n")
        .map_err(fail)
}

async fn outbox_local(args: &OutboxArgs) -> Result<serde_json::Value, CommandError> {
    let dir = args.data_dir.clone();
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SledStore::open(&dir, 64 * 1024 * 1024))
            .await
            .map_err(fail)?
            .map_err(|e| fail(format!("{e} (is the server running? then use --url)")))?,
    );
    let admin = OutboxAdmin::new(store, Arc::new(SystemClock), Arc::default());
    let value = match &args.command {
        OutboxCommand::List { dead, state, limit } => {
            let state = match (dead, state) {
                (true, _) => Some(crate::store::OutboxState::Dead),
                (false, Some(s)) => Some(parse_state(s).map_err(fail)?),
                (false, None) => None,
            };
            serde_json::json!({ "events": admin.list(state, *limit).await.map_err(fail)? })
        }
        OutboxCommand::Show { id } => {
            serde_json::to_value(admin.show(id).await.map_err(fail)?).map_err(fail)?
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            serde_json::to_value(admin.retry(id).await.map_err(fail)?).map_err(fail)?
        }
        OutboxCommand::Retry { id: None, .. } => {
            serde_json::json!({ "requeued": admin.retry_all_dead().await.map_err(fail)? })
        }
    };
    Ok(value)
}

async fn outbox_remote(
    base: &str,
    command: &OutboxCommand,
) -> Result<serde_json::Value, CommandError> {
    let token = std::env::var("FAST_SELLER_ADMIN_TOKEN")
        .map_err(|_| fail("set FAST_SELLER_ADMIN_TOKEN to use --url"))?;
    let base = base.trim_end_matches('/');
    let client = reqwest::Client::new();
    let request = match command {
        OutboxCommand::List { dead, state, limit } => {
            let state = if *dead {
                Some("dead")
            } else {
                state.as_deref()
            };
            let mut url = format!("{base}/admin/v1/outbox?limit={limit}");
            if let Some(s) = state {
                url.push_str(&format!("&state={s}"));
            }
            client.get(url)
        }
        OutboxCommand::Show { id } => client.get(format!("{base}/admin/v1/outbox/{id}")),
        OutboxCommand::Retry { id: Some(id), .. } => {
            client.post(format!("{base}/admin/v1/outbox/{id}/retry"))
        }
        OutboxCommand::Retry { id: None, .. } => {
            client.post(format!("{base}/admin/v1/outbox/retry-dead"))
        }
    };
    let resp = request.bearer_auth(token).send().await.map_err(fail)?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(fail)?;
    if !status.is_success() {
        return Err(fail(format!(
            "HTTP {status}: {}",
            body.get("message").and_then(|m| m.as_str()).unwrap_or("")
        )));
    }
    Ok(body)
}
