//! What `q2z plan` predicts for the whole run (the collections' estimates added up, the
//! source's opening, the parts a deadline needs), and how estimates are printed.

use crate::export::{Estimate, Forecast, part_seconds, parts_for_deadline};
use serde::Serialize;

/// At most this many parts are suggested.
const MAX_PARTS: usize = 1024;

/// The whole run's estimate.
#[derive(Debug, Clone, Serialize)]
pub struct RunEstimate {
    /// Opening the sources (unpacking and loading snapshots; a live server's answers).
    pub open_seconds: f64,
    /// Opening plus every collection's export on one machine, all their stages, the highest
    /// peak, every upload (when measured).
    #[serde(flatten)]
    pub total: Forecast,
    /// With `--deadline`: the deadline, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<f64>,
    /// With `--deadline`: the fewest `export --part I/N` that meet it (`None`: none does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// With `--deadline`: the slowest part's time with that many parts (or with the most
    /// parts tried, when none meets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_seconds: Option<f64>,
}

impl RunEstimate {
    /// Adds up the estimates of the collections in `plans`, each given as (its points, its
    /// shards in snapshot files — none for a live one — and its estimate); `open_seconds` the
    /// sources' opening took.
    pub fn new(
        plans: &[(u64, usize, Option<&Estimate>)],
        open_seconds: f64,
        deadline: Option<std::time::Duration>,
    ) -> RunEstimate {
        let est: Vec<&Estimate> = plans.iter().filter_map(|p| p.2).collect();
        let points: u64 = plans.iter().map(|p| p.0).sum();
        // A collection's share of the opening, by its points (a snapshot's shards load in
        // proportion to what they hold).
        let open_share = |p: u64| open_seconds * p as f64 / points.max(1) as f64;
        let slowest_part = |n: usize| -> f64 {
            plans
                .iter()
                .map(|&(p, shards, e)| {
                    let scan = e.map_or(0.0, |e| e.id_scan_seconds);
                    let whole = open_share(p) + e.map_or(0.0, |e| e.forecast.export_seconds);
                    part_seconds(whole, open_share(p) + scan, shards, n)
                })
                .sum()
        };
        let uploads: Option<f64> = est.iter().map(|e| e.forecast.upload_seconds).sum();
        let deadline_seconds = deadline.map(|d| d.as_secs_f64());
        let parts = deadline_seconds.and_then(|d| parts_for_deadline(slowest_part, d, MAX_PARTS));
        RunEstimate {
            open_seconds,
            total: Forecast {
                export_seconds: open_seconds
                    + est.iter().map(|e| e.forecast.export_seconds).sum::<f64>(),
                stage_bytes: est.iter().map(|e| e.forecast.stage_bytes).sum(),
                peak_memory_bytes: est
                    .iter()
                    .map(|e| e.forecast.peak_memory_bytes)
                    .max()
                    .unwrap_or(0),
                upload_seconds: if est.is_empty() { None } else { uploads },
            },
            deadline_seconds,
            parts,
            part_seconds: deadline_seconds.map(|_| slowest_part(parts.unwrap_or(MAX_PARTS))),
        }
    }
}

/// The estimate lines of one collection's plan.
pub fn print_estimate(e: &Estimate) {
    let c = &e.calibration;
    println!(
        "  estimate (calibrated on {} points read by {} workers in {:.2} s): export {} at {:.0} points/s ({:.1} µs CPU a point; id scan {}), stage {}, peak memory {}{}",
        c.points,
        c.workers,
        c.seconds,
        duration(e.forecast.export_seconds),
        e.points_per_second,
        e.cpu_us_per_point,
        duration(e.id_scan_seconds),
        bytes(e.forecast.stage_bytes),
        bytes(e.forecast.peak_memory_bytes),
        match (e.forecast.upload_seconds, e.upload_bytes_per_second) {
            (Some(s), Some(r)) => format!(", upload {} at {}/s", duration(s), bytes(r as u64)),
            _ => String::new(),
        }
    );
}

/// The whole run's lines.
pub fn print_run_estimate(r: &RunEstimate) {
    println!(
        "whole run on this machine: export {} (sources opened in {}), stage {}, peak memory {}{}",
        duration(r.total.export_seconds),
        duration(r.open_seconds),
        bytes(r.total.stage_bytes),
        bytes(r.total.peak_memory_bytes),
        match r.total.upload_seconds {
            Some(s) => format!(", upload {}", duration(s)),
            None => ", upload not measured (give --s3-bucket or --zilliz-volume to measure it)"
                .to_string(),
        }
    );
    let (Some(d), Some(slowest)) = (r.deadline_seconds, r.part_seconds) else {
        return;
    };
    match r.parts {
        Some(1) => println!(
            "deadline {}: one machine is enough (export {})",
            duration(d),
            duration(slowest)
        ),
        Some(n) => println!(
            "deadline {}: export on {n} machines, `q2z export --part I/{n}` with I = 0..{} (the slowest part ~{}), then `q2z stage merge` the part stages",
            duration(d),
            n - 1,
            duration(slowest)
        ),
        None => println!(
            "deadline {}: not reachable by splitting the export (even {MAX_PARTS} parts take ~{} each: every part reads the whole id list of a live collection); give more time, or export from snapshots (whole shards split across machines)",
            duration(d),
            duration(slowest)
        ),
    }
}

/// `1h05m`, `3m12s`, `4.2 s`.
fn duration(s: f64) -> String {
    let whole = s.round() as u64;
    match whole {
        _ if s < 60.0 => format!("{s:.1} s"),
        w if w < 3600 => format!("{}m{:02}s", w / 60, w % 60),
        w => format!("{}h{:02}m", w / 3600, (w % 3600) / 60),
    }
}

/// `3.9 GiB`, `310 MiB`.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_people_write_them() {
        assert_eq!(duration(4.24), "4.2 s");
        assert_eq!(duration(192.0), "3m12s");
        assert_eq!(duration(3900.0), "1h05m");
        assert_eq!(bytes(310 << 20), "310 MiB");
        assert_eq!(bytes(4_187_593_113), "3.9 GiB");
        assert_eq!(bytes(512), "512 B");
    }
}
