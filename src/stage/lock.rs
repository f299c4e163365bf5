//! One run per stage directory: a lock file holding the owner's pid and command.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Held while a run owns a stage directory; removed on drop.
#[derive(Debug)]
pub struct StageLock {
    path: PathBuf,
}

const LOCK: &str = ".q2z.lock";

impl StageLock {
    /// Takes the lock, or says which process holds it. A lock left by a dead process is taken over.
    pub fn acquire(dir: &Path, what: &str) -> Result<StageLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = writeln!(f, "{} {}", std::process::id(), what);
                    return Ok(StageLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid: Option<u32> =
                        text.split_whitespace().next().and_then(|p| p.parse().ok());
                    let alive = pid.is_some_and(|p| {
                        Path::new(&format!("/proc/{p}")).exists() && p != std::process::id()
                    });
                    if alive {
                        return Err(Error::Stage {
                            path: dir.to_path_buf(),
                            message: format!(
                                "another q2z run holds it (pid {}: {}); wait for it to finish or stop it",
                                pid.unwrap_or(0),
                                text.split_once(' ').map(|x| x.1.trim()).unwrap_or("")
                            ),
                        });
                    }
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Stage {
            path: dir.to_path_buf(),
            message: "could not take the lock file".into(),
        })
    }
}

impl Drop for StageLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
