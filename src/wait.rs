//! The one way q2z waits for a server to get somewhere (a collection loaded, a job ended, rows
//! visible, a lost job-creation answer reconciled): look every `every` until `look` answers
//! `Some`, Ctrl-C checked between looks, for at most `limit` (then `None`: the caller says what
//! to do). Errors of a look end the wait.

use crate::error::Result;
use std::time::{Duration, Instant};

/// Looks until `look` answers `Some` or `limit` has passed.
pub fn until<T>(
    every: Duration,
    limit: Duration,
    mut look: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let start = Instant::now();
    loop {
        if let Some(v) = look()? {
            return Ok(Some(v));
        }
        if start.elapsed() >= limit {
            return Ok(None);
        }
        crate::interrupt::check()?;
        std::thread::sleep(every.min(limit.saturating_sub(start.elapsed())));
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn it_answers_what_the_look_found_gives_up_at_the_limit_and_passes_errors_on() {
        let mut n = 0;
        let got = until(Duration::from_millis(1), Duration::from_secs(5), || {
            n += 1;
            Ok((n == 3).then_some(n))
        });
        assert_eq!(got.unwrap(), Some(3));
        let t = Instant::now();
        let none: Option<()> = until(Duration::from_millis(5), Duration::from_millis(30), || {
            Ok(None)
        })
        .unwrap();
        assert!(none.is_none() && t.elapsed() < Duration::from_secs(2));
        let e = until::<()>(Duration::from_millis(1), Duration::from_secs(5), || {
            Err(Error::Other("server gone".into()))
        });
        assert!(e.unwrap_err().to_string().contains("server gone"));
    }
}
