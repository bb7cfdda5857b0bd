"""Back-end transforms and the pipeline: sklearn LDA agreement, WCCN/whitening identities, save/load."""
import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from spkrec.backend import LDA, WCCN, BackendPipeline, Center, LengthNorm, TwoCovPLDA, Whiten, make_pipeline
from spkrec.errors import SpkrecError


@pytest.fixture(scope="module")
def labelled():
    """40 speakers with unequal session counts (3..12), dim 12, anisotropic within-class noise."""
    rng = np.random.default_rng(0)
    d, S = 12, 40
    counts = rng.integers(3, 13, size=S)
    spk = rng.standard_normal((S, d)) * np.linspace(3, 0.5, d)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    X = np.repeat(spk, counts, axis=0) + rng.standard_normal((counts.sum(), d)) @ mix + 5.0
    y = np.repeat([f"s{i:02d}" for i in range(S)], counts)
    return X, y


def _within_cov(X, y, per_speaker=False):
    classes = np.unique(y)
    C = np.zeros((X.shape[1], X.shape[1]))
    for c in classes:
        D = X[y == c] - X[y == c].mean(axis=0)
        C += D.T @ D / (len(D) if per_speaker else 1)
    return C / (len(classes) if per_speaker else len(X))


def test_center_and_whiten(labelled):
    X, _ = labelled
    np.testing.assert_allclose(Center().fit(X).transform(X).mean(axis=0), 0, atol=1e-10)
    for method in ("zca", "pca"):
        Z = Whiten(method=method).fit(X).transform(X)
        np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(X.shape[1]), atol=1e-8)
    # ZCA is symmetric; PCA orders axes by decreasing variance
    w = Whiten("zca").fit(X)
    np.testing.assert_allclose(w.W_, w.W_.T, atol=1e-10)


def test_lda_matches_sklearn_subspaces(labelled):
    X, y = labelled
    k = 6
    ours = LDA(n_components=k).fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="eigen").fit(X, y)
    for j in range(k):   # same direction per component, up to sign and scale
        a, b = ours.W_[:, j], ref.scalings_[:, j]
        cos = abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
        assert cos > 1 - 1e-8, (j, cos)
    # the projected data spans the same subspace as sklearn's transform (up to a per-component scale)
    P, R = ours.transform(X), ref.transform(X)[:, :k]
    for j in range(k):
        assert abs(np.corrcoef(P[:, j], R[:, j])[0, 1]) > 1 - 1e-8


def test_lda_scaling_within_identity(labelled):
    X, y = labelled
    lda = LDA(n_components=8).fit(X, y)
    Z = lda.transform(X)
    np.testing.assert_allclose(_within_cov(Z, y), np.eye(8), atol=1e-8)
    # between-class covariance (sample weighted) is diag(eigenvalues_), decreasing
    mu = Z.mean(axis=0)
    Sb = sum((y == c).sum() * np.outer(Z[y == c].mean(0) - mu, Z[y == c].mean(0) - mu) for c in np.unique(y))
    np.testing.assert_allclose(Sb / len(Z), np.diag(lda.eigenvalues_), atol=1e-8)
    assert np.all(np.diff(lda.eigenvalues_) <= 0)


def test_lda_clamps_dimension(labelled):
    X, y = labelled
    keep = np.isin(y, np.unique(y)[:5])
    assert LDA(n_components=10).fit(X[keep], y[keep]).n_components_ == 4
    with pytest.raises(SpkrecError, match="classes"):
        LDA(2).fit(X[:3], ["a"] * 3)


def test_wccn_makes_within_class_identity(labelled):
    X, y = labelled
    Z = WCCN().fit(X, y).transform(X)
    np.testing.assert_allclose(_within_cov(Z, y, per_speaker=True), np.eye(X.shape[1]), atol=1e-8)


def test_length_norm():
    X = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    Z = LengthNorm().fit(X).transform(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), [np.sqrt(3), 0, np.sqrt(3)])
    np.testing.assert_allclose(Z[0], np.array([3, 4, 0]) / 5 * np.sqrt(3))
    U = LengthNorm(scale="unit").fit(X).transform(X)
    np.testing.assert_allclose(np.linalg.norm(U[[0, 2]], axis=1), 1.0)
    with pytest.raises(SpkrecError, match="scale"):
        LengthNorm(scale="bad").fit(X)


@pytest.mark.parametrize("cls,kw", [(Center, {}), (Whiten, {"method": "pca"}), (LDA, {"n_components": 5}),
                                    (WCCN, {}), (LengthNorm, {"scale": "unit"})])
def test_transform_save_load(labelled, tmp_path, cls, kw):
    X, y = labelled
    t = cls(**kw).fit(X, y)
    t.save(tmp_path / "t.npz")
    back = cls.load(tmp_path / "t.npz")
    assert back.get_params() == t.get_params()
    np.testing.assert_array_equal(back.transform(X), t.transform(X))


def test_pipeline_fit_transform_score_save_load(labelled, tmp_path):
    X, y = labelled
    pipe = make_pipeline("center,lda:8,wccn,lnorm,plda", plda="two-cov").fit(X, y)
    assert [type(s).__name__ for s in pipe.steps] == ["Center", "LDA", "WCCN", "LengthNorm"]
    assert isinstance(pipe.scorer, TwoCovPLDA)
    # the steps are fitted in turn: the same as chaining the estimators by hand
    Z = X
    for s in (Center(), LDA(8), WCCN(), LengthNorm()):
        Z = s.fit(Z, y).transform(Z)
    np.testing.assert_allclose(pipe.transform(X), Z, atol=1e-10)
    # multi-enrolment: rows averaged per model after the transforms, counts passed to PLDA
    groups = np.array([0, 0, 0, 1, 1, 2])
    S = pipe.score_pairs(X[:6], X[10:20], enroll_groups=groups)
    means = np.stack([Z[:3].mean(0), Z[3:5].mean(0), Z[5]])
    np.testing.assert_allclose(S, pipe.scorer.score_pairs(means, Z[10:20], n_enroll=[3, 2, 1]), atol=1e-10)
    pipe.save(tmp_path / "backend.npz")
    back = BackendPipeline.load(tmp_path / "backend.npz")
    np.testing.assert_array_equal(back.score_pairs(X[:6], X[10:20], enroll_groups=groups), S)
    names = set(np.load(tmp_path / "backend.npz").files)
    assert {"1.lda.W_", "0.center.mean_", "scorer.two-cov.between_"} <= names


def test_pipeline_cosine_and_specs(labelled):
    X, y = labelled
    pipe = make_pipeline("center,whiten:pca,lnorm:unit,cosine").fit(X, y)
    Z = pipe.transform(X)
    np.testing.assert_allclose(pipe.score_pairs(X[:2], X[2:5]), Z[:2] @ Z[2:5].T, atol=1e-10)
    assert make_pipeline("lda:5,wccn,plda:4", plda="simplified").scorer.n_speaker_factors == 4
    for bad in ("center,foo", "center,wcccn", "plda,lda:3", "wccn:3", "lda:x", ""):
        with pytest.raises(SpkrecError, match="--steps"):
            make_pipeline(bad)
