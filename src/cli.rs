//! The command line: `fast-seller serve` and friends.

use crate::config::RawSettings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// Run the server (Fast's /fast/v1/create|read|update|delete, /healthz, /readyz).
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names with underscores)
    #[arg(long, env = "FAST_SELLER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: RawSettings,
}
