"""Score calibration and fusion by prior-weighted linear logistic regression (BOSARIS/FoCal).

Scores ``S (n, k)`` of ``k`` systems (``k = 1`` for calibration) map to log-likelihood ratios
``llr = S @ w + b`` (natural log). ``w, b`` minimise the prior-weighted cross-entropy at the target
prior ``p`` (FoCal's ``train_linear_fusion``)::

    C(w, b) = p / N_tar   sum_tar log(1 + exp(-(llr_i + logit p)))
            + (1-p) / N_non sum_non log(1 + exp(  llr_i + logit p))
            + l2 / 2 * ||w * sd||^2

which is ``ln 2 * H(p)`` times the normalised Cllr at prior ``p`` (plus the penalty). Every target
weighs ``p / N_tar`` and every non-target ``(1 - p) / N_non``, so the class proportions of the training
trials do not matter, and the ``logit p`` shift makes the output an LLR, not a posterior log-odds. When
the affine model is right (e.g. equal-variance Gaussian score classes) its minimiser is the true LLR
map for any ``p``; ``p`` only chooses which operating points matter most when it is not.

The problem is convex in ``k + 1`` parameters; it is solved by SciPy's ``trust-exact`` Newton method
with the analytic gradient and Hessian, on internally standardised scores, to a gradient norm of
``tol`` (default 1e-8; Newton converges quadratically, so the last step makes it far smaller).

``l2`` (default 1e-6) penalises the weights of the *standardised* scores (``sd``: each system's score
standard deviation over all trials), so it does not depend on score units. It keeps the solution finite
when the training trials are separable (where the unpenalised optimum is at infinite scale) and is
otherwise negligible (relative weight bias ~1e-6).
"""
import logging

import numpy as np
from scipy.special import expit, log_expit, logit
from sklearn.base import BaseEstimator, TransformerMixin

from spkrec.errors import SpkrecError
from spkrec.notfitted import NotFitted

log = logging.getLogger("spkrec")
MIN_PER_CLASS = 2


def check_training_trials(S, labels, what="training scores"):
    """Validate ``(S (n,) or (n, k), labels (n,))`` -> ``(S float64 (n, k), labels bool (n,))``.

    :class:`SpkrecError` for non-finite scores, a length mismatch, labels not 0/1 or fewer than
    two targets or non-targets; ``what`` (e.g. a file name) starts the message.
    """
    S = check_scores(S, what)
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != S.shape[0]:
        raise SpkrecError(f"{what}: {S.shape[0]} scores but {labels.shape[0]} labels; "
                          "give one label per trial")
    if labels.dtype != bool:
        if labels.size and not np.all((labels == 0) | (labels == 1)):
            raise SpkrecError(f"{what}: labels must be booleans or 0/1 (target/non-target)")
        labels = labels.astype(bool)
    n_tar, n_non = int(labels.sum()), int((~labels).sum())
    if min(n_tar, n_non) < MIN_PER_CLASS:
        raise SpkrecError(f"{what}: {n_tar} target and {n_non} non-target trials; calibration and fusion "
                          f"need at least {MIN_PER_CLASS} of each (trials of background speakers with both "
                          "'target' and 'nontarget' lines)")
    return S, labels


def check_scores(S, what="scores", k=None):
    """``S`` as a float64 ``(n, k)`` matrix; :class:`SpkrecError` if empty, NaN or infinite."""
    S = np.asarray(S, dtype=np.float64)
    S = S.reshape(-1, 1) if S.ndim == 1 else S
    if S.ndim != 2 or S.shape[0] == 0 or S.shape[1] == 0:
        raise SpkrecError(f"{what}: expected a non-empty (trials,) or (trials, systems) array, got {S.shape}")
    if k is not None and S.shape[1] != k:
        raise SpkrecError(f"{what}: {S.shape[1]} systems, but the model was trained on {k}; "
                          "give the same systems in the same order")
    bad = ~np.isfinite(S)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SpkrecError(f"{what}: score of trial {i + 1}" + (f", system {j + 1}" if S.shape[1] > 1 else "")
                          + f" is {S[i, j]}; calibration needs finite scores, fix the scoring step")
    return S


def fit_linear_llr(S, labels, target_prior=0.01, l2=1e-6, max_iter=100, tol=1e-8):
    """Minimise the prior-weighted cross-entropy (module docstring) -> ``(w (k,), b, result)``.

    ``result`` is SciPy's ``OptimizeResult`` in the standardised parametrisation (``fun`` in nats).
    """
    S, labels = check_training_trials(S, labels)
    p = float(target_prior)
    if not 0.0 < p < 1.0:
        raise SpkrecError(f"target_prior={p} must lie strictly between 0 and 1")
    if l2 < 0:
        raise SpkrecError(f"l2={l2} must be >= 0")
    from scipy.optimize import minimize
    mean, sd = S.mean(axis=0), S.std(axis=0)
    sd[sd == 0] = 1.0
    X = np.hstack([(S - mean) / sd, np.ones((S.shape[0], 1))])        # (n, k + 1), last column: bias
    t = np.where(labels, 1.0, -1.0)                                   # z is good when t z > 0
    weight = np.where(labels, p / labels.sum(), (1.0 - p) / (~labels).sum())
    shift = logit(p)
    pen = np.r_[np.full(S.shape[1], float(l2)), 0.0]                  # the bias is not penalised

    def fun(theta):
        tz = t * (X @ theta + shift)
        g = -t * weight * expit(-tz)                                  # d loss_i / d z_i, weighted
        return -weight @ log_expit(tz) + 0.5 * pen @ theta ** 2, X.T @ g + pen * theta

    def hess(theta):
        z = X @ theta + shift
        h = weight * expit(z) * expit(-z)
        return (X.T * h) @ X + np.diag(pen)

    res = minimize(fun, np.zeros(X.shape[1]), jac=True, hess=hess, method="trust-exact",
                   options={"gtol": tol, "maxiter": int(max_iter)})
    # trust-exact may stop one step short of gtol ("bad approximation") when the objective no longer
    # changes in float64: that is convergence for all purposes when the gradient is already tiny
    if not res.success and np.abs(res.jac).max() > 100 * tol:
        why = "; the training trials may be separable, use l2 > 0" if l2 == 0 else ""
        log.warning("linear calibration/fusion did not converge in %d iterations (%s)%s",
                    res.nit, res.message, why)
    w = res.x[:-1] / sd
    return w, float(res.x[-1] - mean @ w), res


def _require(path, meta, keys, arrays=None, names=()):
    missing = [k for k in keys if k not in meta] + [k for k in names if k not in (arrays or {})]
    if missing:
        raise SpkrecError(f"{path}: model file lacks {', '.join(missing)}; re-run its training stage")


class _LinearLLR(TransformerMixin, BaseEstimator):
    """Shared fitting; subclasses name the attributes and the file format."""

    def __init__(self, target_prior=0.01, l2=1e-6, max_iter=100, tol=1e-8):
        self.target_prior = target_prior
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, S, labels):
        w, b, res = fit_linear_llr(S, labels, self.target_prior, self.l2, self.max_iter, self.tol)
        self.n_iter_, self.objective_ = int(res.nit), float(res.fun)
        return w, b

    def _check_fitted(self):
        if not hasattr(self, "offset_"):
            raise NotFitted(f"{type(self).__name__} is not fitted; call fit() or load() first")


class LinearCalibration(_LinearLLR):
    """``llr = scale_ * score + offset_``, trained by prior-weighted logistic regression.

    Parameters: ``target_prior`` (the prior whose cross-entropy is minimised, default 0.01 as our
    minDCF), ``l2`` (penalty on the standardised scale, see the module docstring), ``max_iter``,
    ``tol`` (gradient-norm tolerance of the Newton iterations).
    """

    def fit(self, scores, labels):
        """Fit on training trials: ``scores (n,)``, ``labels (n,)`` bool (True = target)."""
        w, self.offset_ = self._fit(np.asarray(scores, dtype=np.float64).ravel(), labels)
        self.scale_ = float(w[0])
        return self

    def transform(self, scores):
        """Calibrated natural-log LLRs, float64 of the shape of ``scores``."""
        self._check_fitted()
        scores = np.asarray(scores, dtype=np.float64)
        check_scores(scores.ravel())
        return self.scale_ * scores + self.offset_

    def save(self, path):
        from spkrec.io.atomic import save_npz
        self._check_fitted()
        save_npz(path, "LinearCalibration", {}, {"scale": self.scale_, "offset": self.offset_,
                                                 "target_prior": float(self.target_prior)})

    @classmethod
    def load(cls, path):
        from spkrec.io.atomic import load_npz
        _, meta = load_npz(path, kind="LinearCalibration")
        _require(path, meta, ("scale", "offset", "target_prior"))
        model = cls(target_prior=meta["target_prior"])
        model.scale_, model.offset_ = float(meta["scale"]), float(meta["offset"])
        return model


class LinearFusion(_LinearLLR):
    """``llr = S @ weights_ + offset_`` over ``k`` systems, trained like :class:`LinearCalibration`."""

    def fit(self, S, labels, systems=None):
        """Fit on ``S (n, k)`` training scores and ``labels (n,)``; ``systems``: optional k names."""
        S = check_scores(S, "training scores")
        if systems is not None and len(systems) != S.shape[1]:
            raise SpkrecError(f"{len(systems)} system names for {S.shape[1]} systems")
        self.weights_, self.offset_ = self._fit(S, labels)
        self.systems_ = [str(s) for s in systems] if systems is not None else []
        return self

    def transform(self, S):
        """Fused natural-log LLRs ``(n,)`` float64 of ``S (n, k)``."""
        self._check_fitted()
        return check_scores(S, k=self.weights_.size) @ self.weights_ + self.offset_

    def save(self, path):
        from spkrec.io.atomic import save_npz
        self._check_fitted()
        save_npz(path, "LinearFusion", {"weights": np.asarray(self.weights_, dtype=np.float64)},
                 {"offset": self.offset_, "target_prior": float(self.target_prior),
                  "systems": list(self.systems_)})

    @classmethod
    def load(cls, path):
        from spkrec.io.atomic import load_npz
        arrays, meta = load_npz(path, kind="LinearFusion")
        _require(path, meta, ("offset", "target_prior"), arrays, ("weights",))
        model = cls(target_prior=meta["target_prior"])
        model.weights_ = np.asarray(arrays["weights"], dtype=np.float64).ravel()
        model.offset_ = float(meta["offset"])
        model.systems_ = list(meta.get("systems", []))
        return model
