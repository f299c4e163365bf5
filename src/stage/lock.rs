//! One run per stage directory: an OS file lock (`flock`/`LockFileEx` through `std::fs::File`)
//! held for the whole run. The lock ends with the process, so a run killed with -9 leaves
//! nothing that blocks the next one; the file keeps the owner's pid and command for messages.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while a run owns a stage directory; released on drop or when the process ends.
#[derive(Debug)]
pub struct StageLock {
    _file: File,
}

/// Name of the lock file inside a stage directory.
pub const LOCK: &str = ".q2z.lock";

impl StageLock {
    /// Takes the lock, or says which run holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<StageLock> {
        let path = dir.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                return Err(Error::Stage {
                    path: dir.to_path_buf(),
                    message: format!(
                        "another q2z run is using it ({}); wait for it to finish or stop it, then run this command again",
                        if owner.is_empty() {
                            "pid unknown"
                        } else {
                            owner
                        }
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Informational only: the OS lock is what excludes.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "pid {} ({what})", std::process::id());
        let _ = file.flush();
        Ok(StageLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held_and_taken_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = StageLock::acquire(dir.path(), "export").unwrap();
        let e = StageLock::acquire(dir.path(), "import")
            .unwrap_err()
            .to_string();
        assert!(e.contains("another q2z run is using it"), "{e}");
        assert!(
            e.contains(&format!("pid {} (export)", std::process::id())),
            "{e}"
        );
        drop(first);
        let again = StageLock::acquire(dir.path(), "import");
        assert!(again.is_ok());
    }
}
