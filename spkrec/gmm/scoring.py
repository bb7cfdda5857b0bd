"""GMM-UBM scoring: average frame log-likelihood ratio of a speaker model against the UBM.

Top-C selection (Reynolds et al. 2000): for each frame the C best UBM components are found and both
the UBM and the speaker log-likelihoods are summed over those components only (``top_c=None``:
all components, exact).
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.gmm.core import PackedGMM, top_k
from spkrec.parallel import SERIAL, map_chunks

MAX_BLOCK_ELEMENTS = 8_000_000  # float32 elements of one (frames, models x Gaussians) product


def _logsumexp_rows(a):
    a = np.asarray(a, dtype=np.float64)
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def gmm_ubm_llr(speaker, ubm, X, top_c=5):
    """Average over frames of ``log p(x | speaker) - log p(x | UBM)`` with top-C selection."""
    X = np.asarray(X)
    if len(X) == 0:
        raise SpkrecError("gmm_ubm_llr: the test utterance has no frames; check its VAD")
    ll_ubm = ubm.log_likelihood_components(X)
    idx = top_k(ll_ubm, top_c)
    ll_spk = speaker.log_likelihood_components(X)
    return float(np.mean(_logsumexp_rows(np.take_along_axis(ll_spk, idx, 1))
                         - _logsumexp_rows(np.take_along_axis(ll_ubm, idx, 1))))


class _TrialScorer:
    """Picklable scoring state: UBM E-step matrices plus per-model score terms (float32)."""

    def __init__(self, ubm, models, top_c):
        self.top_c = top_c
        self.packed = ubm.packed()
        self.shared = models.weights is None and models.variances is None
        if self.shared:
            # ll_spk - ll_ubm of component c = (x - mu_c)/var_c . delta - 0.5 delta^2/var_c,
            # delta = mu_spk - mu_c
            inv_var = 1.0 / ubm.variances_
            delta = models.means - ubm.means_                         # (S, C, D)
            self.lin = (delta * inv_var).astype(np.float32)            # (S, C, D)
            mu_s = ubm.means_ - self.packed.shift
            self.const = (np.einsum("scd,cd->sc", delta, mu_s * inv_var)
                          + 0.5 * np.einsum("scd,cd->sc", delta * delta, inv_var)).astype(np.float32)
        else:
            self.models = [PackedGMM(ubm.weights_ if models.weights is None else models.weights[i],
                                     models.means[i],
                                     ubm.variances_ if models.variances is None else models.variances[i])
                           for i in range(len(models))]

    def scores(self, X, model_idx):
        if len(X) == 0:
            raise SpkrecError("a test utterance has no feature frames; check its VAD")
        Z = self.packed.expand(X)
        ll_ubm = Z @ self.packed.proj
        idx = top_k(ll_ubm, self.top_c)
        ubm_sel = np.take_along_axis(ll_ubm, idx, 1)
        ubm_frame = _logsumexp_rows(ubm_sel)
        T, k = idx.shape
        out = np.empty(len(model_idx))
        if not self.shared:
            for j, m in enumerate(model_idx):
                spk = self.models[m]
                spk_sel = np.take_along_axis(spk.component_loglik(X), idx, 1)
                out[j] = np.mean(_logsumexp_rows(spk_sel) - ubm_frame)
            return out
        D = self.packed.dim
        C = self.packed.num_gauss
        xs = Z[:, :D]
        step = max(1, MAX_BLOCK_ELEMENTS // max(1, T * C))
        for start in range(0, len(model_idx), step):
            ms = np.asarray(model_idx[start:start + step])
            G = xs @ self.lin[ms].reshape(-1, D).T                     # (T, m*C)
            G = G.reshape(T, len(ms), C)
            diff = np.take_along_axis(G, idx[:, None, :], 2) - self.const[ms][:, idx].transpose(1, 0, 2)
            spk_frame = _logsumexp_rows(ubm_sel[:, None, :].astype(np.float64) + diff)   # (T, m)
            out[start:start + len(ms)] = np.mean(spk_frame - ubm_frame[:, None], axis=0)
        return out


def _score_items(items, loader, scorer):
    return [scorer.scores(np.asarray(loader(test)), model_idx) for test, model_idx in items]


def score_trials(ubm, models, loader, trials, top_c=5, config=SERIAL):
    """Scores of ``(enroll_id, test_id, ...)`` trials (float64, in trial order).

    ``models``: :class:`~spkrec.gmm.map.SpeakerGMMs`; ``loader(test_id) -> (T, D)``. Each test
    utterance's UBM log-likelihoods and top-C components are computed once; all models it is tried
    against are then scored with one matrix product (means-only models).
    """
    by_test = {}
    for i, row in enumerate(trials):
        enroll, test = row[0], row[1]
        if enroll not in models.index:
            raise SpkrecError(f"trial {i + 1} ({enroll} {test}): no model for {enroll!r}; enrol it or "
                              "remove the trial")
        by_test.setdefault(test, ([], []))
        by_test[test][0].append(models.index[enroll])
        by_test[test][1].append(i)
    scorer = _TrialScorer(ubm, models, top_c)
    items = [(t, np.array(m)) for t, (m, _) in by_test.items()]
    parts = map_chunks(_score_items, items, config, desc="score", loader=loader, scorer=scorer)
    results = [r for part in parts for r in part]
    scores = np.empty(len(trials))
    for (_, rows), res in zip(by_test.values(), results):
        scores[rows] = res
    return scores
