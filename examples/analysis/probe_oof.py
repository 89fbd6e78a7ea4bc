#!/usr/bin/python3
"""How the trigger probe sees a round's drops, offline.

For one round of a run trained with `--filter.saveEmbeddings true`: fits the
probe's model (scikit-learn's LogisticRegression, C = 1, balanced classes, on
unit rows) of the seeds (robust z >= 8 this round) against 8,192 kept samples
(z <= 3), then reports, per margin, how many seeds score below it out-of-fold
(5 folds) and how many of the detector's other drops (3 < z < 8) score below
it in-sample — split into poisons and clean samples when the run has a poison
list. It answers whether the probe could hand clean drops back without
handing back poisons (README, filter results).

    /usr/bin/python3 examples/analysis/probe_oof.py runs/<run> <epoch>

Needs numpy and scikit-learn (Debian: python3-numpy python3-sklearn).
"""
import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold


def main(run, epoch):
    embeddings = np.load(f'{run}/embeddings-epoch{epoch}.npy').astype(np.float64)
    rows = list(csv.DictReader(open(f'{run}/scores-epoch{epoch}.csv')))
    poisoned = np.array([r['poisoned'] == '1' for r in rows])
    scores = np.array([float(r['score']) if r['score'] not in ('', 'inf') else np.nan for r in rows])
    finite = np.isfinite(scores)
    median = np.median(scores[finite])
    z = (scores - median) / (1.4826 * np.median(np.abs(scores[finite] - median)))
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-30)
    seeds = np.where(finite & (z >= 8))[0]
    kept = np.where(finite & (z <= 3))[0]
    negatives = np.random.default_rng(0).choice(kept, min(8192, len(kept)), replace=False)
    rows_fit = np.concatenate([seeds, negatives])
    labels = np.concatenate([np.ones(len(seeds)), np.zeros(len(negatives))])
    out_of_fold = np.zeros(len(rows_fit))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(rows_fit, labels):
        model = LogisticRegression(C=1, max_iter=3000, class_weight='balanced').fit(unit[rows_fit[train]], labels[train])
        out_of_fold[test] = model.decision_function(unit[rows_fit[test]])
    seed_values = out_of_fold[: len(seeds)]
    model = LogisticRegression(C=1, max_iter=3000, class_weight='balanced').fit(unit[rows_fit], labels)
    middle = np.where(finite & (z > 3) & (z < 8))[0]
    middle_values = model.decision_function(unit[middle])
    print(f'{run} epoch {epoch}: {len(seeds)} seeds ({poisoned[seeds].sum()} poisons), {len(middle)} other drops ({poisoned[middle].sum()} poisons)')
    for margin in (0, -1, -2):
        below_seeds = seed_values < margin
        below_middle = middle_values < margin
        print(
            f'  below {margin:+d}: seeds {below_seeds.sum()} (poisons {(below_seeds & poisoned[seeds]).sum()}), '
            f'other drops {below_middle.sum()} (poisons {(below_middle & poisoned[middle]).sum()})'
        )


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
