//! The `q2z` command line; all work happens in the library.

fn main() -> std::process::ExitCode {
    q2z::cli::main()
}
