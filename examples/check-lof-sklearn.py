#!/usr/bin/python3
"""Reference LOF scores from scikit-learn, to check the `lof` detector.

Usage (Debian's interpreter, which has numpy and scikit-learn):

    /usr/bin/python3 examples/check-lof-sklearn.py EMBEDDINGS.npy K OUT.npy [OURS.npy]

EMBEDDINGS.npy  an N x D float32/float64 matrix (e.g. embeddings dumped by a run)
K               n_neighbors (the detector's filter.k)
OUT.npy         written: float64 vector of -negative_outlier_factor_ (higher = more outlying),
                from LocalOutlierFactor(n_neighbors=K, algorithm='brute'), exact L2 neighbours
OURS.npy        optional: our `lof` scores for the same rows; prints the Spearman rank
                correlation and the largest relative difference, exits 1 if Spearman < 0.999

The vitest test test/detectors/lof-sklearn.test.ts runs this script on generated data.
Scores can differ where there are exact duplicates: scikit-learn adds 1e-10 to the
mean reachability distance, we floor distances at 1e-6 x the median k-distance.
"""
import sys

import numpy as np
from sklearn.neighbors import LocalOutlierFactor


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    x = np.load(argv[1])
    if x.ndim != 2:
        sys.exit(f"{argv[1]}: expected a 2-D matrix, got shape {x.shape}")
    k = int(argv[2])
    lof = LocalOutlierFactor(n_neighbors=k, algorithm="brute", metric="euclidean")
    lof.fit(x.astype(np.float64))
    scores = -lof.negative_outlier_factor_
    np.save(argv[3], scores.astype(np.float64))
    if len(argv) == 5:
        from scipy.stats import spearmanr

        ours = np.load(argv[4]).astype(np.float64)
        rho = spearmanr(ours, scores).statistic
        rel = np.max(np.abs(ours - scores) / np.maximum(1.0, np.abs(scores)))
        print(f"spearman {rho:.6f}  max relative difference {rel:.3g}")
        if rho < 0.999:
            sys.exit(1)


if __name__ == "__main__":
    main(sys.argv)
