"""MAP adaptation of a UBM (Reynolds, Quatieri & Dunn 2000), single and batched, and speaker-model files.

With occupancy ``N_c``, ``E_c[x] = F_c / N_c``, ``E_c[x^2] = S_c / N_c`` and ``alpha_c = N_c / (N_c + r)``:

    mu_c  = alpha_c E_c[x] + (1 - alpha_c) mu_c^UBM
    w_c   = gamma [alpha_c N_c / T + (1 - alpha_c) w_c^UBM]            (gamma: weights sum to one)
    var_c = alpha_c E_c[x^2] + (1 - alpha_c) (var_c^UBM + (mu_c^UBM)^2) - mu_c^2
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.gmm.core import GmmStats, accumulate
from spkrec.io.atomic import load_npz, save_npz
from spkrec.parallel import SERIAL, map_chunks

ADAPT_MODES = ("m", "mw", "mwv")


def _check_adapt(adapt):
    if adapt not in ADAPT_MODES:
        raise SpkrecError(f"MAP: unknown adapt mode {adapt!r}; use one of {', '.join(ADAPT_MODES)}")


def map_means(ubm_means, N, F, relevance_factor):
    """MAP means ``alpha_c E_c[x] + (1 - alpha_c) mu_c^UBM`` (float64, shape of F) from occupancies
    N (..., C) and first-order statistics F (..., C, D); also returns ``alpha`` (..., C)."""
    N = np.asarray(N, dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    alpha = N / (N + float(relevance_factor))
    a = alpha[..., None]
    ex = F / np.maximum(N, 1e-300)[..., None]             # E[x]; alpha is 0 where N is 0
    return a * ex + (1.0 - a) * ubm_means, alpha


def map_adapt_stats(ubm, N, F, S=None, relevance_factor=16.0, adapt="m"):
    """Batched MAP: statistics of many speakers -> adapted parameters.

    N (n, C), F (n, C, D), S (n, C, D) (needed for ``adapt="mwv"``). Returns a dict with
    ``means`` (n, C, D) and, when adapted, ``weights`` (n, C) and ``variances`` (n, C, D), float64.
    """
    _check_adapt(adapt)
    N = np.asarray(N, dtype=np.float64)
    means, alpha = map_means(ubm.means_, N, F, relevance_factor)   # alpha (n, C)
    a = alpha[..., None]
    out = {"means": means}
    if adapt in ("mw", "mwv"):
        total = np.maximum(N.sum(axis=1, keepdims=True), 1e-300)
        w = alpha * N / total + (1.0 - alpha) * ubm.weights_
        out["weights"] = w / w.sum(axis=1, keepdims=True)
    if adapt == "mwv":
        if S is None:
            raise SpkrecError("MAP: adapt='mwv' needs second-order statistics S")
        ex2 = np.asarray(S, dtype=np.float64) / np.maximum(N, 1e-300)[..., None]
        var = a * ex2 + (1.0 - a) * (ubm.variances_ + ubm.means_ ** 2) - means ** 2
        floor = np.maximum(getattr(ubm, "var_floor_", 0.0), 1e-10)
        out["variances"] = np.maximum(var, floor)
    return out


def map_adapt(ubm, X, relevance_factor=16.0, adapt="m"):
    """MAP-adapt ``ubm`` (a fitted :class:`DiagGMM`) to frames ``X`` (T, D); returns a new DiagGMM."""
    _check_adapt(adapt)
    stats = ubm.accumulate_stats(X, second_order=adapt == "mwv")
    p = map_adapt_stats(ubm, stats.occupancy[None], stats.first[None],
                        None if adapt != "mwv" else stats.second[None], relevance_factor, adapt)
    from spkrec.gmm.diag import DiagGMM  # here: the workers that import this module skip scikit-learn
    return DiagGMM.from_params(p["weights"][0] if "weights" in p else ubm.weights_, p["means"][0],
                               p["variances"][0] if "variances" in p else ubm.variances_)


class SpeakerGMMs:
    """Many MAP-adapted speaker GMMs sharing one UBM, stored together.

    ``ids`` list of S speaker ids; ``means`` (S, C, D); ``weights`` (S, C) or None (UBM's);
    ``variances`` (S, C, D) or None (UBM's); ``relevance_factor``, ``adapt``.
    """

    def __init__(self, ids, means, weights=None, variances=None, relevance_factor=16.0, adapt="m"):
        self.ids = [str(i) for i in ids]
        self.means = np.asarray(means, dtype=np.float64)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.variances = None if variances is None else np.asarray(variances, dtype=np.float64)
        self.relevance_factor = float(relevance_factor)
        self.adapt = adapt
        self.index = {s: i for i, s in enumerate(self.ids)}

    def __len__(self):
        return len(self.ids)

    def model(self, spk, ubm):
        """The :class:`DiagGMM` of speaker ``spk`` (UBM weights/variances where not adapted)."""
        i = self.index[spk]
        from spkrec.gmm.diag import DiagGMM
        return DiagGMM.from_params(ubm.weights_ if self.weights is None else self.weights[i], self.means[i],
                                   ubm.variances_ if self.variances is None else self.variances[i])

    def save(self, path):
        arrays = {"ids": np.array(self.ids, dtype=str), "means": self.means}
        if self.weights is not None:
            arrays["weights"] = self.weights
        if self.variances is not None:
            arrays["variances"] = self.variances
        save_npz(path, "SpeakerGMMs", arrays,
                 {"relevance_factor": self.relevance_factor, "adapt": self.adapt})

    @classmethod
    def load(cls, path):
        arrays, meta = load_npz(path, "SpeakerGMMs")
        return cls(arrays["ids"].tolist(), arrays["means"], arrays.get("weights"), arrays.get("variances"),
                   meta.get("relevance_factor", 16.0), meta.get("adapt", "m"))


def _group_stats(groups, loader, packed, second_order):
    """Worker: pooled statistics (N, F, S or None) of each group of utterance ids."""
    out = []
    for utts in groups:
        stats = GmmStats.zeros(packed.num_gauss, packed.dim)
        for utt in utts:
            accumulate(packed, np.asarray(loader(utt)), stats, second_order)
        out.append((stats.occupancy, stats.first, stats.second if second_order else None, stats.num_frames))
    return out


def utterance_stats(ubm, loader, groups, config=SERIAL, second_order=False, desc=None):
    """Pooled statistics for each group of utterances (a list of lists of ids), in parallel.

    Returns ``N (n, C), F (n, C, D), S (n, C, D) or None, frames (n,)`` float64.
    """
    packed = ubm.packed()
    parts = map_chunks(_group_stats, list(groups), config, desc=desc, loader=loader, packed=packed,
                       second_order=second_order)
    res = [r for part in parts for r in part]
    N = np.stack([r[0] for r in res])
    F = np.stack([r[1] for r in res])
    S = np.stack([r[2] for r in res]) if second_order else None
    return N, F, S, np.array([r[3] for r in res])


def enroll_speakers(ubm, loader, spk2utt, relevance_factor=16.0, adapt="m", config=SERIAL):
    """MAP-adapt one model per speaker from all of its utterances pooled; returns :class:`SpeakerGMMs`."""
    _check_adapt(adapt)
    spks = list(spk2utt)
    N, F, S, frames = utterance_stats(ubm, loader, [spk2utt[s] for s in spks], config, adapt == "mwv",
                                      desc="enroll")
    empty = [s for s, n in zip(spks, frames) if n == 0]
    if empty:
        raise SpkrecError(f"speaker {empty[0]}: no feature frames in its enrolment utterances "
                          f"({len(empty)} such speakers); check vad.scp or remove them from spk2utt")
    p = map_adapt_stats(ubm, N, F, S, relevance_factor, adapt)
    return SpeakerGMMs(spks, p["means"], p.get("weights"), p.get("variances"), relevance_factor, adapt)
