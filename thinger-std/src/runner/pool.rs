//! The threads that run the runners' connections: one per core, each a current-thread
//! tokio runtime with a `LocalSet`. A connection's core session keeps its handlers as
//! `dyn Resource` trait objects (not `Send`), so it stays on one thread for its whole life;
//! what crosses threads is only the [`Runner`](super::Runner) itself (which is `Send`)
//! and the channels to its handles. This is what makes `Runner::run` a `Send` future.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Work for a pool thread: makes the (not `Send`) future there.
pub(super) type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

struct Pool {
    workers: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

static POOL: OnceLock<Option<Pool>> = OnceLock::new();

fn start() -> Option<Pool> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("runner pool: no runtime: {e}");
                break;
            }
        };
        let spawned = std::thread::Builder::new().name(format!("thinger-runner-{i}")).spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                while let Some(job) = rx.recv().await {
                    tokio::task::spawn_local(job());
                }
            });
        });
        match spawned {
            Ok(_) => workers.push(tx),
            Err(e) => tracing::error!("runner pool: no thread: {e}"),
        }
    }
    (!workers.is_empty()).then_some(Pool { workers, next: AtomicUsize::new(0) })
}

/// Runs `job` on the next pool thread (round robin). Gives the job back when the pool
/// could not be started.
pub(super) fn spawn(job: Job) -> Result<(), Job> {
    let Some(pool) = POOL.get_or_init(start) else { return Err(job) };
    let n = pool.next.fetch_add(1, Ordering::Relaxed) % pool.workers.len();
    match pool.workers.get(n) {
        Some(worker) => worker.send(job).map_err(|e| e.0),
        None => Err(job),
    }
}
