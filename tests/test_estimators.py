"""The classical models are scikit-learn estimators: scikit-learn's own estimator checks, clone, params, repr.

``check_estimator`` runs every check; the ones that do not apply are listed below with the reason, and
every other check must pass (a new failing check fails this test). FullGMM and IvectorExtractor need
data beyond ``X`` to fit (the diagonal UBM; statistics and their UBM), so only the checks that do not
fit run on them; their fit/clone behaviour is tested directly.
"""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (check_do_not_raise_errors_in_init_or_set_params,
                                            check_estimator, check_get_params_invariance,
                                            check_no_attributes_set_in_init, check_parameters_default_constructible,
                                            check_set_params)

from spkrec.backend.pipeline import make_pipeline
from spkrec.errors import SpkrecError
from spkrec.gmm import DiagGMM
from spkrec.ivector import FullGMM, IvectorExtractor, accumulate_stats
from spkrec.parallel import ParallelConfig

INPUT_CONVENTIONS = "spkrec validates frames with one-line SpkrecErrors of its own wording, not sklearn's"
DIAG_NOT_APPLICABLE = {
    "check_n_features_in_after_fitting": INPUT_CONVENTIONS,
    "check_complex_data": INPUT_CONVENTIONS,
    "check_dtype_object": INPUT_CONVENTIONS,
    "check_estimators_empty_data_messages": INPUT_CONVENTIONS,
    "check_estimators_nan_inf": INPUT_CONVENTIONS,
    "check_estimator_sparse_tag": "features are dense frames; sparse input is not supported",
    "check_estimator_sparse_array": "features are dense frames; sparse input is not supported",
    "check_estimator_sparse_matrix": "features are dense frames; sparse input is not supported",
    "check_fit2d_1sample": INPUT_CONVENTIONS,
    "check_n_features_in": "the input dimension is means_.shape[1] (dim_), not n_features_in_",
    "check_fit2d_predict1d": INPUT_CONVENTIONS,
    "check_array_api_input": "skipped by scikit-learn without SCIPY_ARRAY_API",
    # float32 E-step: a frame's value may move by an ulp with its row position in the BLAS kernels, and these
    # checks use rtol 1e-7 < float32 epsilon; test_sample_order_and_subset_invariance checks them at 1e-5
    "check_methods_sample_order_invariance": "float32 E-step (see test_sample_order_and_subset_invariance)",
    "check_methods_subset_invariance": "float32 E-step (see test_sample_order_and_subset_invariance)",
}
NON_FITTING_CHECKS = (check_parameters_default_constructible, check_get_params_invariance, check_set_params,
                      check_no_attributes_set_in_init, check_do_not_raise_errors_in_init_or_set_params)


def test_diag_gmm_passes_sklearn_checks():
    results = check_estimator(DiagGMM(n_components=2, n_iter=2, n_iter_per_split=1), on_fail=None)
    failed = {r["check_name"]: str(r["exception"])[:200] for r in results
              if r["status"] != "passed" and r["check_name"] not in DIAG_NOT_APPLICABLE}
    assert not failed, failed
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert {"check_fit_idempotent", "check_estimators_unfitted", "check_estimators_pickle",
            "check_dict_unchanged", "check_fit_check_is_fitted"} <= passed


def test_sample_order_and_subset_invariance():
    X = _toy(4, T=300)
    gmm = DiagGMM(n_components=3, n_iter=3).fit(X)
    idx = np.random.default_rng(0).permutation(len(X))
    for method in (gmm.score_samples, gmm.predict_proba):
        np.testing.assert_allclose(method(X[idx]), method(X)[idx], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(method(X[:37]), method(X)[:37], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: FullGMM(n_iter=1), lambda: IvectorExtractor(n_components=2, n_iter=1)],
                         ids=["FullGMM", "IvectorExtractor"])
def test_non_fitting_sklearn_checks(make):
    est = make()
    name = type(est).__name__
    for check in NON_FITTING_CHECKS:
        check(name, est)


def _toy(seed=0, T=600, D=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, D)) * [1.0, 2.0, 0.5] + rng.integers(0, 3, size=(T, 1)) * 3.0


def test_clone_params_repr_and_unfitted_errors():
    X = _toy()
    par = ParallelConfig(nj=2)
    diag = DiagGMM(n_components=4, n_iter=2, parallel=par)
    assert diag.get_params()["parallel"] == par and diag.get_params()["n_components"] == 4
    assert repr(diag).startswith("DiagGMM(") and "n_components=4" in repr(diag) and "object at" not in repr(diag)
    with pytest.raises(NotFittedError):      # scikit-learn's error ...
        diag.score_samples(X)
    with pytest.raises(SpkrecError):         # ... which is also the CLI's one-line error
        diag.score_samples(X)
    diag.fit(X)
    copy = clone(diag)
    assert copy.get_params() == diag.get_params() and not hasattr(copy, "means_")
    np.testing.assert_array_equal(copy.fit(X).means_, diag.means_)   # same hyper-parameters, same model
    full = FullGMM(n_iter=1, num_gselect=2).fit(X, diag_ubm=diag)
    assert not hasattr(clone(full), "covariances_") and clone(full).get_params() == full.get_params()
    N, F = accumulate_stats(full, {f"u{i}": X[i * 100:(i + 1) * 100] for i in range(6)}, num_gselect=2)
    ex = IvectorExtractor(n_components=2, n_iter=1, batch_size=2).fit(N, F, ubm=full)
    again = clone(ex).fit(N, F, ubm=full)
    np.testing.assert_array_equal(again.transform(N, F), ex.transform(N, F))
    assert "n_components=2" in repr(ex)


def test_score_keeps_sklearn_meaning():
    """score(X) of a mixture is the average log-likelihood per frame (as GaussianMixture.score)."""
    from sklearn.mixture import GaussianMixture
    X = _toy(1)
    ours = DiagGMM(n_components=3, n_iter=5).fit(X)
    sk = GaussianMixture(3, covariance_type="diag").fit(X)
    sk.weights_, sk.means_ = ours.weights_, ours.means_
    sk.precisions_cholesky_ = 1.0 / np.sqrt(ours.variances_)
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-5)


def test_make_pipeline_rejects_typos():
    with pytest.raises(SpkrecError, match="wcccn"):
        make_pipeline("center,wcccn,lnorm")


def test_old_model_files_load_with_new_names(tmp_path):
    """Model files written before the scikit-learn names (num_gauss, num_iters, tv_dim) still load."""
    from spkrec.io.atomic import save_npz
    X = _toy(2)
    ref = DiagGMM(n_components=2, n_iter=1).fit(X)
    save_npz(tmp_path / "old.npz", "DiagGMM", {"weights": ref.weights_, "means": ref.means_,
                                               "variances": ref.variances_, "var_floor": ref.var_floor_,
                                               "loglik_history": np.zeros(1)},
             {"hyper": {"num_gauss": 2, "num_iters": 7, "num_iters_per_split": 3}})
    old = DiagGMM.load(tmp_path / "old.npz")
    assert (old.n_components, old.n_iter, old.n_iter_per_split) == (2, 7, 3)
    np.testing.assert_array_equal(old.means_, ref.means_)


def test_backends_keep_score_free_and_clone():
    from spkrec.backend import CosineScorer, GSVSVM, SimplifiedPLDA, TwoCovPLDA
    for est in (TwoCovPLDA(), SimplifiedPLDA(), CosineScorer(), GSVSVM(), make_pipeline("center,lnorm,plda")):
        assert not hasattr(est, "score") and hasattr(est, "score_pairs")
        assert clone(est).get_params().keys() == est.get_params().keys()


def test_calibration_and_fusion_are_estimators():
    from spkrec.backend import LinearCalibration, LinearFusion
    rng = np.random.default_rng(3)
    labels = rng.random(200) < 0.3
    scores = rng.normal(size=200) + 2.0 * labels
    for est, X in ((LinearCalibration(target_prior=0.05), scores), (LinearFusion(), np.c_[scores, -scores])):
        copy = clone(est)
        assert copy.get_params() == est.get_params() and "object at" not in repr(est)
        with pytest.raises(NotFittedError):
            est.transform(X)
        np.testing.assert_array_equal(clone(est).fit(X, labels).transform(X), est.fit(X, labels).transform(X))
    for check in NON_FITTING_CHECKS:
        check("LinearCalibration", LinearCalibration())
