//! The `q2z` command line; all work happens in the library.

/// mimalloc rather than the system allocator (musl's made the static build 2.5x slower).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    q2z::cli::main()
}
