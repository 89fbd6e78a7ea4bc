#!/usr/bin/python3
"""What the re-admission's judge sees of the trigger probe's holds, offline.

For a run trained with `--filter.readmit.enabled true --filter.saveEmbeddings
true` and a poison list: takes the samples dropped by the last filtering
round (`scores-epoch<last>.csv`), the probe's holds and seeds (the hook's state
in `checkpoints/last/state.json`) and the judge's image and caption embeddings
(`readmit-epoch<N>-*.npy`), forms the concept group at `--similarity` as the
hook does (the seed whose caption is within that cosine of the most seed
captions, and those seeds; a hold is in the concept when its caption is within
it of one of theirs; nothing is, when the group holds fewer than `--dominance`
times the seeds of the next group formed the same way), and prints, for the
holds in the concept:

- at each bar (a quantile of the kept samples' agreement cos(image, own
  caption) under the judge), how many poisons and clean samples would come
  back — the hook's default bar is the median;
- for those above the median bar: the rounds' models' belief gap (their best
  agreement minus the judge's) and the probe's highest decision value over
  the rounds, poisons against clean samples.

These are the README's figures for "The concept hold at 0.6, without the
veto" (Nashville's 9 poisons back: `--similarity 0.6`).

    /usr/bin/python3 examples/analysis/readmit_holds.py runs/<run> [--similarity 0.7] [--dominance 2]

Needs numpy and scikit-learn (Debian: python3-numpy python3-sklearn).
"""
import csv
import glob
import json
import re
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)


def main(run, similarity, dominance):
    rounds = sorted(int(re.search(r'(\d+)\.csv$', p).group(1)) for p in glob.glob(f'{run}/scores-epoch*.csv'))
    judged = glob.glob(f'{run}/readmit-epoch*-images.npy')
    if not rounds or not judged:
        sys.exit(f'{run}: needs scores-epoch<N>.csv and readmit-epoch<N>-*.npy (train with --filter.readmit.enabled true --filter.saveEmbeddings true)')
    judge_epoch = int(re.search(r'readmit-epoch(\d+)-images', judged[0]).group(1))
    csvs = {e: list(csv.DictReader(open(f'{run}/scores-epoch{e}.csv'))) for e in rounds}
    last = csvs[rounds[-1]]
    weight = np.array([float(r['weight']) for r in last])
    poisoned = np.array([r['poisoned'] == '1' for r in last])
    state = json.load(open(f'{run}/checkpoints/last/state.json'))['hooks']['backdoor-filter']
    dropped = np.where(weight == 0)[0]
    kept = np.where(weight > 0)[0]
    seeds = np.intersect1d(np.array(sorted(state['seeds']), dtype=int), dropped)
    held = np.intersect1d(np.array(sorted(state['probeHeld']), dtype=int), dropped)

    images = unit(np.load(f'{run}/readmit-epoch{judge_epoch}-images.npy').astype(np.float64))
    captions = unit(np.load(f'{run}/readmit-epoch{judge_epoch}-captions.npy').astype(np.float64))
    agreement = (images * captions).sum(1)
    near = captions[seeds] @ captions[seeds].T >= similarity
    anchor = near.sum(1).argmax()
    group = seeds[near[anchor]]
    rest = ~near[anchor]
    runner_up = near[np.ix_(rest, rest)].sum(1).max() if rest.any() else 0
    dominant = len(group) >= dominance * runner_up
    in_concept = held[(captions[held] @ captions[group].T >= similarity).any(1)] if dominant else held[:0]
    print(f'{run}: judged after epoch {judge_epoch}; {len(dropped)} dropped, {len(held)} held by the probe ({poisoned[held].sum()} poisons), '
          f'concept group at {similarity}: {len(group)} seeds, the next {runner_up}'
          f'{"" if dominant else f" (not {dominance} times: nothing held)"}; {len(in_concept)} holds in it ({poisoned[in_concept].sum()} poisons)')
    if not dominant:
        return
    for q in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        bar = np.quantile(agreement[kept], q)
        back = in_concept[agreement[in_concept] > bar]
        print(f'  bar at the kept {q:.2f} quantile ({bar:.3f}): back {poisoned[back].sum()} poisons, {(~poisoned[back]).sum()} of {(~poisoned[in_concept]).sum()} clean')

    above = in_concept[agreement[in_concept] > np.quantile(agreement[kept], 0.5)]
    if not poisoned[above].any():
        return
    beliefs = []
    for e in rounds:
        try:
            beliefs.append((unit(np.load(f'{run}/embeddings-epoch{e}.npy').astype(np.float64)) * unit(np.load(f'{run}/caption-embeddings-epoch{e}.npy').astype(np.float64))).sum(1))
        except FileNotFoundError:
            pass
    probe = np.full(len(last), -np.inf)
    for rows in csvs.values():
        for r in rows:
            if r.get('probe'):
                probe[int(r['index'])] = max(probe[int(r['index'])], float(r['probe']))
    p, c = above[poisoned[above]], above[~poisoned[above]]
    print(f'  above the median bar: {len(p)} poisons, {len(c)} clean')
    if beliefs:
        gap = np.max(beliefs, axis=0) - agreement
        print(f'    belief gap: poisons {np.round(np.sort(gap[p]), 3)}; clean median / 99th percentile {np.quantile(gap[c], 0.5):.3f} / {np.quantile(gap[c], 0.99):.3f}')
    print(f'    probe decision (highest over the rounds): poisons {np.round(np.sort(probe[p]), 2)}; clean median / 90th percentile {np.quantile(probe[c], 0.5):.2f} / {np.quantile(probe[c], 0.9):.2f}; '
          f'AUROC {roc_auc_score(poisoned[above], probe[above]):.3f}')


if __name__ == '__main__':
    args = sys.argv[1:]
    similarity = 0.7  # the filter's default readmit.conceptSimilarity
    dominance = 2.0  # and readmit.conceptDominance
    for flag in ('--similarity', '--dominance'):
        if flag in args:
            i = args.index(flag)
            if flag == '--similarity':
                similarity = float(args[i + 1])
            else:
                dominance = float(args[i + 1])
            del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    main(args[0], similarity, dominance)
