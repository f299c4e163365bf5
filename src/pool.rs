//! The one worker pool: items handed out to `workers` threads in order; the first error (or
//! Ctrl-C) stops the handing out, the items already running finish, and that error is returned.

use crate::error::{Error, Result};
use std::sync::Mutex;

/// Runs `f` on every item, `workers` at a time (at least 1), until the first error.
pub fn run<T: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> Result<()> + Sync,
) -> Result<()> {
    run_until(items, workers, crate::interrupt::check, f)
}

/// [`run`], asking `stop` before each item (Ctrl-C in [`run`]; a test's own flag in tests).
fn run_until<T: Send>(
    items: Vec<T>,
    workers: usize,
    stop: impl Fn() -> Result<()> + Sync,
    f: impl Fn(T) -> Result<()> + Sync,
) -> Result<()> {
    let queue = Mutex::new(items.into_iter());
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    let stopped = || first_err.lock().map(|e| e.is_some()).unwrap_or(true);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    if stopped() {
                        return;
                    }
                    let Some(item) = queue.lock().ok().and_then(|mut q| q.next()) else {
                        return;
                    };
                    if let Err(e) = stop().and_then(|()| f(item)) {
                        first_err
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_runs_once() {
        let seen = Mutex::new(Vec::new());
        run((0..100).collect(), 4, |i| {
            seen.lock().unwrap().push(i);
            Ok(())
        })
        .unwrap();
        let mut v = seen.into_inner().unwrap();
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_the_rest() {
        let ran = AtomicUsize::new(0);
        let e = run((0..1000).collect(), 2, |i| {
            ran.fetch_add(1, Ordering::SeqCst);
            if i == 5 {
                return Err(Error::Other("item 5 failed".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("item 5"), "{e}");
        let n = ran.load(Ordering::SeqCst);
        assert!(n < 20, "{n} items ran after the error");
    }

    #[test]
    fn ctrl_c_stops_the_handing_out_and_the_running_items_finish() {
        // The process-wide Ctrl-C flag would stop every other test: a flag of this test's own.
        let pressed = std::sync::atomic::AtomicBool::new(false);
        let (started, finished) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let e = run_until(
            (0..1000).collect(),
            3,
            || match pressed.load(Ordering::SeqCst) {
                true => Err(Error::Interrupted),
                false => Ok(()),
            },
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 10 {
                    pressed.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{e}");
        let n = started.load(Ordering::SeqCst);
        assert!((11..=20).contains(&n), "{n} items started");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            n,
            "every started item finished"
        );
    }
}
