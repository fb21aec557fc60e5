//! The threads one large matrix product or Adam update is split over ([`set_gemm_threads`]).
//!
//! The helpers are a persistent pool (rayon-core) of n − 1 threads, started on first use: the
//! caller runs the first part itself and hands the others to the pool, so a split costs a wake-up
//! of a parked thread instead of starting and joining one (a step of the LSTM of config A splits
//! about twenty products; see PERFORMANCE.md, section "Design notes moved from the source").

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rayon_core::{Scope, ThreadPool, ThreadPoolBuilder};

/// Threads for one large product (see [`set_gemm_threads`]).
static GEMM_THREADS: AtomicUsize = AtomicUsize::new(1);

/// The helper pool and the thread count it was built for.
static HELPERS: Mutex<Option<(usize, Arc<ThreadPool>)>> = Mutex::new(None);

/// Splits each large f32 product's columns over `n` threads (1, the default: no threads), and
/// Adam's update of each parameter of over a million elements into `n` parts. Meant for one big
/// model on an otherwise idle machine (`rrnn bench --split gemm`, `rrnn train --threads`);
/// results are the same bits whatever `n` (each element is still one thread's sum). The n − 1
/// helper threads are started on the first split and then kept, parked between splits.
pub fn set_gemm_threads(n: usize) {
    GEMM_THREADS.store(n.max(1), Ordering::Relaxed);
}

thread_local! {
    /// Set while this thread runs work that must not split (see [`on_this_thread`]).
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// The threads [`set_gemm_threads`] asked for (1 inside [`on_this_thread`]).
pub(crate) fn gemm_threads() -> usize {
    if ALONE.with(Cell::get) {
        return 1;
    }
    GEMM_THREADS.load(Ordering::Relaxed)
}

/// Runs `work` with every split turned off on this thread (the helpers are busy with something
/// else meanwhile).
pub(crate) fn on_this_thread<R>(work: impl FnOnce() -> R) -> R {
    let before = ALONE.with(|a| a.replace(true));
    let out = work();
    ALONE.with(|a| a.set(before));
    out
}

/// Element-wise work on arrays of at least this many elements is split over the threads.
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 20;

/// `f` over matching chunks of `dst` and `src` (equal lengths): one chunk per thread when the
/// slices have at least [`PARALLEL_ELEMENTS`] elements and [`set_gemm_threads`] asked for
/// several, else one call on this thread. For element-wise work, so the same bits either way.
pub(crate) fn for_chunks<T: Send, U: Sync>(
    dst: &mut [T],
    src: &[U],
    f: impl Fn(&mut [T], &[U]) + Sync,
) {
    assert_eq!(dst.len(), src.len(), "for_chunks: lengths");
    let threads = gemm_threads();
    if threads < 2 || dst.len() < PARALLEL_ELEMENTS {
        return f(dst, src);
    }
    let chunk = dst.len().div_ceil(threads);
    let f = &f;
    with_helpers(threads, |scope| {
        let mut parts = dst.chunks_mut(chunk).zip(src.chunks(chunk));
        let (d0, s0) = parts.next().expect("a non-empty slice");
        for (d, s) in parts {
            scope.spawn(move |_| f(d, s));
        }
        f(d0, s0);
    });
}

/// Runs `work` on this thread with a scope whose spawned jobs run on the pool of `threads − 1`
/// helpers; returns once every spawned job has finished.
///
/// # Panics
/// If the helper threads cannot be started (the operating system refuses threads).
pub(crate) fn with_helpers<'s, R>(threads: usize, work: impl FnOnce(&Scope<'s>) -> R) -> R {
    let helpers = threads.saturating_sub(1).max(1);
    let pool = {
        let mut slot = HELPERS.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some((n, pool)) if *n == helpers => Arc::clone(pool),
            _ => {
                let pool = ThreadPoolBuilder::new()
                    .num_threads(helpers)
                    .thread_name(|i| format!("rrnn-gemm-{i}"))
                    .build()
                    .expect("starting the matrix-product helper threads");
                let pool = Arc::new(pool);
                *slot = Some((helpers, Arc::clone(&pool)));
                pool
            }
        }
    };
    pool.in_place_scope(work)
}

#[cfg(test)]
mod tests {
    use super::with_helpers;

    /// Every spawned job has run, on another thread, by the time `with_helpers` returns.
    #[test]
    fn spawned_jobs_finish_before_return_on_helper_threads() {
        let here = std::thread::current().id();
        let mut seen = [None; 3];
        with_helpers(2, |scope| {
            let (first, rest) = seen.split_first_mut().expect("three slots");
            for slot in rest {
                scope.spawn(move |_| *slot = Some(std::thread::current().id()));
            }
            *first = Some(here);
        });
        assert_eq!(seen[0], Some(here));
        for id in &seen[1..] {
            assert!(id.is_some_and(|id| id != here), "{seen:?}");
        }
    }
}
