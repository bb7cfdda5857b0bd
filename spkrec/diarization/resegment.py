"""Frame-level GMM resegmentation: one diagonal GMM per cluster, MAP-adapted (means) from a UBM on the
frames the cluster holds, then Viterbi decoding of the speech frames with a fixed penalty (in nats) for
each change of speaker; repeated ``iters`` times."""
import numpy as np


def diagonal_ubm(ubm):
    """A :class:`spkrec.gmm.DiagGMM` from a DiagGMM or a full-covariance UBM (its diagonal)."""
    from spkrec.gmm import DiagGMM
    if hasattr(ubm, "variances_"):
        return ubm
    cov = np.asarray(ubm.covariances_)
    return DiagGMM.from_params(ubm.weights_, ubm.means_, np.diagonal(cov, axis1=1, axis2=2).copy())


def train_ubm(X, num_gauss=16, random_state=0):
    """A small DiagGMM on the recording's own frames (when the system has no UBM)."""
    from spkrec.gmm import DiagGMM
    g = max(1, min(int(num_gauss), len(X) // 50))
    return DiagGMM(n_components=g, n_iter=5, random_state=random_state).fit(np.asarray(X, np.float32))


def viterbi(loglik, penalty):
    """Best label path of (T, K) frame log-likelihoods, ``penalty`` nats per speaker change -> (T,) ints."""
    T, K = loglik.shape
    back = np.zeros((T, K), np.int64)
    delta = loglik[0].copy()
    idx = np.arange(K)
    for t in range(1, T):
        best = int(np.argmax(delta))
        switch = delta[best] - penalty
        stay = delta >= switch
        back[t] = np.where(stay, idx, best)
        delta = np.where(stay, delta, switch) + loglik[t]
    path = np.empty(T, np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def resegment(X, labels, segments, ubm=None, iters=2, penalty=10.0, relevance_factor=16.0, min_frames=50):
    """Refine frame labels.

    X : (T, dim) frames. labels : (T,) ints, -1 for non-speech. segments : ``[(start, end)]`` frame ranges
    decoded independently (speech regions). ubm : DiagGMM/FullGMM or None (one is trained on X).
    Clusters with fewer than ``min_frames`` frames are dropped (their frames go to the others).
    -> (T,) labels (-1 kept outside the segments)."""
    from spkrec.gmm import map_adapt
    labels = np.asarray(labels, np.int64).copy()
    speech = labels >= 0
    if not speech.any():
        return labels
    ubm = diagonal_ubm(ubm) if ubm is not None else train_ubm(X[speech])
    X = np.asarray(X, np.float64)
    for _ in range(int(iters)):
        ks = [k for k in np.unique(labels[speech]) if (labels == k).sum() >= min_frames]
        if len(ks) <= 1:
            break
        models = [map_adapt(ubm, X[labels == k], relevance_factor=relevance_factor) for k in ks]
        ll = np.stack([m.score_samples(X) for m in models], axis=1)
        new = labels.copy()
        for s, e in segments:
            new[s:e] = np.asarray(ks)[viterbi(ll[s:e], penalty)]
        if np.array_equal(new, labels):
            break
        labels = new
    return labels
