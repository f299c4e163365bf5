//! `qdrant-standin`: the Qdrant REST endpoints q2z uses, served from real Qdrant shards
//! (qdrant-edge) with JSON shaped as a real Qdrant 1.19 answers, plus switchable faults.
//!
//! `qdrant-standin serve --snapshot-dir DIR` serves every `*.snapshot` file of DIR;
//! `qdrant-standin generate --out DIR` writes the generated fixture collections as snapshots.

mod faults;
mod fixtures;
mod grpc;
mod routes;
mod state;
mod store;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Qdrant REST stand-in backed by qdrant-edge")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve collections over Qdrant's REST API.
    Serve {
        /// Address to listen on (loopback only by default; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Serve every *.snapshot file in these directories.
        #[arg(long)]
        snapshot_dir: Vec<PathBuf>,
        /// Serve these snapshot files.
        #[arg(long)]
        snapshot: Vec<PathBuf>,
        /// Working directory (unpacked shards, created snapshots).
        #[arg(long)]
        data: PathBuf,
        /// Require this API key (`api-key` header or `Authorization: Bearer`).
        #[arg(long, env = "QDRANT_STANDIN_API_KEY")]
        api_key: Option<String>,
        /// Write the bound address to this file once listening.
        #[arg(long)]
        addr_file: Option<PathBuf>,
        /// Address of the gRPC API (Qdrant's 6334; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        grpc_listen: String,
        /// Write the gRPC API's bound address to this file once listening.
        #[arg(long)]
        grpc_addr_file: Option<PathBuf>,
    },
    /// Generate the fixture collections as collection snapshot files.
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Also generate a bulk collection with this many points (benchmarks).
        #[arg(long, default_value_t = 0)]
        bulk_points: usize,
        /// Dimension of the bulk collection's vector.
        #[arg(long, default_value_t = 768)]
        bulk_dim: usize,
        /// Shards of the bulk collection.
        #[arg(long, default_value_t = 1)]
        bulk_shards: usize,
        /// Bulk payloads without the ~800-byte text field (~300 bytes each).
        #[arg(long)]
        bulk_small_payloads: bool,
        /// Run Qdrant's optimizers every this many points per shard, as a server does, so the
        /// bulk shards hold optimized segments (HNSW off); 0: one appendable segment per shard.
        #[arg(long, default_value_t = 0)]
        bulk_optimize_every: usize,
        /// Optimized bulk segments keep their id mappings in qdrant-edge's disk-resident format
        /// (not a format Qdrant 1.19 writes; for memory benchmarks).
        #[arg(long)]
        bulk_id_tracker_on_disk: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            listen,
            snapshot_dir,
            snapshot,
            data,
            api_key,
            addr_file,
            grpc_listen,
            grpc_addr_file,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(routes::serve(routes::ServeConfig {
                listen,
                snapshot_dirs: snapshot_dir,
                snapshots: snapshot,
                data,
                api_key,
                addr_file,
                grpc_listen,
                grpc_addr_file,
            }))
        }
        Cmd::Generate {
            out,
            bulk_points,
            bulk_dim,
            bulk_shards,
            bulk_small_payloads,
            bulk_optimize_every,
            bulk_id_tracker_on_disk,
        } => fixtures::generate(
            &out,
            fixtures::Bulk {
                points: bulk_points,
                dim: bulk_dim,
                shards: bulk_shards.max(1),
                small_payloads: bulk_small_payloads,
                optimize_every: bulk_optimize_every,
                id_tracker_on_disk: bulk_id_tracker_on_disk,
            },
        ),
    };
    if let Err(e) = result {
        eprintln!("qdrant-standin: {e}");
        std::process::exit(1);
    }
}
