//! Predicting an export (`q2z plan`): a short calibration read by the export's own workers,
//! each from the start of its own id range, converted and written as the export writes (one
//! row group each, into a scratch stage), timed; the collection's size scales the figures.

use super::*;
use crate::stage::writer::ROW_GROUP_BYTES;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the calibration read measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Calibration {
    /// Points read and converted.
    pub points: u64,
    /// Wall-clock time of the read (all workers at once).
    pub seconds: f64,
    /// CPU time of the process meanwhile (user + system, every thread).
    pub cpu_seconds: f64,
    /// Parquet bytes written.
    pub staged_bytes: u64,
    /// The process's peak resident memory when it ended.
    pub peak_rss_bytes: u64,
    /// Workers that read at once.
    pub workers: usize,
    /// The files written (in the scratch directory, removed with the [`CalibrationRun`]).
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// A calibration and the scratch directory holding its files.
pub struct CalibrationRun {
    pub calibration: Calibration,
    _scratch: tempfile::TempDir,
}

/// Reads, converts and writes the first row group of each of `opts.workers` id ranges of
/// `src` (or the whole collection, when it is smaller), into a scratch stage under `scratch`.
pub fn calibrate(
    src: &SharedSource,
    mapping: &CollectionMapping,
    scan: &IdScan,
    opts: &ExportOptions,
    scratch: &Path,
) -> Result<CalibrationRun> {
    let dir = crate::scratch::work_dir(scratch, crate::scratch::PLAN_CALIBRATION)?;
    let stage = Stage::open(dir.path(), "plan")?;
    let name = &src.config().name;
    stage.collection_dir(name)?;
    let ranges = plan_ranges(scan, opts.workers.max(1));
    let one_group = ExportOptions {
        max_file_bytes: ROW_GROUP_BYTES as u64,
        ..opts.clone()
    };
    restart_peak(scratch);
    let progress = Progress::new("calibrate", 0, "points", true);
    let written = Mutex::new(Vec::new());
    let (cpu0, start) = (cpu_seconds(), Instant::now());
    crate::pool::run(ranges, opts.workers.max(1), |r| {
        let job = RangeJob::new(src, mapping, r.end.clone(), &one_group, &progress);
        let rel = layout::chunk_file(name, r.index, 0);
        let part = job.stage_chunk(&stage, &rel, r.start.clone())?;
        if let Some(w) = part.written {
            let mut all = written.lock().unwrap_or_else(|e| e.into_inner());
            all.push((stage.local_path(&rel), w, part.aside.len() as u64));
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let written = written.into_inner().unwrap_or_else(|e| e.into_inner());
    let calibration = Calibration {
        points: written.iter().map(|(_, w, aside)| w.rows + aside).sum(),
        seconds,
        cpu_seconds: cpu,
        staged_bytes: written.iter().map(|(_, w, _)| w.bytes).sum(),
        peak_rss_bytes: peak_rss_bytes(),
        workers: opts.workers.max(1),
        files: written.into_iter().map(|(p, _, _)| p).collect(),
    };
    drop(stage);
    Ok(CalibrationRun {
        calibration,
        _scratch: dir,
    })
}

/// What an export is predicted to take (one collection's, or a whole run's).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Forecast {
    /// Wall-clock seconds of the export.
    pub export_seconds: f64,
    /// Parquet bytes the stage will hold.
    pub stage_bytes: u64,
    /// Peak resident memory of the export process.
    pub peak_memory_bytes: u64,
    /// Upload time at the measured rate (with a bucket or a Zilliz volume to measure it on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_seconds: Option<f64>,
}

/// What `q2z plan` predicts for one collection's export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    pub calibration: Calibration,
    /// Points a second the export converts (the calibration's rate).
    pub points_per_second: f64,
    /// Process CPU per point, microseconds.
    pub cpu_us_per_point: f64,
    /// The id scan the export starts with (measured by the plan's own scan).
    pub id_scan_seconds: f64,
    /// The whole export of the collection (id scan + the points at the calibrated rate), its
    /// stage, memory and upload.
    #[serde(flatten)]
    pub forecast: Forecast,
    /// The measured upload rate, bytes a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_bytes_per_second: Option<f64>,
}

impl Estimate {
    /// Scales `c` to a collection of `points` points whose id scan took `id_scan_seconds`.
    pub fn new(c: Calibration, points: u64, id_scan_seconds: f64) -> Estimate {
        let per_point = |v: f64| v / c.points.max(1) as f64;
        let convert = if points <= c.points {
            c.seconds
        } else {
            points as f64 * per_point(c.seconds)
        };
        Estimate {
            points_per_second: c.points as f64 / c.seconds.max(1e-9),
            cpu_us_per_point: per_point(c.cpu_seconds) * 1e6,
            id_scan_seconds,
            forecast: Forecast {
                export_seconds: id_scan_seconds + convert,
                stage_bytes: (per_point(c.staged_bytes as f64) * points as f64).round() as u64,
                peak_memory_bytes: c.peak_rss_bytes,
                upload_seconds: None,
            },
            upload_bytes_per_second: None,
            calibration: c,
        }
    }

    /// Adds the upload time at `bytes_per_second`.
    pub fn with_upload_rate(mut self, bytes_per_second: f64) -> Estimate {
        self.upload_bytes_per_second = Some(bytes_per_second);
        self.forecast.upload_seconds =
            Some(self.forecast.stage_bytes as f64 / bytes_per_second.max(1.0));
        self
    }
}

/// The fewest `--part`s (at most `max_parts`) whose slowest part takes at most `deadline`
/// seconds, `part_seconds(n)` being the slowest part's time with `n` parts; `None` when no
/// number does (what every part does whole, such as a live collection's id scan, is already
/// over it).
pub fn parts_for_deadline(
    part_seconds: impl Fn(usize) -> f64,
    deadline: f64,
    max_parts: usize,
) -> Option<usize> {
    (1..=max_parts.max(1)).find(|&n| part_seconds(n) <= deadline)
}

/// The slowest part's share of `whole` seconds when `n` parts split `shards` whole shards
/// (`ceil(shards / n)` of them), or, with fewer shards than parts (or none: a live
/// collection), `fixed` seconds every part pays plus an equal share of the rest.
pub fn part_seconds(whole: f64, fixed: f64, shards: usize, n: usize) -> f64 {
    let n = n.max(1);
    if shards >= n {
        whole * shards.div_ceil(n) as f64 / shards as f64
    } else {
        fixed + (whole - fixed).max(0.0) / n as f64
    }
}

/// The process's resource use so far (`getrusage`).
fn usage() -> libc::rusage {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    }
}

/// The process's CPU time so far (user + system), seconds.
fn cpu_seconds() -> f64 {
    let u = usage();
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Starts the peak-memory measure afresh, so that it is the calibration's: the pages of files
/// under `scratch` mapped by the plan's own scans (a snapshot's unpacked data, which an export
/// gives back as its scroll moves on) are given back, and the kernel's high-water mark is
/// reset (Linux: `/proc/self/clear_refs`; elsewhere the process's whole peak stands).
fn restart_peak(scratch: &Path) {
    crate::source::mapped_pages::release_under(scratch, std::time::Duration::ZERO);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident memory since [`restart_peak`], bytes (`VmHWM`), or the process's
/// (`getrusage`; Linux gives KiB).
fn peak_rss_bytes() -> u64 {
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    hwm.unwrap_or_else(|| usage().ru_maxrss.max(0) as u64) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(points: u64, seconds: f64, bytes: u64) -> Calibration {
        Calibration {
            points,
            seconds,
            cpu_seconds: seconds * 1.5,
            staged_bytes: bytes,
            peak_rss_bytes: 100 << 20,
            workers: 4,
            files: Vec::new(),
        }
    }

    #[test]
    fn an_estimate_scales_the_calibration_to_the_collection() {
        let e = Estimate::new(cal(10_000, 0.5, 40_000_000), 1_000_000, 2.0);
        assert!((e.points_per_second - 20_000.0).abs() < 1e-6);
        assert!((e.forecast.export_seconds - 52.0).abs() < 1e-9);
        assert_eq!(e.forecast.stage_bytes, 4_000_000_000);
        assert!((e.cpu_us_per_point - 75.0).abs() < 1e-9);
        let e = e.with_upload_rate(100e6);
        assert!((e.forecast.upload_seconds.unwrap() - 40.0).abs() < 1e-9);
        // A collection the calibration read whole takes the calibration's time.
        let small = Estimate::new(cal(500, 0.2, 1000), 500, 0.1);
        assert!((small.forecast.export_seconds - 0.3).abs() < 1e-9);
    }

    #[test]
    fn parts_are_the_fewest_that_meet_the_deadline() {
        // A live collection: the id scan (10 s) on every part, the rest shared.
        let live = |n| part_seconds(110.0, 10.0, 0, n);
        assert_eq!(parts_for_deadline(live, 200.0, 64), Some(1));
        assert_eq!(parts_for_deadline(live, 60.0, 64), Some(2));
        assert_eq!(parts_for_deadline(live, 35.0, 64), Some(4));
        // The id scan alone is over the deadline: no number of parts helps.
        assert_eq!(parts_for_deadline(live, 9.0, 64), None);
        // Three shards: two parts leave one part two of them.
        let shards = |n| part_seconds(90.0, 9.0, 3, n);
        assert!((shards(2) - 60.0).abs() < 1e-9);
        assert_eq!(parts_for_deadline(shards, 45.0, 64), Some(3));
        // More parts than shards: every part opens them all, the ranges are shared.
        assert!((shards(6) - (9.0 + 81.0 / 6.0)).abs() < 1e-9);
    }
}
