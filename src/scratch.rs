//! The directories a run makes for itself under its scratch directory (snapshot unpacks,
//! snapshot downloads, `plan` calibrations). Each is named `<kind><pid>-<random>`, so the next
//! run can remove those a killed run (`kill -9`, a crash, a lost machine) left behind.

use crate::error::{Error, Result};
use std::path::Path;

/// Unpacked snapshot files of an export.
pub const SNAPSHOT_UNPACK: &str = "q2z-snap-";
/// A snapshot downloaded from the server (`--via-snapshot`).
pub const SNAPSHOT_DOWNLOAD: &str = "q2z-download-";
/// The scratch stage of a `plan` calibration.
pub const PLAN_CALIBRATION: &str = "q2z-plan-";

const KINDS: [&str; 3] = [SNAPSHOT_UNPACK, SNAPSHOT_DOWNLOAD, PLAN_CALIBRATION];

/// A new directory of `kind` under `scratch` (made if missing), removed when dropped; the
/// directories of every kind left in `scratch` by runs whose process is gone are removed first.
pub fn work_dir(scratch: &Path, kind: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    remove_stale(scratch);
    tempfile::Builder::new()
        .prefix(&format!("{kind}{}-", std::process::id()))
        .tempdir_in(scratch)
        .map_err(|e| Error::io(scratch, e))
}

/// Removes the directories left in `scratch` by runs that were killed (their process is gone);
/// those of live processes are left alone.
pub fn remove_stale(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = KINDS
            .iter()
            .find_map(|k| name.strip_prefix(k))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            tracing::info!(dir = %e.path().display(), "removing scratch data left by an interrupted run");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether process `pid` runs on this host (where that cannot be told: yes).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 sends nothing; it only checks the process exists.
        let rc = unsafe { libc::kill(p, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead process's directories of every kind go; a live one's, this run's and other
    /// names stay.
    #[test]
    fn only_the_directories_of_dead_runs_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let dead = i32::MAX as u32 - 1; // above Linux's pid_max
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let names = [
            (format!("{SNAPSHOT_UNPACK}{dead}-a"), false),
            (format!("{SNAPSHOT_DOWNLOAD}{dead}-b"), false),
            (format!("{PLAN_CALIBRATION}{dead}-c"), false),
            (format!("{PLAN_CALIBRATION}{}-d", child.id()), true),
            (format!("{SNAPSHOT_UNPACK}{}-e", std::process::id()), true),
            ("q2z-other-1-f".to_string(), true),
            ("mine".to_string(), true),
        ];
        for (n, _) in &names {
            std::fs::create_dir_all(d.path().join(n).join("inner")).unwrap();
        }
        let fresh = work_dir(d.path(), PLAN_CALIBRATION).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        for (n, kept) in &names {
            assert_eq!(d.path().join(n).exists(), *kept, "{n}");
        }
        let own = fresh
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            own.starts_with(&format!("{PLAN_CALIBRATION}{}-", std::process::id())),
            "{own}"
        );
    }
}
