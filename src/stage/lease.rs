//! One writer at a time on a stage on object storage. The local lock ([`super::lock`]) keeps two
//! runs out of one working copy; two machines (or two working copies) share only the bucket, so
//! a run that changes the stage also holds a lease there: the object `.q2z.lease` beside the
//! manifest, made with a create-only put and renewed every [`RENEW`] with a put conditional on
//! its ETag. Another run is refused while the lease is live, and takes it over once it expired
//! (its holder stopped renewing: killed, or cut off) or once its holder is seen dead (same host,
//! process gone: a run killed with -9 and run again). A run whose lease lapsed or was taken
//! over writes nothing more: every upload and state put asks [`Lease::check`] first.
//! Expiry times are compared across machines' clocks: [`TTL`] is long beside any usual skew.

use super::manifest::stage_err;
use crate::error::{Error, Result};
use crate::sink::object_store::Uploader;
use crate::wait::unix_now;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Name of the lease object inside a stage's prefix.
pub const LEASE: &str = ".q2z.lease";
/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(120);
/// How often the holder renews it.
pub const RENEW: Duration = Duration::from_secs(20);

/// What the lease object says: who holds the stage, until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// Random id of the holding run.
    pub run: String,
    /// Host name of the holding machine.
    pub host: String,
    /// Process id of the holding run on that host.
    pub pid: u32,
    /// The command it runs (`export`, `sync`, ...).
    pub command: String,
    /// Unix seconds (holder's clock) after which the lease may be taken over.
    pub expires_unix: u64,
}

/// Whether a lease found in the bucket may be taken over.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Yes, for this reason.
    Stale(&'static str),
    /// No: its holder is (or may be) still writing.
    Live,
}

/// Judges a lease found in the bucket from this run's host, clock and view of its processes.
pub fn judge(h: &Holder, now_unix: u64, host: &str, alive: impl Fn(u32) -> bool) -> Verdict {
    if h.expires_unix <= now_unix {
        Verdict::Stale("it expired: its holder stopped renewing it")
    } else if h.host == host && h.pid != std::process::id() && !alive(h.pid) {
        Verdict::Stale("its holder's process on this host is gone")
    } else {
        Verdict::Live
    }
}

/// A lease held by this run; renewed by a thread of its own, released on drop.
pub struct Lease {
    inner: Arc<Inner>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    store: Arc<Uploader>,
    key: String,
    url: String,
    state: Mutex<State>,
}

struct State {
    holder: Holder,
    etag: Option<String>,
    /// Until when this run may write: the last renewal's start plus [`TTL`], less a margin.
    good_until: Instant,
    /// Set when a renewal found another run's lease in place of this one.
    lost: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// Takes the lease of the stage at `url` (object `key`) for `command`, or says which run
    /// holds it and what to do.
    pub fn acquire(store: Arc<Uploader>, key: String, url: &str, command: &str) -> Result<Lease> {
        let mut holder = Holder {
            run: uuid::Uuid::new_v4().to_string(),
            host: host_name(),
            pid: std::process::id(),
            command: command.to_string(),
            expires_unix: 0,
        };
        for _ in 0..5 {
            let t0 = Instant::now();
            holder.expires_unix = unix_now() + TTL.as_secs();
            let body = serde_json::to_vec(&holder).map_err(|e| Error::Other(e.to_string()))?;
            let found = store.get_small(&key)?;
            let expected = match &found {
                None => None,
                Some((bytes, etag)) => {
                    let Ok(h) = serde_json::from_slice::<Holder>(bytes) else {
                        return Err(stage_err(
                            Path::new(url),
                            format!(
                                "holds a lease object {LEASE} that q2z cannot read; if no q2z run is writing this stage, delete that object and run the command again"
                            ),
                        ));
                    };
                    match judge(&h, unix_now(), &holder.host, crate::scratch::process_alive) {
                        Verdict::Live => return Err(busy(url, &h)),
                        Verdict::Stale(why) => {
                            tracing::warn!(stage = url, host = %h.host, pid = h.pid, command = %h.command, "taking over the stage's lease: {why}");
                        }
                    }
                    Some(etag.clone().unwrap_or_default())
                }
            };
            // Another run that read the same state first wins the put; look again.
            if let Some(etag) = store.put_small_if(&key, body, expected.as_deref())? {
                let inner = Arc::new(Inner {
                    store,
                    key,
                    url: url.to_string(),
                    state: Mutex::new(State {
                        holder,
                        etag,
                        good_until: t0 + TTL - RENEW,
                        lost: false,
                    }),
                });
                let (stop, rx) = mpsc::channel();
                let worker = Arc::clone(&inner);
                let renewer = std::thread::Builder::new()
                    .name("q2z-lease".into())
                    .spawn(move || {
                        while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(RENEW) {
                            if !worker.renew() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| Error::Other(format!("cannot start the lease thread: {e}")))?;
                return Ok(Lease {
                    inner,
                    stop: Some(stop),
                    renewer: Some(renewer),
                });
            }
        }
        Err(stage_err(
            Path::new(url),
            "its lease kept changing hands while this run tried to take it: other q2z runs are starting on it; let them finish and run this command again",
        ))
    }

    /// Ok while this run holds the lease; an error that says why it may no longer write.
    pub fn check(&self) -> Result<()> {
        let s = self.inner.lock();
        if s.lost {
            return Err(stage_err(
                Path::new(&self.inner.url),
                "was taken over by another q2z run while this one worked (this run's lease had lapsed); this run stopped writing. Let the other run finish, then run this command again",
            ));
        }
        if Instant::now() > s.good_until {
            return Err(stage_err(
                Path::new(&self.inner.url),
                format!(
                    "could not be kept: this run's lease was not renewed for {} s (object storage unreachable?), so another run may now write the stage; this run stopped writing. Check the endpoint and run this command again",
                    (TTL - RENEW).as_secs()
                ),
            ));
        }
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One renewal; false once the lease is known lost (the thread then stops).
    fn renew(&self) -> bool {
        let t0 = Instant::now();
        let (body, etag) = {
            let mut s = self.lock();
            s.holder.expires_unix = unix_now() + TTL.as_secs();
            (
                serde_json::to_vec(&s.holder).unwrap_or_default(),
                s.etag.clone(),
            )
        };
        match self
            .store
            .put_small_if(&self.key, body, Some(etag.as_deref().unwrap_or("")))
        {
            Ok(Some(etag)) => {
                let mut s = self.lock();
                s.etag = etag;
                s.good_until = t0 + TTL - RENEW;
                true
            }
            Ok(None) => {
                self.lock().lost = true;
                tracing::error!(stage = %self.url, "another run took this stage's lease over; stopping writes");
                false
            }
            Err(e) => {
                tracing::warn!(stage = %self.url, "renewing the stage's lease failed (tried again in {} s): {e}", RENEW.as_secs());
                true
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // Released only while surely still ours: a lapsed lease may be another run's by now.
        let ours = {
            let s = self.inner.lock();
            !s.lost && Instant::now() < s.good_until
        };
        if ours && let Err(e) = self.inner.store.delete(&self.inner.key) {
            tracing::warn!(stage = %self.inner.url, "releasing the stage's lease failed (it expires in {} s): {e}", TTL.as_secs());
        }
    }
}

/// The error for a stage whose lease another run holds.
fn busy(url: &str, h: &Holder) -> Error {
    let until = chrono::DateTime::from_timestamp(h.expires_unix as i64, 0)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    stage_err(
        Path::new(url),
        format!(
            "is being written by another q2z run (`{}` on host {}, pid {}); only one run may write a stage at a time. Let that run finish and run this command again; if it was stopped on another machine, its lease expires at {until} (within {} s) and the command then runs",
            h.command,
            h.host,
            h.pid,
            TTL.as_secs()
        ),
    )
}

/// This machine's host name (empty if unknown).
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, expires_unix: u64) -> Holder {
        Holder {
            run: "r".into(),
            host: host.into(),
            pid,
            command: "export".into(),
            expires_unix,
        }
    }

    #[test]
    fn a_lease_is_taken_over_only_once_expired_or_its_local_holder_is_gone() {
        let dead = |_| false;
        let alive = |_| true;
        // Another machine's live lease holds whatever its process looks like here.
        assert_eq!(judge(&holder("b", 7, 200), 100, "a", dead), Verdict::Live);
        // Expired: taken over, whoever held it.
        assert!(matches!(
            judge(&holder("b", 7, 100), 100, "a", alive),
            Verdict::Stale(_)
        ));
        // This host, process gone (killed with -9): taken over at once.
        assert!(matches!(
            judge(&holder("a", 7, 200), 100, "a", dead),
            Verdict::Stale(_)
        ));
        assert_eq!(judge(&holder("a", 7, 200), 100, "a", alive), Verdict::Live);
        // This very process holds it (another stage value of this run): never seen as gone.
        let me = std::process::id();
        assert_eq!(judge(&holder("a", me, 200), 100, "a", dead), Verdict::Live);
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(crate::scratch::process_alive(std::process::id()));
        #[cfg(unix)]
        assert!(!crate::scratch::process_alive(i32::MAX as u32 - 1));
        assert!(!host_name().is_empty());
    }
}
