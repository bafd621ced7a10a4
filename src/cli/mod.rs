//! The command line: `fast-seller serve` and the operator's tools (signing, keys, outbox,
//! orders, stores, tapes). One module per command group; this one holds the top level and
//! runs a parsed command line.

mod admin;
pub mod catalog;
pub mod config;
pub mod healthcheck;
pub mod orders;
pub mod outbox;
pub mod serve;
pub mod sign;
pub mod store;
mod table;
pub mod tapes;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::future::Future;
use std::process::ExitCode;

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
    #[command(after_help = serve::SECRETS_HELP)]
    Serve(Box<serve::ServeArgs>),
    /// Print the authentication headers for a request body, one `Name: value` per line
    /// (use with `curl -H @headers.txt`).
    Sign(sign::SignArgs),
    /// Local RSA keys for testing `--auth fast-jwt`.
    #[command(subcommand)]
    Keys(sign::KeysCommand),
    /// Inspect and retry events for the commerce backend.
    Outbox(outbox::OutboxArgs),
    /// Act on orders through a running server's admin API: list, show, cancel, refund,
    /// fulfil, capture.
    Orders(orders::OrdersArgs),
    /// The catalog `serve` prices with: read it from the commerce platform now, or show it.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Check the configuration `serve` would use: the settings, where each came from, and
    /// every check serve makes before it starts.
    #[command(subcommand)]
    Config(serve::ConfigCommand),
    /// Replay fixture tapes against a server (an in-process one on a temp dir when no
    /// --target is given); exit 1 on any difference.
    Replay(tapes::ReplayArgs),
    /// Play Fast against any seller backend and check the protocol's invariants.
    Validate(tapes::ValidateArgs),
    /// Apply the PostgreSQL store's migrations (serve also does this at start-up).
    Migrate {
        /// postgres://… URL of the store
        #[arg(long, env = "FAST_SELLER_STORE")]
        store: String,
    },
    /// Operate on whole stores.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Exit 0 when the server answers 200 on its readiness URL (container healthchecks).
    Healthcheck {
        /// The readiness URL to ask
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

/// Why a tool command failed (printed as one line; exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

pub(crate) fn fail(e: impl std::fmt::Display) -> CommandError {
    CommandError(e.to_string())
}

/// Parses this process's command line and runs it.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => run_with(cli, Some(&matches)),
        Err(e) => e.exit(),
    }
}

/// Runs a parsed command line. Exit codes: 1 when a tool failed or found differences, 2 for
/// a bad configuration or a server that could not run.
pub fn run(cli: Cli) -> ExitCode {
    run_with(cli, None)
}

/// Runs a parsed command line; `matches` (when known) tell flags from environment variables.
fn run_with(cli: Cli, matches: Option<&ArgMatches>) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::serve(*args),
        Command::Config(serve::ConfigCommand::Check(args)) => {
            let check = matches
                .and_then(|m| m.subcommand_matches("config"))
                .and_then(|m| m.subcommand_matches("check"));
            match block_on(async { Ok(config::check(&args, check).await) }) {
                Ok(report) => {
                    print!("{}", report.text);
                    match report.failure {
                        Some(line) => exit(&line, 2),
                        None => ExitCode::SUCCESS,
                    }
                }
                Err(e) => exit(&e, 2),
            }
        }
        Command::Sign(args) => print(sign::sign(&args)),
        Command::Keys(command) => print(sign::keys(&command)),
        Command::Outbox(args) => print(block_on(outbox::run(&args))),
        Command::Catalog(command) => print(block_on(catalog::run(&command))),
        Command::Orders(args) => print(block_on(orders::run(&args))),
        Command::Replay(args) => report(block_on(tapes::run_replay(&args))),
        Command::Validate(args) => report(block_on(tapes::run_validate(&args))),
        Command::Migrate { store } => print(block_on(store::migrate(&store))),
        Command::Store(command) => print(block_on(store::run(&command))),
        Command::Healthcheck { url } => print(block_on(healthcheck::run(&url))),
    }
}

/// The multi-threaded runtime the server and the tools run on.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Runs an async tool command to its end.
fn block_on<T>(command: impl Future<Output = Result<T, CommandError>>) -> Result<T, CommandError> {
    runtime().map_err(fail)?.block_on(command)
}

/// Prints a tool's report; exit 1 when it found differences.
fn report(result: Result<(String, bool), CommandError>) -> ExitCode {
    match result {
        Ok((text, true)) => print(Ok(text)),
        Ok((text, false)) => {
            print!("{text}");
            ExitCode::from(1)
        }
        Err(e) => exit(&e, 1),
    }
}

fn print(result: Result<String, CommandError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => exit(&e, 1),
    }
}

/// Says why on standard error and exits with `code`.
pub(crate) fn exit(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("fast-seller: {e}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, argument and flag of `--help` says what it is for.
    #[test]
    fn every_argument_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "fast-seller", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:#?}");
    }
}
