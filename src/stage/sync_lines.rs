//! Line files of the sync record (a range's digests, its tombstones) as streams: written line
//! by line and published whole, read back in Qdrant's id order a window at a time, so a sync
//! pass holds one window of a range in memory, not the range.

use super::Stage;
use super::fsutil::{sync_dir, tmp_path};
use super::manifest::stage_err;
use crate::error::{Error, Result};
use crate::model::PointId;
use sha2::Digest;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file of the stage's sync record: its name, sha256 and size.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct FileRef {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A file of the sync record written a line at a time: a temp name until [`SyncLines::finish`]
/// makes it durable and (on object storage) uploads it; nothing is recorded before that.
pub struct SyncLines<'a> {
    stage: &'a Stage,
    rel: String,
    tmp: PathBuf,
    out: BufWriter<std::fs::File>,
    sha: sha2::Sha256,
    bytes: u64,
    lines: u64,
}

impl<'a> SyncLines<'a> {
    /// Starts the file `rel` (a `layout::sync_*` name).
    pub fn create(stage: &'a Stage, rel: &str) -> Result<SyncLines<'a>> {
        stage.parent_of(rel)?;
        let tmp = tmp_path(&stage.file(rel));
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(SyncLines {
            stage,
            rel: rel.to_string(),
            tmp,
            out: BufWriter::with_capacity(1 << 16, f),
            sha: sha2::Sha256::new(),
            bytes: 0,
            lines: 0,
        })
    }

    /// Appends one line (`text` without its newline).
    pub fn line(&mut self, text: &str) -> Result<()> {
        for part in [text.as_bytes(), b"\n"] {
            self.out
                .write_all(part)
                .map_err(|e| Error::io(&self.tmp, e))?;
            self.sha.update(part);
            self.bytes += part.len() as u64;
        }
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Puts the file in place (fsynced, renamed, uploaded) and names it; with no line and
    /// `keep_empty` false, writes nothing and returns `None`.
    pub fn finish(self, keep_empty: bool) -> Result<Option<FileRef>> {
        if self.lines == 0 && !keep_empty {
            drop(self.out);
            let _ = std::fs::remove_file(&self.tmp);
            return Ok(None);
        }
        let f = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        let path = self.stage.file(&self.rel);
        std::fs::rename(&self.tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        let sha256 = hex::encode(self.sha.finalize());
        self.stage.publish(&self.rel, &sha256)?;
        Ok(Some(FileRef {
            file: self.rel,
            sha256,
            bytes: self.bytes,
        }))
    }
}

/// One line of a digests file: `id<TAB>digest` (16 hex digits).
pub fn digest_line(id: &str, digest: u64) -> String {
    format!("{id}\t{digest:016x}")
}

/// Reads a line written by [`digest_line`].
fn parse_digest_line(line: &str) -> Option<(PointId, String, u64)> {
    let (id, d) = line.rsplit_once('\t')?;
    let point = PointId::from_key_string(id)?;
    Some((point, id.to_string(), u64::from_str_radix(d, 16).ok()?))
}

/// A range's digests (id → digest of the row the target holds) in Qdrant's id order, read a
/// window at a time.
pub struct DigestStream {
    lines: Box<dyn Iterator<Item = std::io::Result<String>>>,
    /// Entries handed back by [`DigestStream::give_back`], read before the file's next line.
    back: VecDeque<(PointId, String, u64)>,
    /// Shown in errors.
    name: String,
    dir: PathBuf,
}

impl DigestStream {
    /// Opens a digests file. A file not in id order (written by q2z before digests were
    /// streamed) is read whole and sorted.
    pub fn open(path: &Path, name: &str, stage_dir: &Path) -> Result<DigestStream> {
        let ordered = Self::is_ordered(path, name, stage_dir)?;
        Self::open_known(path, name, stage_dir, ordered)
    }

    /// Whether a digests file is in id order (every line parsed: a damaged one is an error).
    pub fn is_ordered(path: &Path, name: &str, stage_dir: &Path) -> Result<bool> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut last: Option<PointId> = None;
        for line in BufReader::with_capacity(1 << 16, f).lines() {
            let line = line.map_err(|e| Error::io(path, e))?;
            let (id, _, _) = parse_digest_line(&line)
                .ok_or_else(|| stage_err(stage_dir, format!("{name} is damaged")))?;
            if last.as_ref().is_some_and(|l| l >= &id) {
                return Ok(false);
            }
            last = Some(id);
        }
        Ok(true)
    }

    /// Opens a digests file whose order is known (see [`Self::is_ordered`]): read as it is when
    /// ordered, else read whole and sorted.
    pub fn open_known(
        path: &Path,
        name: &str,
        stage_dir: &Path,
        ordered: bool,
    ) -> Result<DigestStream> {
        let reader = || -> Result<_> {
            let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            Ok(BufReader::with_capacity(1 << 16, f).lines())
        };
        let damaged = || stage_err(stage_dir, format!("{name} is damaged"));
        let lines: Box<dyn Iterator<Item = std::io::Result<String>>> = if ordered {
            Box::new(reader()?)
        } else {
            let mut all = Vec::new();
            for line in reader()? {
                let line = line.map_err(|e| Error::io(path, e))?;
                all.push(parse_digest_line(&line).ok_or_else(damaged)?);
            }
            all.sort_by(|a, b| a.0.cmp(&b.0));
            Box::new(all.into_iter().map(|(_, id, d)| Ok(digest_line(&id, d))))
        };
        Ok(DigestStream {
            lines,
            back: VecDeque::new(),
            name: name.to_string(),
            dir: stage_dir.to_path_buf(),
        })
    }

    fn next_entry(&mut self) -> Result<Option<(PointId, String, u64)>> {
        if let Some(e) = self.back.pop_front() {
            return Ok(Some(e));
        }
        match self.lines.next() {
            None => Ok(None),
            Some(line) => {
                let line = line.map_err(|e| Error::Other(format!("{}: {e}", self.name)))?;
                parse_digest_line(&line)
                    .map(Some)
                    .ok_or_else(|| stage_err(&self.dir, format!("{} is damaged", self.name)))
            }
        }
    }

    /// Moves up to `n` entries into `into` (their ids, in order, into `order`); returns the
    /// id of the next entry (the window's end on the target's side), `None` at the end.
    pub fn take_window(
        &mut self,
        n: usize,
        into: &mut HashMap<String, u64>,
        order: &mut Vec<(PointId, String)>,
    ) -> Result<Option<PointId>> {
        while order.len() < n {
            match self.next_entry()? {
                Some((p, k, d)) => {
                    into.insert(k.clone(), d);
                    order.push((p, k));
                }
                None => return Ok(None),
            }
        }
        let next = self.next_entry()?;
        Ok(next.map(|e| {
            let id = e.0.clone();
            self.back.push_front(e);
            id
        }))
    }

    /// Hands back the entries of `order` at or after `from` that `window` still holds (the
    /// window ended before them); they are read again first.
    pub fn give_back(
        &mut self,
        from: &PointId,
        window: &mut HashMap<String, u64>,
        order: &[(PointId, String)],
    ) {
        for (p, k) in order.iter().rev().take_while(|(p, _)| p >= from) {
            if let Some(d) = window.remove(k) {
                self.back.push_front((p.clone(), k.clone(), d));
            }
        }
    }

    /// Reads on through the entries at or before `hi`, putting into `into` the ids of those at
    /// or after `lo` (the ones before are passed over); the first entry after `hi` stays next.
    pub fn take_through(
        &mut self,
        lo: Option<&PointId>,
        hi: &PointId,
        into: &mut HashSet<String>,
    ) -> Result<()> {
        while let Some(e) = self.next_entry()? {
            if &e.0 > hi {
                self.back.push_front(e);
                break;
            }
            if lo.is_none_or(|l| &e.0 >= l) {
                into.insert(e.1);
            }
        }
        Ok(())
    }

    /// Writes the entries left, in order, as digest lines to `file`.
    pub fn write_all(&mut self, file: &std::fs::File, path: &Path) -> Result<()> {
        let mut out = std::io::BufWriter::new(file);
        while let Some((_, id, d)) = self.next_entry()? {
            writeln!(out, "{}", digest_line(&id, d)).map_err(|e| Error::io(path, e))?;
        }
        std::io::Write::flush(&mut out).map_err(|e| Error::io(path, e))
    }

    /// Counts the entries left.
    pub fn count(mut self) -> Result<u64> {
        let mut n = 0;
        while self.next_entry()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::DigestStream;
    use crate::model::PointId;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn take_through_reads_up_to_its_bound_and_keeps_only_ids_from_the_window_start() {
        let f = file(&[
            "1\t0000000000000001",
            "3\t0000000000000003",
            "5\t0000000000000005",
            "7\t0000000000000007",
        ]);
        let mut s = DigestStream::open(f.path(), "t", f.path().parent().unwrap()).unwrap();
        let mut ids = HashSet::new();
        let (lo, hi) = (PointId::Num(2), PointId::Num(5));
        s.take_through(Some(&lo), &hi, &mut ids).unwrap();
        let mut got: Vec<_> = ids.iter().cloned().collect();
        got.sort();
        assert_eq!(got, ["3", "5"], "1 is before the window, 7 after its bound");
        ids.clear();
        s.take_through(None, &PointId::Num(6), &mut ids).unwrap();
        assert!(ids.is_empty(), "7 stays next: {ids:?}");
        s.take_through(None, &PointId::Num(9), &mut ids).unwrap();
        assert_eq!(ids, HashSet::from(["7".to_string()]));
    }

    fn file(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, (lines.join("\n") + "\n").as_bytes()).unwrap();
        f
    }

    #[test]
    fn windows_come_in_id_order_and_given_back_entries_come_first() {
        // Sorted as strings ("10" < "9"), as files of earlier q2z were: read in id order.
        let f = file(&[
            "10\t000000000000000a",
            "2\t0000000000000002",
            "9\t0000000000000009",
            "00000000-0000-0000-0000-000000000001\t0000000000000001",
        ]);
        let mut s = DigestStream::open(f.path(), "d", f.path()).unwrap();
        let (mut w, mut order) = (HashMap::new(), Vec::new());
        let next = s.take_window(2, &mut w, &mut order).unwrap();
        assert_eq!(
            next,
            Some(PointId::Num(10)),
            "the window ends before the third id"
        );
        assert_eq!(w.len(), 2);
        assert_eq!(w["9"], 9);
        // The source's side ended the window at 9: 9 goes back, 2 stays.
        s.give_back(&PointId::Num(9), &mut w, &order);
        assert_eq!(w.keys().collect::<Vec<_>>(), ["2"]);
        let (mut w2, mut order2) = (HashMap::new(), Vec::new());
        assert_eq!(s.take_window(10, &mut w2, &mut order2).unwrap(), None);
        let ids: Vec<&str> = order2.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(ids, ["9", "10", "00000000-0000-0000-0000-000000000001"]);
    }

    #[test]
    fn a_damaged_line_is_an_error_naming_the_file() {
        let f = file(&["1\t01", "no tab here"]);
        let e = DigestStream::open(f.path(), "c/sync-0001-0000.digests", f.path())
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("sync-0001-0000.digests is damaged"),
            "{e}"
        );
    }
}
