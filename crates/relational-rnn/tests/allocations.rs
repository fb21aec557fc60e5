//! Heap traffic of a warm training step, counted by a global allocator wrapper (this test binary
//! only).
//!
//! The tape hands every node's arrays (values, saved activations, gradients) from one step to
//! the next (`Graph::clear` keeps them), so once warm a step allocates no activation- or
//! gradient-sized array. The f32 matrix products pack their operands into buffers the tape (for
//! weights) or a thread-local workspace (for activations) keeps, so on a CPU with AVX-512 the GEMM
//! allocates nothing either. Without AVX-512 the products go to matrixmultiply, which allocates its
//! packing buffer inside every call (its API takes no caller-owned workspace); those are counted
//! and reported, not failed. What remains is small bookkeeping (op records, index lists) well
//! below one activation row block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relational_rnn::ParamStore;
use relational_rnn::experiment::ModelKind;
use relational_rnn::nn::SequenceClassifier;
use relational_rnn::optim::OptimizerConfig;
use relational_rnn::perf::PerfConfig;
use relational_rnn::train::Trainer;

/// Allocations at least this large get a backtrace, to tell GEMM packing from our arrays.
const LARGE: usize = 4096;

struct Counting;

static RECORDING: AtomicBool = AtomicBool::new(false);
/// (size, whether matrixmultiply was on the stack) of every allocation while recording.
static LOG: Mutex<Vec<(usize, bool)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread is inside the counting hook (backtraces and the log allocate).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if RECORDING.load(Ordering::Relaxed) && !BUSY.with(Cell::get) {
            BUSY.with(|b| b.set(true));
            let in_gemm = layout.size() >= LARGE
                && std::backtrace::Backtrace::force_capture()
                    .to_string()
                    .contains("matrixmultiply");
            LOG.lock().unwrap().push((layout.size(), in_gemm));
            BUSY.with(|b| b.set(false));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_warm_train_step_allocates_no_arrays_outside_the_gemm() {
    for kind in [ModelKind::Rmc, ModelKind::Lstm] {
        let config = PerfConfig::B;
        let mut store = ParamStore::<f32>::new();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model = SequenceClassifier::new(&config.classifier(kind), &mut store, &mut rng)
            .expect("valid perf config");
        let batch = config.random_batch(1);
        let mut trainer = Trainer::new(&store, &OptimizerConfig::default()).expect("valid");
        // Two warm-up steps: the first sizes every array, the second the lists that keep them.
        for _ in 0..2 {
            trainer.step(&model, &mut store, &batch, 1e-4, Some(5.0));
        }
        LOG.lock().unwrap().clear();
        RECORDING.store(true, Ordering::Relaxed);
        trainer.step(&model, &mut store, &batch, 1e-4, Some(5.0));
        RECORDING.store(false, Ordering::Relaxed);
        let log = std::mem::take(&mut *LOG.lock().unwrap());
        let gemm: Vec<usize> = log.iter().filter(|a| a.1).map(|a| a.0).collect();
        let ours: Vec<usize> = log.iter().filter(|a| !a.1).map(|a| a.0).collect();
        eprintln!(
            "{kind:?} warm step: {} GEMM packing buffers ({} bytes); {} other allocations \
             ({} bytes, largest {})",
            gemm.len(),
            gemm.iter().sum::<usize>(),
            ours.len(),
            ours.iter().sum::<usize>(),
            ours.iter().max().unwrap_or(&0)
        );
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::env::var_os("RRNN_NO_AVX512_KERNELS").is_none()
        {
            assert!(
                gemm.is_empty(),
                "{kind:?}: the AVX-512 GEMM path went through matrixmultiply: {gemm:?} bytes"
            );
        }
        let large: Vec<usize> = ours.iter().copied().filter(|&s| s >= LARGE).collect();
        assert!(
            large.is_empty(),
            "{kind:?}: a warm step allocated arrays outside the GEMM: {large:?} bytes"
        );
    }
}
