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
    /// Act on orders through a running server's admin API: list, show, cancel, refund,
    /// fulfil, capture.
    Orders(OrdersArgs),
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
    let admin = AdminClient::new(base)?;
    let request = match command {
        OutboxCommand::List { dead, state, limit } => {
            let state = if *dead {
                Some("dead")
            } else {
                state.as_deref()
            };
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = state {
                query.push(("state", s.to_string()));
            }
            admin.get(&["outbox"])?.query(&query)
        }
        OutboxCommand::Show { id } => admin.get(&["outbox", id])?,
        OutboxCommand::Retry { id: Some(id), .. } => admin.post(&["outbox", id, "retry"])?,
        OutboxCommand::Retry { id: None, .. } => admin.post(&["outbox", "retry-dead"])?,
    };
    admin.send(request).await
}

#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// Admin API of the running server (token from FAST_SELLER_ADMIN_TOKEN)
    #[arg(
        long,
        env = "FAST_SELLER_ADMIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    #[command(subcommand)]
    pub command: OrdersCommand,
}

/// Who acts, and the guards of a change.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// Refuse the change unless the order is still at this version (as `show` printed it)
    #[arg(long)]
    pub if_match: Option<u64>,
    /// Makes a retried command apply once
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[arg(long)]
    pub employee_id: Option<String>,
    #[arg(long, default_value = "cli")]
    pub source: String,
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders, a page at a time
    List {
        /// An order status, e.g. booked or ORDER_STATUS_BOOKED
        #[arg(long)]
        status: Option<String>,
        /// Created at or after (RFC 3339 or YYYY-MM-DD)
        #[arg(long)]
        created_from: Option<String>,
        /// Created before (RFC 3339 or YYYY-MM-DD)
        #[arg(long)]
        created_to: Option<String>,
        /// Text in the email, seller id or Fast id
        #[arg(long)]
        q: Option<String>,
        /// next_cursor of the previous page
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One order with its management state and history
    Show { id: String },
    /// Cancel the whole order, or some line quantities (--line LINE_ID=QTY, repeated)
    Cancel {
        id: String,
        #[arg(long = "line")]
        lines: Vec<String>,
        /// CANCEL_REASON_CODE_* name (or short name, or number 0-5), or seed:N (1-6)
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        sub_reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Calculate a refund (--line LINE_ID=QTY[:cancel|return|no_restock]) and create it
    Refund {
        id: String,
        #[arg(long = "line")]
        lines: Vec<String>,
        /// `full`, or an amount of shipping excl. tax
        #[arg(long)]
        shipping: Option<String>,
        /// REFUND_REASON_CODE_* name, short name or number
        #[arg(long)]
        reason: Option<String>,
        /// original_method (default) or store_credit
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        external_refund_id: Option<String>,
        /// Only print the calculation
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Fulfil everything left, or some line quantities (--line LINE_ID=QTY)
    Fulfil {
        id: String,
        #[arg(long = "line")]
        lines: Vec<String>,
        #[arg(long, default_value = "")]
        carrier: String,
        #[arg(long, default_value = "")]
        tracking_number: String,
        /// YYYY-MM-DD
        #[arg(long)]
        estimated_delivery_date: Option<String>,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Tell Fast to collect the payment (CLEAR_TO_COLLECT_PAYMENT)
    Capture {
        id: String,
        #[command(flatten)]
        action: ActionArgs,
    },
}

/// `LINE_ID=QTY` or `LINE_ID=QTY:RESTOCK`.
fn parse_line(text: &str, restock: bool) -> Result<serde_json::Value, CommandError> {
    let bad = || {
        fail(format!(
            "--line `{text}`: expected LINE_ID=QTY{}",
            if restock { "[:RESTOCK]" } else { "" }
        ))
    };
    let (id, rest) = text.split_once('=').ok_or_else(bad)?;
    let (qty, kind) = match rest.split_once(':') {
        Some((q, k)) if restock => (q, Some(k)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let quantity: i64 = qty.trim().parse().map_err(|_| bad())?;
    let mut line = serde_json::json!({"line_id": id.trim(), "quantity": quantity});
    if let Some(k) = kind {
        let kind = crate::domain::manage::RestockType::parse(k).ok_or_else(|| {
            fail(format!(
                "--line `{text}`: `{k}` is not cancel, return or no_restock"
            ))
        })?;
        line["restock"] = serde_json::json!(kind.name());
    }
    Ok(line)
}

fn parse_lines(lines: &[String], restock: bool) -> Result<Option<serde_json::Value>, CommandError> {
    if lines.is_empty() {
        return Ok(None);
    }
    let parsed: Result<Vec<_>, _> = lines.iter().map(|l| parse_line(l, restock)).collect();
    Ok(Some(serde_json::Value::Array(parsed?)))
}

/// Puts the optional fields that are set into `body`.
fn put(body: &mut serde_json::Value, fields: &[(&str, Option<serde_json::Value>)]) {
    for (name, value) in fields {
        if let Some(v) = value {
            body[*name] = v.clone();
        }
    }
}

fn text(value: &Option<String>) -> Option<serde_json::Value> {
    value.clone().map(serde_json::Value::String)
}

/// The admin API of a running server.
struct AdminClient {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl AdminClient {
    fn new(base: &str) -> Result<AdminClient, CommandError> {
        let token = std::env::var("FAST_SELLER_ADMIN_TOKEN")
            .map_err(|_| fail("set FAST_SELLER_ADMIN_TOKEN to use the admin API (--url)"))?;
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: reqwest::Client::new(),
        })
    }

    /// `base/admin/v1/<segments…>`, each segment encoded.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CommandError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| fail(format!("--url `{}`: {e}", self.base)))?;
        url.path_segments_mut()
            .map_err(|_| fail(format!("--url `{}` cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(segments);
        Ok(url)
    }

    fn get(&self, segments: &[&str]) -> Result<reqwest::RequestBuilder, CommandError> {
        Ok(self.client.get(self.url(segments)?))
    }

    fn post(&self, segments: &[&str]) -> Result<reqwest::RequestBuilder, CommandError> {
        Ok(self.client.post(self.url(segments)?))
    }

    /// Sends and returns the JSON answer; a refusal becomes the server's message.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, CommandError> {
        let resp = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(fail)?;
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

    /// POSTs a merchant action on order `id`.
    async fn act(
        &self,
        id: &str,
        action: &str,
        mut body: serde_json::Value,
        args: &ActionArgs,
    ) -> Result<serde_json::Value, CommandError> {
        put(
            &mut body,
            &[
                ("employee_id", text(&args.employee_id)),
                ("source", Some(serde_json::json!(args.source))),
            ],
        );
        let mut segments = vec!["orders", id];
        segments.extend(action.split('/'));
        let mut request = self.post(&segments)?.json(&body);
        if let Some(v) = args.if_match {
            request = request.header("if-match", v.to_string());
        }
        if let Some(k) = &args.idempotency_key {
            request = request.header("idempotency-key", k);
        }
        self.send(request).await
    }
}

/// `fast-seller orders …`: the merchant API from the command line.
pub async fn orders(args: &OrdersArgs) -> Result<String, CommandError> {
    let admin = AdminClient::new(&args.url)?;
    let value = match &args.command {
        OrdersCommand::List {
            status,
            created_from,
            created_to,
            q,
            cursor,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (name, value) in [
                ("status", status),
                ("created_from", created_from),
                ("created_to", created_to),
                ("q", q),
                ("cursor", cursor),
            ] {
                if let Some(v) = value {
                    query.push((name, v.clone()));
                }
            }
            admin.send(admin.get(&["orders"])?.query(&query)).await?
        }
        OrdersCommand::Show { id } => admin.send(admin.get(&["orders", id])?).await?,
        OrdersCommand::Cancel {
            id,
            lines,
            reason,
            sub_reason,
            note,
            action,
        } => {
            let mut body = serde_json::json!({});
            if let Some(r) = reason {
                let (reason, seed) = crate::domain::manage::parse_cancel_reason(r)
                    .ok_or_else(|| fail(format!("--reason `{r}` is not a cancel reason")))?;
                body["reason"] = serde_json::json!(reason.name());
                put(
                    &mut body,
                    &[("seed_code", seed.map(|s| serde_json::json!(s.number())))],
                );
            }
            put(
                &mut body,
                &[
                    ("lines", parse_lines(lines, false)?),
                    ("sub_reason", text(sub_reason)),
                    ("note", text(note)),
                ],
            );
            admin.act(id, "cancel", body, action).await?
        }
        OrdersCommand::Refund {
            id,
            lines,
            shipping,
            reason,
            method,
            note,
            external_refund_id,
            dry_run,
            action,
        } => {
            let mut body = serde_json::json!({});
            let shipping = shipping.as_deref().map(|s| match s.trim() {
                "full" => serde_json::json!("full"),
                amount => serde_json::json!({ "amount": amount }),
            });
            put(
                &mut body,
                &[
                    ("lines", parse_lines(lines, true)?),
                    ("shipping", shipping),
                    ("reason", text(reason)),
                    ("method", text(method)),
                    ("note", text(note)),
                    ("external_refund_id", text(external_refund_id)),
                ],
            );
            let calc = admin
                .act(id, "refunds/calculate", body.clone(), action)
                .await?;
            if *dry_run {
                calc
            } else {
                body["calculation"] = calc["calculation"].clone();
                admin.act(id, "refunds", body, action).await?
            }
        }
        OrdersCommand::Fulfil {
            id,
            lines,
            carrier,
            tracking_number,
            estimated_delivery_date,
            action,
        } => {
            let mut body =
                serde_json::json!({"carrier": carrier, "tracking_number": tracking_number});
            put(
                &mut body,
                &[
                    ("lines", parse_lines(lines, false)?),
                    ("estimated_delivery_date", text(estimated_delivery_date)),
                ],
            );
            admin.act(id, "fulfillments", body, action).await?
        }
        OrdersCommand::Capture { id, action } => {
            admin
                .act(id, "capture", serde_json::json!({}), action)
                .await?
        }
    };
    serde_json::to_string_pretty(&value)
        .map(|s| s + "\n")
        .map_err(fail)
}
