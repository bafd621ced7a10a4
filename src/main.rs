use clap::Parser;
use fast_seller::cli::{Cli, Command};
use fast_seller::config::RawSettings;
use fast_seller::startup::Application;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: fast_seller::cli::ServeArgs) -> ExitCode {
    let file = match args
        .config
        .as_deref()
        .map(RawSettings::from_file)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let settings = match args.settings.resolve(file) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    fast_seller::telemetry::init(settings.log_format);
    if settings.auth == fast_seller::config::AuthMode::None {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth none): anyone who can reach {} can create, read and change orders; use it for local development only",
            settings.listen
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
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
            fail(&e)
        }
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("fast-seller: {e}");
    ExitCode::from(2)
}
