//! Every tape op against central finite differences in f64 (ε 1e-6, atol 1e-5, rtol 1e-3).
//!
//! Shapes are small but distinct per axis so a transposed or swapped axis changes the answer.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use relational_rnn::autodiff::gradcheck::{Tolerance, check_inputs};
use relational_rnn::{Graph, Var};

fn randn(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || StandardNormal.sample(&mut rng))
}

/// The inputs as f32 leaves of `g`.
fn f32_inputs(g: &mut Graph<f32>, inputs: &[ArrayD<f64>]) -> Vec<Var> {
    inputs
        .iter()
        .map(|a| g.input(a.mapv(|x| x as f32)))
        .collect()
}

/// The bits of `y`'s value and of the gradient of each of `inputs`, after a backward pass.
fn value_and_grad_bits(g: &Graph<f32>, y: Var, inputs: &[Var]) -> Vec<u32> {
    let mut bits: Vec<u32> = g.value(y).iter().map(|x| x.to_bits()).collect();
    for &p in inputs {
        bits.extend(g.grad(p).expect("a gradient").iter().map(|x| x.to_bits()));
    }
    bits
}

#[track_caller]
fn assert_grads(f: impl Fn(&mut Graph<f64>, &[Var]) -> Var, inputs: &[ArrayD<f64>]) {
    let report = check_inputs(f, inputs, Tolerance::default());
    assert!(report.checked > 0, "nothing was checked");
    assert!(report.passed(), "{report}");
}

#[test]
fn linear_with_and_without_bias() {
    let inputs = [randn(&[3, 2, 5], 1), randn(&[5, 4], 2), randn(&[4], 3)];
    assert_grads(|g, v| g.linear(v[0], v[1], Some(v[2])), &inputs);
    assert_grads(|g, v| g.linear(v[0], v[1], None), &inputs[..2]);
}

/// `linear_plus` (the LSTM's gates: projected input + recurrent product) in f64, and in f32 the
/// same bits, forward and backward, as the two ops it fuses; the weight is shared by two steps so
/// that its gradient sums two terms.
#[test]
fn linear_plus_matches_add_of_linear() {
    let inputs = [
        randn(&[3, 4], 7),
        randn(&[3, 5], 8),
        randn(&[5, 4], 9),
        randn(&[4], 10),
    ];
    assert_grads(|g, v| g.linear_plus(v[0], v[1], v[2], Some(v[3])), &inputs);
    assert_grads(|g, v| g.linear_plus(v[0], v[1], v[2], None), &inputs[..3]);

    let run = |fused: bool| {
        let mut g = Graph::<f32>::new();
        let v = f32_inputs(&mut g, &inputs);
        let step = |g: &mut Graph<f32>, h: Var| {
            if fused {
                g.linear_plus(v[0], h, v[2], Some(v[3]))
            } else {
                let from_h = g.linear(h, v[2], Some(v[3]));
                g.add(v[0], from_h)
            }
        };
        let y1 = step(&mut g, v[1]);
        let h = g.tanh(y1);
        let h = g.matmul(h, v[2], true); // [3, 5], the next step's input
        let y2 = step(&mut g, h);
        let loss = g.sum(y2);
        g.backward(loss);
        value_and_grad_bits(&g, y2, &v)
    };
    assert_eq!(run(true), run(false));
}

/// `linear_plus_block` (an LSTM step's gates from the stack of all T input projections) in f64,
/// and in f32 the same bits, forward and backward, as `linear_plus` of the selected block, over
/// two steps reading blocks 2 and 0 of one stack (checked to fail with the gradient sent to
/// block 0 always).
#[test]
fn linear_plus_block_matches_select_then_linear_plus() {
    let inputs = [
        randn(&[3, 4, 5], 21), // the stack [N, M, O]
        randn(&[4, 6], 22),    // x [M, I]
        randn(&[6, 5], 23),    // w [I, O]
        randn(&[5], 24),       // b [O]
    ];
    assert_grads(
        |g, v| g.linear_plus_block(v[0], 1, v[1], v[2], Some(v[3])),
        &inputs,
    );
    let run = |fused: bool| {
        let mut g = Graph::<f32>::new();
        let v = f32_inputs(&mut g, &inputs);
        let step = |g: &mut Graph<f32>, block: usize, x: Var| {
            if fused {
                g.linear_plus_block(v[0], block, x, v[2], Some(v[3]))
            } else {
                let a = g.select(v[0], 0, block);
                g.linear_plus(a, x, v[2], Some(v[3]))
            }
        };
        let y1 = step(&mut g, 2, v[1]);
        let h = g.tanh(y1); // [4, 5]
        let h = g.matmul(h, v[2], true); // [4, 6], the next step's input
        let y2 = step(&mut g, 0, h);
        let loss = g.sum(y2);
        g.backward(loss);
        value_and_grad_bits(&g, y2, &v)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn batched_matmul_plain_and_transposed() {
    let a = randn(&[2, 3, 4, 5], 4); // [G.., M, K]
    assert_grads(
        |g, v| g.matmul(v[0], v[1], false),
        &[a.clone(), randn(&[2, 3, 5, 6], 5)],
    );
    assert_grads(
        |g, v| g.matmul(v[0], v[1], true),
        &[a, randn(&[2, 3, 6, 5], 6)],
    );
}

#[test]
fn broadcasting_add_sub_mul() {
    let a = randn(&[3, 4, 5], 7);
    for b_shape in [&[3, 4, 5][..], &[5], &[3, 1, 5], &[4, 1]] {
        let b = randn(b_shape, 8);
        assert_grads(|g, v| g.add(v[0], v[1]), &[a.clone(), b.clone()]);
        assert_grads(|g, v| g.sub(v[0], v[1]), &[a.clone(), b.clone()]);
        assert_grads(|g, v| g.mul(v[0], v[1]), &[a.clone(), b.clone()]);
        // Broadcast on the left operand too.
        assert_grads(|g, v| g.add(v[1], v[0]), &[a.clone(), b.clone()]);
        assert_grads(|g, v| g.sub(v[1], v[0]), &[a.clone(), b.clone()]);
        assert_grads(|g, v| g.mul(v[1], v[0]), &[a.clone(), b]);
    }
}

#[test]
fn affine_and_activations() {
    let x = randn(&[3, 7], 9);
    assert_grads(|g, v| g.affine(v[0], -1.5, 0.25), std::slice::from_ref(&x));
    assert_grads(|g, v| g.tanh(v[0]), std::slice::from_ref(&x));
    assert_grads(|g, v| g.sigmoid(v[0]), &[x.clone().mapv(|t| 3.0 * t)]);
    // Keep relu inputs away from the kink at 0, where the derivative is undefined.
    let away = x.mapv(|t| if t.abs() < 0.05 { t + 0.2 } else { t });
    assert_grads(|g, v| g.relu(v[0]), &[away]);
}

#[test]
fn softmax_over_last_axis() {
    assert_grads(|g, v| g.softmax(v[0]), &[randn(&[2, 3, 5], 10)]);
}

#[test]
fn layer_norm_over_last_axis() {
    let inputs = [
        randn(&[3, 4, 6], 11),
        randn(&[6], 12).mapv(|t| 1.0 + 0.3 * t),
        randn(&[6], 13),
    ];
    assert_grads(|g, v| g.layer_norm(v[0], v[1], v[2], 1e-5), &inputs);
}

/// `layer_norm_plus` (residual sum + LayerNorm) in f64 — including x given as both addends and x
/// read elsewhere before and after — and in f32 the same bits, forward and backward, as `add`
/// followed by `layer_norm`.
#[test]
fn layer_norm_plus_matches_add_then_layer_norm() {
    let inputs = [
        randn(&[3, 4, 6], 17),
        randn(&[3, 4, 6], 18),
        randn(&[6], 19).mapv(|t| 1.0 + 0.3 * t),
        randn(&[6], 20),
    ];
    assert_grads(
        |g, v| g.layer_norm_plus(v[0], v[1], v[2], v[3], 1e-5),
        &inputs,
    );
    assert_grads(
        |g, v| g.layer_norm_plus(v[0], v[0], v[2], v[3], 1e-5),
        &inputs,
    );
    // Both addends already hold a gradient when the fused node is reached.
    assert_grads(
        |g, v| {
            let y = g.layer_norm_plus(v[0], v[1], v[2], v[3], 1e-5);
            let (a, b) = (g.tanh(v[0]), g.sigmoid(v[1]));
            let ab = g.mul(a, b);
            g.mul(y, ab)
        },
        &inputs,
    );

    let run = |fused: bool, same: bool| {
        let mut g = Graph::<f32>::new();
        let v = f32_inputs(&mut g, &inputs);
        let plus = if same { v[0] } else { v[1] };
        let pre = g.tanh(v[0]); // a reader of x on the tape before the fused node
        let y = if fused {
            g.layer_norm_plus(v[0], plus, v[2], v[3], 1e-5)
        } else {
            let s = g.add(v[0], plus);
            g.layer_norm(s, v[2], v[3], 1e-5)
        };
        let post = g.sigmoid(v[1]); // and one after it
        let y = g.mul(y, pre);
        let y = g.mul(y, post);
        let loss = g.sum(y);
        g.backward(loss);
        value_and_grad_bits(&g, y, &v)
    };
    for same in [false, true] {
        assert_eq!(run(true, same), run(false, same), "x given twice: {same}");
    }
}

#[test]
fn concat_slice_reshape_permute_stack_sum() {
    let (a, b) = (randn(&[2, 3, 4], 14), randn(&[2, 5, 4], 15));
    assert_grads(|g, v| g.concat(&[v[0], v[1]], 1), &[a.clone(), b.clone()]);
    // A part given twice (its gradient slot is added to, not written, the second time), and the
    // last axis (blocks of one row).
    assert_grads(
        |g, v| g.concat(&[v[0], v[1], v[0]], 1),
        &[a.clone(), b.clone()],
    );
    assert_grads(|g, v| g.concat(&[v[0], v[0]], 2), std::slice::from_ref(&a));
    assert_grads(|g, v| g.slice(v[0], 2, 1, 3), std::slice::from_ref(&a));
    assert_grads(|g, v| g.slice(v[0], 1, 1, 3), std::slice::from_ref(&b));
    assert_grads(|g, v| g.reshape(v[0], &[6, 4]), std::slice::from_ref(&a));
    assert_grads(|g, v| g.permute(v[0], &[2, 0, 1]), std::slice::from_ref(&a));
    assert_grads(
        |g, v| g.stack(&[v[0], v[1]], 1),
        &[a.clone(), randn(&[2, 3, 4], 16)],
    );
    assert_grads(|g, v| g.sum(v[0]), &[a]);
}

#[test]
fn weighted_softmax_cross_entropy() {
    let logits = randn(&[5, 4], 17);
    let targets = [0, 3, 1, 1, 2];
    assert_grads(
        |g, v| g.softmax_cross_entropy(v[0], &targets, None),
        std::slice::from_ref(&logits),
    );
    let weights = [1.0, 0.0, 2.0, 0.5, 0.0];
    assert_grads(
        |g, v| g.softmax_cross_entropy(v[0], &targets, Some(&weights)),
        &[logits],
    );
}

#[test]
fn shared_node_gradients_add_up() {
    // y = tanh(x) ⊙ x uses x twice: both paths must reach x.
    assert_grads(
        |g, v| {
            let t = g.tanh(v[0]);
            g.mul(t, v[0])
        },
        &[randn(&[4, 3], 18)],
    );
}

#[test]
fn the_checker_catches_a_wrong_gradient() {
    // A deliberately wrong "gradient": the checker must report failures, or it proves nothing.
    // Stopping the gradient through one path (by using a constant copy) breaks d/dx.
    let report = check_inputs(
        |g, v| {
            let frozen = g.constant(g.value(v[0]).clone());
            g.mul(v[0], frozen)
        },
        &[randn(&[3, 2], 19)],
        Tolerance::default(),
    );
    assert!(!report.passed(), "a wrong gradient passed: {report}");
}

#[test]
fn cross_entropy_value_matches_hand_computation() {
    let mut g = Graph::<f64>::new();
    let x = g.constant(ndarray::arr2(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]).into_dyn());
    let loss = g.softmax_cross_entropy(x, &[2, 1], None);
    let row0 = -(3f64.exp() / (1f64.exp() + 2f64.exp() + 3f64.exp())).ln();
    let row1 = 3f64.ln();
    assert!((g.scalar(loss) - (row0 + row1) / 2.0).abs() < 1e-12);
}

#[test]
fn select_along_each_axis() {
    let a = randn(&[3, 4, 5], 40);
    for axis in 0..3 {
        assert_grads(
            |g, v| {
                let s0 = g.select(v[0], axis, 0);
                let s2 = g.select(v[0], axis, 2);
                g.mul(s0, s2) // two selects of one input accumulate into one gradient
            },
            std::slice::from_ref(&a),
        );
    }
}

#[test]
fn fused_lstm_cell_two_steps() {
    let (b, s) = (3, 5);
    // Gate pre-activations of two steps, and the initial cell state.
    let inputs = [
        randn(&[b, 4 * s], 41),
        randn(&[b, 4 * s], 42),
        randn(&[b, s], 43),
    ];
    assert_grads(
        |g, v| {
            let (h1, c1) = g.lstm_cell(v[0], v[2]);
            let (h2, c2) = g.lstm_cell(v[1], c1); // c' feeds the next step
            g.concat(&[h1, h2, c2], 1)
        },
        &inputs,
    );
}

#[test]
fn fused_lstm_cell_equals_the_composition() {
    let (b, s) = (2, 3);
    let gates = randn(&[b, 4 * s], 44);
    let c0 = randn(&[b, s], 45);
    let mut g = Graph::<f64>::new();
    let (gv, cv) = (g.constant(gates), g.constant(c0));
    let (h, c) = g.lstm_cell(gv, cv);
    let [i, f, gg, o] = [0, 1, 2, 3].map(|k| g.slice(gv, 1, k * s, (k + 1) * s));
    let (i, f, gg, o) = (g.sigmoid(i), g.sigmoid(f), g.tanh(gg), g.sigmoid(o));
    let keep = g.mul(f, cv);
    let write = g.mul(i, gg);
    let c_ref = g.add(keep, write);
    let tc = g.tanh(c_ref);
    let h_ref = g.mul(o, tc);
    for (fused, reference) in [(h, h_ref), (c, c_ref)] {
        let diff = (g.value(fused) - g.value(reference)).mapv(f64::abs);
        assert!(diff.iter().all(|&d| d < 1e-15), "{diff}");
    }
}

#[test]
fn packed_attention_output_and_weights() {
    // B 2, R 3, H 2, K 2, V 3: p is [B, R, H·(2K+V)] = [2, 3, 14].
    let p = randn(&[2, 3, 14], 46);
    assert_grads(
        |g, v| {
            let (out, weights) = g.packed_attention(v[0], 2, 2);
            // Read the weights too, so δA has a share from outside the op.
            let w = g.reshape(weights, &[2, 2 * 3 * 3]); // [B, H·R·R]
            let w = g.tanh(w);
            let out = g.reshape(out, &[2, 3 * 6]); // [B, R·H·V]
            g.concat(&[out, w], 1)
        },
        &[p],
    );
}

/// Outputs for the first rows only (the RMC's last block): finite differences in f64, and in
/// f32 the bits of the full attention's first rows, forward and backward, when the other rows'
/// output gradient is zero (+0 and −0 alike, as a layer norm's backward of a zero gradient
/// gives), on a tape whose recycled slots hold another pass's values. B 3, R 5, H 2, K 8, V 12
/// (a value row with a tail). Checked to fail with the value gradient summed over every row, and
/// with δA's rows past the outputs left unwritten.
#[test]
fn packed_attention_rows_equal_the_full_attention_first_rows() {
    let p = randn(&[2, 3, 14], 48);
    assert_grads(
        |g, v| {
            let (out, weights) = g.packed_attention_rows(v[0], 2, 2, 2);
            let w = g.reshape(weights, &[2, 2 * 3 * 3]);
            let w = g.tanh(w);
            let out = g.reshape(out, &[2, 2 * 6]); // [B, Rq·H·V]
            g.concat(&[out, w], 1)
        },
        &[p],
    );

    let (b, r, q, h, k, v) = (3, 5, 4, 2, 8, 12);
    let p = randn(&[b, r, h * (2 * k + v)], 49).mapv(|x| x as f32);
    let seed = randn(&[b, q, h * v], 50).mapv(|x| x as f32);
    let bits = |a: &ArrayD<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let run = |queries: usize| {
        // On a tape whose recycled slots hold another pass's gradients.
        let mut g = Graph::<f32>::new();
        let pv = g.input(p.clone());
        let (out, _) = g.packed_attention(pv, h, k);
        g.backward_with(out, randn(&[b, r, h * v], 51).mapv(|x| x as f32));
        g.clear();
        let pv = g.input(p.clone());
        let (out, weights) = g.packed_attention_rows(pv, h, k, queries);
        let mut d_out = ArrayD::<f32>::zeros(IxDyn(&[b, queries, h * v]));
        d_out
            .slice_mut(ndarray::s![.., ..q, ..])
            .assign(&seed.view().into_dimensionality::<ndarray::Ix3>().unwrap());
        if queries > q {
            // The dropped rows' gradient, +0 and −0.
            d_out
                .slice_mut(ndarray::s![.., q.., ..])
                .mapv_inplace(|_| -0.0);
            d_out[[0, q, 3]] = 0.0;
        }
        g.backward_with(out, d_out);
        let out_rows = g
            .value(out)
            .slice(ndarray::s![.., ..q, ..])
            .to_owned()
            .into_dyn();
        (
            bits(&out_rows),
            bits(g.value(weights)),
            bits(g.grad(weights).unwrap()),
            bits(g.grad(pv).unwrap()),
        )
    };
    let (cut, full) = (run(q), run(r));
    assert_eq!(cut.0, full.0, "outputs");
    assert_eq!(cut.1, full.1, "weights");
    assert_eq!(cut.2, full.2, "weights' gradient");
    assert_eq!(cut.3, full.3, "p's gradient");
}

#[test]
fn packed_attention_equals_the_composition() {
    use relational_rnn::nn::scaled_dot_product_attention;
    let (b, r, h, k, v) = (2, 4, 3, 2, 5);
    let mut g = Graph::<f64>::new();
    let p = g.constant(randn(&[b, r, h * (2 * k + v)], 47));
    let (out, weights) = g.packed_attention(p, h, k);
    // The unfused reference: split heads, slice q/k/v, attend, merge heads.
    let ph = g.reshape(p, &[b, r, h, 2 * k + v]);
    let ph = g.permute(ph, &[0, 2, 1, 3]); // [B, H, R, 2K+V]
    let q = g.slice(ph, 3, 0, k);
    let kk = g.slice(ph, 3, k, 2 * k);
    let vv = g.slice(ph, 3, 2 * k, 2 * k + v);
    let (o, a) = scaled_dot_product_attention(&mut g, q, kk, vv);
    let o = g.permute(o, &[0, 2, 1, 3]);
    let o = g.reshape(o, &[b, r, h * v]);
    for (fused, reference) in [(out, o), (weights, a)] {
        assert_eq!(g.shape(fused), g.shape(reference));
        let diff = (g.value(fused) - g.value(reference)).mapv(f64::abs);
        assert!(diff.iter().all(|&d| d < 1e-14), "{diff}");
    }
}

/// The RMC's fused gating (`rmc_gates`, `rmc_gated_update`) against finite differences in f64,
/// with finite and infinite gate biases.
#[test]
fn fused_rmc_gating() {
    let (b, n, d) = (2, 3, 4);
    let inputs = [
        randn(&[b, n, 2 * d], 31), // P
        randn(&[b, 2 * d], 32),    // p_x
        randn(&[b, n, d], 33),     // M̃
        randn(&[b, n, d], 34),     // M
    ];
    for (bi, bf) in [(0.0, 1.0), (-0.5, f64::INFINITY)] {
        assert_grads(
            |g, v| {
                let gates = g.rmc_gates(v[0], v[1], bi, bf);
                let m = g.rmc_gated_update(gates, v[2], v[3]);
                let gates_sq = g.mul(gates, gates); // a second reader of the gates
                let s = g.sum(gates_sq);
                let m = g.mul(m, v[3]); // M read twice
                let t = g.sum(m);
                g.add(s, t)
            },
            &inputs,
        );
    }
}

/// In f32 the fused gating gives the same bits, forward and backward, as the ops it replaced
/// (broadcast add, slices, bias shifts, sigmoids, tanh, products, sum), over two steps whose
/// memory feeds the next step's gates so that gradient slots accumulate (each step has its own
/// p_x, as in the model, where it is a fresh linear output).
#[test]
fn fused_rmc_gating_equals_the_composition() {
    let (b, n, d) = (3, 4, 19); // D = 19: vector bodies and scalar tails
    let inputs = [
        randn(&[b, n, 2 * d], 41), // P of step 1
        randn(&[b, 2 * d], 42),    // p_x of step 1
        randn(&[b, n, d], 43),     // M̃
        randn(&[b, n, d], 44),     // M
        randn(&[d, 2 * d], 45),    // W: step 2's P = tanh(M') W
        randn(&[b, 2 * d], 46),    // p_x of step 2
    ];
    let (bi, bf) = (-0.25, 1.0);
    let run = |fused: bool| {
        let mut g = Graph::<f32>::new();
        let v = f32_inputs(&mut g, &inputs);
        let step = |g: &mut Graph<f32>, p: Var, p_x: Var, memory: Var| {
            if fused {
                let gates = g.rmc_gates(p, p_x, bi, bf);
                (g.rmc_gated_update(gates, v[2], memory), gates)
            } else {
                let gx = g.reshape(p_x, &[b, 1, 2 * d]);
                let gates = g.add(p, gx);
                let i = g.slice(gates, 2, 0, d);
                let f = g.slice(gates, 2, d, 2 * d);
                let i = g.affine(i, 1.0, bi);
                let f = g.affine(f, 1.0, bf);
                let i = g.sigmoid(i);
                let f = g.sigmoid(f);
                let t = g.tanh(v[2]);
                let write = g.mul(i, t);
                let keep = g.mul(f, memory);
                let both = g.concat(&[i, f], 2);
                (g.add(write, keep), both)
            }
        };
        let (m1, gates1) = step(&mut g, v[0], v[1], v[3]);
        let tm = g.tanh(m1);
        let p2 = g.linear(tm, v[4], None);
        let (m2, _) = step(&mut g, p2, v[5], m1);
        let loss = g.sum(m2);
        g.backward(loss);
        let bits = |a: &ArrayD<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let values = [m1, gates1, m2].map(|x| bits(g.value(x)));
        let grads = v.iter().map(|&p| bits(g.grad(p).expect("a gradient")));
        values.into_iter().chain(grads).collect::<Vec<_>>()
    };
    let (fused, unfused) = (run(true), run(false));
    let names = [
        "M'1", "gates1", "M'2", "dP", "dp_x1", "dM~", "dM", "dW", "dp_x2",
    ];
    for ((name, a), b) in names.iter().zip(&fused).zip(&unfused) {
        assert_eq!(a, b, "{name}: fused and unfused differ");
    }
}
