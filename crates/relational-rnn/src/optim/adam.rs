//! Adam (Kingma & Ba, 2015), PyTorch's `torch.optim.Adam` without AMSGrad: the optimiser the
//! paper trains every model with.
//!
//! Per element, with g the gradient, λ the weight decay and t the step number starting at 1:
//!
//! ```text
//! g ← g + λ p                     (L2 weight decay, when λ > 0; not AdamW's decoupled decay)
//! m ← β₁ m + (1 − β₁) g
//! v ← β₂ v + (1 − β₂) g²
//! m̂ = m / (1 − β₁ᵗ)     v̂ = v / (1 − β₂ᵗ)
//! p ← p − lr · m̂ / (√v̂ + ε)
//! ```
//!
//! Evaluated in PyTorch's order, `p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)`, with the
//! bias corrections computed in f64. Why bias correction: m and v start at zero, so early on
//! they underestimate the moments by the factors 1 − β₁ᵗ and 1 − β₂ᵗ; dividing them out makes the
//! first steps about lr in size rather than vanishingly small.
//!
//! The state (`m`, `v`, t) is [`AdamState`]; a checkpoint saves it and [`Adam::from_state`]
//! restores it exactly, so a resumed run continues bit for bit.

use serde::{Deserialize, Serialize};

use super::{
    Optimizer, assert_same_len, assert_same_shape, require_non_negative, require_unit_interval,
};
use crate::kernels::simd;
use crate::kernels::threads::{PARALLEL_ELEMENTS, threads, with_helpers};
use crate::{ConfigError, Grads, ParamStore, Scalar};

/// Hyper-parameters of [`Adam`]; defaults are PyTorch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Base learning rate, ≥ 0, that schedules scale. Default `1e-3` (the paper's tasks mostly
    /// use `1e-4`; set it per task).
    pub lr: f64,
    /// Decay β₁ ∈ [0, 1) of the first-moment average. Default `0.9`.
    pub beta1: f64,
    /// Decay β₂ ∈ [0, 1) of the second-moment average. Default `0.999`.
    pub beta2: f64,
    /// ε > 0 added to √v̂ so the step stays finite. Default `1e-8`.
    pub eps: f64,
    /// L2 weight decay λ ≥ 0, added to the gradient as λ p. Default `0.0`.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Checks the ranges: `lr ≥ 0`, `beta1, beta2 ∈ [0, 1)`, `eps > 0`, `weight_decay ≥ 0`, all
    /// finite.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_non_negative("lr", self.lr)?;
        require_unit_interval("beta1", self.beta1)?;
        require_unit_interval("beta2", self.beta2)?;
        ConfigError::require_positive("eps", self.eps)?;
        require_non_negative("weight_decay", self.weight_decay)
    }
}

/// Everything [`Adam`] carries from one step to the next, for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState<T> {
    /// Updates applied so far (t of the last update).
    pub step: u64,
    /// First-moment average m per parameter.
    pub m: Grads<T>,
    /// Second-moment average v per parameter.
    pub v: Grads<T>,
}

/// Adam with PyTorch's semantics; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Adam<T> {
    config: AdamConfig,
    state: Option<AdamState<T>>,
}

impl<T: Scalar> Adam<T> {
    /// A fresh optimiser; `m` and `v` are allocated (as zeros) on the first step.
    pub fn new(config: AdamConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            state: None,
        })
    }

    /// Resumes from saved state: the next update is number `state.step + 1` and uses the saved
    /// `m` and `v` unchanged. Shapes are checked against the store on the next step.
    pub fn from_state(config: AdamConfig, state: AdamState<T>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            state: Some(state),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The state to save in a checkpoint; `None` before the first step.
    pub fn state(&self) -> Option<&AdamState<T>> {
        self.state.as_ref()
    }

    /// Consumes the optimiser and returns its state (moves it into a checkpoint without a copy).
    pub fn into_state(self) -> Option<AdamState<T>> {
        self.state
    }
}

/// One Adam step's scalars, in the parameters' precision.
#[derive(Clone, Copy)]
struct Constants<T> {
    step_size: T,
    bias_correction2_sqrt: T,
    beta1: T,
    beta2: T,
    one_minus_beta1: T,
    one_minus_beta2: T,
    eps: T,
    /// L2 weight decay added to the gradient (`None`: off).
    weight_decay: Option<T>,
}

/// The update of one tensor, element by element (a loop the compiler vectorises: the scalars are
/// locals and the four slices cannot alias):
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `p ← p − α/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
#[inline(always)]
fn update<T: Scalar>(k: &Constants<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
    // Locals, not loads through `k` inside the loop: the vectoriser must see that the stores
    // below cannot change them.
    let Constants {
        step_size,
        bias_correction2_sqrt,
        beta1,
        beta2,
        one_minus_beta1,
        one_minus_beta2,
        eps,
        weight_decay,
    } = *k;
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let g = match weight_decay {
            Some(wd) => g[i] + wd * p[i],
            None => g[i],
        };
        m[i] = beta1 * m[i] + one_minus_beta1 * g;
        v[i] = beta2 * v[i] + one_minus_beta2 * g * g;
        let denom = v[i].sqrt() / bias_correction2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/// [`update`] as a [`simd::Kernel`] (sixteen lanes on AVX-512 CPUs; element-wise IEEE
/// arithmetic, so the same bits as the baseline build).
struct Update;

/// One tensor's p, g, m, v.
type Slices<'a, T> = (&'a mut [T], &'a [T], &'a mut [T], &'a mut [T]);

/// The constants, then p, g, m, v.
type UpdateArgs<'a, T> = (
    &'a Constants<T>,
    &'a mut [T],
    &'a [T],
    &'a mut [T],
    &'a mut [T],
);

impl<'a, T: Scalar> simd::Kernel<UpdateArgs<'a, T>> for Update {
    #[inline(always)]
    fn run((k, p, g, m, v): UpdateArgs<'a, T>) {
        update(k, p, g, m, v);
    }
}

/// [`update`] sixteen lanes wide where the CPU allows, and over the [`threads`] threads for
/// a parameter of at least [`PARALLEL_ELEMENTS`] elements (`rrnn bench --split gemm`: the LSTM of
/// config A has weights of 4.2 M and 0.16 M elements): element-wise, so the same bits either way.
fn update_split<T: Scalar>(k: &Constants<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
    let threads = threads();
    if threads < 2 || p.len() < PARALLEL_ELEMENTS {
        return simd::wider_kernel::<Update, _>((k, p, g, m, v));
    }
    let chunk = p.len().div_ceil(threads);
    with_helpers(threads, |scope| {
        let mut parts = p
            .chunks_mut(chunk)
            .zip(g.chunks(chunk))
            .zip(m.chunks_mut(chunk))
            .zip(v.chunks_mut(chunk));
        let (((p0, g0), m0), v0) = parts.next().expect("a non-empty parameter");
        for (((p, g), m), v) in parts {
            scope.spawn(move |_| simd::wider_kernel::<Update, _>((k, p, g, m, v)));
        }
        simd::wider_kernel::<Update, _>((k, p0, g0, m0, v0));
    });
}

/// Every tensor's p, g, m, v as slices, in id order, each checked to have p's shape when it is
/// reached (`prepare` checked that there are as many of each).
fn tensors<'a, T: Scalar>(
    store: &'a mut ParamStore<T>,
    grads: &'a Grads<T>,
    m: &'a mut Grads<T>,
    v: &'a mut Grads<T>,
) -> impl Iterator<Item = Slices<'a, T>> {
    let slice = "parameters, gradients and moments are in standard layout";
    let moments = m.iter_mut().zip(v.iter_mut());
    store.iter_mut().zip(grads.iter()).zip(moments).map(
        move |(((_, name, p), (_, g)), ((_, m), (_, v)))| {
            assert_same_shape("gradient", name, p, g);
            assert_same_shape("Adam's m", name, p, m);
            assert_same_shape("Adam's v", name, p, v);
            (
                p.as_slice_mut().expect(slice),
                g.as_slice().expect(slice),
                m.as_slice_mut().expect(slice),
                v.as_slice_mut().expect(slice),
            )
        },
    )
}

impl<T: Scalar> Adam<T> {
    /// Counts the step and returns its constants and the moments (created on the first step),
    /// after checking that they match `store`.
    #[track_caller]
    fn prepare<'s>(
        &'s mut self,
        store: &ParamStore<T>,
        grads: &Grads<T>,
        lr: f64,
    ) -> (Constants<T>, &'s mut Grads<T>, &'s mut Grads<T>) {
        assert_same_len("gradient", store, grads);
        let AdamState { step, m, v } = self.state.get_or_insert_with(|| AdamState {
            step: 0,
            m: store.zeros_like(),
            v: store.zeros_like(),
        });
        assert_same_len("Adam's m", store, m);
        assert_same_len("Adam's v", store, v);
        *step += 1;
        let c = &self.config;
        let t = *step as f64;
        let bias_correction1 = 1.0 - c.beta1.powf(t);
        let bias_correction2 = 1.0 - c.beta2.powf(t);
        let k = Constants {
            step_size: T::from_f64_lossy(lr / bias_correction1),
            bias_correction2_sqrt: T::from_f64_lossy(bias_correction2.sqrt()),
            beta1: T::from_f64_lossy(c.beta1),
            beta2: T::from_f64_lossy(c.beta2),
            one_minus_beta1: T::from_f64_lossy(1.0 - c.beta1),
            one_minus_beta2: T::from_f64_lossy(1.0 - c.beta2),
            eps: T::from_f64_lossy(c.eps),
            weight_decay: (c.weight_decay != 0.0).then(|| T::from_f64_lossy(c.weight_decay)),
        };
        (k, m, v)
    }
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    #[track_caller]
    fn step(&mut self, store: &mut ParamStore<T>, grads: &Grads<T>, lr: f64) {
        let (k, m, v) = self.prepare(store, grads, lr);
        for (p, g, m, v) in tensors(store, grads, m, v) {
            update_split(&k, p, g, m, v);
        }
    }
    fn steps_taken(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.step)
    }

    fn buffers(&self) -> Vec<(&'static str, &Grads<T>)> {
        self.state
            .as_ref()
            .map_or_else(Vec::new, |s| vec![("m", &s.m), ("v", &s.v)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_support::{assert_close, one_param, set};
    use ndarray::{ArrayD, arr1};

    /// The textbook update written out once more, independently of the optimiser:
    /// returns the new `(p, m, v)` for one element at step `t`.
    fn by_hand(p: f64, g: f64, m: f64, v: f64, t: i32, lr: f64, wd: f64) -> (f64, f64, f64) {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        let g = g + wd * p;
        let m = b1 * m + (1.0 - b1) * g;
        let v = b2 * v + (1.0 - b2) * g * g;
        let m_hat = m / (1.0 - f64::powi(b1, t));
        let v_hat = v / (1.0 - f64::powi(b2, t));
        (p - lr * m_hat / (v_hat.sqrt() + eps), m, v)
    }

    #[test]
    fn three_steps_match_the_hand_computation() {
        let (mut s, mut g) = one_param([1.0, -0.5]);
        let w = s.id("w").unwrap();
        let mut opt = Adam::new(AdamConfig::default()).unwrap();

        // Step 1, g = [0.2, −3]: m = 0.1 g = [0.02, −0.3]; v = 0.001 g² = [4e-5, 9e-3];
        // m̂ = m / 0.1 = g; v̂ = v / 0.001 = g²; so the step is lr·g/(|g| + ε) ≈ lr·sign(g):
        // p = [1 − 0.1·0.2/(0.2 + 1e-8), −0.5 + 0.1·3/(3 + 1e-8)].
        set(&mut g, [0.2, -3.0]);
        opt.step(&mut s, &g, 0.1);
        let want1 = [
            1.0 - 0.1 * 0.2 / (0.2 + 1e-8),
            -0.5 + 0.1 * 3.0 / (3.0 + 1e-8),
        ];
        assert_close(s.get(w), want1);
        let st = opt.state().unwrap();
        assert_close(st.m.get(w), [0.02, -0.3]);
        assert_close(st.v.get(w), [4e-5, 9e-3]);

        // Step 2, g = [0.2, 1]: m = 0.9·[0.02, −0.3] + 0.1·[0.2, 1] = [0.038, −0.17];
        // v = 0.999·[4e-5, 9e-3] + 0.001·[0.04, 1] = [7.996e-5, 9.991e-3];
        // m̂ = m / 0.19; v̂ = v / 0.001999.
        set(&mut g, [0.2, 1.0]);
        opt.step(&mut s, &g, 0.1);
        let st = opt.state().unwrap();
        assert_close(st.m.get(w), [0.038, -0.17]);
        assert_close(st.v.get(w), [7.996e-5, 9.991e-3]);
        let step2 = |p: f64, m: f64, v: f64| p - 0.1 * (m / 0.19) / ((v / 0.001999).sqrt() + 1e-8);
        let want2 = [
            step2(want1[0], 0.038, 7.996e-5),
            step2(want1[1], -0.17, 9.991e-3),
        ];
        assert_close(s.get(w), want2);

        // Step 3, g = [−1, 0], lr 0.05, checked against the written-out update.
        set(&mut g, [-1.0, 0.0]);
        opt.step(&mut s, &g, 0.05);
        let e0 = by_hand(want2[0], -1.0, 0.038, 7.996e-5, 3, 0.05, 0.0);
        let e1 = by_hand(want2[1], 0.0, -0.17, 9.991e-3, 3, 0.05, 0.0);
        assert_close(s.get(w), [e0.0, e1.0]);
        assert_eq!(opt.steps_taken(), 3);
    }

    #[test]
    fn weight_decay_is_l2_added_to_the_gradient() {
        let (mut s, mut g) = one_param([2.0, -1.0]);
        let w = s.id("w").unwrap();
        let mut opt = Adam::new(AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::default()
        })
        .unwrap();
        // Step 1: g' = g + 0.5 p = [0 + 1, 0.3 − 0.5] = [1, −0.2]; step ≈ lr·sign(g').
        set(&mut g, [0.0, 0.3]);
        opt.step(&mut s, &g, 0.01);
        let want1 = [
            2.0 - 0.01 * 1.0 / (1.0 + 1e-8),
            -1.0 + 0.01 * 0.2 / (0.2 + 1e-8),
        ];
        assert_close(s.get(w), want1);
        let (m0, v0) = (0.1 * 1.0, 0.001 * 1.0);
        let (m1, v1) = (0.1 * -0.2, 0.001 * 0.04);
        opt.step(&mut s, &g, 0.01);
        let e0 = by_hand(want1[0], 0.0, m0, v0, 2, 0.01, 0.5);
        let e1 = by_hand(want1[1], 0.3, m1, v1, 2, 0.01, 0.5);
        assert_close(s.get(w), [e0.0, e1.0]);
        let st = opt.state().unwrap();
        assert_close(st.m.get(w), [e0.1, e1.1]);
        assert_close(st.v.get(w), [e0.2, e1.2]);
    }

    #[test]
    fn zero_gradient_leaves_parameters_untouched() {
        let (mut s, g) = one_param([1.0, -0.5]);
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        opt.step(&mut s, &g, 0.1);
        assert_eq!(s.get(s.id("w").unwrap()), &arr1(&[1.0, -0.5]).into_dyn());
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = |c: AdamConfig| c.validate().unwrap_err().field;
        let d = AdamConfig::default();
        assert!(d.validate().is_ok());
        assert_eq!(
            bad(AdamConfig {
                lr: -1e-3,
                ..d.clone()
            }),
            "lr"
        );
        assert_eq!(
            bad(AdamConfig {
                lr: f64::NAN,
                ..d.clone()
            }),
            "lr"
        );
        assert_eq!(
            bad(AdamConfig {
                beta1: 1.0,
                ..d.clone()
            }),
            "beta1"
        );
        assert_eq!(
            bad(AdamConfig {
                beta1: -0.1,
                ..d.clone()
            }),
            "beta1"
        );
        assert_eq!(
            bad(AdamConfig {
                beta2: 1.0,
                ..d.clone()
            }),
            "beta2"
        );
        assert_eq!(
            bad(AdamConfig {
                beta2: f64::NAN,
                ..d.clone()
            }),
            "beta2"
        );
        assert_eq!(
            bad(AdamConfig {
                eps: 0.0,
                ..d.clone()
            }),
            "eps"
        );
        assert_eq!(
            bad(AdamConfig {
                eps: -1e-8,
                ..d.clone()
            }),
            "eps"
        );
        assert_eq!(
            bad(AdamConfig {
                weight_decay: -0.1,
                ..d.clone()
            }),
            "weight_decay"
        );
        assert_eq!(
            bad(AdamConfig {
                weight_decay: f64::INFINITY,
                ..d.clone()
            }),
            "weight_decay"
        );
        assert!(
            Adam::<f64>::new(AdamConfig {
                eps: 0.0,
                ..d.clone()
            })
            .is_err()
        );
        assert!(
            Adam::<f64>::from_state(
                AdamConfig { beta1: 2.0, ..d },
                AdamState {
                    step: 0,
                    m: ParamStore::new().zeros_like(),
                    v: ParamStore::new().zeros_like(),
                }
            )
            .is_err()
        );
    }

    #[test]
    #[should_panic(expected = "Adam's m of parameter `w` has shape [3]")]
    fn restored_state_of_the_wrong_shape_panics() {
        let (mut s, g) = one_param([1.0, 2.0]);
        let mut other = ParamStore::<f64>::new();
        other.add("w", ArrayD::zeros(ndarray::IxDyn(&[3])));
        let state = AdamState {
            step: 1,
            m: other.zeros_like(),
            v: other.zeros_like(),
        };
        Adam::from_state(AdamConfig::default(), state)
            .unwrap()
            .step(&mut s, &g, 0.1);
    }

    /// The update kernel gives the same bits through the widest wrapper this CPU has (AVX-512 or
    /// AVX2) as compiled for the baseline target, with and without weight decay.
    #[test]
    fn the_wide_update_is_bit_identical_to_the_baseline() {
        use crate::kernels::simd::{self, Kernel};
        let n = 1003;
        let at = |i: usize, seed: u32| {
            let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
            x as f32 / (1u32 << 24) as f32 - 0.5
        };
        for weight_decay in [None, Some(1e-2f32)] {
            let k = Constants {
                step_size: 0.01f32,
                bias_correction2_sqrt: 0.0447,
                beta1: 0.9,
                beta2: 0.999,
                one_minus_beta1: 0.1,
                one_minus_beta2: 0.001,
                eps: 1e-8,
                weight_decay,
            };
            let g: Vec<f32> = (0..n).map(|i| at(i, 1)).collect();
            let fresh = || -> [Vec<f32>; 3] {
                [0, 2, 3].map(|seed| (0..n).map(|i| at(i, seed).abs() * (seed as f32)).collect())
            };
            let ([mut p1, mut m1, mut v1], [mut p2, mut m2, mut v2]) = (fresh(), fresh());
            <Update as Kernel<_>>::run((&k, &mut p1[..], &g[..], &mut m1[..], &mut v1[..]));
            simd::wider_kernel::<Update, _>((&k, &mut p2[..], &g[..], &mut m2[..], &mut v2[..]));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p1), bits(&p2));
            assert_eq!((bits(&m1), bits(&v1)), (bits(&m2), bits(&v2)));
        }
    }

    /// A parameter large enough to be split over threads (`with_threads`) is updated to the
    /// same bits as on one thread.
    #[test]
    fn a_split_update_is_bit_identical() {
        let n = crate::kernels::threads::PARALLEL_ELEMENTS + 5;
        let values = |seed: u32| -> ArrayD<f32> {
            ArrayD::from_shape_fn(ndarray::IxDyn(&[n]), |i| {
                let x = (i[0] as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                x as f32 / (1u32 << 24) as f32 - 0.5
            })
        };
        let run = |threads: usize| {
            let mut s = crate::ParamStore::<f32>::new();
            s.add("w", values(1));
            let mut g = s.zeros_like();
            let mut opt = Adam::new(AdamConfig::default()).unwrap();
            crate::with_threads(threads, || {
                for seed in 2..4 {
                    let id = g.iter().next().unwrap().0;
                    g.get_mut(id).assign(&values(seed));
                    opt.step(&mut s, &g, 0.01);
                }
            });
            s.get(s.id("w").unwrap()).mapv(f32::to_bits)
        };
        assert_eq!(run(1), run(3));
    }
}
