"""2-D maps of utterance vectors (i-vectors, embeddings) coloured by speaker: PCA and t-SNE."""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.eval.plots_base import maybe_save, new_figure

TSNE_MAX = 1000          # t-SNE only up to this many vectors (about 1 s per 100 on one core); PCA always
MAP_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def vector_map(vectors, method="pca", random_state=0):
    """``(n, 2)`` coordinates of ``vectors (n, d)``: ``pca`` = projections on the two leading principal
    axes of the length-normalised, centred vectors; ``tsne`` = scikit-learn's t-SNE of the same
    (PCA initialisation, perplexity ``min(30, (n - 1) / 3)``)."""
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 2:
        raise SpkrecError(f"a 2-D map needs at least 3 vectors of dimension >= 2, got shape {X.shape}")
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    X = X - X.mean(axis=0)
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, svd_solver="full").fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits
        perplexity = float(min(30.0, (X.shape[0] - 1) / 3.0))
        with threadpool_limits(limits=1):    # OpenMP threads on a busy machine made it 20x slower
            return TSNE(n_components=2, perplexity=perplexity, init="pca",
                        random_state=random_state).fit_transform(X)
    raise SpkrecError(f"unknown map method {method!r}; use pca or tsne")


def speaker_styles(speakers):
    """Colour and marker per distinct speaker (sorted): 20 colours (tab20) x 7 markers = 140 distinct."""
    from matplotlib import colormaps
    cmap = colormaps["tab20"]
    names = sorted(set(speakers))
    return {s: (cmap(i % 20), MAP_MARKERS[(i // 20) % len(MAP_MARKERS)]) for i, s in enumerate(names)}


def plot_vector_map(vectors, speakers, out_png=None, methods=("pca", "tsne"), title=None, random_state=0,
                    tsne_max=TSNE_MAX):
    """Scatter plots of ``vectors (n, d)`` coloured by ``speakers (n,)``, one panel per method in ``methods``
    (t-SNE is skipped above ``tsne_max`` vectors). See :func:`plot_vector_maps`."""
    return plot_vector_maps([(None, vectors, speakers)], out_png, methods, title, random_state, tsne_max)


def plot_vector_maps(tables, out_png=None, methods=("pca", "tsne"), title=None, random_state=0, tsne_max=TSNE_MAX):
    """One row per ``(label, vectors (n, d), speakers (n,))`` of ``tables``, one panel per method (t-SNE skipped
    above ``tsne_max`` vectors). Each speaker is one point collection (label = speaker id, colour and marker
    from :func:`speaker_styles`); a legend when at most 20 speakers. Returns the ``Figure``;
    ``fig.maps[(row, method)]`` holds the ``(n, 2)`` coordinates."""
    rows = []
    for label, vectors, speakers in tables:
        vectors = np.asarray(vectors)
        speakers = [str(s) for s in speakers]
        if len(speakers) != len(vectors):
            raise SpkrecError(f"{len(vectors)} vectors but {len(speakers)} speaker labels")
        rows.append((label, vectors, speakers,
                     [m for m in methods if m != "tsne" or len(vectors) <= tsne_max] or ["pca"]))
    ncols = max(len(r[3]) for r in rows)
    styles = speaker_styles([s for r in rows for s in r[2]])
    legend = len(styles) <= 20
    fig = new_figure((5.2 * ncols + (1.8 if legend else 0), 5.0 * len(rows) + 0.4))
    fig.maps = {}
    for r, (label, vectors, speakers, meths) in enumerate(rows):
        spk = np.array(speakers)
        for k, method in enumerate(meths):
            xy = vector_map(vectors, method, random_state)
            fig.maps[(r, method)] = xy
            ax = fig.add_subplot(len(rows), ncols, r * ncols + k + 1)
            for s, (colour, marker) in styles.items():
                sel = spk == s
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=16, color=colour, marker=marker, label=s, linewidths=0)
            name = {"pca": "PCA", "tsne": "t-SNE"}[method]
            ax.set_title(f"{label}: {name}" if label else name, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if legend and k == len(meths) - 1 and r == 0:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="speaker",
                          title_fontsize=8)
    n = sum(len(r[1]) for r in rows)
    fig.suptitle(title or f"{n} vectors of {len(styles)} speakers")
    return maybe_save(fig, out_png)
