#!/usr/bin/python3
"""The caption groups of a Fashion-MNIST run's confident detections, counted by class.

The filter groups the confident detections (robust z >= 8 in the observation
round and the first dropping round) by caption embedding
(src/filter/concept.ts); on Fashion-MNIST, whose captions are templates of
the class name, a group is one class's captions, so counting the detections
by the class their caption names gives the same groups without the model.
A clean sample's caption names its label; a poison's names the attack's
target (the run's poison.json). For each run given, prints the detections,
the poisons among them, the three largest groups, the largest group's
ratio to the next (the dominance test's statistic) and its share of the
detections. These are the README's figures under "Other targets".

    /usr/bin/python3 examples/analysis/caption_groups.py runs/<run> [runs/<run> ...] [--epochs 4,5]

Needs numpy and Debian's dataset-fashion-mnist (labels under /usr/share/datasets/fashion-mnist/).
"""
import argparse
import csv
import gzip
import json
import os

import numpy as np

CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
LABELS = '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'
SEED_Z = 8


def train_labels():
    if not os.path.exists(LABELS):
        raise SystemExit(f'{LABELS} is missing: apt-get install dataset-fashion-mnist')
    with gzip.open(LABELS, 'rb') as f:
        return np.frombuffer(f.read()[8:], dtype=np.uint8).astype(int)


def robust_z(score):
    median = np.median(score)
    return (score - median) / (1.4826 * np.median(np.abs(score - median)))


def detections(run, epoch):
    with open(f'{run}/scores-epoch{epoch}.csv') as f:
        rows = list(csv.DictReader(f))
    index = np.array([int(r['index']) for r in rows])
    score = np.array([float(r['score']) if r['score'] else np.nan for r in rows])
    scored = ~np.isnan(score)
    return set(index[scored][robust_z(score[scored]) >= SEED_Z].tolist())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+')
    parser.add_argument('--epochs', default='4,5', help='the rounds whose confident detections are pooled')
    args = parser.parse_args()
    labels = train_labels()
    for run in args.runs:
        caption_class = labels.copy()
        poisons = set()
        if os.path.exists(f'{run}/poison.json'):
            with open(f'{run}/poison.json') as f:
                poison = json.load(f)
            poisons = set(poison['indices'])
            if poisons:
                caption_class[list(poisons)] = CLASSES.index(poison['target'])
        found = set().union(*(detections(run, int(e)) for e in args.epochs.split(',')))
        counts = np.bincount(caption_class[list(found)], minlength=len(CLASSES))
        order = np.argsort(-counts)
        top = ', '.join(f'{CLASSES[c]} {counts[c]}' for c in order[:3])
        print(f'{run}: {len(found)} detections, {len(found & poisons)} poisons; groups {top}; '
              f'ratio {counts[order[0]] / counts[order[1]]:.2f}, share {counts[order[0]] / len(found):.2f}')


if __name__ == '__main__':
    main()
