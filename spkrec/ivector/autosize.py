"""Choose the i-vector front end's size (UBM Gaussians x T dimension) on held-out background speakers.

For each of ``n_folds`` folds, a disjoint set of background speakers is held out; on the other speakers a
diagonal UBM (per grid size), T (per dimension) and the back-end chain are trained, and the held-out
speakers' utterances are scored against each other (every pair: target when same speaker). The grid point
with the best held-out criterion, averaged over the folds, wins. Few EM iterations keep it cheap.
"""
import logging

import numpy as np

from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")
CRITERIA = ("min_cllr", "eer")


def speaker_folds(speakers, n_folds, random_state=0):
    """``n_folds`` disjoint lists of speakers covering ``speakers`` (a seeded shuffle dealt round-robin)."""
    speakers = sorted(set(speakers))
    if n_folds < 2:
        raise SpkrecError(f"choose-ivector-size: --num-folds {n_folds}: need at least 2 folds")
    if len(speakers) < 2 * n_folds:
        raise SpkrecError(f"choose-ivector-size: {len(speakers)} speakers for {n_folds} folds; each fold needs "
                          "at least 2 held-out speakers: give more speakers or fewer folds")
    order = np.random.default_rng(random_state).permutation(len(speakers))
    return [sorted(speakers[i] for i in order[k::n_folds]) for k in range(n_folds)]


def _heldout_scores(ivec, spk, backend_spec, train, held):
    from spkrec.backend import make_pipeline
    backend = make_pipeline(backend_spec).fit(ivec[train], spk[train])
    scores = backend.score_pairs(ivec[held], ivec[held])
    i, j = np.triu_indices(len(held), 1)
    return scores[i, j], spk[held][i] == spk[held][j]


def choose_ivector_size(loader, utt2spk, num_gauss=(16, 32, 64), tv_dims=(50, 100), n_folds=3,
                        backend="center,lnorm,plda", criterion="min_cllr", ubm_iters=2, tv_iters=3,
                        random_state=0, parallel=None):
    """Pick the UBM size and T dimension with the best held-out score, over a small grid.

    loader : frame source or mapping ``utt -> (T, D)`` frames. utt2spk : ``{utt: speaker}`` (the utterances
    used). num_gauss, tv_dims : the grid. n_folds : folds of held-out speakers (disjoint, seeded).
    backend : back-end chain (``make_pipeline`` string) trained on the training speakers' i-vectors.
    criterion : ``"min_cllr"`` or ``"eer"`` (lower is better; both are reported).
    Returns ``(best, rows)``: ``best = {"num_gauss", "tv_dim", criterion}`` and one row per grid point
    ``{"num_gauss", "tv_dim", "min_cllr", "eer", "min_cllr_folds", "eer_folds"}`` (EER in %, fold means).
    """
    from spkrec.eval import eer, min_cllr
    from spkrec.gmm import DiagGMM
    from spkrec.ivector import IvectorExtractor, accumulate_stats
    from spkrec.parallel import SERIAL
    num_gauss, tv_dims = [int(c) for c in num_gauss], [int(r) for r in tv_dims]
    if not num_gauss or not tv_dims:
        raise SpkrecError("choose-ivector-size: the grid is empty; give at least one UBM size and one T dimension")
    if criterion not in CRITERIA:
        raise SpkrecError(f"choose-ivector-size: criterion {criterion!r}; use min_cllr or eer")
    config = parallel if parallel is not None else SERIAL
    utts = sorted(utt2spk)
    spk = np.array([utt2spk[u] for u in utts])
    folds = speaker_folds(spk, n_folds, random_state)
    results = {(c, r): {"min_cllr": [], "eer": []} for c in num_gauss for r in tv_dims}
    for k, held_spk in enumerate(folds):
        held = np.flatnonzero(np.isin(spk, held_spk))
        train = np.flatnonzero(~np.isin(spk, held_spk))
        for c in num_gauss:
            ubm = DiagGMM(n_components=c, n_iter=ubm_iters, n_iter_per_split=ubm_iters, random_state=random_state,
                          parallel=config).fit(loader, utt_ids=[utts[i] for i in train])
            N, F = accumulate_stats(ubm, loader, utts, config)
            for r in tv_dims:
                tv = IvectorExtractor(n_components=r, n_iter=tv_iters, random_state=random_state,
                                      parallel=config).fit(N[train], F[train], ubm)
                scores, labels = _heldout_scores(tv.transform(N, F), spk, backend, train, held)
                results[c, r]["min_cllr"].append(min_cllr(scores, labels))
                results[c, r]["eer"].append(100 * eer(scores, labels)[0])
                log.info("choose-ivector-size: fold %d, %d Gaussians, T dim %d: held-out minCllr %.4f, EER %.2f %%",
                         k, c, r, results[c, r]["min_cllr"][-1], results[c, r]["eer"][-1])
    rows = [{"num_gauss": c, "tv_dim": r, "min_cllr": float(np.mean(v["min_cllr"])), "eer": float(np.mean(v["eer"])),
             "min_cllr_folds": v["min_cllr"], "eer_folds": v["eer"]} for (c, r), v in results.items()]
    top = min(rows, key=lambda row: (row[criterion], row["num_gauss"], row["tv_dim"]))  # ties: the smaller model
    return {"num_gauss": top["num_gauss"], "tv_dim": top["tv_dim"], criterion: top[criterion]}, rows
