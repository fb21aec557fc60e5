//! Element-wise ops. `add`, `sub` and `mul` broadcast like NumPy (trailing axes aligned, size-1
//! axes stretched); their backward sums the gradient back down to each operand's shape.

use ndarray::{ArrayD, Axis, Dimension, IxDyn, Zip};

use super::accumulate::{accumulate, accumulate_unbroadcast, accumulate_view, accumulate_zip};
use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::graph::Graph;
use super::op::Op;
use super::var::Var;
use crate::Scalar;
use crate::kernels::simd;

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
fn broadcast_shape(a: &[usize], b: &[usize], op: &str) -> IxDyn {
    let n = a.len().max(b.len());
    // IxDyn keeps up to four axes inline: no allocation for the tape's shapes.
    let mut shape = IxDyn::zeros(n);
    for i in 0..n {
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
        shape[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => panic!("{op}: shapes {a:?} and {b:?} do not broadcast"),
        };
    }
    shape
}

impl<T: Scalar> Graph<T> {
    /// `f(a)` element by element into the next node's (reused) buffer.
    fn unary(&mut self, a: Var, f: impl Fn(T) -> T) -> ArrayD<T> {
        let mut y = self.buffer(0, self.value(a).raw_dim());
        let ys = y.as_slice_mut().expect("buffers are in standard layout");
        let xs = self
            .value(a)
            .as_slice()
            .expect("tape values are in standard layout");
        simd::wide(|| {
            for (y, &x) in ys.iter_mut().zip(xs) {
                *y = f(x);
            }
        });
        y
    }

    /// `f(a, b)` element by element with broadcasting, into the next node's (reused) buffer;
    /// over flat slices when the shapes are equal.
    #[track_caller]
    fn binary(&mut self, a: Var, b: Var, name: &str, f: impl Fn(T, T) -> T) -> ArrayD<T> {
        if self.shape(a) == self.shape(b) {
            let mut y = self.buffer(0, self.value(a).raw_dim());
            let ys = y.as_slice_mut().expect("buffers are in standard layout");
            let (av, bv) = (self.value(a), self.value(b));
            let xs = av.as_slice().expect("tape values are in standard layout");
            let zs = bv.as_slice().expect("tape values are in standard layout");
            simd::wide(|| {
                for ((y, &x), &z) in ys.iter_mut().zip(xs).zip(zs) {
                    *y = f(x, z);
                }
            });
            return y;
        }
        let shape = broadcast_shape(self.shape(a), self.shape(b), name);
        let mut y = self.buffer(0, shape);
        let av = self.value(a).broadcast(y.raw_dim()).expect("checked");
        let bv = self.value(b).broadcast(y.raw_dim()).expect("checked");
        Zip::from(&mut y)
            .and(&av)
            .and(&bv)
            .for_each(|y, &x, &z| *y = f(x, z));
        y
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
        let y = self.unary(a, |x| s * x + c);
        self.push(y, Op::Affine { a, scale: s })
    }

    /// Hyperbolic tangent.
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn tanh(&mut self, a: Var) -> Var {
        let y = self.unary(a, T::tanh_act);
        self.push(y, Op::Tanh(a))
    }

    /// Logistic sigmoid σ(x) = 1 / (1 + e^(−x)), evaluated without overflow for large |x|.
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn sigmoid(&mut self, a: Var) -> Var {
        let y = self.unary(a, T::sigmoid_act);
        self.push(y, Op::Sigmoid(a))
    }

    /// Rectified linear unit max(x, 0).
    ///
    /// # Shapes
    /// `a: [...]` → same.
    pub fn relu(&mut self, a: Var) -> Var {
        let y = self.unary(a, |x| x.max(T::zero()));
        self.push(y, Op::Relu(a))
    }
}

/// Backward of `a + sign · b`.
pub(crate) fn add_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    b: Var,
    sign: T,
    grads: &mut GradSlots<T>,
) {
    for (v, scale) in [(a, T::one()), (b, sign)] {
        if !ctx.wants(v) {
            continue;
        }
        let dim = ctx.value(v).raw_dim();
        if scale == T::one() && dim.slice() == ctx.grad.shape() {
            accumulate_view(grads, v, ctx.grad.view());
        } else {
            accumulate_unbroadcast(grads, v, &dim, ctx.grad, scale);
        }
    }
}

pub(crate) fn mul_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, b: Var, grads: &mut GradSlots<T>) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    for (target, other) in [(a, bv), (b, av)] {
        if !ctx.wants(target) {
            continue;
        }
        let tv = ctx.value(target);
        if tv.shape() == ctx.grad.shape() && other.shape() == ctx.grad.shape() {
            let g = ctx.grad.as_slice().expect("standard layout");
            let o = other
                .as_slice()
                .expect("tape values are in standard layout");
            accumulate_zip(grads, target, &tv.raw_dim(), g, o, |g, x| g * x);
        } else {
            accumulate(grads, target, unbroadcast(ctx.grad * other, tv.shape()));
        }
    }
}

/// `f(incoming gradient, y)` accumulated into `a`'s slot, for an element-wise op whose output
/// is `y` (or whose input is `y`, for relu).
fn elementwise_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    y: &ArrayD<T>,
    grads: &mut GradSlots<T>,
    f: impl Fn(T, T) -> T,
) {
    if ctx.wants(a) {
        let g = ctx.grad.as_slice().expect("standard layout");
        let ys = y.as_slice().expect("tape values are in standard layout");
        accumulate_zip(grads, a, &ctx.value(a).raw_dim(), g, ys, f);
    }
}

pub(crate) fn affine_backward<T: Scalar>(
    ctx: &Ctx<'_, T>,
    a: Var,
    scale: T,
    grads: &mut GradSlots<T>,
) {
    elementwise_backward(ctx, a, ctx.grad, grads, |g, _| g * scale);
}

/// d tanh = 1 − y².
pub(crate) fn tanh_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut GradSlots<T>) {
    elementwise_backward(ctx, a, ctx.output(), grads, |g, y| g * (T::one() - y * y));
}

/// d σ = y (1 − y).
pub(crate) fn sigmoid_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut GradSlots<T>) {
    elementwise_backward(ctx, a, ctx.output(), grads, |g, y| g * y * (T::one() - y));
}

/// d relu = 1 where the input was positive (0 at exactly 0, as PyTorch).
pub(crate) fn relu_backward<T: Scalar>(ctx: &Ctx<'_, T>, a: Var, grads: &mut GradSlots<T>) {
    elementwise_backward(ctx, a, ctx.value(a), grads, |g, x| {
        if x > T::zero() { g } else { T::zero() }
    });
}
