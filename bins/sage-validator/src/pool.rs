//! Proof verification off the async runtime: at most `threads` verifications run at once, each on
//! a blocking thread, and at most `queue` wait for one. Rounds (results on-chain, each paid for by a
//! worker's transaction) always wait their turn; a bridge request that finds the queue full is
//! refused, so a flood of requests can neither starve the network loop nor delay the rounds
//! without bound.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Semaphore;

/// The queue was full; nothing ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// See the module docs.
#[derive(Debug)]
pub struct VerifyPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

impl VerifyPool {
    /// A pool of `threads` (at least one) with room for `queue` waiting verifications.
    pub fn new(threads: usize, queue: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(threads.max(1))), waiting: AtomicUsize::new(0), queue }
    }

    /// Runs `f` on a blocking thread once one is free, however long the queue.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit?;
        Ok(tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await?)
    }

    /// Runs `f` like [`Self::run`], unless `queue` verifications already wait for a thread.
    pub async fn try_run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<Result<T, Busy>> {
        let busy = self.permits.available_permits() == 0;
        if busy && self.waiting.load(Ordering::SeqCst) >= self.queue {
            return Ok(Err(Busy));
        }
        Ok(Ok(self.run(f).await?))
    }

    /// Verifications waiting for a thread now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc, time::Duration};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_bridge_work_while_rounds_still_wait_their_turn() {
        let pool = Arc::new(VerifyPool::new(1, 1));
        let (release, held) = mpsc::channel::<()>();
        // One verification holds the only thread.
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || held.recv().is_ok()).await.unwrap() })
        };
        while pool.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // One more may wait...
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.try_run(|| 7).await.unwrap() })
        };
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ...the next bridge request is refused, and nothing of it runs.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        assert_eq!(pool.try_run(move || r.fetch_add(1, Ordering::SeqCst)).await.unwrap(), Err(Busy));
        // A round is not refused: it waits behind the queue.
        let round = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 9).await.unwrap() })
        };
        while pool.waiting() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        assert_eq!(queued.await.unwrap(), Ok(7));
        assert_eq!(round.await.unwrap(), 9);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the refused request never ran");
        assert_eq!(pool.waiting(), 0);
    }
}
