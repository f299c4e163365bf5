//! Progress reporting: indicatif bars on a terminal, plain log lines otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A progress counter for one long task (points exported, rows imported...).
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    last_line: Mutex<Instant>,
    done: std::sync::atomic::AtomicU64,
    start: Instant,
}

impl Progress {
    /// Starts a counter of `total` units named `unit` for `label`.
    pub fn new(label: &str, total: u64, unit: &str, quiet: bool) -> Progress {
        let bar = if !quiet && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style.progress_chars("=> "));
            b.set_prefix(label.to_string());
            Some(b)
        } else {
            None
        };
        Progress {
            bar,
            label: label.to_string(),
            total,
            last_line: Mutex::new(Instant::now()),
            done: 0.into(),
            start: Instant::now(),
        }
    }

    /// Adds `n` finished units.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        if let Some(b) = &self.bar {
            b.inc(n);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
            tracing::info!("{}: {done}/{} ({:.0}/s)", self.label, self.total, rate);
        }
    }

    /// Sets the absolute position (e.g. from an import job's progress).
    pub fn set(&self, pos: u64) {
        let prev = self.done.swap(pos, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_position(pos);
        } else if pos != prev {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= Duration::from_secs(5) {
                *last = Instant::now();
                tracing::info!("{}: {pos}/{}", self.label, self.total);
            }
        }
    }

    /// Ends the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }

    /// Seconds since start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}
