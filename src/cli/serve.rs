//! `fast-seller serve` and `fast-seller config check`: the settings `serve` runs with.

use super::{exit, runtime};
use crate::config::{AuthMode, ConfigError, RawSettings, Settings};
use crate::startup::Application;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names with underscores)
    #[arg(long, env = "FAST_SELLER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: RawSettings,
}

impl ServeArgs {
    /// The effective settings: flags and environment over the `--config` file over defaults.
    fn resolve(&self) -> Result<Settings, ConfigError> {
        self.resolve_with_file().1
    }

    /// The `--config` file's values (when it could be read) and the effective settings.
    pub(crate) fn resolve_with_file(&self) -> (Option<RawSettings>, Result<Settings, ConfigError>) {
        let file = match self
            .config
            .as_deref()
            .map(RawSettings::from_file)
            .transpose()
        {
            Ok(file) => file,
            Err(e) => return (None, Err(e)),
        };
        let settings = self.settings.clone().resolve(file.clone());
        (file, settings)
    }
}

/// The settings `--help` cannot show as flags: secrets come from the environment (or the
/// `--config` file) only, so they never appear in `ps` or a shell history.
pub const SECRETS_HELP: &str = "\
Secrets (environment or --config file only, never flags):
  FAST_SELLER_HMAC_SECRETS      whsec_… secrets Fast signs with, comma-separated
                                (--auth hmac; list two during a rotation)
  FAST_SELLER_WEBHOOK_SECRET    whsec_… secret that signs what --backend webhook sends
  FAST_SELLER_ADMIN_TOKEN       bearer token of /admin/v1, at least 16 characters (the
                                admin API and the orders commands are off without it)
  FAST_SELLER_FAST_API_TOKEN    X-Fast-App-Auth token of this server's calls to Fast
                                (cancels, refunds, business events wait without it)
  FAST_SELLER_VENDURE_API_KEY   Vendure Admin API key (--backend vendure), or instead
  FAST_SELLER_VENDURE_USERNAME  a Vendure administrator's user name
  FAST_SELLER_VENDURE_PASSWORD  and password

`fast-seller config check` (same flags) shows the effective settings and where each came from.";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (secrets redacted) with where each came from, and run
    /// every check serve makes before it starts; exit 2 naming the first problem
    #[command(after_help = SECRETS_HELP)]
    Check(Box<super::config::CheckArgs>),
}

/// `fast-seller serve`: runs until SIGTERM/SIGINT; exit 2 when it cannot start or stops
/// with an error.
pub fn serve(args: ServeArgs) -> ExitCode {
    let settings = match args.resolve() {
        Ok(s) => s,
        Err(e) => return exit(&e, 2),
    };
    crate::telemetry::init(settings.log_format);
    if settings.auth == AuthMode::None {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth none): anyone who can reach {} can create, read and change orders; use it for local development only",
            settings.listen
        );
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return exit(&e, 2),
    };
    let result = runtime.block_on(async {
        Application::build(settings)
            .await?
            .run_until_stopped()
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "fast-seller stopped with an error");
            exit(&e, 2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// `serve --help` names every secret the settings read from the environment.
    #[test]
    fn the_help_lists_every_secret() {
        for key in crate::config::KEYS
            .iter()
            .filter(|k| crate::config::is_secret(k))
        {
            let env = crate::config::env_name(key);
            assert!(
                super::SECRETS_HELP.contains(env),
                "{env} is not in SECRETS_HELP"
            );
        }
    }
}
