"""Write golden/*.safetensors: a small float64 RMC (PyTorch), its forward over T steps and the gradients
of loss = sum(final_memory * R); then re-check every file with the independent NumPy code (rmc_numpy).
Names, shapes and conventions: golden/README.md.   Usage: python make_golden.py [--out DIR]
"""
import argparse
import json
import os
import struct

import torch
from safetensors.torch import save_file

import rmc_numpy
from rmc_torch import RelationalMemory

BASE = dict(input_size=5, mem_slots=3, head_size=4, num_heads=2, key_size=4, num_blocks=1,
            attention_mlp_layers=2, gate_style='unit', forget_bias=1.0, input_bias=0.0, residual=True)
VARIANTS = {
    'rmc_small': {},
    'rmc_small_memory_gate': dict(gate_style='memory'),
    'rmc_small_no_residual': dict(residual=False),
    'rmc_small_no_gate': dict(gate_style=None),
    'rmc_small_2blocks_k3': dict(num_blocks=2, key_size=3, forget_bias=0.7, input_bias=-0.3),
}
BATCH, STEPS, SEED, STD = 2, 4, 1234, 0.3


def make(cfg, path):
    gen = torch.Generator().manual_seed(SEED)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    model = RelationalMemory(**cfg).double()
    names, params = zip(*model.named_parameters())  # registration order, fixed
    with torch.no_grad():
        for n, p in zip(names, params):  # every weight random: LN gamma = 1 + N(0, STD^2), others N(0, STD^2)
            p.copy_((1.0 if n.endswith('.gamma') else 0.0) + STD * randn(*p.shape))
    xs = randn(STEPS, BATCH, cfg['input_size']).requires_grad_()
    M0 = model.initial_state(BATCH, torch.float64).requires_grad_()
    R = randn(BATCH, model.N, model.D)
    trace, outs, mems, M = {}, [], [], M0
    for t in range(STEPS):
        out, M = model(xs[t], M, trace)
        outs.append(out)
        mems.append(M)
    loss = (M * R).sum()
    grads = torch.autograd.grad(loss, [*params, xs, M0])
    tensors = {
        **{f'rmc.{n}': p for n, p in zip(names, params)},
        **{f'grad.rmc.{n}': g for n, g in zip(names, grads)},
        'inputs': xs, 'initial_memory': M0, 'R': R,
        'outputs': torch.stack(outs), 'memories': torch.stack(mems), 'final_memory': M,
        'loss': loss.reshape(1), 'grad.inputs': grads[-2], 'grad.initial_memory': grads[-1],
        **{f'trace.{k}': torch.stack(v) for k, v in trace.items()},
    }
    meta = {
        'config': json.dumps(cfg), 'batch': str(BATCH), 'steps': str(STEPS), 'seed': str(SEED),
        'layer_norm_eps': '1e-5', 'loss': 'sum(final_memory * R)',
        'layout': 'Linear weight [in, out]: y = x @ weight + bias; qkv head h = columns '
                  'h*(2K+V)..(h+1)*(2K+V) as [q|k|v]; gates [input | forget]',
        'torch': torch.__version__,
    }
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path, metadata=meta)
    sort_header(path)
    return path


def sort_header(path):
    """Rewrite the JSON header with sorted keys (safetensors writes metadata in hash order) so that
    regenerating gives byte-identical files; same length, padded with spaces as the format allows."""
    with open(path, 'r+b') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        header['__metadata__'] = dict(sorted(header['__metadata__'].items()))
        new = json.dumps(dict(sorted(header.items())), separators=(',', ':')).encode()
        assert len(new) <= n
        f.seek(8)
        f.write(new + b' ' * (n - len(new)))


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crates', 'relational-rnn', 'tests', 'data', 'golden'))
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    for name, over in VARIANTS.items():
        path = make({**BASE, **over}, os.path.join(out, name + '.safetensors'))
        rmc_numpy.verify(path)
