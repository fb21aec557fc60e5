"""Nth-farthest task (Santoro et al. 2018, sec. 4.1): generator, brute-force check, chance and plateau baselines.

Project/paper convention (docs/TASKS.md): K vectors ~ U(-1,1)^D; labels = a random permutation, vector t
carries one-hot(label_t); n, m ~ U{0..K-1}. Input at every step t: [vector_t, onehot(label_t), onehot(n),
onehot(m)] (F = D + 3K). Target: label of the n-th farthest vector (Euclidean, n = 0 the farthest) from
the vector labelled m; the reference itself counts (distance 0, so n = K-1 answers m).

Sonnet's own generator (sonnet/examples/dataset_nth_farthest.py) differs, see `sonnet_batch`.
Usage: python nth_farthest.py [--K 8] [--D 16] [--samples 200000]
"""
import argparse

import numpy as np


def nth_farthest_batch(rng, batch, K=8, D=16):
    """-> inputs [K, B, D+3K] float32 (time-major), targets [B] int64, extras dict."""
    b = np.arange(batch)
    vec = rng.uniform(-1, 1, (batch, K, D))                               # [B,K,D]
    labels = rng.permuted(np.tile(np.arange(K), (batch, 1)), axis=1)      # [B,K] label of vector t
    n, m = rng.integers(0, K, batch), rng.integers(0, K, batch)
    ref = np.argmax(labels == m[:, None], axis=1)                         # index of the vector labelled m
    dist = np.linalg.norm(vec - vec[b, ref][:, None], axis=-1)            # [B,K]
    target = labels[b, np.argsort(-dist, axis=1)[b, n]]                   # farthest first
    eye = np.eye(K)
    q = np.concatenate([eye[n], eye[m]], -1)[:, None].repeat(K, 1)        # [B,K,2K] question, every step
    x = np.concatenate([vec, eye[labels], q], -1)                         # [B,K,D+3K]
    return x.transpose(1, 0, 2).astype(np.float32), target, dict(vec=vec, labels=labels, n=n, m=m)


def sonnet_batch(rng, batch, K=8, D=16):
    """Sonnet's semantics: object ids = identity then the rows are shuffled; inputs [vector, id,
    onehot(reference), onehot(nth)] (m before n); argsort is ascending and the label is
    np.where(argsort(dist) == nth)[1][reference], i.e. the RANK (0 = the reference itself, nearest first)
    of object `nth` among the distances from object `reference`, not an object id."""
    b = np.arange(batch)
    vec = rng.uniform(-1, 1, (batch, K, D))
    nth, ref = rng.integers(0, K, batch), rng.integers(0, K, batch)
    order = np.argsort(np.linalg.norm(vec - vec[b, ref][:, None], axis=-1), axis=1)  # nearest first
    target = np.argmax(order == nth[:, None], axis=1)
    eye = np.eye(K)
    x = np.concatenate([vec, eye[None].repeat(batch, 0), eye[ref][:, None].repeat(K, 1),
                        eye[nth][:, None].repeat(K, 1)], -1)
    x = np.take_along_axis(x, rng.permuted(np.tile(np.arange(K), (batch, 1)), axis=1)[..., None], axis=1)
    return x.transpose(1, 0, 2).astype(np.float32), target, dict(vec=vec, nth=nth, ref=ref)


def brute_force_target(vec, labels, n, m):
    """One sample, plain loops: label of the n-th farthest vector from the one labelled m."""
    r = list(labels).index(m)
    d = [(float(np.sqrt(((v - vec[r]) ** 2).sum())), t) for t, v in enumerate(vec)]
    return labels[sorted(d, reverse=True)[n][1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--K', type=int, default=8)
    ap.add_argument('--D', type=int, default=16)
    ap.add_argument('--samples', type=int, default=200000)
    a = ap.parse_args()
    K, S, rng = a.K, a.samples, np.random.default_rng(0)
    x, y, e = nth_farthest_batch(rng, S, K, a.D)
    assert x.shape == (K, S, a.D + 3 * K)
    for i in range(200):
        assert brute_force_target(e['vec'][i], e['labels'][i], e['n'][i], e['m'][i]) == y[i]
    b = np.arange(S)
    chance = (rng.integers(0, K, S) == y).mean()
    # plateau: "n = K-1 -> m", otherwise a uniform guess among the other labels (expected 2/K)
    other = (e['m'] + rng.integers(1, K, S)) % K
    plateau = (np.where(e['n'] == K - 1, e['m'], other) == y).mean()
    # non-pairwise heuristic: "n = K-1 -> m", otherwise the n-th largest norm among the other vectors
    norms = np.linalg.norm(e['vec'], axis=-1)
    norms[e['labels'] == e['m'][:, None]] = -1.0                          # the reference goes last
    by_norm = e['labels'][b, np.argsort(-norms, axis=1)[b, e['n']]]
    heuristic = (np.where(e['n'] == K - 1, e['m'], by_norm) == y).mean()
    _, ys, es = sonnet_batch(rng, S, K, a.D)
    s_plateau = (np.where(es['nth'] == es['ref'], 0, rng.integers(1, K, S)) == ys).mean()
    print(f'K={K} D={a.D} F={a.D + 3 * K} samples={S}')
    print(f'chance 1/K                                   {1 / K:.4f}  (empirical {chance:.4f})')
    print(f'plateau "n=K-1 -> m, else guess another"      {2 / K:.4f}  (empirical {plateau:.4f})')
    print(f'norm heuristic "n=K-1 -> m, else n-th norm"   empirical {heuristic:.4f}')
    print(f'Sonnet convention plateau "nth=ref -> rank 0" {2 / K:.4f}  (empirical {s_plateau:.4f})')


if __name__ == '__main__':
    main()
