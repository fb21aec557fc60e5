//! The weight gradient of `linear`: one sum over every `linear` that used the weight. A weight
//! shared over T steps gets `δW = Σ_t x_tᵀ δy_t`, its terms taken in the order backward reached
//! them, so the sums (and bits) are those of one β = 1 product per step. Where the terms are
//! shallow next to δW (an LSTM's 32 batch rows against a 1064-row weight), the sum is made when
//! the weight's own node is reached, by [`Scalar::mat_mul_sum`], which keeps each tile of δW in
//! cache across the T terms instead of reading and writing all of δW T times. Deep terms (the
//! RMC's 640 rows against a width of 64) are multiplied as soon as each δy is made, while it is
//! still in cache, into a sum that becomes the gradient at the weight's node ([`WeightGrads`]).
//! (A weight that some other op also reads gets that op's gradient first and the `linear` terms
//! after it: the same sum, possibly rounded in another order.)

use ndarray::{ArrayD, ArrayView2};

use super::buffers::GradSlots;
use super::ctx::Ctx;
use super::layout::as_matrix;
use super::node::Node;
use super::row_subset::RowSubset;
use super::var::Var;
use crate::Scalar;
use crate::kernels::simd;

/// The `linear` terms `(x, y)` of weight gradients not yet summed, by weight.
///
/// Terms that are deep next to the gradient (x's rows M at least twice its width I, so δy is at
/// least twice the size of δW: the RMC of config C's 512–640 rows of slots × batch against widths
/// of 64) are multiplied as soon as backward has their δy, while δy is still in cache, into a sum
/// kept here, which becomes the weight's gradient when its node is reached (summed at the end, they
/// would read δy back from memory). They are multiplied in the order of the deferred sum, so the
/// bits are the same. Other terms wait for the weight's node and [`Scalar::mat_mul_sum`], which
/// keeps δW's tiles in cache across them: an LSTM's 32 rows against a 1064-row weight, and the RMC
/// of config A (288 rows against 256, δW as large as δy). Measurements: see PERFORMANCE.md, section
/// "Design notes moved from the source".
pub(crate) struct WeightGrads<T> {
    /// Each weight with its terms, in the order backward visited the `linear` nodes.
    pending: Vec<Pending<T>>,
    /// Emptied term lists, kept for the next weights (no allocation once warm).
    spare: Vec<Vec<Term>>,
}

impl<T> Default for WeightGrads<T> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl<T> std::fmt::Debug for WeightGrads<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightGrads")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// One term `xᵀ δy` of a weight's gradient, over rows `rows` of x and δy: x, the `linear` node y,
/// and whether x is zero (the term is a matrix of +0).
#[derive(Debug, Clone, Copy)]
struct Term {
    x: Var,
    y: Var,
    zero: bool,
    rows: (usize, usize),
}

impl Term {
    /// `(x[rows]ᵀ, δy[rows])`.
    ///
    /// # Shapes
    /// `x: [M, I]`, `dy: [M, O]` → `([I, rows], [rows, O])`.
    fn operands<'a, T>(
        self,
        x: &'a ArrayD<T>,
        dy: &'a ArrayD<T>,
    ) -> (ArrayView2<'a, T>, ArrayView2<'a, T>) {
        let rows = ndarray::s![self.rows.0..self.rows.1, ..];
        (
            as_matrix(x).slice_move(rows).reversed_axes(),
            as_matrix(dy).slice_move(rows),
        )
    }
}

/// A weight's terms so far.
struct Pending<T> {
    w: Var,
    terms: Vec<Term>,
    /// Whether the terms are multiplied as they come (decided by the first, see [`WeightGrads`]).
    eager: bool,
    /// When eager: the sum of `terms[..done]`, once a term was multiplied.
    sum: Option<ArrayD<T>>,
    done: usize,
}

impl<T: Scalar> WeightGrads<T> {
    /// Notes that `w`'s gradient gets the term `xᵀ δy` of the `linear` node being visited (`δy` =
    /// `ctx.grad`), and multiplies it now when `w`'s terms are eager. A zero term waits: the terms
    /// after the last non-zero one are added as +0 at the end, as [`sum_pending`](Self::sum_pending)
    /// does; the ones before it are multiplied with it, in order.
    pub(crate) fn record(
        &mut self,
        ctx: &Ctx<'_, T>,
        w: Var,
        (x, zero, subset): (Var, bool, Option<RowSubset>),
        grads: &mut GradSlots<T>,
    ) {
        let y = Var(ctx.out);
        let (m, width) = as_matrix(ctx.value(x)).dim();
        let i = match self.pending.iter().position(|p| p.w == w) {
            Some(i) => i,
            None => {
                let terms = self.spare.pop().unwrap_or_default();
                self.pending.push(Pending {
                    w,
                    terms,
                    eager: 2 * width <= m,
                    sum: None,
                    done: 0,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        let term = |rows| Term { x, y, zero, rows };
        match subset {
            // One term per depth block of the taller matrix: the GEMM starts each from zero
            // and adds it to the sum, as it did each block of the taller product.
            Some(subset) => p.terms.extend(subset.depth_blocks(m).map(term)),
            None => p.terms.push(term((0, m))),
        }
        if !p.eager || zero {
            return;
        }
        let dim = ctx.value(w).raw_dim();
        let sum = p.sum.get_or_insert_with(|| grads.take_spare(w, &dim));
        let mut dw = sum.view_mut().into_dimensionality().expect("2-d weight"); // [I, O]
        for (s, &t) in p.terms.iter().enumerate().skip(p.done) {
            let dy = if t.y == y {
                ctx.grad
            } else {
                grads
                    .get(t.y)
                    .expect("a linear node visited by backward has a gradient")
            };
            let (xt, dy) = t.operands(ctx.value(t.x), dy); // [I, rows], [rows, O]
            let beta = if s == 0 { T::zero() } else { T::one() };
            T::mat_mul(&xt, &dy, beta, &mut dw, None);
        }
        p.done = p.terms.len();
    }

    /// Removes and returns `w`'s terms, if any.
    fn take(&mut self, w: Var) -> Option<Pending<T>> {
        let i = self.pending.iter().position(|p| p.w == w)?;
        Some(self.pending.swap_remove(i))
    }

    /// Forgets every pending term (keeps the lists).
    pub(crate) fn clear(&mut self) {
        for mut p in self.pending.drain(..) {
            p.terms.clear();
            self.spare.push(p.terms);
        }
    }

    /// Sums the pending terms of `w`'s gradient into its slot (nothing if none): called when
    /// backward reaches `w`'s node, after every reader of `w` was visited.
    ///
    /// Zero terms at the end of the list (an LSTM's first step, visited last) are not
    /// multiplied out: adding a matrix of +0 leaves each element as it is, −0 aside, which
    /// becomes +0; the sum of the other terms gets just that (`+ 0`), or is +0 if there are
    /// none. Zero terms elsewhere are multiplied like any other (the same bits either way).
    ///
    /// Eager terms (see [`WeightGrads`]) were summed already; that sum is the gradient when no
    /// other op wrote into w's slot. Otherwise (a weight some other op also reads) the terms are
    /// summed again here, after that op's gradient, as for deferred terms.
    pub(crate) fn sum_pending(&mut self, w: Var, nodes: &[Node<T>], grads: &mut GradSlots<T>) {
        let Some(Pending {
            mut terms,
            sum,
            done,
            ..
        }) = self.take(w)
        else {
            return;
        };
        match sum {
            Some(mut sum) if grads.get(w).is_none() => {
                // terms[done..] are zero terms after the last non-zero one.
                if done < terms.len() {
                    add_zero(&mut sum);
                }
                grads.fill_empty(w, sum);
            }
            _ => sum_terms(w, &terms, nodes, grads),
        }
        terms.clear();
        self.spare.push(terms);
    }
}

/// `w`'s gradient += the sum of `terms` (the deferred sum of
/// [`sum_pending`](WeightGrads::sum_pending)).
fn sum_terms<T: Scalar>(w: Var, terms: &[Term], nodes: &[Node<T>], grads: &mut GradSlots<T>) {
    let computed = terms.len() - terms.iter().rev().take_while(|t| t.zero).count();
    let dim = nodes[w.0].value.raw_dim();
    let (mut slot, fresh) = grads.take_or_fresh(w, &dim);
    {
        let grads = &*grads;
        let term = |s: usize| {
            let t: Term = terms[s];
            let dy = grads
                .get(t.y)
                .expect("a linear node visited by backward has a gradient");
            t.operands(&nodes[t.x.0].value, dy) // [I, rows], [rows, O]
        };
        let mut dw = slot.view_mut().into_dimensionality().expect("2-d weight"); // [I, O]
        let beta = if fresh { T::zero() } else { T::one() };
        T::mat_mul_sum(computed, &term, beta, &mut dw);
        if computed < terms.len() {
            add_zero(&mut slot);
        }
    }
    grads.set(w.0, slot);
}

/// `g += 0` element by element: the sum's share of zero terms (a matrix of +0), which turns −0
/// into +0 and leaves every other value as it is.
fn add_zero<T: Scalar>(g: &mut ArrayD<T>) {
    let g = g.as_slice_mut().expect("gradient slots are standard");
    simd::wide(|| g.iter_mut().for_each(|g| *g += T::zero()));
}
