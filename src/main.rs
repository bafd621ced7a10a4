use clap::Parser;
use fast_seller::cli::{self, Cli, Command};
use fast_seller::config::RawSettings;
use fast_seller::startup::Application;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Sign(args) => print(cli::sign(&args)),
        Command::Keys(command) => print(cli::keys(&command)),
        Command::Outbox(args) => match runtime() {
            Ok(rt) => print(rt.block_on(cli::outbox(&args))),
            Err(e) => fail(&e, 1),
        },
        Command::Orders(args) => match runtime() {
            Ok(rt) => print(rt.block_on(cli::orders(&args))),
            Err(e) => fail(&e, 1),
        },
        Command::Config(cli::ConfigCommand::Check(args)) => match cli::config_check(&args) {
            Ok(text) => print(Ok(text)),
            Err(e) => fail(&e, 2),
        },
        Command::Replay(args) => report(runtime().map(|rt| rt.block_on(cli::replay(&args)))),
        Command::Validate(args) => report(runtime().map(|rt| rt.block_on(cli::validate(&args)))),
        Command::Migrate { store } => match runtime() {
            Ok(rt) => print(rt.block_on(cli::migrate(&store))),
            Err(e) => fail(&e, 1),
        },
        Command::Store(command) => match runtime() {
            Ok(rt) => print(rt.block_on(cli::store(&command))),
            Err(e) => fail(&e, 1),
        },
        Command::Healthcheck { url } => match runtime() {
            Ok(rt) => print(rt.block_on(cli::healthcheck(&url))),
            Err(e) => fail(&e, 1),
        },
    }
}

fn serve(args: cli::ServeArgs) -> ExitCode {
    let file = match args
        .config
        .as_deref()
        .map(RawSettings::from_file)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return fail(&e, 2),
    };
    let settings = match args.settings.resolve(file) {
        Ok(s) => s,
        Err(e) => return fail(&e, 2),
    };
    fast_seller::telemetry::init(settings.log_format);
    if settings.auth == fast_seller::config::AuthMode::None {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--auth none): anyone who can reach {} can create, read and change orders; use it for local development only",
            settings.listen
        );
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e, 2),
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
            fail(&e, 2)
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Prints a tool's report; exit 1 when it found differences.
fn report(result: std::io::Result<Result<(String, bool), cli::CommandError>>) -> ExitCode {
    match result {
        Ok(Ok((text, passed))) => {
            print!("{text}");
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(Err(e)) => fail(&e, 1),
        Err(e) => fail(&e, 1),
    }
}

fn print(result: Result<String, cli::CommandError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, 1),
    }
}

fn fail(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("fast-seller: {e}");
    ExitCode::from(code)
}
