"""k-nearest-neighbour identification over embeddings (no PyTorch): the enrolled utterances are the index.

Neighbours by cosine similarity (scikit-learn ``NearestNeighbors(metric="cosine")``, brute force; or
faiss ``IndexFlatIP`` on unit vectors when installed and asked for). Each test utterance's ``k`` nearest
enrolled utterances vote for their speakers: one vote each (``"majority"``), or ``1 / (1 - cos + 1e-6)``
(``"distance"``, scikit-learn's ``weights="distance"`` on the cosine distance).
"""
import numpy as np

from spkrec.errors import SpkrecError

TIE = 1e-3                   # weight of the best cosine similarity in a speaker's score (breaks vote ties;
                             # score files keep 6 decimals)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not len(x):
        raise SpkrecError(f"embeddings must be a non-empty (n, dim) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise SpkrecError("embeddings contain NaN or infinite values; re-extract them")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def have_faiss():
    try:
        import faiss  # noqa: F401
        return True
    except ImportError:
        return False


def nearest(enroll, test, k, index="sklearn"):
    """``(similarities (n_test, k), indices (n_test, k))`` of the ``k`` most cosine-similar enrolled rows.

    ``index``: ``"sklearn"``, ``"faiss"`` (an error when faiss is not importable) or ``"auto"`` (faiss
    when importable). Neighbours are sorted by decreasing similarity.
    """
    E, X = _unit(enroll), _unit(test)
    if E.shape[1] != X.shape[1]:
        raise SpkrecError(f"enrolment embeddings have {E.shape[1]} dimensions but test embeddings {X.shape[1]}; "
                          "extract both with the same model")
    k = int(min(k, len(E)))
    if index == "auto":
        index = "faiss" if have_faiss() else "sklearn"
    if index == "faiss":
        if not have_faiss():
            raise SpkrecError("--index faiss but faiss is not installed (pip install faiss-cpu); use --index sklearn")
        import faiss
        ix = faiss.IndexFlatIP(E.shape[1])
        ix.add(E.astype(np.float32))
        sim, idx = ix.search(X.astype(np.float32), k)
        return sim.astype(np.float64), idx.astype(np.int64)
    if index != "sklearn":
        raise SpkrecError(f"unknown index {index!r}; use sklearn, faiss or auto")
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(E)
    dist, idx = nn.kneighbors(X)
    return 1.0 - dist, idx


def knn_identify(enroll, enroll_labels, test, k=5, weights="majority", index="sklearn", chunk=1024):
    """Speaker scores ``(n_test, n_speakers)`` and the speakers (sorted) from a ``k``-NN vote.

    A speaker's score is its vote (count of its utterances among the ``k`` neighbours, or their summed
    ``1 / (1 - cos + 1e-6)`` weights) plus ``1e-3`` times its best cosine similarity over all its enrolled
    utterances (a brute-force pass in chunks of ``chunk`` test rows), so votes rank first and the rest of
    the speakers are ranked by their nearest utterance (top-k accuracy beyond the voters). The predicted
    speaker is the row's argmax; with ``k=1`` that is the speaker of the enrolled utterance of highest cosine.
    """
    if weights not in ("majority", "distance"):
        raise SpkrecError(f"unknown weights {weights!r}; use majority or distance")
    labels = np.asarray([str(s) for s in enroll_labels])
    if len(labels) != len(enroll):
        raise SpkrecError(f"{len(enroll)} enrolment embeddings but {len(labels)} labels")
    speakers = sorted(set(labels.tolist()))
    col = {s: j for j, s in enumerate(speakers)}
    sim, idx = nearest(enroll, test, k, index)
    n = sim.shape[0]
    votes = np.zeros((n, len(speakers)))
    w = np.ones_like(sim) if weights == "majority" else 1.0 / (1.0 - sim + 1e-6)
    spk_of = np.array([col[s] for s in labels], dtype=np.int64)
    rows = np.repeat(np.arange(n), sim.shape[1])
    np.add.at(votes, (rows, spk_of[idx].ravel()), w.ravel())
    E, X = _unit(enroll), _unit(test)
    best = np.full((n, len(speakers)), -np.inf)
    for b in range(0, n, int(chunk)):
        S = X[b:b + int(chunk)] @ E.T
        for j in range(len(speakers)):
            best[b:b + int(chunk), j] = S[:, spk_of == j].max(axis=1)
    return votes + TIE * best, speakers
