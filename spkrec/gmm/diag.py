"""Diagonal-covariance GMM (the UBM), trained by EM with binary-splitting or k-means initialisation."""
import logging
import time

import numpy as np
from sklearn.base import BaseEstimator

from spkrec.errors import SpkrecError
from spkrec.gmm import em
from spkrec.gmm.core import PackedGMM, accumulate, posteriors_inplace, saved_params
from spkrec.notfitted import NotFitted
from spkrec.io.atomic import load_npz, save_npz
from spkrec.io.frames import frame_source, is_frame_source
from spkrec.parallel import SERIAL, map_chunks

log = logging.getLogger("spkrec")

KMEANS_MAX_FRAMES = 200000
CONSTANT_VAR = 1e-10
"""A dimension whose global variance is below this times ``1 + mean**2`` is constant (float rounding)."""
MIN_VAR_RATIO = 1e-6
"""Variance floors are relative to at least this times the median global variance (never binds on real
features: on MFCCs with deltas the smallest dimension's variance is ~3e-3 x the median)."""


class DiagGMM(BaseEstimator):
    """Diagonal-covariance Gaussian mixture, a scikit-learn estimator.

    Parameters
    ----------
    n_components : number of Gaussians C (CLI: ``--num-gauss``).
    n_iter : EM iterations at the full size C, after initialisation (CLI: ``--num-iters``).
    init : ``"split"`` (HTK/Kaldi binary splitting from the global Gaussian: every Gaussian's mean
        is moved by +-0.2 standard deviations, doubling until C, ``n_iter_per_split`` EM
        iterations after each split) or ``"kmeans"`` (sklearn KMeans on at most 200k frames,
        seeded by ``random_state``).
    var_floor : variances are floored at ``var_floor`` times the global (all-frames) variance of each
        dimension (Kaldi-style relative floor; how many variances it raised is logged per iteration).
        Training frames that are all identical are an error; a dimension constant over all frames
        (warned) is floored relative to the median variance of the others.
    weight_floor : weights are floored at this value (then renormalised).
    subsample : use every ``subsample``-th frame of each utterance.
    chunk_frames : frames per E-step matrix product (memory is ~ ``chunk_frames * C * 4`` bytes).
    min_gauss_frames : a Gaussian with a smaller occupancy is dead: it keeps its parameters and is
        replaced by a split of the heaviest Gaussian.
    random_state : seed (only k-means uses randomness); same seed, same data -> bit-identical model.
    verbose : log every EM iteration at INFO level (else DEBUG).
    parallel : a :class:`spkrec.parallel.ParallelConfig` (None: serial); the numbers do not depend on it.

    Fitted attributes: ``weights_ (C,)``, ``means_ (C, D)``, ``variances_ (C, D)`` (float64),
    ``var_floor_ (D,)``, ``loglik_history_`` (average log-likelihood per frame at the start of each
    full-size iteration, never decreasing unless a dead Gaussian was re-split), ``init_loglik_history_``
    (``(n_components, avg_loglik)`` of the iterations during splitting), ``iteration_seconds_`` (wall time
    of every EM iteration, splitting ones first; not saved).
    """

    def __init__(self, n_components=256, n_iter=20, init="split", n_iter_per_split=4, var_floor=1e-3,
                 weight_floor=1e-8, subsample=1, chunk_frames=50000, min_gauss_frames=10.0, random_state=0,
                 verbose=False, parallel=None):
        self.n_components = n_components
        self.n_iter = n_iter
        self.init = init
        self.n_iter_per_split = n_iter_per_split
        self.var_floor = var_floor
        self.weight_floor = weight_floor
        self.subsample = subsample
        self.chunk_frames = chunk_frames
        self.min_gauss_frames = min_gauss_frames
        self.random_state = random_state
        self.verbose = verbose
        self.parallel = parallel

    def _parallel(self, config=None):
        return config if config is not None else (self.parallel if self.parallel is not None else SERIAL)

    # ------------------------------------------------------------------ construction / IO
    @classmethod
    def from_params(cls, weights, means, variances, **hyper):
        """A fitted model with the given parameters (weights are renormalised)."""
        gmm = cls(**{**hyper, "n_components": len(weights)})
        w = np.asarray(weights, dtype=np.float64)
        gmm.weights_ = w / w.sum()
        gmm.means_ = np.array(means, dtype=np.float64)
        gmm.variances_ = np.array(variances, dtype=np.float64)
        if gmm.means_.shape != gmm.variances_.shape or gmm.means_.shape[0] != len(w):
            raise SpkrecError(f"DiagGMM: inconsistent shapes weights {w.shape}, means {gmm.means_.shape}, "
                              f"variances {gmm.variances_.shape}")
        gmm.var_floor_ = np.zeros(gmm.means_.shape[1])
        gmm.loglik_history_, gmm.init_loglik_history_ = [], []
        return gmm

    def _hyper(self):
        return {k: getattr(self, k) for k in ("n_components", "n_iter", "init", "n_iter_per_split",
                                              "var_floor",
                                              "weight_floor", "subsample", "chunk_frames", "min_gauss_frames",
                                              "random_state")}

    def save(self, path, meta=None):
        """Write ``path`` (.npz, atomic, pickle-free). ``meta``: extra JSON info (e.g. feature options)."""
        self._check_fitted()
        save_npz(path, "DiagGMM", {"weights": self.weights_, "means": self.means_,
                                   "variances": self.variances_,
                                   "var_floor": self.var_floor_,
                                   "loglik_history": np.asarray(self.loglik_history_, dtype=np.float64)},
                 {"hyper": self._hyper(), **(meta or {})})

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; the file's extra meta is in ``.meta_``."""
        arrays, meta = load_npz(path, "DiagGMM")
        gmm = cls.from_params(arrays["weights"], arrays["means"], arrays["variances"],
                              **saved_params(meta.get("hyper", {}), cls))
        gmm.var_floor_ = arrays["var_floor"]
        gmm.loglik_history_ = arrays["loglik_history"].tolist()
        gmm.meta_ = {k: v for k, v in meta.items() if k != "hyper"}
        return gmm

    # ------------------------------------------------------------------ inference
    @property
    def n_components_(self):
        return len(self.weights_)

    @property
    def dim_(self):
        return self.means_.shape[1]

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise NotFitted("DiagGMM: model is not fitted; call fit() or DiagGMM.load() first")

    def _check_X(self, X):
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.dim_:
            raise SpkrecError(f"DiagGMM: features have shape {X.shape}, the model expects "
                              f"(frames, {self.dim_}); "
                              "use the same feature options as for training")
        return X

    def packed(self):
        """The float32 E-step matrices (:class:`~spkrec.gmm.core.PackedGMM`)."""
        self._check_fitted()
        return PackedGMM(self.weights_, self.means_, self.variances_)

    def log_likelihood_components(self, X):
        """(T, C) float32 ``log w_c + log N(x_t | mu_c, var_c)``."""
        return self.packed().component_loglik(self._check_X(X))

    def score_samples(self, X):
        """(T,) float64 frame log-likelihoods ``log p(x_t)``."""
        ll = self.log_likelihood_components(X)
        return posteriors_inplace(ll)[0]

    def score(self, X, y=None):
        """Average log-likelihood per frame."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """(T, C) float32 posteriors (those below exp(-50) times the best are zero)."""
        ll = self.log_likelihood_components(X)
        _, total = posteriors_inplace(ll)
        ll /= total[:, None]
        return ll

    def accumulate_stats(self, X, second_order=True):
        """Baum-Welch statistics of frames ``X`` (:class:`~spkrec.gmm.core.GmmStats`, float64)."""
        X = self._check_X(X)
        packed = self.packed()
        stats = None
        for start in range(0, max(len(X), 1), self.chunk_frames):
            stats = accumulate(packed, X[start:start + self.chunk_frames], stats, second_order)
        return stats

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, utt_ids=None):
        """Train on frames: a (T, D) array (cut into ``chunk_frames`` pieces) or a frame source
        (:mod:`spkrec.io.frames`: ``X.utt_ids`` and ``X(utt) -> (T_u, D)``, e.g. a ``FeatureLoader``),
        read out of core; ``utt_ids`` selects the source's utterances. Each EM iteration streams the
        utterances through ``spkrec.parallel.map_chunks`` with the ``parallel`` settings.
        """
        config = self._parallel()
        if not is_frame_source(X):
            X = np.asarray(X)
            if X.ndim != 2 or len(X) == 0:
                raise SpkrecError(f"DiagGMM.fit: expected a non-empty (frames, dim) array, got shape {X.shape}")
        loader, utt_ids = frame_source(X, utt_ids, piece=self.chunk_frames)
        if not utt_ids:
            raise SpkrecError("DiagGMM: no utterances to train on; check the data dir")
        if self.init not in ("split", "kmeans"):
            raise SpkrecError(f"DiagGMM: unknown init {self.init!r}; use 'split' or 'kmeans'")
        self._check_hyper()
        sub = int(self.subsample)
        self._iteration = 0
        mean, var, n, frames = em.load_frames(loader, utt_ids, config, sub)  # frames: kept if they fit
        self.var_floor_ = self.var_floor * self._floor_reference(mean, var, n)
        if n < self.n_components:
            raise SpkrecError(f"DiagGMM: only {n} frames for {self.n_components} Gaussians; "
                              "use fewer Gaussians or more data (or less --subsample)")
        self.init_loglik_history_, self.loglik_history_, self.iteration_seconds_ = [], [], []
        if self.init == "kmeans":
            w, m, v = self._kmeans_init(loader, utt_ids, config, sub, n, var)
        else:
            w, m, v = np.ones(1), mean[None, :], var[None, :]
            while len(w) < self.n_components:
                w, m, v = em.split_gaussians(w, m, v, min(2 * len(w), self.n_components))
                for _ in range(self.n_iter_per_split):
                    w, m, v, ll = self._em_iter(w, m, v, loader, utt_ids, config, frames)
                    self.init_loglik_history_.append((len(w), ll))
                    (log.info if self.verbose else log.debug)(
                        "EM (splitting): %d Gaussians, avg log-lik %.5f", len(w), ll)
        self.weights_, self.means_, self.variances_ = w, m, v
        return self.em_iterations(loader, utt_ids, self.n_iter, config, frames)

    def em_iterations(self, loader, utt_ids, n_iter, config=None, frames=None):
        """Run ``n_iter`` EM iterations from the current parameters (appends to ``loglik_history_``).

        Used by :meth:`fit`; also continues training of a loaded or
        :meth:`from_params` model (its ``var_floor_`` applies). ``frames``: the utterances' frames
        kept in memory (:func:`spkrec.gmm.em.load_frames`), same numbers as reading them from ``loader``.
        """
        self._check_fitted()
        config = self._parallel(config)
        if not hasattr(self, "iteration_seconds_"):
            self.iteration_seconds_ = []
        w, m, v = self.weights_, self.means_, self.variances_
        for it in range(n_iter):
            w, m, v, ll = self._em_iter(w, m, v, loader, list(utt_ids), config, frames)
            self.loglik_history_.append(ll)
            (log.info if self.verbose else log.debug)("EM iteration %d/%d: %d Gaussians, avg log-lik %.5f",
                                                      it + 1, n_iter, len(w), ll)
            self.weights_, self.means_, self.variances_ = w, m, v
        return self

    def _check_hyper(self):
        checks = [("n_components", self.n_components, 1), ("n_iter", self.n_iter, 0),
                  ("n_iter_per_split", self.n_iter_per_split, 0), ("subsample", self.subsample, 1),
                  ("chunk_frames", self.chunk_frames, 1)]
        for name, value, low in checks:
            if not isinstance(value, (int, np.integer)) or value < low:
                raise SpkrecError(f"DiagGMM: {name} must be an integer >= {low}, got {value!r}")
        if not (np.isfinite(self.var_floor) and self.var_floor > 0):
            raise SpkrecError(f"DiagGMM: var_floor must be > 0 (a fraction of the global variance), "
                              f"got {self.var_floor!r}")

    @staticmethod
    def _floor_reference(mean, var, n):
        """The per-dimension variance the floor is relative to: the global variance, at least
        ``MIN_VAR_RATIO`` x the median one; a dimension constant over all frames (warned) gets the median
        variance of the others, so that test data varying there cannot give huge log-likelihood ratios."""
        if not (np.isfinite(mean).all() and np.isfinite(var).all()):
            raise SpkrecError("DiagGMM: the features contain NaN or inf (or values so large that their "
                              "squares overflow); check feats.scp")
        constant = var <= CONSTANT_VAR * (1.0 + mean * mean)
        if constant.all():
            raise SpkrecError(f"DiagGMM: all {n} training frames are identical (zero variance in every "
                              "dimension); check the features (constant or silent audio, a broken front end)")
        median = np.median(var[~constant])
        ref = np.where(constant, median, np.maximum(var, MIN_VAR_RATIO * median))
        if constant.any():
            dims = np.flatnonzero(constant)
            log.warning("DiagGMM: feature dimension(s) %s are constant over all %d frames; their variance "
                        "floor is relative to the median variance of the other dimensions",
                        ", ".join(map(str, dims[:10])), n)
        return ref

    def _em_iter(self, w, m, v, loader, utt_ids, config, frames=None):
        self._iteration = getattr(self, "_iteration", 0) + 1
        start = time.perf_counter()
        stats = em.collect_stats(w, m, v, loader, utt_ids, config, max(1, int(self.subsample)),
                                 self.chunk_frames,
                                 desc=f"EM ({len(w)} Gaussians)" if self.verbose else None, frames=frames)
        w2, m2, v2, dead, floored = em.mle_update(stats, w, m, v, self.var_floor_, self.weight_floor,
                                                  self.min_gauss_frames, return_floored=True)
        if not (np.isfinite(stats.loglik) and np.isfinite(w2).all() and np.isfinite(m2).all()
                and np.isfinite(v2).all()):
            raise SpkrecError(f"DiagGMM: EM iteration {self._iteration} ({len(w)} Gaussians) gave non-finite "
                              "parameters; likely cause: NaN/inf or huge values in the features (check "
                              "feats.scp), or a var_floor of 0")
        if floored:
            (log.info if self.verbose else log.debug)(
                "EM iteration %d: %d of %d variances raised to the floor (%g x the global variance)",
                self._iteration, floored, v2.size, self.var_floor)
        if len(dead):
            log.warning("EM: %d Gaussian(s) with occupancy < %g re-split from the heaviest ones",
                        len(dead), self.min_gauss_frames)
            w2, m2, v2 = em.resplit_dead(w2, m2, v2, dead)
        self.iteration_seconds_.append(time.perf_counter() - start)
        return w2, m2, v2, stats.avg_loglik

    def _kmeans_init(self, loader, utt_ids, config, sub, n, var):
        from scipy.sparse import csr_matrix
        from sklearn.cluster import KMeans
        stride = sub * max(1, -(-n // KMEANS_MAX_FRAMES))
        parts = map_chunks(_strided_frames, utt_ids, config, loader=loader, stride=stride)
        X = np.concatenate([x for part in parts for x in part]).astype(np.float32)
        km = KMeans(n_clusters=self.n_components, n_init=1, max_iter=50, random_state=self.random_state).fit(X)
        labels = km.labels_
        counts = np.bincount(labels, minlength=self.n_components).astype(np.float64)
        Xd = X.astype(np.float64)
        onehot = csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))),
                            shape=(self.n_components, len(labels)))
        s1, s2 = onehot @ Xd, onehot @ (Xd * Xd)
        safe = np.maximum(counts, 1.0)[:, None]
        means = s1 / safe
        variances = np.where(counts[:, None] >= 2, s2 / safe - means ** 2, var)
        weights = np.maximum(counts / counts.sum(), self.weight_floor)
        means[counts == 0] = km.cluster_centers_[counts == 0]
        return weights / weights.sum(), means, np.maximum(variances, self.var_floor_)


def _strided_frames(utts, loader, stride):
    return [np.asarray(loader(u))[::stride] for u in utts]
