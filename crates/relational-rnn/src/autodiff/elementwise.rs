//! Element-wise ops. `add`, `sub` and `mul` broadcast like NumPy (trailing axes aligned, size-1
//! axes stretched); their backward sums the gradient back down to each operand's shape.

use ndarray::{ArrayD, Axis, Zip};

use super::graph::{Graph, Var, accumulate, accumulate_view};
use super::op::{Ctx, Op};
use crate::Scalar;

/// `a` in standard (row-major) layout, copying only when needed.
pub(crate) fn standard<T: Scalar>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// `f` of every element; over the flat slice when `a` is contiguous, so the loop vectorises.
pub(crate) fn map_values<T: Scalar>(a: &ArrayD<T>, f: impl Fn(T) -> T) -> ArrayD<T> {
    match a.as_slice() {
        Some(s) => ArrayD::from_shape_vec(a.raw_dim(), s.iter().map(|&x| f(x)).collect())
            .expect("same length"),
        None => a.mapv(f),
    }
}

/// `f(a, b)` element by element for equally shaped `a` and `b` (flat slices when contiguous).
pub(crate) fn zip_values<T: Scalar>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    debug_assert_eq!(a.shape(), b.shape());
    match (a.as_slice(), b.as_slice()) {
        (Some(x), Some(y)) => ArrayD::from_shape_vec(
            a.raw_dim(),
            x.iter().zip(y).map(|(&x, &y)| f(x, y)).collect(),
        )
        .expect("same length"),
        _ => Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)),
    }
}

/// Sums `grad` over the axes that broadcasting stretched, giving an array of `shape`.
fn unbroadcast<T: Scalar>(grad: ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    if grad.shape() == shape {
        return grad;
    }
    let mut g = grad;
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (axis, &s) in shape.iter().enumerate() {
        if s == 1 && g.shape()[axis] != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    g
}

#[track_caller]
fn broadcast_shape(a: &[usize], b: &[usize], op: &str) -> Vec<usize> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let db = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => panic!("{op}: shapes {a:?} and {b:?} do not broadcast"),
            }
        })
        .collect()
}

impl<T: Scalar> Graph<T> {
    #[track_caller]
    fn binary(&mut self, a: Var, b: Var, name: &str, f: impl Fn(T, T) -> T) -> ArrayD<T> {
        let shape = broadcast_shape(self.shape(a), self.shape(b), name);
        let (av, bv) = (self.value(a), self.value(b));
        if av.shape() == bv.shape() {
            return zip_values(av, bv, f);
        }
        let av = av.broadcast(shape.clone()).expect("checked");
        let bv = bv.broadcast(shape).expect("checked");
        Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
    }

    /// `a + b` with broadcasting.
    ///
    /// # Shapes
    /// `a`, `b`: broadcast-compatible → the broadcast shape.
    #[track_caller]
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let y = self.binary(a, b, "add", |x, y| x + y);
        self.push(y, Op::Add(a, b))
    }

    /// `a − b` with broadcasting.
    ///
    /// # Shapes
    /// `a`, `b`: broadcast-compatible → the broadcast shape.
    #[track_caller]
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let y = self.binary(a, b, "sub", |x, y| x - y);
        self.push(y, Op::Sub(a, b))
    }

    /// `a ⊙ b` (element-wise product) with broadcasting.
    ///
    /// # Shapes
    /// `a`, `b`: broadcast-compatible → the broadcast shape.
    #[track_caller]
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let y = self.binary(a, b, "mul", |x, y| x * y);
        self.push(y, Op::Mul(a, b))
    }

    /// `scale · a + shift` with constant scalars (`1 − g` is `affine(g, −1, 1)`; a gate bias is
    /// `affine(x, 1, bias)`). Infinite `shift` is allowed: it saturates a following sigmoid.
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn affine(&mut self, a: Var, scale: f64, shift: f64) -> Var {
        let (s, c) = (T::from_f64_lossy(scale), T::from_f64_lossy(shift));
        let y = map_values(self.value(a), |x| s * x + c);
        self.push(y, Op::Affine { a, scale: s })
    }

    /// Hyperbolic tangent.
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn tanh(&mut self, a: Var) -> Var {
        let y = map_values(self.value(a), T::tanh_act);
        self.push(y, Op::Tanh(a))
    }

    /// Logistic sigmoid σ(x) = 1 / (1 + e^(−x)), evaluated without overflow for large |x|.
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn sigmoid(&mut self, a: Var) -> Var {
        let y = map_values(self.value(a), T::sigmoid_act);
        self.push(y, Op::Sigmoid(a))
    }

    /// Rectified linear unit max(x, 0).
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn relu(&mut self, a: Var) -> Var {
        let y = map_values(self.value(a), |x| x.max(T::zero()));
        self.push(y, Op::Relu(a))
    }
}

/// Backward of `a + sign · b`.
pub(crate) fn add_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    b: Var,
    sign: T,
    grads: &mut [Option<ArrayD<T>>],
) {
    if ctx.wants(a) {
        if ctx.grad.shape() == ctx.value(a).shape() {
            accumulate_view(grads, a, ctx.grad.view());
        } else {
            accumulate(
                grads,
                a,
                unbroadcast(ctx.grad.clone(), ctx.value(a).shape()),
            );
        }
    }
    if ctx.wants(b) {
        if sign == T::one() && ctx.grad.shape() == ctx.value(b).shape() {
            accumulate_view(grads, b, ctx.grad.view());
            return;
        }
        let mut gb = unbroadcast(ctx.grad.clone(), ctx.value(b).shape());
        if sign != T::one() {
            gb.mapv_inplace(|x| x * sign);
        }
        accumulate(grads, b, gb);
    }
}

pub(crate) fn mul_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    b: Var,
    grads: &mut [Option<ArrayD<T>>],
) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    let times = |other: &ArrayD<T>| {
        if other.shape() == ctx.grad.shape() {
            zip_values(ctx.grad, other, |g, x| g * x)
        } else {
            ctx.grad * other
        }
    };
    if ctx.wants(a) {
        let g = times(bv);
        accumulate(grads, a, unbroadcast(g, av.shape()));
    }
    if ctx.wants(b) {
        let g = times(av);
        accumulate(grads, b, unbroadcast(g, bv.shape()));
    }
}

pub(crate) fn affine_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    scale: T,
    grads: &mut [Option<ArrayD<T>>],
) {
    if ctx.wants(a) {
        accumulate(grads, a, map_values(ctx.grad, |g| g * scale));
    }
}

/// d tanh = 1 − y².
pub(crate) fn tanh_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut [Option<ArrayD<T>>]) {
    if ctx.wants(a) {
        let g = zip_values(ctx.grad, ctx.output(), |g, y| g * (T::one() - y * y));
        accumulate(grads, a, g);
    }
}

/// d σ = y (1 − y).
pub(crate) fn sigmoid_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    grads: &mut [Option<ArrayD<T>>],
) {
    if ctx.wants(a) {
        let g = zip_values(ctx.grad, ctx.output(), |g, y| g * y * (T::one() - y));
        accumulate(grads, a, g);
    }
}

/// d relu = 1 where the input was positive (0 at exactly 0, as PyTorch).
pub(crate) fn relu_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut [Option<ArrayD<T>>]) {
    if ctx.wants(a) {
        let g = zip_values(ctx.grad, ctx.value(a), |g, x| {
            if x > T::zero() { g } else { T::zero() }
        });
        accumulate(grads, a, g);
    }
}
