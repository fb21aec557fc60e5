//! The threads one large matrix product, packing, copy or Adam update is split over
//! ([`with_threads`]).
//!
//! The count is a setting of the running code, not of the process: [`with_threads`] sets it for
//! the calling thread while its closure runs, so two runs (or two tests) on two threads cannot
//! change each other's. The helpers are a persistent pool (rayon-core) of n − 1 threads, started
//! on first use: the caller runs the first part itself and hands the others to the pool, so a
//! split costs a wake-up of a parked thread instead of starting and joining one (see
//! PERFORMANCE.md, section "Design notes moved from the source"). Work handed to a helper runs
//! with a count of 1, so splits never nest.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};

use rayon_core::{Scope, ThreadPool, ThreadPoolBuilder};

/// The helper pool and the thread count it was built for.
static HELPERS: Mutex<Option<(usize, Arc<ThreadPool>)>> = Mutex::new(None);

thread_local! {
    /// The count [`with_threads`] set on this thread (1 outside it).
    static THREADS: Cell<usize> = const { Cell::new(1) };
}

/// Runs `work` with each large f32 product's columns, and Adam's update of each parameter of over
/// a million elements, split over `n` threads (1: no helper threads; 0 counts as 1). Meant for
/// one big model on an otherwise idle machine (`rrnn train --threads`, `rrnn bench --split gemm`).
/// Results are the same bits whatever `n` (each element is still one thread's sum). The count
/// holds on the calling thread until `work` returns (or unwinds), then the previous one is back.
pub fn with_threads<R>(n: usize, work: impl FnOnce() -> R) -> R {
    /// Puts the previous count back, also when `work` panics.
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREADS.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(THREADS.with(|t| t.replace(n.max(1))));
    work()
}

/// The count [`with_threads`] set on this thread (1 outside it, and on the helpers).
pub(crate) fn threads() -> usize {
    THREADS.with(Cell::get)
}

/// Runs `side` on a helper thread while `main` runs on this one (with a count of 1: the helper
/// is busy), and returns `main`'s result once both have finished.
pub fn beside<R>(side: impl FnOnce() + Send, main: impl FnOnce() -> R) -> R {
    with_helpers(threads().max(2), |scope| {
        scope.spawn(move |_| side());
        with_threads(1, main)
    })
}

/// Element-wise work on arrays of at least this many elements is split over the threads.
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 20;

/// `f` over matching chunks of `dst` and `src` (equal lengths): one chunk per thread when the
/// slices have at least [`PARALLEL_ELEMENTS`] elements and [`with_threads`] asked for several,
/// else one call on this thread. For element-wise work, so the same bits either way.
pub(crate) fn for_chunks<T: Send, U: Sync>(
    dst: &mut [T],
    src: &[U],
    f: impl Fn(&mut [T], &[U]) + Sync,
) {
    assert_eq!(dst.len(), src.len(), "for_chunks: lengths");
    let threads = threads();
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
    use super::{beside, threads, with_helpers, with_threads};

    /// The count holds inside `with_threads` only, on the calling thread only, and comes back
    /// after a panic inside it.
    #[test]
    fn the_count_is_scoped_to_the_calling_thread() {
        assert_eq!(threads(), 1);
        with_threads(3, || {
            assert_eq!(threads(), 3);
            let other = std::thread::spawn(threads).join().expect("no panic");
            assert_eq!(other, 1, "another thread keeps its own count");
            with_threads(0, || assert_eq!(threads(), 1, "0 counts as 1"));
            assert_eq!(threads(), 3, "restored after a nested call");
        });
        assert_eq!(threads(), 1);
        let unwound = std::panic::catch_unwind(|| with_threads(4, || panic!("inside")));
        assert!(unwound.is_err());
        assert_eq!(threads(), 1, "restored after a panic");
    }

    /// `beside` runs the side work on another thread, the main work here with a count of 1 (no
    /// nested split), and returns once both are done.
    #[test]
    fn beside_runs_both_and_the_main_work_alone() {
        let here = std::thread::current().id();
        let mut side = None;
        let main = with_threads(2, || {
            beside(
                || side = Some(std::thread::current().id()),
                || (std::thread::current().id(), threads()),
            )
        });
        assert_eq!(main, (here, 1));
        assert!(side.is_some_and(|id| id != here), "{side:?}");
    }

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
