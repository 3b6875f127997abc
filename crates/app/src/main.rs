//! The `handoff` binary: parses the command line and runs one command.

use std::process::ExitCode;

use handoff::cli::{Cli, Command};
use handoff::{Application, CommandError, operator};

/// jemalloc, whose background threads hand freed memory back to the system within seconds
/// (`.cargo/config.toml` sets the decay): glibc's allocator kept the peak of a burst of large
/// requests resident for good.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The log filter when `HANDOFF_LOG` is unset: handoff's own lines at INFO; the migration
/// runner's progress and PostgreSQL's notices (`relation … already exists, skipping`) only when
/// they warn, since handoff says itself what it migrated.
const DEFAULT_LOG: &str = "info,sea_orm_migration=warn,sqlx::postgres::notice=warn";

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // The demo makes its own temporary database: a database named on its command line would
    // be silently ignored, so it is refused (the environment's is ignored, said in --help).
    if matches!(cli.command, handoff::cli::Command::Demo { .. }) {
        let given =
            |name: &str| matches.value_source(name) == Some(clap::parser::ValueSource::CommandLine);
        if given("database_url") || given("data_dir") {
            eprintln!(
                "error: the demo runs on a fresh temporary SQLite file of its own; \
                 --database-url and --data-dir do not apply to it (use serve)"
            );
            return ExitCode::FAILURE;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HANDOFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Serves, runs the demo, prints the OpenAPI document, or runs an operator command.
async fn run(cli: Cli) -> Result<(), CommandError> {
    match &cli.command {
        Command::Serve(args) => {
            let app = Application::build(cli.config(args)?).await?;
            tracing::info!(port = app.port(), "handoff is serving");
            Ok(app.run_until_signalled().await?)
        }
        Command::Demo { bind } => handoff::demo::run(bind).await,
        Command::Openapi => {
            println!("{}", handoff_http::openapi::document());
            Ok(())
        }
        _ => operator::run(&cli).await.map(drop),
    }
}
