//! `lienthong`: the Liên Thông inter-agency data-exchange bus.
//!
//! Runtime switches live here on the command line; everything about routing lives in the config file.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Liên Thông inter-agency data-exchange bus"
)]
struct Cli {
    /// Log format: `text` (default) or `json`.
    #[arg(
        long,
        global = true,
        default_value = "text",
        env = "LIENTHONG_LOG_FORMAT"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bus until SIGTERM or Ctrl-C.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config (syntax, keys, agency codes, adapters, routes, schemas); exit 1 listing every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run route tests (`*.test.toml` beside the config, or the files named) without a broker; exit 1 when a
    /// case fails, 2 when the config or a test file is invalid.
    Test {
        #[arg(long, short)]
        config: PathBuf,
        /// Test files (default: the `*.test.toml` files beside the config written for it).
        files: Vec<PathBuf>,
    },
    /// Run the bus on the embedded broker, submit the sample dossiers and show what happened to each.
    Demo {
        #[arg(long, short, default_value = "config/quickstart.toml")]
        config: PathBuf,
        /// Folder of sample envelopes to submit (default: `samples/` next to the config).
        #[arg(long)]
        samples: Option<PathBuf>,
    },
    /// Print the argon2id hash (PHC string) of the password read from standard input, for
    /// `[[operators]] password_hash`.
    HashPassword {
        /// Read the password from standard input (the default; accepted for scripts that say so).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Inspect and act on the dead-letter parking lot.
    Dlq {
        #[command(subcommand)]
        command: cli::dlq::DlqCommand,
    },
    /// Write a new Ed25519 private key for `[evidence] signing_key` (PEM) and print its public key.
    Keygen {
        /// The private key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check the evidence log, export a message's evidence, check an exported bundle offline.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCommand,
    },
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    lienthong_bus::malloc::tune();
    let cli = Cli::parse();
    if let Command::HashPassword { .. } = cli.command {
        return cli::hash_password::hash_password();
    }
    let quiet_demo =
        matches!(cli.command, Command::Demo { .. }) && std::env::var_os("RUST_LOG").is_none();
    if !quiet_demo
        && !matches!(
            cli.command,
            Command::Check { .. }
                | Command::Test { .. }
                | Command::Keygen { .. }
                | Command::Audit { .. }
        )
    {
        init_logging(&cli.log_format);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        match cli.command {
            Command::Run { config } => cli::run::run(&config).await,
            Command::Check { config } => cli::run::check(&config),
            Command::Test { config, files } => cli::test::test(&config, &files).await,
            Command::Demo { config, samples } => cli::demo::demo(&config, samples.as_deref()).await,
            Command::Dlq { command } => cli::dlq::dlq(command).await,
            Command::Keygen { out } => cli::audit::keygen(&out),
            Command::Audit { command } => cli::audit::audit(command).await,
            Command::HashPassword { .. } => cli::hash_password::hash_password(),
        }
    })
}
