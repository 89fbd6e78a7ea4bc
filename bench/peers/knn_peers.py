#!/usr/bin/python3
"""Peers of bench/knn.ts: the same neighbour searches and scores in faiss, numpy
and scikit-learn, on the .npy files the bench writes (X.npy float32 n x d,
labels.npy uint8, queries.npy int32, truth.npy int32 queries x k, chunks.npy +
bounds.npy int32 for the sampled reference sets). Prints one JSON object.

Run by the bench with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep
instead of spinning, which on 2 shared cores matters); faiss and BLAS use
--threads threads.

  knn_peers.py faiss_exact   --dir D --k 16 [--max-queries Q]
  knn_peers.py faiss_sampled --dir D --k 16
  knn_peers.py faiss_hnsw    --dir D --k 16 --M 16 --efc 200 --ef 16,32,64,128
  knn_peers.py faiss_ivf     --dir D --k 16 --probes 8,16 [--lists L]
  knn_peers.py sklearn_lof   --dir D --k 16
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def auroc(scores, labels):
    """Mann-Whitney AUROC with average ranks for ties (None without both classes)."""
    labels = np.asarray(labels).astype(bool)
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    ranks = np.empty(s.size, dtype=np.float64)
    i = 0
    while i < s.size:
        j = i
        while j + 1 < s.size and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def drop_self(I, D, k, rows=None):
    """Neighbour rows of k + 1 with each row's own index (rows[i], default i) removed (the last entry when it is absent)."""
    n = I.shape[0]
    own = I == (np.arange(n) if rows is None else np.asarray(rows))[:, None]
    has = own.any(axis=1)
    pos = np.where(has, own.argmax(axis=1), k)
    keep = np.ones_like(I, dtype=bool)
    keep[np.arange(n), pos] = False
    return I[keep].reshape(n, k), D[keep].reshape(n, k)


def slof_kdist(I, dist, k):
    """SLOF and k-distance as src/detectors/local.ts: distances floored at 1e-6 x median positive k-distance."""
    dk_raw = dist[:, k - 1].astype(np.float64)
    positive = dk_raw[dk_raw > 0]
    eps = 1e-12 if positive.size == 0 else 1e-6 * float(np.median(positive))
    dk = np.maximum(dk_raw, eps)
    slof = dk * (1.0 / dk)[I].mean(axis=1)
    return slof, dk_raw


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load(dirname):
    X = np.load(os.path.join(dirname, "X.npy"))
    labels = np.load(os.path.join(dirname, "labels.npy"))
    return np.ascontiguousarray(X, dtype=np.float32), labels


def recall_at_k(found, queries, truth, k):
    hits = 0
    for t, q in enumerate(queries):
        hits += len(set(found[t][:k].tolist()) & set(truth[t][:k].tolist()))
    return hits / float(len(queries) * k)


def load_graph_task(a):
    """faiss on a.threads threads; the points, labels, the recall queries and their true neighbours."""
    import faiss

    faiss.omp_set_num_threads(a.threads)
    X, labels = load(a.dir)
    queries = np.load(os.path.join(a.dir, "queries.npy"))
    truth = np.load(os.path.join(a.dir, "truth.npy"))
    return faiss, X, labels, queries, truth


def search_runs(index, X, labels, queries, truth, k, build, settings, apply):
    """Every point's k neighbours (self dropped) under each search setting: time, recall and the scores' AUROCs."""
    runs = []
    for value in settings:
        apply(value)
        t1 = time.perf_counter()
        D, I = index.search(X, k + 1)
        I, D = drop_self(I, D, k)
        slof, kd = slof_kdist(I, np.sqrt(np.maximum(D, 0)), k)
        search = time.perf_counter() - t1
        runs.append({"search_seconds": search, "seconds": build + search, "recall": recall_at_k(I[queries], queries, truth, k), "auroc_slof": auroc(slof, labels), "auroc_kdist": auroc(kd, labels)})
    return runs


def faiss_exact(a):
    faiss, X, labels, queries, truth = load_graph_task(a)
    n, d = X.shape
    k = a.k
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    index = faiss.IndexFlatL2(d)
    index.add(X)
    out = {"peer": "faiss_exact", "n": n, "d": d, "k": k, "threads": a.threads}
    if a.max_queries and n > a.max_queries:
        # Too long for the whole set: time a sample of queries and extrapolate linearly in queries.
        sample = np.ascontiguousarray(X[queries])
        D, I = index.search(sample, k + 1)
        seconds = time.perf_counter() - t0
        out.update(seconds=seconds * n / len(queries), measured_seconds=seconds, extrapolated=f"{len(queries)} queries x {n / len(queries):.0f}", auroc_slof=None, auroc_kdist=None)
        Ij, _ = drop_self(I, D, k, queries)
        out["recall"] = recall_at_k(Ij, queries, truth, k)
    else:
        D, I = index.search(X, k + 1)
        I, D = drop_self(I, D, k)
        slof, kd = slof_kdist(I, np.sqrt(np.maximum(D, 0)), k)
        seconds = time.perf_counter() - t0
        out.update(seconds=seconds, extrapolated=None, auroc_slof=auroc(slof, labels), auroc_kdist=auroc(kd, labels), recall=recall_at_k(I[queries], queries, truth, k))
    out.update(cpu_seconds=cpu_seconds() - cpu0, maxrss_mb=maxrss_mb())
    return out


def faiss_sampled(a):
    import faiss

    faiss.omp_set_num_threads(a.threads)
    X, labels = load(a.dir)
    n, d = X.shape
    k = a.k
    chunks = np.load(os.path.join(a.dir, "chunks.npy"))
    bounds = np.load(os.path.join(a.dir, "bounds.npy"))
    repeats = int(round(chunks.size / n))
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    slof = np.zeros(n)
    kd = np.zeros(n)
    for c in range(bounds.size - 1):
        members = chunks[bounds[c] : bounds[c + 1]]
        sub = np.ascontiguousarray(X[members])
        index = faiss.IndexFlatL2(d)
        index.add(sub)
        D, I = index.search(sub, k + 1)
        I, D = drop_self(I, D, k)
        s, kk = slof_kdist(I, np.sqrt(np.maximum(D, 0)), k)
        slof[members] += s
        kd[members] += kk
    seconds = time.perf_counter() - t0
    return {
        "peer": "faiss_sampled",
        "n": n,
        "d": d,
        "k": k,
        "threads": a.threads,
        "repeats": repeats,
        "chunks": int(bounds.size - 1),
        "seconds": seconds,
        "auroc_slof": auroc(slof / repeats, labels),
        "auroc_kdist": auroc(kd / repeats, labels),
        "cpu_seconds": cpu_seconds() - cpu0,
        "maxrss_mb": maxrss_mb(),
    }


def faiss_hnsw(a):
    faiss, X, labels, queries, truth = load_graph_task(a)
    n, d = X.shape
    k = a.k
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(d, a.M)
    index.hnsw.efConstruction = a.efc
    index.add(X)
    build = time.perf_counter() - t0
    efs = [int(v) for v in a.ef.split(",")]

    def set_ef(ef):
        index.hnsw.efSearch = max(ef, k + 1)

    runs = [{"ef": ef, **run} for ef, run in zip(efs, search_runs(index, X, labels, queries, truth, k, build, efs, set_ef))]
    return {"peer": "faiss_hnsw", "n": n, "d": d, "k": k, "threads": a.threads, "M": a.M, "efc": a.efc, "build_seconds": build, "runs": runs, "cpu_seconds": cpu_seconds() - cpu0, "maxrss_mb": maxrss_mb()}


def faiss_ivf(a):
    """IndexIVFFlat as src/neighbors/ivf.ts plans it: round(sqrt(n)) lists trained on 40 x lists points, 10 iterations; every point searched with nprobe lists."""
    faiss, X, labels, queries, truth = load_graph_task(a)
    n, d = X.shape
    k = a.k
    lists = a.lists or max(1, min(round(n**0.5), n // (2 * (k + 1))))
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, lists)
    index.cp.niter = 10
    index.train(X[np.random.default_rng(1).permutation(n)[: min(n, 40 * lists)]])
    index.add(X)
    build = time.perf_counter() - t0
    probes = [int(v) for v in a.probes.split(",")]

    def set_probes(p):
        index.nprobe = min(p, lists)

    runs = [{"probes": p, **run} for p, run in zip(probes, search_runs(index, X, labels, queries, truth, k, build, probes, set_probes))]
    return {"peer": "faiss_ivf", "n": n, "d": d, "k": k, "threads": a.threads, "lists": lists, "build_seconds": build, "runs": runs, "cpu_seconds": cpu_seconds() - cpu0, "maxrss_mb": maxrss_mb()}


def sklearn_lof(a):
    from sklearn.neighbors import LocalOutlierFactor

    X, labels = load(a.dir)
    n, d = X.shape
    k = a.k
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    lof = LocalOutlierFactor(n_neighbors=k, n_jobs=a.threads)
    lof.fit(X)
    seconds = time.perf_counter() - t0
    kd = lof._distances_fit_X_[:, k - 1]
    return {
        "peer": "sklearn_lof",
        "n": n,
        "d": d,
        "k": k,
        "threads": a.threads,
        "algorithm": lof._fit_method,
        "seconds": seconds,
        "auroc_lof": auroc(-lof.negative_outlier_factor_, labels),
        "auroc_kdist": auroc(kd, labels),
        "cpu_seconds": cpu_seconds() - cpu0,
        "maxrss_mb": maxrss_mb(),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("peer", choices=["faiss_exact", "faiss_sampled", "faiss_hnsw", "faiss_ivf", "sklearn_lof"])
    p.add_argument("--dir", required=True)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-queries", type=int, default=0, help="faiss_exact: above this many points, time the query sample only")
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--efc", type=int, default=200)
    p.add_argument("--ef", default="16,32,64,128")
    p.add_argument("--probes", default="8,16")
    p.add_argument("--lists", type=int, default=0)
    a = p.parse_args()
    out = {"faiss_exact": faiss_exact, "faiss_sampled": faiss_sampled, "faiss_hnsw": faiss_hnsw, "faiss_ivf": faiss_ivf, "sklearn_lof": sklearn_lof}[a.peer](a)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
