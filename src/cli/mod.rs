//! Command-line interface: argument parsing, output and exit codes; the work is done in the
//! library.

mod args;
mod commands;
mod output;
mod plan_estimate;

use clap::Parser;
use std::process::ExitCode;

pub use args::Cli;

/// Exit code for a verification mismatch.
pub const EXIT_MISMATCH: u8 = 3;
/// Exit code for an interrupted run.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;

/// A usage error found after parsing (a flag missing for what was asked): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// A usage error to return from a command.
pub(crate) fn usage(message: &str) -> anyhow::Error {
    UsageError(message.to_string()).into()
}

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // A file-size limit (ulimit -f) then makes a write fail with EFBIG, reported like a full
    // disk, instead of killing the process with SIGXFSZ in the middle of a file.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    crate::interrupt::install();
    let recorded = cli
        .command
        .recorded_stage()
        .map(|(name, stage)| (name, stage.clone()));
    let started_ms = crate::stage::evidence::now_ms();
    let (code, error) = match commands::run(cli) {
        Ok(code) => (code, None),
        Err(e) => {
            let code = match e.downcast_ref::<crate::error::Error>() {
                Some(crate::error::Error::Mismatch(_)) => EXIT_MISMATCH,
                Some(crate::error::Error::Interrupted) => EXIT_INTERRUPTED,
                _ if e.downcast_ref::<UsageError>().is_some() => EXIT_USAGE,
                _ => 1,
            };
            let text = crate::http::strip_credentials(&format!("{e:#}"));
            eprintln!("error: {text}");
            (code, Some(text))
        }
    };
    if let Some((name, stage)) = recorded {
        commands::record_run(name, &stage, started_ms, code, error);
    }
    ExitCode::from(code)
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

#[cfg(test)]
mod tests {
    use super::Cli;

    #[test]
    fn completions_cover_every_command() {
        use clap::CommandFactory;
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "q2z",
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        for c in [
            "plan",
            "export",
            "import",
            "migrate",
            "verify",
            "status",
            "--allow-missing-shards",
        ] {
            assert!(text.contains(c), "{c} missing from the bash completions");
        }
    }

    /// Every flag of every command has a help text, and within a command no two flags start
    /// their help with the same line (a copied or swapped doc comment).
    #[test]
    fn every_flag_has_its_own_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
            let mut firsts: std::collections::HashMap<String, String> = Default::default();
            for a in cmd.get_arguments() {
                let name = a.get_id().to_string();
                if name == "help" || name == "version" {
                    continue;
                }
                let help = a
                    .get_long_help()
                    .or(a.get_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                let first = help.lines().next().unwrap_or("").trim().to_string();
                if first.is_empty() {
                    problems.push(format!("{path} --{name}: no help"));
                } else if let Some(other) = firsts.insert(first.clone(), name.clone()) {
                    problems.push(format!("{path} --{name} and --{other} share \"{first}\""));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), problems);
            }
        }
        let mut problems = Vec::new();
        walk(&Cli::command(), "q2z", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// One man page per command, as q2z.1's SEE ALSO names them.
    #[test]
    fn man_pages_cover_every_subcommand() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
        for page in [
            "q2z.1",
            "q2z-export.1",
            "q2z-sync.1",
            "q2z-verify.1",
            "q2z-stage-merge.1",
        ] {
            assert!(dir.path().join(page).is_file(), "{page} missing");
        }
    }

    #[test]
    fn version_names_the_commit_and_build_date() {
        use clap::CommandFactory;
        let v = Cli::command().render_version();
        assert!(
            v.starts_with(&format!("q2z {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
        assert!(v.contains(", built "), "{v}");
    }
}
