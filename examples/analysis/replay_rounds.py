#!/usr/bin/python3
"""Replays a filtered run's rounds from its scores-epoch<N>.csv with other drop rules.

For each run: how well the last round's robust z, the mean z over the rounds
and the max z rank the poisons still kept after the last round (AUROC), and
what a per-round rule, a Stouffer rule (also drop when sum(z)/sqrt(rounds) > T)
and a mean-z rule would have left (survivors, clean samples dropped). A replay
uses the recorded scores: a run that had dropped more would have scored its
later rounds differently, so the figures are indicative.

    /usr/bin/python3 examples/analysis/replay_rounds.py runs/<filtered run> [...]

Needs numpy and scikit-learn (Debian: python3-numpy python3-sklearn).
"""
import csv
import glob
import re
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def load_rounds(run):
    files = sorted(glob.glob(run + '/scores-epoch*.csv'), key=lambda f: int(re.findall(r'epoch(\d+)', f)[0]))
    if not files:
        sys.exit(f'{run} has no scores-epoch<N>.csv: was it trained with --backdoor-filter?')
    zs, weights, poisoned = [], None, None
    for f in files:
        rows = list(csv.DictReader(open(f)))
        n = len(rows)
        scores, weights, poisoned = np.full(n, np.nan), np.zeros(n), np.zeros(n, bool)
        for r in rows:
            i = int(r['index'])
            weights[i] = float(r['weight'])
            poisoned[i] = r['poisoned'] == '1'
            if r['score'] == 'inf':
                scores[i] = np.inf
            elif r['score'] != '':
                scores[i] = float(r['score'])
        finite = np.isfinite(scores)
        median = np.median(scores[finite])
        scale = 1.4826 * np.median(np.abs(scores[finite] - median))
        zs.append((scores - median) / scale)
    return np.array(zs), weights, poisoned


def replay(z, poisoned, threshold, rule):
    dropped = np.zeros(len(poisoned), bool)
    total, count = np.zeros(len(poisoned)), np.zeros(len(poisoned))
    for zr in z:
        scored = ~dropped & ~np.isnan(zr)
        total[scored] += zr[scored]
        count[scored] += 1
        new = scored & (zr > threshold)
        if rule == 'stouffer':
            new |= scored & (total / np.sqrt(np.maximum(count, 1)) > threshold)
        elif rule == 'mean':
            new |= scored & (total / np.maximum(count, 1) > threshold)
        dropped |= new
    return int((poisoned & ~dropped).sum()), int((~poisoned & dropped).sum())


for run in sys.argv[1:]:
    z, weights, poisoned = load_rounds(run)
    kept = weights > 0
    print(f'{run}: {int((kept & poisoned).sum())} poisons kept of {int(poisoned.sum())}, {len(z)} rounds')
    for name, s in [('last z', z[-1]), ('mean z', np.nanmean(z, 0)), ('max z', np.nanmax(z, 0))]:
        ok = kept & ~np.isnan(s)
        print(f'  {name:7s} AUROC among kept samples {roc_auc_score(poisoned[ok], s[ok]):.3f}')
    for threshold in (3.0, 3.5):
        for rule in ('round', 'stouffer', 'mean'):
            survivors, clean = replay(z, poisoned, threshold, rule)
            print(f'  replay T={threshold} {rule:8s} survivors {survivors:4d}  clean dropped {clean:6d}')
