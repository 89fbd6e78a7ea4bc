#!/usr/bin/python3
"""What a filtering round would find after each epoch, offline.

For a run whose filter saved every epoch's embeddings without dropping
anything (the README's "Why the first round waits" command:
`--filter.threshold 1000 --filter.maxDropFraction 0 --filter.probe.enabled
false --filter.readmit.enabled false --filter.rewindAfter 0
--filter.warmupEpochs 1 --filter.saveEmbeddings true`) and a poison list,
re-creates a round on each epoch's `embeddings-epoch<N>.npy`:

- SLOF with k neighbours inside random references of `--reference` samples
  (the sample's own k-distance over the mean of its neighbours', L2, averaged
  over `--repeats` partitions; the hook's `reference: sampled` scheme);
- the drops (robust z over median/MAD above 3) and the probe's seeds (z >= 8),
  and how many poisons each holds;
- the trigger probe's ranking of every sample: scikit-learn's logistic
  regression (C = 1, balanced classes) of the seeds against up to 8,192 kept
  samples (z <= 3) on unit rows, the hook's model up to the solver.

The partitions are drawn here, not the hook's, so the AUROC differs from the
run's own `filter.rounds[].auroc` by a few thousandths.

    /usr/bin/python3 examples/analysis/round_curve.py runs/<run> [--reference 2048] [--k 16] [--repeats 4]

Needs numpy, scikit-learn and faiss (Debian: python3-numpy python3-sklearn python3-faiss).
"""
import argparse
import glob
import json
import re

import faiss
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def slof(embeddings, reference, k, repeats, rng):
    n = len(embeddings)
    score = np.zeros(n)
    for _ in range(repeats):
        # array_split spreads the remainder, so no reference is smaller than k + 1 when n >= reference
        for rows in np.array_split(rng.permutation(n), max(1, n // reference)):
            x = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
            index = faiss.IndexFlatL2(x.shape[1])
            index.add(x)
            distances, neighbours = index.search(x, k + 1)
            # column 0 is the sample itself (distance 0); exact duplicates are not expected in trained embeddings
            kdist = np.sqrt(np.maximum(distances[:, k], 0))
            score[rows] += kdist / np.maximum(kdist[neighbours[:, 1:]].mean(1), 1e-12)
    return score / repeats


def robust_z(score):
    median = np.median(score)
    return (score - median) / (1.4826 * np.median(np.abs(score - median)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('run')
    parser.add_argument('--reference', type=int, default=2048)
    parser.add_argument('--k', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=4)
    args = parser.parse_args()
    epochs = sorted(int(re.search(r'embeddings-epoch(\d+)\.npy$', p).group(1)) for p in glob.glob(f'{args.run}/embeddings-epoch*.npy'))
    if not epochs:
        parser.exit(2, f'{args.run}: no embeddings-epoch<N>.npy (train with --filter.saveEmbeddings true)\n')
    poison = json.load(open(f'{args.run}/poison.json'))
    print(f'{args.run}: SLOF k={args.k} on references of {args.reference} x {args.repeats}; {len(poison["indices"])} poisons')
    print('epoch  AUROC   drops (poisons)  seeds (poisons)  probe AUROC')
    for epoch in epochs:
        embeddings = np.load(f'{args.run}/embeddings-epoch{epoch}.npy').astype(np.float64)
        poisoned = np.zeros(len(embeddings), bool)
        poisoned[poison['indices']] = True
        rng = np.random.default_rng(epoch)
        z = robust_z(slof(embeddings, args.reference, args.k, args.repeats, rng))
        drops, seeds, kept = z > 3, z >= 8, np.where(z <= 3)[0]
        line = f'{epoch:5d}  {roc_auc_score(poisoned, z):.4f}  {drops.sum():5d} ({poisoned[drops].sum():4d})    {seeds.sum():5d} ({poisoned[seeds].sum():4d})'
        if seeds.sum() >= 10:
            unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
            negatives = rng.choice(kept, min(8192, len(kept)), replace=False)
            x = np.vstack([unit[seeds], unit[negatives]])
            y = np.r_[np.ones(seeds.sum()), np.zeros(len(negatives))]
            probe = LogisticRegression(C=1.0, class_weight='balanced', max_iter=2000).fit(x, y)
            line += f'    {roc_auc_score(poisoned, probe.decision_function(unit)):.4f}'
        print(line, flush=True)


if __name__ == '__main__':
    main()
