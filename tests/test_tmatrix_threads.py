"""T-matrix M-step and covariance update shared among threads: each Gaussian's solve is the serial one
(bit for bit, for any thread count and any --nj), and equals the closed form C_c A_c^-1."""
import numpy as np
import pytest

from spkrec.ivector import FullGMM, IvectorExtractor, accumulate_stats
from spkrec.ivector.extractor import _m_step, per_gaussian_threads
from spkrec.parallel import ParallelConfig


def test_m_step_any_thread_count_equals_serial_and_closed_form():
    rng = np.random.default_rng(3)
    C, D, R = 7, 4, 6
    tril = np.tril_indices(R)
    A = np.empty((C, len(tril[0])))
    full = []
    for c in range(C):
        B = rng.normal(size=(R, 3 * R))
        M = B @ B.T
        full.append(M)
        A[c] = M[tril]
    Cacc = rng.normal(size=(C, D, R))
    serial = _m_step(A, Cacc, tril, threads=1)
    for threads in (2, 3, 16):
        np.testing.assert_array_equal(_m_step(A, Cacc, tril, threads=threads), serial)
    ref = np.stack([np.linalg.solve(full[c], Cacc[c].T).T for c in range(C)])
    np.testing.assert_allclose(serial, ref, rtol=1e-10, atol=1e-12)
    bad = A.copy()
    bad[5] = 0.0
    with pytest.raises(Exception, match="Gaussian 5 is not positive definite"):
        _m_step(bad, Cacc, tril, threads=3)


def test_per_gaussian_threads_cover_every_gaussian_once():
    seen = []
    per_gaussian_threads(lambda r: seen.extend(r), 10, threads=4)
    assert sorted(seen) == list(range(10))


@pytest.mark.parametrize("update_variances", [False, True])
def test_extractor_training_identical_for_nj_and_driver_threads(monkeypatch, update_variances):
    rng = np.random.default_rng(5)
    C, D = 8, 3
    A = rng.normal(size=(C, D, D)) * 0.3 + np.eye(D)
    ubm = FullGMM.from_params(rng.dirichlet(np.full(C, 4.0)), rng.normal(size=(C, D)) * 2.0,
                              A @ A.transpose(0, 2, 1) + 0.1 * np.eye(D))
    utts = {f"u{i}": rng.normal(size=(int(rng.integers(30, 80)), D)).astype(np.float32) * 2.0 for i in range(40)}
    ids = sorted(utts)
    N, F, S = accumulate_stats(ubm, utts, ids, num_gselect=4, second_order=True)
    kw = dict(n_components=5, n_iter=3, batch_size=6, update_variances=update_variances)
    models = []
    for nj, threads in [(1, "1"), (2, "2"), (2, "3"), (1, "4")]:
        monkeypatch.setenv("SPKREC_BLAS_THREADS", threads)
        models.append(IvectorExtractor(parallel=ParallelConfig(nj=nj), **kw).fit(N, F, ubm, S=S))
    for m in models[1:]:
        np.testing.assert_array_equal(m.T_, models[0].T_)
        np.testing.assert_array_equal(m.covariances_, models[0].covariances_)
        assert m.objective_history_ == models[0].objective_history_
    assert np.all(np.diff(models[0].objective_history_) > -1e-9)
