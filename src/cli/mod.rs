//! Command-line interface: argument parsing, output and exit codes (design §2).

mod args;
mod commands;

use clap::Parser;
use std::process::ExitCode;

pub use args::Cli;

/// Exit code for a verification mismatch.
pub const EXIT_MISMATCH: u8 = 3;
/// Exit code for an interrupted run.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    crate::interrupt::install();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match e.downcast_ref::<crate::error::Error>() {
                Some(crate::error::Error::Mismatch(_)) => EXIT_MISMATCH,
                Some(crate::error::Error::Interrupted) => EXIT_INTERRUPTED,
                _ => 1,
            };
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("Q2Z_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("q2z={default},error")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
