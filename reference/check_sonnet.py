"""Optional cross-check: run DeepMind's own Sonnet 1.36 `snt.RelationalMemory` (TF 2.x, compat.v1 graph
mode, float64) on the weights and inputs of each golden file; compare forward and gradients.
Needs the TF venv of `bash ref/setup.sh --sonnet`. Sonnet 1.36 predates TF 2.x and Python 3.10, so
this stubs what the RMC never touches (tensorflow_probability, tensorflow.contrib) before importing it.
residual=False is not a Sonnet option: those files are skipped.
Usage: $REF_TF_VENV/bin/python check_sonnet.py [golden/*.safetensors]
"""
import collections
import collections.abc
import glob
import json
import os
import sys
import types
from unittest import mock

import numpy as np
from safetensors import safe_open

os.environ.setdefault('PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION', 'python')  # Sonnet's old _pb2 files
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
for _n in ('Mapping', 'Sequence', 'Iterable', 'MutableMapping', 'Callable'):  # removed in Python 3.10
    setattr(collections, _n, getattr(collections.abc, _n))
import tensorflow as tf  # noqa: E402
from tensorflow.python.util import nest as _nest  # noqa: E402

sys.modules['tensorflow_probability'] = mock.MagicMock(__version__='0.8.0')
_contrib = types.ModuleType('tensorflow.contrib')
_contrib.framework = types.SimpleNamespace(nest=types.SimpleNamespace(
    **{k: getattr(_nest, k) for k in dir(_nest) if not k.startswith('__')}, is_sequence=_nest.is_nested))
_contrib.rnn = mock.MagicMock()
sys.modules.update({'tensorflow.contrib': _contrib, 'tensorflow.contrib.eager': mock.MagicMock(),
                    'tensorflow.contrib.eager.python': mock.MagicMock()})
import sonnet as snt  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_eager_execution()
tf.get_logger().setLevel('ERROR')


def module_order(c):
    """Our module names in the order Sonnet creates its variables (one Linear/LayerNorm = 2 variables)."""
    names = ['input_proj']
    for b in range(c['num_blocks']):
        names += [f'block{b}.qkv', f'block{b}.qkv_ln', f'block{b}.attn_ln']
        names += [f'attention_mlp.{l}' for l in range(c['attention_mlp_layers'])] if b == 0 else []
        names += [f'block{b}.mlp_ln']
    return names + (['gate_input', 'gate_memory'] if c['gate_style'] else [])


def check(path, tol=1e-10):
    with safe_open(path, framework='np') as f:
        t, c = {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()['config'])
    if not c['residual']:
        print(f'{os.path.basename(path)}: skipped (residual=False is not a Sonnet option)')
        return
    with tf.Graph().as_default():
        core = snt.RelationalMemory(mem_slots=c['mem_slots'], head_size=c['head_size'], num_heads=c['num_heads'],
                                    num_blocks=c['num_blocks'], forget_bias=c['forget_bias'],
                                    input_bias=c['input_bias'], gate_style=c['gate_style'],
                                    attention_mlp_layers=c['attention_mlp_layers'], key_size=c['key_size'])
        xs, M0, R = (tf.constant(t[k]) for k in ('inputs', 'initial_memory', 'R'))
        M, outs, mems = M0, [], []
        for step in range(t['inputs'].shape[0]):
            out, M = core(xs[step], M)
            outs.append(out)
            mems.append(M)
        loss = tf.reduce_sum(M * R)
        svars = tf1.global_variables()
        ours = [f'rmc.{m}.{s}' for m in module_order(c)
                for s in (('gamma', 'beta') if m.endswith('_ln') else ('weight', 'bias'))]
        assert len(svars) == len(ours), (len(svars), len(ours))
        for v, n in zip(svars, ours):
            assert v.name.split('/')[-1][:-2] == {'weight': 'w', 'bias': 'b'}.get(n.split('.')[-1], n.split('.')[-1])
            assert tuple(v.shape) == t[n].shape, (v.name, n)
        grads = tf.gradients(loss, svars + [xs, M0])
        with tf1.Session() as sess:
            for v, n in zip(svars, ours):
                v.load(t[n], sess)
            o, m, lv, g = sess.run([tf.stack(outs), tf.stack(mems), loss, grads])
    fwd = max(np.abs(o - t['outputs']).max(), np.abs(m - t['memories']).max(), abs(lv - t['loss'][0]))
    gerr = max(np.abs(gv - t['grad.' + n]).max() for gv, n in zip(g, ours + ['inputs', 'initial_memory']))
    assert fwd <= tol and gerr <= tol, (path, fwd, gerr)
    print(f'{os.path.basename(path)}: Sonnet {snt.__version__} / TF {tf.__version__} vs golden: forward max|diff| '
          f'{fwd:.1e}, {len(g)} grads max|diff| {gerr:.1e}  OK')


if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    for p in sys.argv[1:] or sorted(glob.glob(os.path.join(here, '..', 'crates', 'relational-rnn', 'tests', 'data', 'golden', '*.safetensors'))):
        check(p)
