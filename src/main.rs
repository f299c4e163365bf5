//! The `q2z` command line; all work happens in the library.

/// The static (musl) build allocates with mimalloc: musl's malloc made it 2.6x slower than the
/// glibc build (benches/allocator.sh). glibc builds keep glibc's malloc.
#[cfg(all(feature = "mimalloc", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "mimalloc", target_env = "musl"))]
    slow_mimalloc_purge();
    q2z::cli::main()
}

/// mimalloc gives freed memory back to the kernel a second after it is freed, and an export frees
/// and reuses its page buffers all the time: half the static build's runs paid for zeroing the
/// same pages again (sys time 0.4 → 1.6 s, 100k × 768-d from a snapshot). Ten seconds keeps them
/// for reuse (median wall 1.73 → 1.52 s, glibc 1.49 s; peak RSS +40 MB; docs/benchmarks.md). A
/// `MIMALLOC_PURGE_DELAY` in the environment wins. The option's number is v3's
/// (`mi_option_purge_delay` in mimalloc.h; the Rust binding does not name it): set only if that
/// option holds v3's default for it, 1000 ms, so a renumbered release changes nothing.
#[cfg(all(feature = "mimalloc", target_env = "musl"))]
fn slow_mimalloc_purge() {
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: plain reads and writes of mimalloc's option table, before any thread starts.
        unsafe {
            if libmimalloc_sys::mi_option_get(PURGE_DELAY) == 1000 {
                libmimalloc_sys::mi_option_set(PURGE_DELAY, 10_000);
            }
        }
    }
}
