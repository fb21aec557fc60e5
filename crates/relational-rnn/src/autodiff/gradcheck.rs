//! Finite-difference gradient checking in f64.
//!
//! The analytic gradient of every op and model is compared with central differences
//! `(f(x + ε) − f(x − ε)) / 2ε`, element by element, with PyTorch's `gradcheck` defaults
//! (ε = 1e-6, atol = 1e-5, rtol = 1e-3): an element passes when
//! `|analytic − numeric| ≤ atol + rtol · |numeric|`.
//!
//! A computation with a non-scalar output is reduced to a scalar by a fixed random projection
//! `Σ out ⊙ R` (R drawn from a seeded RNG), so every output element gets a distinct weight and a
//! swapped index cannot cancel out.

use ndarray::ArrayD;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::graph::Graph;
use super::var::Var;
use crate::ParamStore;

/// Tolerances of a gradient check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Step of the central difference.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (times |numeric|).
    pub rtol: f64,
}

impl Default for Tolerance {
    /// PyTorch's `torch.autograd.gradcheck` defaults.
    fn default() -> Self {
        Self {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// The outcome of a check: the worst element found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// How many scalar entries were checked.
    pub checked: usize,
    /// Largest |analytic − numeric| over all entries.
    pub max_abs_error: f64,
    /// Where the largest error was, e.g. `input 1 [7]` or `param rmc.block0.qkv.weight [3]`.
    pub worst: String,
    /// Entries outside the tolerance: (place, analytic, numeric).
    pub failures: Vec<(String, f64, f64)>,
}

impl Report {
    /// Whether every entry was within tolerance.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries checked, max |analytic − numeric| = {:.3e} at {}",
            self.checked, self.max_abs_error, self.worst
        )?;
        for (place, a, n) in self.failures.iter().take(10) {
            write!(f, "\n  FAIL {place}: analytic {a:.9e}, numeric {n:.9e}")?;
        }
        if self.failures.len() > 10 {
            write!(f, "\n  … and {} more", self.failures.len() - 10)?;
        }
        Ok(())
    }
}

/// A fixed random projection for `shape`, so a vector output becomes a scalar loss.
fn projection(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape, || StandardNormal.sample(&mut rng))
}

/// Runs `f` on a fresh graph and reduces its output to a scalar; returns the graph, the input
/// vars and the loss var.
fn run<F>(f: &F, inputs: &[ArrayD<f64>], store: &ParamStore<f64>) -> (Graph<f64>, Vec<Var>, Var)
where
    F: Fn(&mut Graph<f64>, &ParamStore<f64>, &[Var]) -> Var,
{
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|a| g.input(a.clone())).collect();
    let out = f(&mut g, store, &vars);
    let loss = if g.value(out).len() == 1 {
        out
    } else {
        let r = g.constant(projection(g.shape(out), 0x5eed));
        let weighted = g.mul(out, r);
        g.sum(weighted)
    };
    (g, vars, loss)
}

/// Checks the gradients of `f` with respect to every element of `inputs` and of every parameter
/// in `store`.
///
/// `f` builds the computation on the graph it is given, from the input vars and parameters
/// (`g.param(store, id)`), and returns its output (any shape).
pub fn check<F>(f: F, inputs: &[ArrayD<f64>], store: &ParamStore<f64>, tol: Tolerance) -> Report
where
    F: Fn(&mut Graph<f64>, &ParamStore<f64>, &[Var]) -> Var,
{
    let (mut g, vars, loss) = run(&f, inputs, store);
    g.backward(loss);
    let mut analytic: Vec<(String, ArrayD<f64>)> = vars
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let grad = g
                .grad(v)
                .cloned()
                .unwrap_or_else(|| ArrayD::zeros(inputs[i].raw_dim()));
            (format!("input {i}"), grad)
        })
        .collect();
    let pgrads = g.param_grads(store);
    analytic.extend(
        store
            .iter()
            .map(|(id, name, _)| (format!("param {name}"), pgrads.get(id).clone())),
    );

    let eval = |inputs: &[ArrayD<f64>], store: &ParamStore<f64>| {
        let (g, _, loss) = run(&f, inputs, store);
        g.scalar(loss)
    };
    let mut report = Report {
        checked: 0,
        max_abs_error: 0.0,
        worst: String::from("nothing"),
        failures: Vec::new(),
    };
    let mut record = |place: String, a: f64, n: f64| {
        let err = (a - n).abs();
        report.checked += 1;
        if err > report.max_abs_error || report.checked == 1 {
            report.max_abs_error = err;
            report.worst.clone_from(&place);
        }
        // Written so that a NaN error counts as a failure.
        let within = err <= tol.atol + tol.rtol * n.abs();
        if !within {
            report.failures.push((place, a, n));
        }
    };

    let mut xs = inputs.to_vec();
    for (i, (name, grad)) in analytic.iter().take(inputs.len()).enumerate() {
        for j in 0..xs[i].len() {
            let orig = xs[i].as_slice().expect("standard layout")[j];
            xs[i].as_slice_mut().expect("standard layout")[j] = orig + tol.eps;
            let plus = eval(&xs, store);
            xs[i].as_slice_mut().expect("standard layout")[j] = orig - tol.eps;
            let minus = eval(&xs, store);
            xs[i].as_slice_mut().expect("standard layout")[j] = orig;
            let numeric = (plus - minus) / (2.0 * tol.eps);
            record(
                format!("{name} [{j}]"),
                grad.as_slice().expect("standard")[j],
                numeric,
            );
        }
    }
    let mut ps = store.clone();
    for ((id, _, _), (name, grad)) in store.iter().zip(analytic.iter().skip(inputs.len())) {
        for j in 0..store.get(id).len() {
            let orig = store.get(id).as_slice().expect("standard layout")[j];
            ps.get_mut(id).as_slice_mut().expect("standard layout")[j] = orig + tol.eps;
            let plus = eval(inputs, &ps);
            ps.get_mut(id).as_slice_mut().expect("standard layout")[j] = orig - tol.eps;
            let minus = eval(inputs, &ps);
            ps.get_mut(id).as_slice_mut().expect("standard layout")[j] = orig;
            let numeric = (plus - minus) / (2.0 * tol.eps);
            record(
                format!("{name} [{j}]"),
                grad.as_slice().expect("standard")[j],
                numeric,
            );
        }
    }
    report
}

/// [`check`] for a computation of its inputs only (no parameters).
pub fn check_inputs<F>(f: F, inputs: &[ArrayD<f64>], tol: Tolerance) -> Report
where
    F: Fn(&mut Graph<f64>, &[Var]) -> Var,
{
    check(|g, _, v| f(g, v), inputs, &ParamStore::new(), tol)
}
