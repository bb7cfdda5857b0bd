"""Total-variability model (i-vector extractor) trained by EM (Kenny 2005; Dehak et al. 2011).

Model, per utterance with statistics N (C,) and centred F (C, D):
    F_c ~ N_c T_c w + noise with covariance N_c Sigma_c,      w ~ N(mu0, I),
with Sigma_c the residual covariances (the UBM's, fixed, unless ``update_variances``) and
``mu0 = prior_offset * e_1``. ``prior_offset > 0`` is
Kaldi's convention (``ivector-extractor-init --prior-offset=100``): the first column of T then
carries a learned shift of the supervector mean, and the reported i-vector is ``E[w] - mu0`` (as
``ivector-extract`` subtracts the offset). ``prior_offset = 0`` is the plain zero-mean prior.

Posterior of w:  precision  L = I + sum_c N_c T_c' Sigma_c^-1 T_c,
                 mean       L^-1 (T' Sigma^-1 F + mu0),   covariance L^-1.
EM: C_c = sum_u F_uc E[w_u]',  A_c = sum_u N_uc E[w_u w_u'],  T_c = C_c A_c^-1. The optional
minimum-divergence step re-estimates the prior from the same posteriors and maps it back to the
standard form by an invertible linear change of w (whitening, plus a Householder rotation that puts
the mean on e_1 when prior_offset > 0), which leaves the likelihood unchanged.
The logged objective is the marginal log-likelihood of the statistics per utterance, up to a constant
that depends only on the data, relative to the UBM alone (T = 0, UBM covariances Sigma0: objective 0):
    0.5 b' L^-1 b - 0.5 log|L| - 0.5 |mu0|^2,  b = T'Sigma^-1 F + mu0,
plus, once Sigma differs from Sigma0, the Sigma terms of the data (summed over utterances, per utterance)
    -0.5 sum_c [N_c (log|Sigma_c| - log|Sigma0_c|) + tr((Sigma_c^-1 - Sigma0_c^-1) S_c)],
with S_c = sum_t gamma_tc (x_t - m_c)(x_t - m_c)' the second-order statistics. EM never decreases it.

Residual covariance update (``update_variances``, Kaldi ``ivector-extractor-est --update-variances``),
after T's: Sigma_c = (S_c - T_c C_c' - C_c T_c' + T_c A_c T_c') / N_c, symmetrised, then floored as Kaldi
does: eigenvalues relative to ``variance_floor_factor`` (0.1) x the average data covariance
sum_c S_c / sum_c N_c are floored at 1 (a diagonal UBM: per dimension). Gaussians with N_c <= D keep their
Sigma. ``min_gauss_count``: Gaussians with a training occupancy sum_u N_uc below it are dropped from the
model (``kept_gaussians_``; statistics for the fitted model then come from ``kept_ubm(ubm)``).

Internally ``G_c = Sigma_c^-1/2 T_c`` (whitened T), so ``T_c' Sigma_c^-1 T_c = G_c' G_c``; the linear
term is ``F_flat @ U`` with ``U_c = Sigma_c^-1 T_c`` (statistics are never whitened per utterance). The
precisions of a batch of B utterances are ONE product ``N (B, C) @ GG (C, R(R+1)/2)`` (lower triangles);
Cholesky factorisations, solves and inverses run per utterance in LAPACK, in place (float64 in
training; float32 by default in extraction).
"""
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from threadpoolctl import threadpool_limits
from scipy.linalg import lapack

from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, save_npz
from spkrec.ivector.archive import StatsArchive
from spkrec.gmm.core import gaussian_params, saved_params
from spkrec.ivector.posterior import (MAX_CHUNKS, TRAIN_UTTS_PER_CHUNK, _estep_chunk, _extract_chunk, _Projection,
                                      _SharedStats, _stack_matmul)
from spkrec.notfitted import NotFitted
from spkrec.parallel import SERIAL, driver_threads, map_chunks, reduce_chunks

log = logging.getLogger("spkrec")


class IvectorExtractor(TransformerMixin, BaseEstimator):
    """Total-variability i-vector extractor.

    Parameters
    ----------
    n_components : i-vector dimension R (Kaldi/CLI: ``--tv-dim``).
    n_iter : EM iterations (CLI: ``--num-iters``).
    min_divergence : re-estimate the prior each iteration (minimum-divergence step).
    prior_offset : Kaldi-style prior mean ``prior_offset * e_1`` (Kaldi uses 100); 0 = zero-mean prior.
    batch_size : utterances per precision product (fixed, so results do not depend on ``nj``).
    random_state : seed (int/None/Generator) of the random initialisation of T.
    update_variances : re-estimate the residual covariances Sigma each iteration (Kaldi
        ``--update-variances``); needs the second-order statistics S (``fit(..., S=...)``).
    variance_floor_factor : Sigma floor, relative to the average data covariance (Kaldi: 0.1).
    min_gauss_count : drop Gaussians whose total training occupancy sum_u N_uc is below this (0: keep all).
    parallel : a :class:`spkrec.parallel.ParallelConfig` (None: serial); the numbers do not depend on it.

    Fitted attributes: ``T_`` (C, D, R) float64, ``covariances_`` (C, D, D) or (C, D) (Sigma: the UBM's,
    or re-estimated), ``ubm_covariances_`` (the UBM's, of the kept Gaussians), ``kept_gaussians_`` (C,)
    indices into the UBM, ``prior_offset_`` (float, changed by the minimum-divergence step),
    ``objective_history_`` (average objective per utterance at the start of each iteration),
    ``heldout_objective_history_`` (objective per held-out utterance after each iteration; [] without
    held-out statistics).
    """

    def __init__(self, n_components=400, n_iter=10, min_divergence=True, prior_offset=100.0, batch_size=64,
                 random_state=0, update_variances=False, variance_floor_factor=0.1, min_gauss_count=0.0,
                 parallel=None):
        self.n_components = n_components
        self.n_iter = n_iter
        self.min_divergence = min_divergence
        self.prior_offset = prior_offset
        self.batch_size = batch_size
        self.random_state = random_state
        self.update_variances = update_variances
        self.variance_floor_factor = variance_floor_factor
        self.min_gauss_count = min_gauss_count
        self.parallel = parallel

    def _config(self):
        return self.parallel if self.parallel is not None else SERIAL

    def _hyper(self):
        seed = self.random_state if isinstance(self.random_state, (int, type(None))) else None
        return dict(n_components=self.n_components, n_iter=self.n_iter, min_divergence=bool(self.min_divergence),
                    prior_offset=float(self.prior_offset), batch_size=self.batch_size, random_state=seed,
                    update_variances=bool(self.update_variances),
                    variance_floor_factor=float(self.variance_floor_factor),
                    min_gauss_count=float(self.min_gauss_count))

    # ------------------------------------------------------------------ helpers
    @property
    def mu0_(self):
        mu0 = np.zeros(self.T_.shape[2])
        mu0[0] = self.prior_offset_
        return mu0

    def _whitener(self):
        cov = self.covariances_
        if cov.ndim == 2:
            return 1.0 / np.sqrt(cov)
        return np.linalg.inv(np.linalg.cholesky(cov))

    def _projection(self, dtype, G=None, config=SERIAL):
        """Whitened T for the E-step/extraction (cached for the current ``T_``), shared with the
        workers of ``config``."""
        cache = self.__dict__.get("_G_cache")
        if G is None and cache is not None and cache[0] is self.T_:
            G, whiten = cache[1], cache[2]
        else:
            whiten = self._whitener()
            if G is None:
                G = self.T_ * whiten[:, :, None] if whiten.ndim == 2 else _stack_matmul(whiten, self.T_)
                self.__dict__["_G_cache"] = (self.T_, G, whiten)
        return _Projection(G, whiten, dtype, config)

    def _check_stats(self, N, F):
        N = np.asarray(N)
        F = np.asarray(F)
        C, D = self.covariances_.shape[:2]
        if N.ndim != 2 or F.ndim != 3 or N.shape != F.shape[:2] or F.shape[1:] != (C, D):
            raise SpkrecError(f"statistics of shapes N {N.shape}, F {F.shape} do not match the UBM "
                              f"({C} Gaussians, dim {D}); compute them with the same UBM")
        return N, F

    def _stats_source(self, N, F, config):
        """The batch source of statistics ``N (n, C)``, ``F (n, C, D)`` (shared once with the workers), or
        the :class:`~spkrec.ivector.archive.StatsArchive` ``N`` itself (``F`` None; read by path)."""
        if not isinstance(N, StatsArchive):
            return _SharedStats(*self._check_stats(N, F), config)
        if F is not None:
            raise SpkrecError("IvectorExtractor: pass F=None with a StatsArchive (it holds N and F)")
        if N.num_utts and (N.num_gauss, N.dim) != self.covariances_.shape[:2]:
            raise SpkrecError(f"{os.path.dirname(N.paths[0])}: statistics of {N.num_gauss} Gaussians, "
                              f"dim {N.dim} do not match the UBM {self.covariances_.shape[:2]}; recompute them")
        return N

    def _second_order(self, source, S):
        """S of ``source`` (given, or read from a StatsArchive), checked against the model's shapes."""
        if S is None and isinstance(source, StatsArchive):
            S = source.second_order()
        if S is None:
            raise SpkrecError("update_variances needs the second-order statistics: pass S=... (accumulate_stats("
                              "..., second_order=True)) or a StatsArchive written with second_order=True")
        S = np.asarray(S, np.float64)
        want = self.covariances_.shape
        if S.shape != want:
            raise SpkrecError(f"second-order statistics of shape {S.shape} do not match the UBM covariances {want}; "
                              "compute them with the same UBM")
        return S

    def _variances_changed(self):
        ubm_cov = self.__dict__.get("ubm_covariances_")  # set by fit/load (absent: Sigma = the UBM's)
        return ubm_cov is not None and not np.array_equal(self.covariances_, ubm_cov)

    def _sigma_term(self, S, Nc):
        """Summed Sigma-dependent objective terms relative to the UBM covariances (0 while Sigma = Sigma0)."""
        if not self._variances_changed():
            return 0.0
        if S is None:
            raise SpkrecError("the residual covariances were re-estimated: the objective needs the "
                              "second-order statistics S of these statistics (S=...)")
        return -0.5 * float(Nc @ (_logdet(self.covariances_) - _logdet(self.ubm_covariances_))
                            + (_trace_inv(self.covariances_, S) - _trace_inv(self.ubm_covariances_, S)).sum())

    def kept_ubm(self, ubm):
        """The UBM restricted to ``kept_gaussians_`` (weights renormalised): the UBM whose statistics the
        fitted model takes (``ubm`` itself when no Gaussian was dropped)."""
        self._check_fitted()
        weights, means, cov = gaussian_params(ubm)
        keep = self.kept_gaussians_
        if len(keep) == len(weights):
            return ubm
        w = weights[keep] / weights[keep].sum()
        if cov.ndim == 3:
            return type(ubm).from_params(w, means[keep], cov[keep], **ubm._hyper())
        from spkrec.gmm import DiagGMM
        out = DiagGMM.from_params(w, means[keep], cov[keep])
        for k, v in vars(ubm).items():  # hyper-parameters and floors of the original
            if not k.endswith("_") and k != "n_components":
                setattr(out, k, v)
        if hasattr(ubm, "var_floor_"):
            out.var_floor_ = ubm.var_floor_
        return out

    # ------------------------------------------------------------------ training
    def fit(self, N, F=None, ubm=None, S=None, heldout=None):
        """Train T on statistics ``N (n, C)``, centred ``F (n, C, D)`` computed with ``ubm`` (whose
        covariances are the model's initial Sigma; a FullGMM gives full, a DiagGMM diagonal covariances).

        ``N`` may instead be a :class:`~spkrec.ivector.archive.StatsArchive` (and ``F`` None): the
        E-step workers then read its files by path, in the same batches, giving the same T.
        S : total second-order statistics (C, D, D) or (C, D) of the training data (needed with
            ``update_variances``; read from a StatsArchive written with ``second_order=True``).
        heldout : statistics of held-out speakers, ``(N, F)``, ``(N, F, S)`` or a StatsArchive (same UBM):
            their objective per utterance is computed after each iteration (``heldout_objective_history_``)
            and a one-line warning is logged when it ends negative or falling (see ``overfitting_warning``)."""
        if ubm is None:
            raise SpkrecError("IvectorExtractor.fit needs the UBM the statistics were computed with (ubm=...)")
        config = self._config()
        _, _, cov = gaussian_params(ubm)
        self.covariances_ = np.array(cov, np.float64)
        source = self._stats_source(N, F, config)
        batches = source.batches(self.batch_size)
        num_utts = len(source)
        if num_utts == 0:
            raise SpkrecError("no statistics to train the i-vector extractor on; check the data dir")
        update = bool(self.update_variances)
        if update:
            S = self._second_order(source, S)
        hsource, hS = None, None
        if heldout is not None:
            hparts = (heldout, None) if isinstance(heldout, StatsArchive) else tuple(heldout) + (None,) * (3 - len(heldout))
            hsource = self._stats_source(hparts[0], hparts[1], config)
            if update:
                hS = self._second_order(hsource, hparts[2] if len(hparts) > 2 else None)
            if len(hsource) == 0:
                hsource = None
        keep = self._select_gaussians(source)
        C0 = len(self.covariances_)
        self.kept_gaussians_ = np.arange(C0) if keep is None else keep
        if keep is not None:
            cov = cov[keep]
            S = S[keep] if S is not None else None
            hS = hS[keep] if hS is not None else None
        self.ubm_covariances_ = np.array(cov, np.float64)
        self.covariances_ = self.ubm_covariances_.copy()
        C, D = cov.shape[:2]
        R = int(self.n_components)
        rng = np.random.default_rng(self.random_state)
        G = rng.standard_normal((C, D, R)) * (0.5 / np.sqrt(R))
        self.prior_offset_ = float(self.prior_offset)
        if self.prior_offset_ > 0:
            G[:, :, 0] = 0.0  # Kaldi: the first column starts as the UBM mean (here: no shift)
        tril = np.tril_indices(R)
        train_chunks = max(1, min(MAX_CHUNKS, num_utts // TRAIN_UTTS_PER_CHUNK))  # independent of nj
        self.objective_history_ = []
        self.heldout_objective_history_ = []
        proj = self._projection(np.float64, G, config)
        for it in range(int(self.n_iter)):
            mu0 = np.zeros(R)
            mu0[0] = self.prior_offset_
            acc = reduce_chunks(_estep_chunk, batches, config, combine=_add_acc, max_chunks=train_chunks,
                                desc="T-matrix E-step", proj=proj, mu0=mu0, tril=tril, source=source, keep=keep)
            n = acc["count"]
            objective = (acc["objective"] + self._sigma_term(S, acc["N"])) / n
            self.objective_history_.append(float(objective))
            log.info("i-vector extractor iteration %d: objective %.4f per utterance (%d utterances)", it, objective, n)
            raw = np.ascontiguousarray(acc["Cacc"]).reshape(C, D, R)  # sum_u F_uc E[w_u]'
            whiten = proj.whiten
            Cw = raw * whiten[:, :, None] if whiten.ndim == 2 else _stack_matmul(whiten, raw)
            G = _m_step(acc["A"], Cw, tril)
            if not (np.isfinite(objective) and np.isfinite(G).all()):
                raise SpkrecError(f"i-vector extractor iteration {it}: non-finite objective or T matrix; likely "
                                  "cause: NaN/inf in the statistics (features) or a degenerate UBM")
            if update:  # Sigma from the new T (raw space), then the new whitening of that T
                T = _unwhiten(self.covariances_, G)
                self.covariances_ = self._update_variances(T, raw, acc["A"], acc["N"], S, tril)
                G = _whiten(self.covariances_, T)
            if self.min_divergence:
                G = self._min_divergence(G, acc["sum_mean"] / n, _unpack_lower(acc["sum_eww"] / n, tril, R))
            proj = self._projection(np.float64, G, config)
            if hsource is not None:
                h = self._objective_of(hsource, proj, config, keep=keep, S=hS)
                self.heldout_objective_history_.append(float(h))
                log.info("i-vector extractor iteration %d: held-out objective %.4f per utterance (%d utterances)",
                         it, h, len(hsource))
        self.T_ = _unwhiten(self.covariances_, G)
        self.__dict__["_G_cache"] = (self.T_, G, self._whitener())
        warning = self.overfitting_warning()
        if warning:
            log.warning("%s", warning)
        return self

    def _select_gaussians(self, source):
        """Indices of the Gaussians with training occupancy >= ``min_gauss_count`` (None: all kept)."""
        if not self.min_gauss_count or self.min_gauss_count <= 0:
            return None
        if isinstance(source, StatsArchive):
            from spkrec.ivector.archive import _read
            occ = np.zeros(source.num_gauss)
            for path in source.paths:  # N only: small
                occ += _read(path, ("N",))[1][0].sum(0, dtype=np.float64)
        else:
            occ = np.asarray(source.shared["N"], np.float64).sum(0)
        keep = np.flatnonzero(occ >= float(self.min_gauss_count))
        if len(keep) == len(occ):
            return None
        if len(keep) == 0:
            raise SpkrecError(f"every Gaussian has a training occupancy below min_gauss_count={self.min_gauss_count:g} "
                              f"(largest {occ.max():.1f}); lower --min-gauss-count")
        log.info("i-vector extractor: dropped %d of %d Gaussians with a training occupancy below %g "
                 "(min_gauss_count)", len(occ) - len(keep), len(occ), self.min_gauss_count)
        return keep

    def _update_variances(self, T, raw_C, A_packed, Nc, S, tril):
        """Residual covariances from the accumulators and the new T (Kaldi ``UpdateVariances``)."""
        old = self.covariances_
        full = old.ndim == 3
        C, D, R = T.shape
        new = old.copy()

        def work(gaussians):
            A = np.zeros((R, R))
            for c in gaussians:
                if Nc[c] <= D:  # too little data for a covariance: keep the current one
                    continue
                A[tril] = A_packed[c]
                A.T[tril] = A_packed[c]
                TC = T[c] @ raw_C[c].T  # T_c C_c' (D, D)
                TAT = (T[c] @ A) @ T[c].T
                if full:
                    M = S[c] - TC - TC.T + TAT
                    new[c] = 0.5 * (M + M.T) / Nc[c]
                else:
                    new[c] = (S[c] - 2.0 * np.diagonal(TC) + np.diagonal(TAT)) / Nc[c]
        per_gaussian_threads(work, C)
        floor = float(self.variance_floor_factor) * S.sum(0) / Nc.sum()
        floored = 0
        if full:
            Lf = np.linalg.cholesky(floor)
            for c in range(C):
                M = np.linalg.solve(Lf, np.linalg.solve(Lf, new[c]).T)  # Lf^-1 Sigma Lf^-T
                lam, V = np.linalg.eigh(0.5 * (M + M.T))
                if lam.min() < 1.0:
                    floored += 1
                    B = Lf @ V
                    new[c] = (B * np.maximum(lam, 1.0)) @ B.T
        else:
            floored = int((new < floor).any(1).sum())
            new = np.maximum(new, floor)
        if floored:
            log.info("i-vector extractor: floored the residual covariances of %d Gaussians", floored)
        return new

    def overfitting_warning(self):
        """One line when the held-out objective ended negative or fell (more than 1 % below its best, over
        the last iterations): the model is too large for the data. None otherwise or without held-out data."""
        h = list(getattr(self, "heldout_objective_history_", []))
        if not h:
            return None
        last, best = h[-1], max(h)
        if last < 0:
            why = f"is negative ({last:.2f} per utterance)"
        elif len(h) >= 2 and last < best - 0.01 * abs(best):
            why = f"fell from {best:.2f} (iteration {h.index(best)}) to {last:.2f} per utterance"
        else:
            return None
        C, _, R = self.T_.shape
        return (f"i-vector extractor: the held-out objective {why}: the model (tv_dim {R}, {C} Gaussians) is too "
                "large for the training data; lower --tv-dim or the UBM size (--num-gauss), or add training speakers")

    def _min_divergence(self, G, mean, second_moment):
        if self.prior_offset_ > 0:
            cov = second_moment - np.outer(mean, mean)
            chol = np.linalg.cholesky(cov)
            u = np.linalg.solve(chol, mean)
            norm = float(np.linalg.norm(u))
            v = u.copy()
            v[0] -= norm
            Q = np.eye(len(u))
            if v @ v > 1e-20 * max(norm, 1.0) ** 2:
                Q -= 2.0 * np.outer(v, v) / (v @ v)
            self.prior_offset_ = norm
            M = chol @ Q
        else:
            M = np.linalg.cholesky(second_moment)
        C, D, R = G.shape
        return (G.reshape(C * D, R) @ M).reshape(C, D, R)  # one large product

    # ------------------------------------------------------------------ extraction
    def transform(self, N, F, return_covariance=False, dtype=np.float32):
        """i-vectors ``(n, R)`` float32 (posterior means minus the prior offset) of statistics
        ``N (n, C)``, ``F (n, C, D)``; with ``return_covariance`` also ``(n, R, R)`` posterior covariances.
        ``dtype`` is the precision of the products, Cholesky factorisations and solves (float32: about
        1e-6 relative difference from float64 on 400-dim i-vectors; float64 for training)."""
        self._check_fitted()
        config = self._config()
        N, F = self._check_stats(N, F)
        R = self.T_.shape[2]
        if len(N) == 0:
            out = np.zeros((0, R), np.float32)
            return (out, np.zeros((0, R, R), np.float32)) if return_covariance else out
        source = _SharedStats(N, F, config)
        parts = map_chunks(_extract_chunk, source.batches(self.batch_size), config, max_chunks=MAX_CHUNKS,
                           source=source,
                           proj=self._projection(dtype, config=config), mu0=self.mu0_,
                           want_cov=bool(return_covariance))
        results = [r for part in parts for r in part]
        ivectors = np.concatenate([r[0] for r in results])
        if return_covariance:
            return ivectors, np.concatenate([r[1] for r in results])
        return ivectors

    def objective(self, N, F=None, S=None):
        """Average objective (marginal log-likelihood relative to the UBM alone) per utterance: one E-step
        pass over statistics ``N``, ``F`` or a :class:`~spkrec.ivector.archive.StatsArchive` ``N``; once the
        covariances were re-estimated it needs their second-order statistics ``S`` (read from an archive)."""
        self._check_fitted()
        config = self._config()
        source = self._stats_source(N, F, config)
        if self._variances_changed():
            S = self._second_order(source, S)
        return self._objective_of(source, self._projection(np.float64, config=config), config, S=S)

    def _objective_of(self, source, proj, config, keep=None, S=None):
        acc = reduce_chunks(_estep_chunk, source.batches(self.batch_size), config, combine=_add_acc,
                            max_chunks=MAX_CHUNKS, source=source, proj=proj, mu0=_prior_mean(self.prior_offset_, proj.G.shape[2]),
                            tril=None, keep=keep, accumulate=False)
        return (acc["objective"] + self._sigma_term(S, acc["N"])) / acc["count"]

    def score(self, N, F, y=None):
        return self.objective(N, F)

    # ------------------------------------------------------------------ io
    def _check_fitted(self):
        if not hasattr(self, "T_"):
            raise NotFitted("IvectorExtractor is not fitted; call fit() or load() first")

    def save(self, path, meta=None):
        self._check_fitted()
        save_npz(path, "IvectorExtractor",
                 dict(T=self.T_, covariances=self.covariances_, ubm_covariances=self.ubm_covariances_,
                      kept_gaussians=np.asarray(self.kept_gaussians_, np.int64),
                      objective_history=np.asarray(self.objective_history_, np.float64),
                      heldout_objective_history=np.asarray(self.heldout_objective_history_, np.float64)),
                 dict(self._hyper(), prior_offset_=self.prior_offset_, **(meta or {})))

    @classmethod
    def load(cls, path):
        arrays, meta = load_npz(path, "IvectorExtractor")
        model = cls(**saved_params(meta, cls))
        model.T_ = arrays["T"]
        model.covariances_ = arrays["covariances"]
        model.objective_history_ = list(arrays["objective_history"])
        model.ubm_covariances_ = arrays.get("ubm_covariances", model.covariances_)  # older files: fixed Sigma
        model.kept_gaussians_ = arrays.get("kept_gaussians", np.arange(len(model.covariances_)))
        model.heldout_objective_history_ = list(arrays.get("heldout_objective_history", []))
        model.prior_offset_ = float(meta["prior_offset_"])
        model.meta_ = meta
        return model


def _add_acc(total, part):
    for k in total:
        total[k] += part[k]
    return total


def _prior_mean(offset, R):
    mu0 = np.zeros(R)
    mu0[0] = offset
    return mu0


def _logdet(cov):
    """(C,) log-determinants of covariances (C, D, D) or variances (C, D)."""
    return np.log(cov).sum(1) if cov.ndim == 2 else np.linalg.slogdet(cov)[1]


def _trace_inv(cov, S):
    """(C,) tr(Sigma_c^-1 S_c)."""
    if cov.ndim == 2:
        return (S / cov).sum(1)
    return np.einsum("cij,cji->c", np.linalg.inv(cov), S)


def _whiten(cov, T):
    """G_c = Sigma_c^-1/2 T_c (inverse Cholesky factor)."""
    if cov.ndim == 2:
        return T / np.sqrt(cov)[:, :, None]
    return _stack_matmul(np.linalg.inv(np.linalg.cholesky(cov)), T)


def _unwhiten(cov, G):
    """T_c = Sigma_c^1/2 G_c (Cholesky factor)."""
    if cov.ndim == 2:
        return np.sqrt(cov)[:, :, None] * G
    return _stack_matmul(np.linalg.cholesky(cov), G)


def _unpack_lower(packed, tril, R):
    out = np.zeros(packed.shape[:-1] + (R, R))
    out[..., tril[0], tril[1]] = packed
    out[..., tril[1], tril[0]] = packed
    return out


def per_gaussian_threads(work, num_gauss, threads=None):
    """Run ``work(gaussians)`` on contiguous ranges of ``range(num_gauss)`` in ``threads`` Python threads
    (default :func:`spkrec.parallel.driver_threads`), each LAPACK/BLAS call single-threaded: the
    factorisations release the GIL, and every Gaussian's numbers are those of a serial loop (any
    thread count gives the same result). Exceptions are re-raised here."""
    threads = max(1, min(int(threads or driver_threads()), num_gauss))
    bounds = np.linspace(0, num_gauss, threads + 1).astype(int)
    ranges = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    with threadpool_limits(limits=1, user_api="blas"):
        if threads == 1:
            work(ranges[0])
            return
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(work, r) for r in ranges]:
                future.result()


def _m_step(A_packed, Cacc, tril, threads=None):
    """G_c = C_c A_c^-1 for every Gaussian: one LAPACK Cholesky solve (dposv) per Gaussian, reading
    only the packed lower triangle of A_c; the Gaussians are shared among ``threads`` threads
    (:func:`per_gaussian_threads`), each call single-threaded (400x400 factorisations gain nothing from
    BLAS threads)."""
    C, D, R = Cacc.shape
    G = np.empty((C, D, R))

    def work(gaussians):
        A = np.zeros((R, R), order="F")
        for c in gaussians:
            A[tril] = A_packed[c]
            _, x, info = lapack.dposv(A, Cacc[c].T, lower=1)
            if info != 0:
                raise SpkrecError(f"T-matrix update: accumulator of Gaussian {c} is not positive definite "
                                  f"(LAPACK info {info}); too little data for tv_dim={R}? lower --tv-dim")
            G[c] = x.T
    per_gaussian_threads(work, C, threads)
    return G
