//! Writes one chunk: a zstd Parquet file under a temp name, hashed while written,
//! fsynced and renamed into place only when complete.

use crate::error::{Error, Result};
use crate::stage::fsutil::{sync_dir, tmp_path};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Target size of a row group (Milvus's own writer aims at about 32 MB).
pub const ROW_GROUP_BYTES: usize = 32 << 20;

/// A `Write` that hashes and counts what passes through.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A finished chunk file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub bytes: u64,
    pub sha256: String,
    pub rows: u64,
}

/// The default zstd level of staged files (`export --zstd-level`).
pub const ZSTD_LEVEL: i32 = 3;

/// How a staged Parquet file is written.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// Estimated bytes of one row (sizes the row groups).
    pub row_bytes: usize,
    pub zstd_level: i32,
    /// zstd on the vector columns too.
    pub compress_vectors: bool,
}

impl ChunkOptions {
    /// Estimated staged bytes of one row of mapping `m` (vectors + payload).
    pub fn row_bytes(m: &crate::transform::mapping::CollectionMapping) -> usize {
        64 + m
            .vectors
            .iter()
            .map(|v| v.dim.unwrap_or(32) * 4)
            .sum::<usize>()
            + 512
    }

    /// The export's defaults for rows of mapping `m`.
    pub fn defaults_for(m: &crate::transform::mapping::CollectionMapping) -> ChunkOptions {
        ChunkOptions {
            row_bytes: Self::row_bytes(m),
            zstd_level: ZSTD_LEVEL,
            compress_vectors: false,
        }
    }
}

/// Parquet writer for one chunk.
pub struct ChunkWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<HashingWriter>,
    rows: u64,
}

impl ChunkWriter {
    /// Starts `path` (written as `.<name>.tmp` until [`ChunkWriter::finish`]).
    /// `row_bytes` is the estimated size of one row, used to size row groups; with
    /// `compress_vectors` false the vector columns are stored without compression.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        row_bytes: usize,
        zstd_level: i32,
        compress_vectors: bool,
    ) -> Result<ChunkWriter> {
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let rows_per_group = (ROW_GROUP_BYTES / row_bytes.max(1)).clamp(1_000, 1_000_000);
        let mut props = WriterProperties::builder();
        for f in schema.fields() {
            if let DataType::List(item) = f.data_type()
                && matches!(item.data_type(), DataType::Float32 | DataType::UInt8)
            {
                let leaf =
                    ColumnPath::new(vec![f.name().clone(), "list".into(), item.name().clone()]);
                // Min/max of a vector column's floats is read by nobody (Milvus's import
                // neither), and computing it was 2% of a snapshot export (issue 26).
                props = props.set_column_statistics_enabled(leaf.clone(), EnabledStatistics::None);
                if !compress_vectors {
                    // Dense vectors gain little from zstd (8% on the benchmark's data), and
                    // compressing them took a quarter of a snapshot export's time.
                    props = props.set_column_compression(leaf, Compression::UNCOMPRESSED);
                }
            }
        }
        let props = props
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(zstd_level).map_err(|e| Error::format("zstd level", e))?,
            ))
            // Vectors and payload JSON are nearly all distinct values: dictionary pages only
            // cost time, and page-level statistics on float lists are never read.
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(rows_per_group))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("q2z {}", env!("CARGO_PKG_VERSION")))
            .build();
        // No embedded Arrow schema: Milvus 2.3-2.5 read the Parquet types alone.
        let options = ArrowWriterOptions::new()
            .with_properties(props)
            .with_skip_arrow_metadata(true);
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new_with_options(sink, schema, options)
            .map_err(|e| Error::format(tmp.display().to_string(), e))?;
        Ok(ChunkWriter {
            path: path.to_path_buf(),
            tmp,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| Error::format(self.tmp.display().to_string(), e))
    }

    /// Bytes written so far plus what is buffered in the open row group.
    pub fn approx_bytes(&self) -> u64 {
        self.writer.inner().bytes + self.writer.in_progress_size() as u64
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Drops the file being written.
    pub fn abort(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = std::fs::remove_file(tmp);
    }

    /// Closes the file, fsyncs it, renames it into place and fsyncs the directory.
    pub fn finish(self) -> Result<WrittenFile> {
        let tmp = self.tmp.clone();
        let mut sink = self
            .writer
            .into_inner()
            .map_err(|e| Error::format(tmp.display().to_string(), e))?;
        sink.flush().map_err(|e| Error::io(&tmp, e))?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(WrittenFile {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            rows: self.rows,
        })
    }
}

/// sha256 of a file, streamed 1 MiB at a time (`io::copy`'s own 8 KiB reads were 43,000 read
/// calls for a 346 MB snapshot; it drains a `BufReader`'s buffer instead).
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, f), &mut h)
        .map_err(|e| Error::io(path, e))?;
    Ok((hex::encode(h.finalize()), n))
}
