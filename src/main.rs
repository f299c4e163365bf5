//! The `q2z` command line; all work happens in the library.

/// The static (musl) build allocates with mimalloc: musl's malloc made it 2.6x slower than the
/// glibc build (benches/allocator.sh). glibc builds keep glibc's malloc.
#[cfg(all(feature = "mimalloc", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    q2z::cli::main()
}
