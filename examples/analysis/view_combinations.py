#!/usr/bin/python3
"""How a round's two detector views could be combined, offline.

A round with the displacement view (`filter.displacement`) writes each
view's own detector score to `scores-epoch<N>.csv` (`position`,
`displacement`) beside the round's score, the larger of their robust
z-scores. For each run given, on its first round's scored samples and its
poison list, prints the AUROC of each view alone and of other ways to combine
their robust z-scores (median/MAD over the scored samples, as the hook):

- max: the larger z (the hook's rule);
- sum: z_position + z_displacement;
- rss: the root of the sum of squares of the positive parts;
- lse: log(exp(z_position) + exp(z_displacement)), a smooth maximum.

These are the README's figures under "The displacement view".

    /usr/bin/python3 examples/analysis/view_combinations.py runs/<run> [runs/<run> ...] [--epoch 4]

Needs numpy and scikit-learn (Debian: python3-numpy python3-sklearn).
"""
import argparse
import csv
import json

import numpy as np
from sklearn.metrics import roc_auc_score


def robust_z(score):
    median = np.median(score)
    return (score - median) / (1.4826 * np.median(np.abs(score - median)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+')
    parser.add_argument('--epoch', type=int, default=None, help="the round's epoch (default: the run's first round)")
    args = parser.parse_args()
    for run in args.runs:
        epoch = args.epoch
        if epoch is None:
            epoch = json.load(open(f'{run}/summary.json'))['filter']['rounds'][0]['epoch']
        with open(f'{run}/scores-epoch{epoch}.csv') as f:
            rows = [r for r in csv.DictReader(f) if r['score'] != '']
        if not rows or 'displacement' not in rows[0]:
            print(f'{run}: round {epoch} has no displacement view')
            continue
        poisoned = np.array([int(r['poisoned']) for r in rows])
        # 'inf' (an embedding that could not be scored) parses as float infinity and stays the most suspicious
        position = robust_z(np.array([float(r['position']) for r in rows]))
        displacement = robust_z(np.array([float(r['displacement']) for r in rows]))
        combined = {
            'position': position,
            'displacement': displacement,
            'max': np.maximum(position, displacement),
            'sum': position + displacement,
            'rss': np.hypot(np.maximum(position, 0), np.maximum(displacement, 0)),
            'lse': np.logaddexp(position, displacement),
        }
        print(f'{run} (epoch {epoch}): ' + '  '.join(f'{name} {roc_auc_score(poisoned, s):.4f}' for name, s in combined.items()))


if __name__ == '__main__':
    main()
