"""Verification metrics on ``(scores, labels)``: DET curve, EER, minDCF, actual DCF, Cllr, minCllr, AUC.

Conventions
-----------
* ``scores``: ``(n,)`` real numbers, higher means "more likely the same speaker"; ``labels``: ``(n,)``
  booleans (or 0/1), ``True`` for target trials. NaN scores, an empty input, no targets or no
  non-targets raise :class:`~spkrec.errors.SpkrecError`; ``+-inf`` scores are allowed.
* A trial is *accepted* at threshold ``t`` when ``score >= t`` (as ``sklearn.metrics.roc_curve``), so
  ``p_miss(t) = #{targets < t} / N_tar`` and ``p_fa(t) = #{non-targets >= t} / N_non``.
* Tied scores are one operating point: the DET curve only has vertices between distinct score values,
  and curve-based metrics interpolate linearly across a tie (a randomised decision), never favouring
  either class.
* Probabilities are fractions in ``[0, 1]`` (multiply by 100 for %); Cllr is in bits.

EER definitions
---------------
``eer(..., method="exact")`` (the default) is the exact interpolated EER: the point where the DET
curve, drawn as straight segments between its operating points (the same curve ``sklearn.metrics.
roc_curve`` gives), crosses ``p_miss == p_fa``. ``method="rocch"`` is BOSARIS's ROCCH-EER: the same
crossing on the ROC convex hull (computed by PAV), which is never larger than the exact EER and is
the EER of the optimally calibrated, best-thresholded system. Both coincide when the ROC is convex.
"""
import numpy as np

from spkrec.errors import SpkrecError

LOG2 = np.log(2.0)


def check_scores_labels(scores, labels, what="scores"):
    """Validate and convert to ``(scores float64 (n,), labels bool (n,))``; SpkrecError if unusable."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise SpkrecError(f"{what}: {scores.size} scores but {labels.size} labels; give one label per score")
    if labels.dtype != bool:
        if labels.size and not np.all((labels == 0) | (labels == 1)):
            raise SpkrecError(f"{what}: labels must be booleans or 0/1 (target/non-target)")
        labels = labels.astype(bool)
    if np.isnan(scores).any():
        bad = int(np.flatnonzero(np.isnan(scores))[0])
        raise SpkrecError(f"{what}: score number {bad + 1} is NaN; fix the scoring step that wrote it")
    n_tar = int(labels.sum())
    if n_tar == 0:
        raise SpkrecError(f"{what}: no target trials; the trials list needs at least one 'target' line")
    if n_tar == labels.size:
        raise SpkrecError(f"{what}: no non-target trials; the trials list needs at least one "
                          "'nontarget' line")
    return scores, labels


def _grouped_counts(scores, labels, return_inverse=False):
    """Distinct scores ascending with the number of targets and non-targets at each
    (and, optionally, the index of each trial's distinct score)."""
    uniq, inverse = np.unique(scores, return_inverse=True)
    n_tar = np.bincount(inverse, weights=labels, minlength=uniq.size)
    n_all = np.bincount(inverse, minlength=uniq.size).astype(np.float64)
    return (uniq, n_tar, n_all - n_tar) + ((inverse,) if return_inverse else ())


def det_curve(scores, labels):
    """All operating points of a detector, thresholds ascending.

    Returns
    -------
    p_fa : (m,) float64, non-increasing from 1 to 0
    p_miss : (m,) float64, non-decreasing from 0 to 1
    thresholds : (m,) float64
        The distinct scores ascending, then ``+inf`` (reject everything); point ``i`` accepts
        ``score >= thresholds[i]``.
    """
    scores, labels = check_scores_labels(scores, labels)
    uniq, n_tar, n_non = _grouped_counts(scores, labels)
    # below threshold i lie the groups 0..i-1
    tar_below = np.concatenate(([0.0], np.cumsum(n_tar)))
    non_below = np.concatenate(([0.0], np.cumsum(n_non)))
    p_miss = tar_below / tar_below[-1]
    p_fa = 1.0 - non_below / non_below[-1]
    thresholds = np.concatenate((uniq, [np.inf]))
    return p_fa, p_miss, thresholds


def pav(y, weights=None):
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators; ``(n,)`` fitted values.

    Uses SciPy's compiled PAV (``scipy.optimize.isotonic_regression``, SciPy >= 1.12), else
    scikit-learn's; the tests check it against a textbook pooling loop and ``IsotonicRegression``.
    """
    y = np.asarray(y, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    try:
        from scipy.optimize import isotonic_regression
    except ImportError:                      # SciPy < 1.12
        from sklearn.isotonic import isotonic_regression
        return isotonic_regression(y, sample_weight=w, increasing=True)
    return isotonic_regression(y, weights=w, increasing=True).x


def _pav_groups(scores, labels, return_inverse=False):
    """PAV over distinct scores: ``(uniq, n_tar, n_non, posterior[, inverse])``, one per distinct score."""
    uniq, n_tar, n_non, *inverse = _grouped_counts(scores, labels, return_inverse)
    n = n_tar + n_non
    return (uniq, n_tar, n_non, np.clip(pav(n_tar / n, n), 0.0, 1.0), *inverse)


def rocch(scores, labels):
    """Vertices of the ROC convex hull (BOSARIS ``rocch``), thresholds ascending.

    Returns ``(p_fa, p_miss, thresholds)`` like :func:`det_curve`, restricted to the hull's vertices:
    the boundaries between PAV blocks (runs of distinct scores sharing one calibrated posterior).
    """
    scores, labels = check_scores_labels(scores, labels)
    uniq, n_tar, n_non, post = _pav_groups(scores, labels)
    starts = np.concatenate(([True], np.diff(post) != 0))        # first group of each PAV block
    idx = np.flatnonzero(starts)
    tar_below = np.concatenate((np.cumsum(n_tar)[idx - 1] * (idx > 0), [n_tar.sum()]))
    non_below = np.concatenate((np.cumsum(n_non)[idx - 1] * (idx > 0), [n_non.sum()]))
    p_miss = tar_below / n_tar.sum()
    p_fa = 1.0 - non_below / n_non.sum()
    return p_fa, p_miss, np.concatenate((uniq[idx], [np.inf]))


def _diagonal_crossing(p_fa, p_miss, thresholds):
    """Where the piecewise-linear curve through the points crosses ``p_miss == p_fa``."""
    d = p_miss - p_fa                       # goes from -1 to +1, non-decreasing
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(p_miss[i]), float(thresholds[i])
    alpha = -d[i - 1] / (d[i] - d[i - 1])   # fraction of the way from point i-1 to point i
    value = p_miss[i - 1] + alpha * (p_miss[i] - p_miss[i - 1])
    t0, t1 = thresholds[i - 1], thresholds[i]
    if np.isfinite(t0) and np.isfinite(t1):
        threshold = t0 + alpha * (t1 - t0)
    else:
        threshold = t0 if np.isfinite(t0) else t1
    return float(value), float(threshold)


def eer(scores, labels, method="exact"):
    """Equal error rate ``(eer, threshold)``, ``eer`` a fraction (above 0.5 only for reversed scores).

    ``method="exact"`` (default): crossing of the linearly interpolated DET curve with
    ``p_miss == p_fa``; ``method="rocch"``: the same on the ROC convex hull (BOSARIS), ``<=`` exact.
    ``threshold`` is interpolated between the two thresholds of the crossing segment (the finite one
    at the curve's ends).
    """
    if method == "exact":
        curve = det_curve(scores, labels)
    elif method == "rocch":
        curve = rocch(scores, labels)
    else:
        raise SpkrecError(f"unknown EER method {method!r}; use 'exact' or 'rocch'")
    return _diagonal_crossing(*curve)


def _check_costs(p_target, c_miss, c_fa):
    if not 0.0 < p_target < 1.0:
        raise SpkrecError(f"p_target={p_target} must lie strictly between 0 and 1")
    if c_miss <= 0 or c_fa <= 0:
        raise SpkrecError(f"c_miss={c_miss} and c_fa={c_fa} must be positive")


def bayes_threshold(p_target=0.01, c_miss=1.0, c_fa=1.0):
    """Bayes decision threshold for LLR scores: ``-log(p_target c_miss / ((1 - p_target) c_fa))``."""
    _check_costs(p_target, c_miss, c_fa)
    return float(-np.log(p_target * c_miss / ((1.0 - p_target) * c_fa)))


def _normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa):
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return dcf / min(c_miss * p_target, c_fa * (1.0 - p_target))


def min_dcf(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0):
    """Minimum normalised detection cost over all thresholds ``(min_dcf, threshold)`` (NIST SRE).

    ``DCF = c_miss p_target p_miss + c_fa (1 - p_target) p_fa``, divided by the cost of the best
    trivial system ``min(c_miss p_target, c_fa (1 - p_target))``, so it lies in ``[0, 1]``.
    ``threshold`` accepts ``score >= threshold`` (``+inf``: reject everything).
    """
    _check_costs(p_target, c_miss, c_fa)
    p_fa, p_miss, thresholds = det_curve(scores, labels)
    dcf = _normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa)
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thresholds[i])


def act_dcf(scores, labels, threshold=None, p_target=0.01, c_miss=1.0, c_fa=1.0):
    """Normalised detection cost at a fixed threshold (accept ``score >= threshold``).

    ``threshold=None`` uses :func:`bayes_threshold` (right for calibrated LLR scores), so actDCF minus
    minDCF measures the calibration loss at this operating point.
    """
    scores, labels = check_scores_labels(scores, labels)
    if threshold is None:
        threshold = bayes_threshold(p_target, c_miss, c_fa)
    _check_costs(p_target, c_miss, c_fa)
    p_miss = float(np.mean(scores[labels] < threshold))
    p_fa = float(np.mean(scores[~labels] >= threshold))
    return float(_normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa))


def cllr(scores, labels):
    """Log-likelihood-ratio cost in bits (Brümmer & du Preez 2006); scores are natural-log LLRs.

    ``Cllr = (mean_tar log2(1 + e^-s) + mean_non log2(1 + e^s)) / 2``: 0 for a perfect calibrated
    system, 1 for one that always outputs 0.
    """
    scores, labels = check_scores_labels(scores, labels)
    c_tar = np.mean(np.logaddexp(0.0, -scores[labels]))
    c_non = np.mean(np.logaddexp(0.0, scores[~labels]))
    return float((c_tar + c_non) / (2.0 * LOG2))


def calibrate_pav(scores, labels):
    """Optimally calibrated LLRs ``(n,)`` of the trials themselves (BOSARIS ``opt_loglr``).

    PAV gives the posterior ``P(target | score)`` with the empirical prior; its log-odds minus the
    empirical prior log-odds ``log(N_tar / N_non)`` is the LLR (may be ``+-inf``).
    """
    scores, labels = check_scores_labels(scores, labels)
    uniq, n_tar, n_non, post, inverse = _pav_groups(scores, labels, return_inverse=True)
    with np.errstate(divide="ignore"):
        log_odds = np.log(post) - np.log1p(-post)
    llr = log_odds - np.log(n_tar.sum() / n_non.sum())
    return llr[inverse]


def min_cllr(scores, labels):
    """Cllr after the optimal monotonic (PAV) calibration, in bits; ``min_cllr <= cllr``.

    Measures discrimination alone; ``cllr - min_cllr`` is the calibration loss.
    """
    scores, labels = check_scores_labels(scores, labels)
    llr = calibrate_pav(scores, labels)
    # +inf for a target / -inf for a non-target cost 0; PAV never gives the opposite signs.
    c_tar = np.mean(np.logaddexp(0.0, -llr[labels]))
    c_non = np.mean(np.logaddexp(0.0, llr[~labels]))
    return float((c_tar + c_non) / (2.0 * LOG2))


def roc_auc(scores, labels):
    """Area under the ROC curve = P(target score > non-target score) + P(tie) / 2 (Mann-Whitney)."""
    scores, labels = check_scores_labels(scores, labels)
    _, n_tar, n_non = _grouped_counts(scores, labels)
    non_below = np.cumsum(n_non) - n_non     # non-targets strictly below each distinct score
    wins = np.dot(n_tar, non_below + 0.5 * n_non)
    return float(wins / (n_tar.sum() * n_non.sum()))


def verification_metrics(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0, eer_method="exact"):
    """All verification metrics of one system as a JSON-ready ``dict``.

    Keys: ``eer`` (fraction), ``eer_threshold``, ``min_dcf``, ``min_dcf_threshold``, ``act_dcf``,
    ``act_dcf_threshold`` (the Bayes threshold), ``cllr``, ``min_cllr``, ``auc``, ``num_targets``,
    ``num_nontargets``, ``p_target``, ``c_miss``, ``c_fa``, ``eer_method``.
    """
    scores, labels = check_scores_labels(scores, labels)
    e, e_thr = eer(scores, labels, method=eer_method)
    m, m_thr = min_dcf(scores, labels, p_target, c_miss, c_fa)
    bayes = bayes_threshold(p_target, c_miss, c_fa)
    return {
        "eer": e, "eer_threshold": e_thr, "eer_method": eer_method,
        "min_dcf": m, "min_dcf_threshold": m_thr,
        "act_dcf": act_dcf(scores, labels, bayes, p_target, c_miss, c_fa), "act_dcf_threshold": bayes,
        "cllr": cllr(scores, labels), "min_cllr": min_cllr(scores, labels), "auc": roc_auc(scores, labels),
        "num_targets": int(labels.sum()), "num_nontargets": int((~labels).sum()),
        "p_target": p_target, "c_miss": c_miss, "c_fa": c_fa,
    }
