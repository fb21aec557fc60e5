"""Independent NumPy forward of the RMC (no torch), used to verify golden files.

`verify(path)` re-runs the forward from the weights, inputs and initial memory stored in a golden file,
asserts every stored forward tensor matches to 1e-10, and checks every stored gradient against central
finite differences of loss = sum(final_memory * R).
Usage: python rmc_numpy.py [golden/*.safetensors]   (default: every file in golden/)
"""
import glob
import json
import os
import sys

import numpy as np
from safetensors import safe_open


def layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def lin(p, name, x):
    return x @ p[name + '.weight'] + p[name + '.bias']


def step(p, c, x, M, trace=None):
    """x [B,F], M [B,N,D] -> M' [B,N,D]. p: 'rmc.*' arrays, c: config dict."""
    H, V = c['num_heads'], c['head_size']
    K = c['key_size'] or V
    D = H * V
    x_hat = lin(p, 'rmc.input_proj', x)                             # [B,D]
    Z = np.concatenate([M, x_hat[:, None, :]], axis=1)              # [B,R,D], R = N+1
    B, R, _ = Z.shape
    for b in range(c['num_blocks']):
        pre = f'rmc.block{b}.'
        P = layer_norm(lin(p, pre + 'qkv', Z), p[pre + 'qkv_ln.gamma'], p[pre + 'qkv_ln.beta'])
        P = P.reshape(B, R, H, 2 * K + V).transpose(0, 2, 1, 3)     # [B,H,R,2K+V]
        q, k, v = P[..., :K] * K ** -0.5, P[..., K:2 * K], P[..., 2 * K:]
        A = softmax(q @ k.transpose(0, 1, 3, 2))                    # [B,H,R,R]
        O = (A @ v).transpose(0, 2, 1, 3).reshape(B, R, D)          # [B,R,D]
        Z = layer_norm(Z + O if c['residual'] else O, p[pre + 'attn_ln.gamma'], p[pre + 'attn_ln.beta'])
        Y = Z
        for l in range(c['attention_mlp_layers']):
            Y = lin(p, f'rmc.attention_mlp.{l}', Y)
            if l + 1 < c['attention_mlp_layers']:
                Y = np.maximum(Y, 0.0)
        Z = layer_norm(Z + Y if c['residual'] else Y, p[pre + 'mlp_ln.gamma'], p[pre + 'mlp_ln.beta'])
        if trace is not None:
            trace.setdefault(f'trace.block{b}.attention', []).append(A)
    M_tilde = Z[:, :-1]                                             # [B,N,D]
    if trace is not None:
        trace.setdefault('trace.x_hat', []).append(x_hat)
        trace.setdefault('trace.m_tilde', []).append(M_tilde)
    if c['gate_style'] is None:
        return M_tilde
    G = lin(p, 'rmc.gate_memory', np.tanh(M)) + lin(p, 'rmc.gate_input', x_hat)[:, None, :]  # [B,N,2g]
    g = G.shape[-1] // 2
    i = sigmoid(G[..., :g] + c['input_bias'])
    f = sigmoid(G[..., g:] + c['forget_bias'])
    if trace is not None:
        trace.setdefault('trace.input_gate', []).append(i)
        trace.setdefault('trace.forget_gate', []).append(f)
    return i * np.tanh(M_tilde) + f * M


def unroll(p, c, xs, M0, trace=None):
    """xs [T,B,F], M0 [B,N,D] -> memories [T,B,N,D]."""
    M, mems = M0, []
    for x in xs:
        M = step(p, c, x, M, trace)
        mems.append(M)
    return np.stack(mems)


def load(path):
    with safe_open(path, framework='np') as f:
        return {k: f.get_tensor(k).copy() for k in f.keys()}, json.loads(f.metadata()['config'])


def verify(path, fd_eps=1e-6, tol=1e-10):
    t, c = load(path)
    p = {k: v for k, v in t.items() if k.startswith('rmc.')}
    trace = {}
    mems = unroll(p, c, t['inputs'], t['initial_memory'], trace)
    T, B = t['inputs'].shape[:2]
    got = {'memories': mems, 'final_memory': mems[-1], 'outputs': mems.reshape(T, B, -1),
           'loss': np.array([(mems[-1] * t['R']).sum()]), **{k: np.stack(v) for k, v in trace.items()}}
    fwd_err = 0.0
    for k, v in got.items():
        assert v.shape == t[k].shape, (k, v.shape, t[k].shape)
        fwd_err = max(fwd_err, float(np.abs(v - t[k]).max()))
    assert fwd_err <= tol, f'{path}: forward mismatch {fwd_err:.3e}'
    assert set(got) | set(p) | {'inputs', 'initial_memory', 'R'} | {k for k in t if k.startswith('grad.')} == set(t)

    def loss(pp, xs, M0):
        return float((unroll(pp, c, xs, M0)[-1] * t['R']).sum())

    grad_err = 0.0
    for gname in sorted(k for k in t if k.startswith('grad.')):
        name = gname[len('grad.'):]
        base = (p if name.startswith('rmc.') else t)[name]
        fd = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            old = base[idx]
            vals = []
            for s in (1, -1):
                base[idx] = old + s * fd_eps
                vals.append(loss(p, t['inputs'], t['initial_memory']))
            base[idx] = old
            fd[idx] = (vals[0] - vals[1]) / (2 * fd_eps)
        err = np.abs(fd - t[gname]) / (1e-6 + np.abs(t[gname]))
        grad_err = max(grad_err, float(np.abs(fd - t[gname]).max()))
        assert (np.abs(fd - t[gname]) <= 1e-7 + 1e-6 * np.abs(t[gname])).all(), (path, gname, err.max())
    print(f'{os.path.basename(path)}: forward max|diff| {fwd_err:.1e} (<= {tol:g}), '
          f'finite-difference grads max|diff| {grad_err:.1e}, {sum(1 for k in t if k.startswith("grad."))} grads OK')
    return fwd_err, grad_err


if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sys.argv[1:] or sorted(glob.glob(os.path.join(here, '..', 'crates', 'relational-rnn', 'tests', 'data', 'golden', '*.safetensors'))):
        verify(path)
