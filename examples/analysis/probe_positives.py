#!/usr/bin/python3
"""What the trigger probe should fit on, offline.

Re-fits the probe of one dropping round on a run's saved embeddings
(`--filter.saveEmbeddings true`: `embeddings-epoch<N>.npy` and
`caption-embeddings-epoch<N>.npy`) with different positive sets, and prints
each fit's AUROC over every training sample against the poison list:

- seeds: the round's confident detections (robust z >= 8 over its
  `scores-epoch<N>.csv`), the probe with `--filter.probe.concept false`;
- seeds + observed: with the observation round's detections as well;
- seeds + observed in concept: the observations only when captioned like the
  largest caption group;
- (seeds + observed) in concept: the largest caption group alone, the hook's
  fit with `probe.concept` when the group dominates;
- seeds in concept: the same grouping over the seeds alone.

The grouping is the hook's (src/filter/concept.ts): the detection whose
caption has the most detections' captions within cosine 0.7, and those; the
next group is formed from the detections outside it. The fit is scikit-learn's
LogisticRegression (C = 1, classes balanced) on unit-normalised embeddings,
against 8,192 kept samples (robust z <= 3), as the hook's; the hook's own
fit of the round, read from the scores file's `probe` column, is printed
first for comparison. These are the README's figures under "Concept-fitted
probe".

    /usr/bin/python3 examples/analysis/probe_positives.py runs/<run> --observe 4 --round 5

Needs numpy and scikit-learn (Debian: python3-numpy python3-sklearn).
"""
import argparse
import csv
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SEED_Z = 8
KEPT_Z = 3
SIMILARITY = 0.7
NEGATIVES = 8192


def robust_z(score):
    median = np.median(score)
    return (score - median) / (1.4826 * np.median(np.abs(score - median)))


def read_scores(run, epoch):
    with open(f'{run}/scores-epoch{epoch}.csv') as f:
        rows = list(csv.DictReader(f))
    index = np.array([int(r['index']) for r in rows])
    score = np.array([float(r['score']) for r in rows])
    probe = np.array([float(r['probe']) if r.get('probe') not in (None, '', 'NaN') else np.nan for r in rows])
    return index, score, probe


def caption_groups(unit_captions, rows):
    """The largest caption group among `rows` and the size of the next, formed outside it."""
    rows = np.array(sorted(rows))
    close = unit_captions[rows] @ unit_captions[rows].T >= SIMILARITY
    group = close[int(np.argmax(close.sum(1)))]
    outside = ~close[group].any(0)
    runner_up = int(close[np.ix_(outside, outside)].sum(1).max()) if outside.any() else 0
    return set(rows[group].tolist()), int(group.sum()), runner_up


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run')
    parser.add_argument('--observe', type=int, default=4, help='the observation round\'s epoch')
    parser.add_argument('--round', type=int, default=5, help='the dropping round\'s epoch')
    args = parser.parse_args()
    run = args.run
    embeddings = np.load(f'{run}/embeddings-epoch{args.round}.npy')
    captions = np.load(f'{run}/caption-embeddings-epoch{args.round}.npy')
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit_captions = captions / np.linalg.norm(captions, axis=1, keepdims=True)
    with open(f'{run}/poison.json') as f:
        poisons = json.load(f)['indices']
    truth = np.zeros(len(embeddings), dtype=int)
    truth[poisons] = 1

    observed_index, observed_score, _ = read_scores(run, args.observe)
    observed = set(observed_index[robust_z(observed_score) >= SEED_Z].tolist())
    index, score, hook_probe = read_scores(run, args.round)
    z = robust_z(score)
    seeds = set(index[z >= SEED_Z].tolist())
    kept = index[z <= KEPT_Z]
    negatives = np.random.default_rng(0).choice(kept, min(NEGATIVES, len(kept)), replace=False)

    print(f'{run}: {len(seeds)} seeds ({truth[list(seeds)].sum()} poisons), {len(observed)} observed ({truth[list(observed)].sum()} poisons)')
    print(f'  the hook\'s probe: AUROC {roc_auc_score(truth[index], np.nan_to_num(hook_probe, nan=-np.inf)):.4f}')
    group, size, runner_up = caption_groups(unit_captions, seeds | observed)
    print(f'  largest caption group of seeds + observed: {size} against {runner_up} ({"dominant" if size >= 2 * runner_up else "not dominant"}), {truth[list(group)].sum()} poisons')
    seed_group, seed_size, seed_runner_up = caption_groups(unit_captions, seeds)
    print(f'  of the seeds alone: {seed_size} against {seed_runner_up}')

    fits = [
        ('seeds', seeds),
        ('seeds + observed', seeds | observed),
        ('seeds + observed in concept', seeds | (observed & group)),
        ('(seeds + observed) in concept', (seeds | observed) & group),
        ('seeds in concept', seeds & seed_group),
    ]
    for name, positives in fits:
        positives = np.array(sorted(positives))
        x = np.vstack([unit[positives], unit[negatives]])
        y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        model = LogisticRegression(C=1.0, class_weight='balanced', max_iter=2000).fit(x, y)
        decision = model.decision_function(unit)
        print(f'  {name:32s} {len(positives):4d} positives ({truth[positives].sum():3d} poisons): AUROC {roc_auc_score(truth, decision):.4f}')


if __name__ == '__main__':
    main()
