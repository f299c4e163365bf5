//! `--transport auto`: which of REST and gRPC reads a collection's pages faster, measured on
//! its first pages. Which one wins depends on the collection's shape (gRPC carries vectors as
//! packed floats, REST's JSON decodes payload-heavy points with less work on both sides) and
//! on the machine, so it is measured rather than assumed.

use crate::model::Point;
use crate::source::grpc::QdrantGrpc;
use crate::source::rest::QdrantRest;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Points per measured page.
pub const PAGE: usize = 256;
/// Rounds of one page each way (the best of each kept: the first may pay for connections and
/// cold caches); the second only when the first is close (within [`CLEAR`]).
const ROUNDS: usize = 2;
/// A first round in which one transport took less than 1/CLEAR of the other's time decides.
const CLEAR: f64 = 2.0;
/// Fewer points than this in a collection: too few to tell; gRPC is kept.
const AT_LEAST: usize = 32;

/// What the measurement found for one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Points per second, best round, over REST and over gRPC.
    pub rest: f64,
    pub grpc: f64,
    /// Points in the measured page.
    pub points: usize,
}

impl Measured {
    /// gRPC is kept unless REST is faster.
    pub fn grpc_wins(&self) -> bool {
        self.grpc >= self.rest
    }

    /// One line for the log and the manifest's notes.
    pub fn describe(&self) -> String {
        let (won, lost) = if self.grpc_wins() {
            ("gRPC", "REST")
        } else {
            ("REST", "gRPC")
        };
        let (w, l) = if self.grpc_wins() {
            (self.grpc, self.rest)
        } else {
            (self.rest, self.grpc)
        };
        format!(
            "pages read over {won}: {w:.0} points/s against {lost}'s {l:.0} on the first {} points (--transport auto measures both; --transport rest|grpc decides)",
            self.points
        )
    }
}

/// How a live collection's pages are read: over REST, over gRPC, or (`auto`) over the faster
/// of the two, measured when the first page is asked for (a command that reads no page — a
/// plan without data, a search — measures nothing).
pub struct PageTransport {
    grpc: Option<Arc<QdrantGrpc>>,
    measure: bool,
    measured: OnceLock<Option<Measured>>,
}

impl PageTransport {
    /// Every page over REST.
    pub fn rest() -> PageTransport {
        PageTransport::fixed(None)
    }

    /// Every page over gRPC when given, else REST.
    pub fn fixed(grpc: Option<Arc<QdrantGrpc>>) -> PageTransport {
        PageTransport {
            grpc,
            measure: false,
            measured: OnceLock::new(),
        }
    }

    /// The faster of REST and this gRPC endpoint, measured on first use.
    pub fn auto(grpc: Arc<QdrantGrpc>) -> PageTransport {
        PageTransport {
            grpc: Some(grpc),
            measure: true,
            measured: OnceLock::new(),
        }
    }

    /// What `auto` measured for collection `name` (measured now if it was not yet).
    fn measured(&self, rest: &QdrantRest, name: &str) -> Option<&Measured> {
        let g = self.grpc.as_ref().filter(|_| self.measure)?;
        self.measured
            .get_or_init(|| {
                let m = measure(rest, g, name);
                if let Some(m) = &m {
                    tracing::info!(collection = %name, "{}", m.describe());
                }
                m
            })
            .as_ref()
    }

    /// The gRPC endpoint that reads the pages of collection `name`, if not REST.
    pub fn grpc(&self, rest: &QdrantRest, name: &str) -> Option<&Arc<QdrantGrpc>> {
        match self.measured(rest, name) {
            Some(m) if !m.grpc_wins() => None,
            _ => self.grpc.as_ref(),
        }
    }

    /// The manifest's note on how the pages of `name` are read (none: all over REST, asked).
    pub fn note(&self, rest: &QdrantRest, name: &str) -> Option<String> {
        if let Some(m) = self.measured(rest, name) {
            return Some(m.describe());
        }
        self.grpc
            .as_ref()
            .map(|g| format!("pages read over gRPC ({})", g.url()))
    }
}

/// Times the first page of `name` both ways, up to [`ROUNDS`] times; `None` when the collection is
/// too small to tell or gRPC cannot carry its pages as they are (an error, payload nested too
/// deep, integers above 2^63-1: REST reads those pages anyway).
pub fn measure(rest: &QdrantRest, g: &QdrantGrpc, name: &str) -> Option<Measured> {
    let mut best = (Duration::MAX, Duration::MAX);
    let mut points = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let over_rest = rest.scroll(name, None, PAGE, true, None).ok()?.0;
        best.0 = best.0.min(t.elapsed());
        let t = Instant::now();
        let over_grpc: Vec<Point> = g.scroll(name, None, PAGE, true).ok()?.0;
        best.1 = best.1.min(t.elapsed());
        if over_grpc
            .iter()
            .any(|p| super::grpc::has_rounded_integer(&p.payload))
        {
            return None;
        }
        points = over_rest.len().min(over_grpc.len());
        let (r, g) = (best.0.as_secs_f64(), best.1.as_secs_f64());
        if r > g * CLEAR || g > r * CLEAR {
            break;
        }
    }
    if points < AT_LEAST {
        return None;
    }
    let rate = |d: Duration| points as f64 / d.as_secs_f64().max(1e-9);
    Some(Measured {
        rest: rate(best.0),
        grpc: rate(best.1),
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faster_transport_wins_and_is_named_with_both_rates() {
        let m = Measured {
            rest: 30_000.0,
            grpc: 20_000.0,
            points: 256,
        };
        assert!(!m.grpc_wins());
        let d = m.describe();
        assert!(
            d.starts_with("pages read over REST: 30000 points/s against gRPC's 20000"),
            "{d}"
        );
        let tie = Measured {
            grpc: 30_000.0,
            ..m
        };
        assert!(tie.grpc_wins(), "a tie keeps gRPC");
    }
}
