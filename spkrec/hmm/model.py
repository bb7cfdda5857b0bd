"""Left-to-right HMM of one phrase with diagonal-GMM state emissions, trained by Baum-Welch.

Topology: ``n_states`` states, start in state 0, each state loops or moves to the next one, and a
path must end in the last state (``end_in_last=True``). Emissions: ``n_components`` diagonal Gaussians per
state. The mixture maths (component log-likelihoods as one float32 product, pruned posteriors, MAP
means) is :mod:`spkrec.gmm`'s; the lattice recursions are hmmlearn's (:mod:`spkrec.hmm.lattice`).
"""
import numpy as np
from sklearn.base import BaseEstimator

from spkrec.errors import SpkrecError
from spkrec.gmm.diag import DiagGMM
from spkrec.gmm.em import split_gaussians
from spkrec.gmm.core import PackedGMM
from spkrec.gmm.map import map_adapt_stats
from spkrec.hmm import lattice

LOG_ZERO = -np.inf


def _logsumexp_last(a):
    best = a.max(axis=-1, keepdims=True)
    best = np.where(np.isfinite(best), best, 0.0)
    return (best + np.log(np.exp(a - best).sum(axis=-1, keepdims=True)))[..., 0]


class PhraseHMM(BaseEstimator):
    """Left-to-right HMM with diagonal-GMM emissions for one phrase (scikit-learn style).

    Parameters
    ----------
    n_states : number of emitting states S (a training or enrolment utterance needs >= S frames).
    n_components : Gaussians per state M (grown by binary splitting from 1: the heaviest Gaussian of each
        state is split, +-0.2 standard deviations, ``n_iter_per_split`` Baum-Welch iterations after each).
    n_iter : Baum-Welch iterations at the full size.
    n_iter_per_split : iterations after each split (and after the uniform-segmentation start).
    var_floor : variances are floored at this fraction of the training frames' global variance.
    self_loop : initial self-loop probability (None: ``1 - S / mean frames``, the uniform segmentation's).
    end_in_last : paths must end in the last state.
    random_state : accepted for the scikit-learn convention; training is deterministic (uniform
        segmentation, then splitting).

    Fitted attributes: ``startprob_ (S,)``, ``transmat_ (S, S)``, ``weights_ (S, M)``, ``means_ (S, M, D)``,
    ``variances_ (S, M, D)`` (float64), ``var_floor_ (D,)``, ``loglik_history_`` (average log-likelihood
    per frame before each iteration at full size; never decreases).
    """

    def __init__(self, n_states=5, n_components=2, n_iter=5, n_iter_per_split=3, var_floor=1e-2,
                 self_loop=None, end_in_last=True, random_state=0):
        self.n_states = n_states
        self.n_components = n_components
        self.n_iter = n_iter
        self.n_iter_per_split = n_iter_per_split
        self.var_floor = var_floor
        self.self_loop = self_loop
        self.end_in_last = end_in_last
        self.random_state = random_state

    @classmethod
    def from_params(cls, startprob, transmat, weights, means, variances, **hyper):
        """A fitted model with the given parameters (shapes (S,), (S, S), (S, M), (S, M, D), (S, M, D))."""
        means = np.array(means, dtype=np.float64)
        if means.ndim != 3:
            raise SpkrecError(f"PhraseHMM: means must be (states, mix, dim), got shape {means.shape}")
        S, M, _ = means.shape
        hmm = cls(**{**hyper, "n_states": S, "n_components": M})
        hmm.startprob_ = np.array(startprob, dtype=np.float64)
        hmm.transmat_ = np.array(transmat, dtype=np.float64)
        hmm.weights_ = np.array(weights, dtype=np.float64)
        hmm.means_ = means
        hmm.variances_ = np.array(variances, dtype=np.float64)
        if (hmm.startprob_.shape != (S,) or hmm.transmat_.shape != (S, S) or hmm.weights_.shape != (S, M)
                or hmm.variances_.shape != means.shape):
            raise SpkrecError("PhraseHMM: inconsistent parameter shapes")
        hmm.var_floor_ = np.zeros(means.shape[2])
        hmm.loglik_history_ = []
        return hmm

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise SpkrecError("PhraseHMM: model is not fitted; call fit() or load it first")

    @property
    def dim_(self):
        return self.means_.shape[2]

    @property
    def log_end_(self):
        """(S,) log end-state probabilities (0 for the last state, -inf for others), or None."""
        if not self.end_in_last:
            return None
        end = np.full(self.n_states, LOG_ZERO)
        end[-1] = 0.0
        return end

    def flat_gmm(self):
        """The S*M Gaussians as one :class:`DiagGMM` (state-major; weights ``weights_ / S``)."""
        self._check_fitted()
        S, M, D = self.means_.shape
        return DiagGMM.from_params(self.weights_.reshape(-1) / S, self.means_.reshape(S * M, D),
                                   self.variances_.reshape(S * M, D))

    def packed(self):
        """Float32 E-step matrices of all S*M Gaussians (:class:`spkrec.gmm.core.PackedGMM`); component
        log-likelihoods from it are ``log w_sm + log N(x | s, m)`` with state weights summing to one."""
        S, M, D = self.means_.shape
        return PackedGMM(self.weights_.reshape(-1), self.means_.reshape(S * M, D),
                         self.variances_.reshape(S * M, D))

    # ------------------------------------------------------------------ inference
    def _check_X(self, X, what="utterance"):
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.dim_:
            raise SpkrecError(f"PhraseHMM: {what} features have shape {X.shape}, the model expects "
                              f"(frames, {self.dim_}); use the same feature options as for training")
        return X

    def component_loglik(self, X, packed=None):
        """(T, S, M) float64 ``log w_sm + log N(x_t | mu_sm, var_sm)``."""
        X = self._check_X(X)
        packed = packed or self.packed()
        S, M, _ = self.means_.shape
        return packed.component_loglik(X).astype(np.float64).reshape(len(X), S, M)

    def emission_loglik(self, X, packed=None):
        """(T, S) ``log p(x_t | state s)``."""
        return _logsumexp_last(self.component_loglik(X, packed))

    def score_utterance(self, X, method="forward", packed=None):
        """Total log-likelihood of one utterance: ``forward`` (all paths) or ``viterbi`` (best path)."""
        lf = self.emission_loglik(X, packed)
        if method == "viterbi":
            return float(lattice.viterbi(self.startprob_, self.transmat_, lf, self.log_end_)[0])
        if method != "forward":
            raise SpkrecError(f"PhraseHMM: unknown scoring method {method!r}; use forward or viterbi")
        return float(lattice.forward(self.startprob_, self.transmat_, lf, self.log_end_))

    def score(self, X, y=None):
        """Forward log-likelihood per frame."""
        return self.score_utterance(X) / max(len(X), 1)

    def decode(self, X):
        """Viterbi ``(log p(X, path), path (T,))``."""
        return lattice.viterbi(self.startprob_, self.transmat_, self.emission_loglik(X), self.log_end_)

    def posteriors(self, X, packed=None):
        """``(loglik, gamma (T, S), comp (T, S, M), xi (S, S))``: state, component and transition posteriors."""
        cl = self.component_loglik(X, packed)
        lf = _logsumexp_last(cl)
        loglik, gamma, xi = lattice.posteriors(self.startprob_, self.transmat_, lf, self.log_end_)
        with np.errstate(invalid="ignore"):
            within = np.exp(cl - lf[..., None])
        within = np.nan_to_num(within)
        return loglik, gamma, gamma[..., None] * within, xi

    # ------------------------------------------------------------------ training
    def check_lengths(self, utterances, names=None, what="training"):
        """Every utterance must have at least S frames (a left-to-right path visits every state)."""
        for i, X in enumerate(utterances):
            if len(X) < self.n_states:
                name = names[i] if names is not None else f"#{i}"
                raise SpkrecError(f"{what} utterance {name} has {len(X)} frames, fewer than the HMM's "
                                  f"{self.n_states} states; remove it or use fewer --num-states")

    def accumulate(self, utterances):
        """Baum-Welch statistics: ``dict(N (S, M), F (S, M, D), S2 (S, M, D), xi (S, S), loglik, frames)``.

        The component log-likelihoods of all utterances are one matrix product over their concatenated
        frames; only the lattice recursions run per utterance.
        """
        S, M, D = self.means_.shape
        X = np.concatenate([np.asarray(x, dtype=np.float64) for x in utterances])
        cl = self.component_loglik(X)                                   # (T, S, M)
        lf = _logsumexp_last(cl)
        gamma = np.empty((len(X), S))
        acc = {"xi": np.zeros((S, S)), "loglik": 0.0, "frames": len(X)}
        start = 0
        for x in utterances:
            end = start + len(x)
            loglik, gamma[start:end], xi = lattice.posteriors(self.startprob_, self.transmat_, lf[start:end],
                                                              self.log_end_)
            if not np.isfinite(loglik):
                raise SpkrecError(f"PhraseHMM: an utterance of {len(x)} frames has zero likelihood; "
                                  "check its frames and the number of states")
            acc["xi"] += xi
            acc["loglik"] += loglik
            start = end
        with np.errstate(invalid="ignore"):
            post = np.nan_to_num(np.exp(cl - lf[..., None])) * gamma[..., None]
        post = post.reshape(len(X), S * M)
        acc["N"] = post.sum(axis=0).reshape(S, M)
        acc["F"] = (post.T @ X).reshape(S, M, D)
        acc["S2"] = (post.T @ (X * X)).reshape(S, M, D)
        return acc

    def _m_step(self, acc):
        N = acc["N"]
        occ = N.sum(axis=1)
        safe = np.maximum(N, 1e-10)[..., None]
        means = np.where(N[..., None] > 1e-10, acc["F"] / safe, self.means_)
        var = np.where(N[..., None] > 1e-10, acc["S2"] / safe - means ** 2, self.variances_)
        self.variances_ = np.maximum(var, self.var_floor_)
        self.means_ = means
        w = np.maximum(N / np.maximum(occ, 1e-10)[:, None], 1e-8)
        self.weights_ = w / w.sum(axis=1, keepdims=True)
        allowed = self.transmat_ > 0
        xi = np.where(allowed, acc["xi"], 0.0)
        rows = xi.sum(axis=1, keepdims=True)
        self.transmat_ = np.where(rows > 0, xi / np.maximum(rows, 1e-300), self.transmat_)

    def baum_welch(self, utterances, n_iter):
        """Run ``n_iter`` Baum-Welch iterations from the current parameters; appends the average
        log-likelihood per frame before each to ``loglik_history_``."""
        self._check_fitted()
        for _ in range(int(n_iter)):
            acc = self.accumulate(utterances)
            self.loglik_history_.append(acc["loglik"] / max(acc["frames"], 1))
            self._m_step(acc)
        return self

    def fit(self, utterances, y=None):
        """Train on a list of (T_i, D) arrays, all utterances of the phrase."""
        utterances = [np.asarray(X, dtype=np.float64) for X in utterances]
        if not utterances or any(X.ndim != 2 for X in utterances):
            raise SpkrecError("PhraseHMM.fit: expected a non-empty list of (frames, dim) arrays")
        for name, value in (("n_states", self.n_states), ("n_components", self.n_components)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise SpkrecError(f"PhraseHMM: {name} must be an integer >= 1, got {value!r}")
        self.check_lengths(utterances)
        S, D = int(self.n_states), utterances[0].shape[1]
        allX = np.concatenate(utterances)
        gvar = allX.var(axis=0)
        if not np.all(np.isfinite(allX)) or np.all(gvar <= 0):
            raise SpkrecError("PhraseHMM.fit: training frames are non-finite or all identical")
        self.var_floor_ = self.var_floor * np.maximum(gvar, 1e-10 * max(gvar.max(), 1e-300))
        # uniform segmentation: single Gaussians per state, self-loops from the mean state duration
        seg = [np.minimum((np.arange(len(X)) * S) // len(X), S - 1) for X in utterances]
        lab = np.concatenate(seg)
        means = np.stack([allX[lab == s].mean(axis=0) for s in range(S)])
        var = np.stack([np.maximum(allX[lab == s].var(axis=0), self.var_floor_) for s in range(S)])
        loop = self.self_loop if self.self_loop is not None else max(0.0, 1.0 - S * len(utterances) / len(allX))
        loop = float(np.clip(loop, 0.05, 0.95))
        trans = np.diag(np.full(S, loop)) + np.diag(np.full(S - 1, 1.0 - loop), 1)
        trans[-1, -1] = 1.0
        start = np.zeros(S)
        start[0] = 1.0
        self.startprob_, self.transmat_ = start, trans
        self.weights_, self.means_, self.variances_ = np.ones((S, 1)), means[:, None, :], var[:, None, :]
        self.loglik_history_ = []
        self.init_loglik_history_ = []
        m = 1
        while True:
            for _ in range(self.n_iter_per_split if m < self.n_components or self.n_components == 1 else 0):
                acc = self.accumulate(utterances)
                self.init_loglik_history_.append((m, acc["loglik"] / acc["frames"]))
                self._m_step(acc)
            if m >= self.n_components:
                break
            m_new = min(2 * m, int(self.n_components))
            parts = [split_gaussians(self.weights_[s], self.means_[s], self.variances_[s], m_new) for s in range(S)]
            self.weights_ = np.stack([p[0] for p in parts])
            self.means_ = np.stack([p[1] for p in parts])
            self.variances_ = np.stack([p[2] for p in parts])
            m = m_new
        return self.baum_welch(utterances, self.n_iter)

    # ------------------------------------------------------------------ MAP adaptation
    def map_adapt(self, utterances, relevance_factor=16.0, adapt="m"):
        """A copy MAP-adapted to ``utterances`` (Reynolds et al. 2000, per Gaussian, relevance r): the state
        means (``adapt="m"``), also the weights within each state (``"mw"``), also the variances (``"mwv"``).
        The alignment is this (speaker-independent) model's forward-backward; transitions are kept."""
        from types import SimpleNamespace
        acc = self.accumulate(utterances)
        # states as the batch axis of the mixture core's MAP: weights are renormalised within each state
        prior = SimpleNamespace(weights_=self.weights_, means_=self.means_, variances_=self.variances_,
                                var_floor_=getattr(self, "var_floor_", 0.0))
        p = map_adapt_stats(prior, acc["N"], acc["F"], acc["S2"], relevance_factor=relevance_factor, adapt=adapt)
        return self.with_params(p["means"], p.get("weights"), p.get("variances"))

    def with_means(self, means):
        """A copy of this model with other means (S, M, D)."""
        return self.with_params(means)

    def with_params(self, means, weights=None, variances=None):
        """A copy with other means (S, M, D), and weights (S, M) / variances (S, M, D) unless None (kept)."""
        hmm = PhraseHMM.from_params(self.startprob_, self.transmat_,
                                    self.weights_ if weights is None else weights, means,
                                    self.variances_ if variances is None else variances, **self.get_params())
        hmm.var_floor_ = getattr(self, "var_floor_", hmm.var_floor_)
        return hmm
