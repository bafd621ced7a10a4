//! `fast-seller sign` and `fast-seller keys`: authentication headers and local keys for
//! trying a server by hand.

use super::{fail, CommandError};
use crate::clock::{Clock, SystemClock};
use clap::Subcommand;
use std::path::PathBuf;

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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write private.pem and jwks.json (for FAST_SELLER_JWKS) into a directory
    Generate {
        /// Directory to write the two files into (created when missing)
        #[arg(long)]
        dir: PathBuf,
        /// Key id of the key in jwks.json (tokens name it in their `kid`)
        #[arg(long, default_value = "local-1")]
        kid: String,
    },
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
