"""Full-covariance UBM trained from a diagonal one, as Kaldi's ``train_full_ubm.sh`` does.

Each EM iteration selects, per frame, the ``num_gselect`` best Gaussians of the *diagonal* UBM
(Kaldi ``gmm-gselect``; the selection is the same at every iteration), computes full-covariance
posteriors restricted to them (``fgmm-global-acc-stats --gselect``) and re-estimates weights, means
and covariances (``fgmm-global-est``): covariance eigenvalues are floored at
``max(variance_floor, largest_eigenvalue / max_condition)``; a Gaussian with fewer than
``min_gaussian_occupancy`` frames keeps its previous mean and covariance (Kaldi would remove it;
keeping the count fixed keeps indices aligned with the diagonal UBM's selection).

In training, only the selected (frame, Gaussian) pairs get a full-covariance log-likelihood
(:func:`spkrec.gmm.core.selected_full_loglik`, the code of the i-vector statistics: grouped by Gaussian,
one float32 product per Gaussian), and the statistics are accumulated per Gaussian from the same
groups: ``num_gselect`` of C Gaussians' work (measured in ``benchmarks/full_ubm.py``). Frames are shifted
by the UBM's global mean for float32 accuracy (the shift cancels exactly). The scoring methods
(``log_likelihood_components`` etc.) compute all Gaussians as one product of the packed quadratic
features ``[x_i x_j (i<=j), x, 1]`` against per-Gaussian coefficients.
"""
import logging
import time

import numpy as np
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from spkrec.errors import SpkrecError
from spkrec.gmm.core import (as_frames, diag_coefficients, diag_loglik, full_coefficients, full_factors, full_loglik,
                             gaussian_groups, gaussian_params, posteriors, saved_params, selected_full_loglik, top_k)
from spkrec.io.atomic import load_npz, save_npz
from spkrec.io.frames import frame_source
from spkrec.notfitted import NotFitted
from spkrec.parallel import SERIAL, reduce_chunks

log = logging.getLogger("spkrec")
BLOCK_FRAMES = 4096  # frames per block in full-UBM training (utterances joined, :func:`_blocks`); float64 sums
ARRAY_PIECE = 20000  # frames per piece of an in-memory array given to fit (pieces go to the workers)


class FullGMM(BaseEstimator):
    """Full-covariance GMM (UBM) trained by EM from a diagonal UBM with Gaussian selection.

    Parameters
    ----------
    n_iter : EM iterations (Kaldi default 4).
    num_gselect : Gaussians kept per frame, chosen by the diagonal UBM (Kaldi default 20).
    variance_floor : floor on covariance eigenvalues (feature units squared).
    max_condition : eigenvalues are also floored at largest / max_condition.
    min_gaussian_weight : weights are floored at this value and renormalised.
    min_gaussian_occupancy : a Gaussian with fewer (soft) frames keeps its mean and covariance.
    parallel : a :class:`spkrec.parallel.ParallelConfig` (None: serial); the numbers do not depend on it.

    Attributes (fitted, float64): ``weights_`` (C,), ``means_`` (C, D), ``covariances_`` (C, D, D),
    ``log_likelihood_history_`` (average per-frame log-likelihood under the gselect-restricted
    model at the start of each iteration, plus the final value), ``iteration_cpu_seconds_`` (CPU
    seconds of this process per E-step, the same length: the whole work with ``nj`` 1; the workers'
    CPU is not counted otherwise).
    """

    def __init__(self, n_iter=4, num_gselect=20, variance_floor=1e-3, max_condition=1e4,
                 min_gaussian_weight=1e-5, min_gaussian_occupancy=10.0, parallel=None):
        self.n_iter = n_iter
        self.num_gselect = num_gselect
        self.variance_floor = variance_floor
        self.max_condition = max_condition
        self.min_gaussian_weight = min_gaussian_weight
        self.min_gaussian_occupancy = min_gaussian_occupancy
        self.parallel = parallel

    def _hyper(self):
        return dict(n_iter=self.n_iter, num_gselect=self.num_gselect, variance_floor=self.variance_floor,
                    max_condition=self.max_condition, min_gaussian_weight=self.min_gaussian_weight,
                    min_gaussian_occupancy=self.min_gaussian_occupancy)

    # ------------------------------------------------------------------ construction, io
    @classmethod
    def from_params(cls, weights, means, covariances, **hyper):
        """A fitted model from explicit parameters (covariances (C, D, D), or (C, D) diagonal)."""
        model = cls(**hyper)
        means = np.asarray(means, np.float64)
        cov = np.asarray(covariances, np.float64)
        if cov.ndim == 2:
            cov = cov[:, :, None] * np.eye(cov.shape[1])
        if cov.shape != means.shape + (means.shape[1],):
            raise SpkrecError(f"covariances shape {cov.shape} does not match means {means.shape}")
        model._set(np.asarray(weights, np.float64), means, cov)
        model.log_likelihood_history_ = []
        return model

    @classmethod
    def from_diag(cls, diag_ubm, **hyper):
        """Initialise from a diagonal UBM (Kaldi ``gmm-global-to-fgmm``)."""
        w, m, v = gaussian_params(diag_ubm)
        return cls.from_params(w, m, v, **hyper)

    def _set(self, weights, means, covariances):
        self.weights_ = weights
        self.means_ = means
        self.covariances_ = covariances
        self.__dict__.pop("_coef", None)

    def save(self, path, meta=None):
        self._check_fitted()
        save_npz(path, "FullGMM", dict(weights=self.weights_, means=self.means_, covariances=self.covariances_,
                                      log_likelihood_history=np.asarray(self.log_likelihood_history_, np.float64)),
                 dict(self._hyper(), **(meta or {})))

    @classmethod
    def load(cls, path):
        arrays, meta = load_npz(path, "FullGMM")
        hyper = saved_params(meta, cls)
        model = cls.from_params(arrays["weights"], arrays["means"], arrays["covariances"], **hyper)
        model.log_likelihood_history_ = list(arrays["log_likelihood_history"])
        model.meta_ = meta
        return model

    @property
    def n_components_(self):
        return self.means_.shape[0]

    @property
    def dim_(self):
        return self.means_.shape[1]

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise NotFitted("FullGMM is not fitted; call fit() or load() first")

    def to_diag(self):
        """``(weights, means, variances)`` of the diagonal of this model (Kaldi ``fgmm-global-to-gmm``)."""
        self._check_fitted()
        return self.weights_, self.means_, np.diagonal(self.covariances_, axis1=1, axis2=2).copy()

    # ------------------------------------------------------------------ likelihoods
    @property
    def center_(self):
        return self.weights_ @ self.means_

    def coefficients(self):
        """Cached ``(W, center, quad)`` of :func:`spkrec.gmm.core.full_coefficients` for this model."""
        coef = self.__dict__.get("_coef")
        if coef is None:
            coef = self.__dict__["_coef"] = full_coefficients(self.weights_, self.means_, self.covariances_)
        return coef

    def log_likelihood_components(self, X):
        """(T, C) float32: log w_c + log N(x_t | mu_c, Sigma_c) for frames X (T, D)."""
        self._check_fitted()
        W, center, quad = self.coefficients()
        Xc = as_frames(X, self.dim_) - center.astype(np.float32)
        return full_loglik(quad.features(Xc), Xc, W)

    def score_samples(self, X):
        """(T,) float32 per-frame log-likelihood."""
        return posteriors(self.log_likelihood_components(X))[1]

    def score(self, X, y=None):
        """Average per-frame log-likelihood."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """(T, C) float32 posteriors."""
        return posteriors(self.log_likelihood_components(X))[0]

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, diag_ubm=None, utt_ids=None):
        """Train from ``diag_ubm`` on frames.

        X : (T, D) array, or a frame source (:mod:`spkrec.io.frames`) or mapping ``utt -> (T_u, D)``,
            read per utterance in parallel through :mod:`spkrec.parallel` (``utt_ids`` selects them).
        diag_ubm : the diagonal UBM (``DiagGMM`` or any object with ``weights_, means_, variances_``);
            initialises the model and selects the Gaussians (required).
        """
        if diag_ubm is None:
            raise SpkrecError("FullGMM.fit needs diag_ubm=, the diagonal UBM it starts from")
        config = self.parallel if self.parallel is not None else SERIAL
        loader, utt_ids = frame_source(X, utt_ids, piece=ARRAY_PIECE)
        dw, dm, dv = gaussian_params(diag_ubm)
        if dv.ndim != 2:
            raise SpkrecError("diag_ubm must be diagonal (variances_ (C, D)); convert with FullGMM.to_diag()")
        self._set(dw.copy(), dm.copy(), dv[:, :, None] * np.eye(dv.shape[1]))
        self.log_likelihood_history_, self.iteration_cpu_seconds_ = [], []
        gsel = (diag_coefficients(dw, dm, dv, 0.0), int(self.num_gselect))
        for it in range(int(self.n_iter)):
            acc = self._accumulate(loader, utt_ids, gsel, config)
            avg = acc["loglike"] / max(acc["frames"], 1)
            self.log_likelihood_history_.append(float(avg))
            log.info("full UBM iteration %d: average log-likelihood %.4f over %d frames", it, avg, acc["frames"])
            if not np.isfinite(avg):
                raise SpkrecError(f"full UBM iteration {it}: non-finite log-likelihood; likely cause: NaN/inf "
                                  "in the features or the diagonal UBM")
            self._mle_update(acc)
        acc = self._accumulate(loader, utt_ids, gsel, config)
        self.log_likelihood_history_.append(float(acc["loglike"] / max(acc["frames"], 1)))
        log.info("full UBM final average log-likelihood %.4f", self.log_likelihood_history_[-1])
        return self

    def _accumulate(self, loader, utt_ids, gsel, config):
        """Sufficient statistics (float64) of frames centred on the current model's global mean."""
        start = time.process_time()
        center = self.weights_ @ self.means_
        factor, const = full_factors(self.weights_, self.means_, self.covariances_)
        acc = reduce_chunks(_full_stats_chunk, utt_ids, config, combine=_add_acc, desc="full UBM E-step",
                            loader=loader, coef=(factor, const, (self.means_ - center).astype(np.float32), center),
                            gsel=gsel)
        self.iteration_cpu_seconds_.append(time.process_time() - start)
        return acc

    def _mle_update(self, acc):
        center = self.weights_ @ self.means_
        occ = acc["N"]
        total = occ.sum()
        if total <= 0:
            raise SpkrecError("no frames to train the full-covariance UBM; check feats.scp/vad.scp")
        weights = np.maximum(occ / total, float(self.min_gaussian_weight))
        weights /= weights.sum()
        ok = occ > float(self.min_gaussian_occupancy)
        safe = np.where(ok, occ, 1.0)
        mean_c = acc["F"] / safe[:, None]
        cov = acc["S"] / safe[:, None, None] - mean_c[:, :, None] * mean_c[:, None, :]
        cov = _floor_eigenvalues(cov, float(self.variance_floor), float(self.max_condition))
        means = np.where(ok[:, None], mean_c + center, self.means_)
        covs = np.where(ok[:, None, None], cov, self.covariances_)
        if (~ok).any():
            log.warning("full UBM: %d Gaussians with <= %g frames keep their previous parameters",
                        int((~ok).sum()), self.min_gaussian_occupancy)
        self._set(weights, means, covs)


def _floor_eigenvalues(cov, floor, max_condition):
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.transpose(0, 2, 1)))
    lo = np.maximum(floor, vals[:, -1:] / max_condition)
    vals = np.maximum(vals, lo)
    return (vecs * vals[:, None, :]) @ vecs.transpose(0, 2, 1)


def _add_acc(total, part):
    for k in total:
        total[k] += part[k]
    return total


def _full_stats_chunk(utts, loader, coef, gsel):
    with threadpool_limits(limits=1, user_api="blas"):  # small products: threads only add overhead
        return _full_stats(utts, loader, coef, gsel)


def _full_stats(utts, loader, coef, gsel):
    """N (C,), F (C, D), S (C, D, D) float64 of the frames centred on ``center``: per block, the selected
    pairs' log-likelihoods and then the statistics from the same groups of pairs (one per Gaussian)."""
    factor, const, means_c, center = coef
    C, D = means_c.shape
    gW, k = gsel
    N = np.zeros(C)
    F = np.zeros((C, D))
    S = np.zeros((C, D, D))
    loglike, frames = 0.0, 0
    c32 = center.astype(np.float32)
    for Xc in _blocks(utts, loader, D, c32):  # float32 products, float64 sums per block
        sel = np.ascontiguousarray(top_k(diag_loglik(Xc + c32, gW), k))
        groups = gaussian_groups(sel, C)
        post, lse = posteriors(selected_full_loglik(Xc, sel, factor, means_c, const, groups))
        order, bounds, frame_of = groups
        post = post.ravel()[order]
        for g in np.flatnonzero(np.diff(bounds)):
            lo, hi = bounds[g], bounds[g + 1]
            Y = Xc.take(frame_of[lo:hi], axis=0)
            w = post[lo:hi]
            N[g] += w.sum(dtype=np.float64)
            F[g] += w @ Y
            S[g] += (Y.T * w) @ Y
        loglike += float(lse.sum(dtype=np.float64))
        frames += len(Xc)
    return dict(N=N, F=F, S=S, loglike=loglike, frames=frames)


def _blocks(utts, loader, dim, c32):
    """Shifted frames of ``utts`` in blocks of about :data:`BLOCK_FRAMES`: consecutive utterances are
    joined until the block reaches it (a longer utterance is one block)."""
    pending, total = [], 0
    for utt in utts:
        pending.append(as_frames(loader(utt), dim, utt) - c32)
        total += len(pending[-1])
        if total >= BLOCK_FRAMES:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]
            pending, total = [], 0
    if total:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]
