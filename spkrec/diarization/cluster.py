"""Clustering of a symmetric similarity (score) matrix into speakers.

:func:`ahc` is average-linkage agglomerative clustering (``scipy.cluster.hierarchy``) on the distance
``max(S) - S``, stopped where the best remaining pair's average similarity falls below ``threshold`` or at
``num_clusters``. :func:`spectral` is spectral clustering (scikit-learn) of the affinity
``sigmoid((S - threshold) / scale)`` (scale: a tenth of the scores' spread by default), with the number of clusters from the largest eigengap of the
normalised Laplacian when not given. :func:`absorb_small` merges clusters too small to be a speaker.
:func:`merge_by_llr` then merges whole clusters by their PLDA log-likelihood ratio (:func:`cluster_llr`,
multi-enrolment scoring of one cluster's windows against the other's mean): average linkage of noisy
window scores leaves one speaker split in several clusters, which the cluster-level LLR joins.
Labels are 0..K-1 in order of first appearance.
"""
import numpy as np

from spkrec.errors import SpkrecError


def _check(S):
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise SpkrecError(f"clustering needs a square score matrix, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise SpkrecError("the score matrix has non-finite values; check the system's back end")
    return 0.5 * (S + S.T)


def relabel(labels):
    """Labels renumbered 0..K-1 in order of first appearance."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv].astype(np.int64)


def ahc(S, threshold=0.0, num_clusters=None):
    """Average-linkage AHC of an (n, n) similarity matrix -> (n,) labels.

    Merging stops when the highest average similarity between clusters is below ``threshold`` (a score,
    e.g. a PLDA LLR), or when ``num_clusters`` clusters are left (then ``threshold`` is ignored)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    S = _check(S)
    n = len(S)
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1:
        return np.zeros(1, np.int64)
    top = S[~np.eye(n, dtype=bool)].max()
    D = top - S
    np.fill_diagonal(D, 0.0)
    Z = linkage(squareform(np.maximum(D, 0.0), checks=False), method="average")
    if num_clusters is not None:
        labels = fcluster(Z, t=min(int(num_clusters), n), criterion="maxclust")
    else:
        # merge while top - d >= threshold, i.e. d <= top - threshold
        labels = fcluster(Z, t=top - float(threshold), criterion="distance")
    return relabel(labels)


def absorb_small(S, labels, min_size):
    """Clusters of fewer than ``min_size`` members merged, smallest first, into the cluster of highest
    average similarity (outlier windows and boundary windows otherwise stay as speakers of their own).
    -> (n,) labels, renumbered."""
    S = _check(S)
    labels = np.asarray(labels, np.int64).copy()
    while True:
        ks, counts = np.unique(labels, return_counts=True)
        if len(ks) <= 1 or counts.min() >= min_size:
            return relabel(labels)
        small = labels == ks[np.argmin(counts)]
        others = [k for k in ks if k != ks[np.argmin(counts)]]
        labels[small] = others[int(np.argmax([S[np.ix_(small, labels == k)].mean() for k in others]))]


def _affinity(S, threshold, scale):
    off = S[~np.eye(len(S), dtype=bool)]
    scale = float(scale) if scale else max(0.1 * float(off.std()), 1e-6)
    A = 1.0 / (1.0 + np.exp(-(S - threshold) / scale))
    np.fill_diagonal(A, 0.0)
    return A


def estimate_num_clusters(A, max_clusters=10):
    """Number of clusters of an affinity matrix by the largest eigengap of its normalised Laplacian."""
    d = A.sum(axis=1)
    d = np.where(d > 0, d, 1e-12) ** -0.5
    L = np.eye(len(A)) - d[:, None] * A * d[None, :]
    ev = np.sort(np.linalg.eigvalsh(L))[: max_clusters + 1]
    if len(ev) < 2:
        return 1
    return int(np.argmax(np.diff(ev)) + 1)


def spectral(S, num_clusters=None, threshold=0.0, scale=None, max_clusters=10, random_state=0):
    """Spectral clustering of an (n, n) similarity matrix -> (n,) labels (see the module notes)."""
    from sklearn.cluster import SpectralClustering
    S = _check(S)
    n = len(S)
    if n <= 2:
        return ahc(S, threshold, num_clusters)
    A = _affinity(S, threshold, scale)
    k = int(num_clusters) if num_clusters is not None else estimate_num_clusters(A, min(max_clusters, n - 1))
    if k <= 1:
        return np.zeros(n, np.int64)
    labels = SpectralClustering(n_clusters=min(k, n), affinity="precomputed", random_state=random_state,
                                assign_labels="cluster_qr").fit_predict(A + 1e-9)
    return relabel(labels)



def cluster_llr(scorer, A, B):
    """Cluster-level PLDA log-likelihood ratio of the vector sets ``A`` and ``B`` (rows, in the scorer's
    input space): the multi-enrolment LLR of A (its mean, count len(A)) against B's mean, and of B against
    A's mean, averaged (symmetric). Each test side is ONE vector (its mean): the exact LLR of all windows
    pooled treats the overlapping windows as independent and is far overconfident (hundreds of nats,
    same- and different-speaker pairs overlapping)."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    means = np.stack([A.mean(axis=0), B.mean(axis=0)])
    s = scorer.score_pairs(means, means[::-1], n_enroll=np.array([len(A), len(B)]), pairs=([0, 1], [0, 1]))
    return float(np.mean(s))


def merge_by_llr(scorer, X, labels, threshold):
    """Repeatedly merge the two clusters of ``labels`` whose :func:`cluster_llr` is highest while it is at
    least ``threshold`` -> (n,) labels, renumbered. X : (n, dim) vectors of a PLDA ``scorer``."""
    X = np.asarray(X, np.float64)
    labels = np.asarray(labels, np.int64).copy()
    members = {k: np.flatnonzero(labels == k) for k in np.unique(labels)}
    cache = {}

    def llr(a, b):
        if (a, b) not in cache:
            cache[a, b] = cluster_llr(scorer, X[members[a]], X[members[b]])
        return cache[a, b]

    while len(members) > 1:
        ks = sorted(members)
        best, a, b = max((llr(a, b), a, b) for i, a in enumerate(ks) for b in ks[i + 1:])
        if best < threshold:
            break
        members[a] = np.concatenate([members[a], members.pop(b)])
        cache = {p: v for p, v in cache.items() if a not in p and b not in p}
        labels[members[a]] = a
    return relabel(labels)
