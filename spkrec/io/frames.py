"""The frame-source protocol: how estimators read the frames they are fitted on.

A *frame source* is any picklable object with

- ``utt_ids``: the list of utterance ids (str) it serves, and
- ``source(utt) -> (T, D)`` array: the frames of one utterance.

:class:`spkrec.features.FeatureLoader` is one (features computed from ``feats.scp``/``vad.scp`` on the
fly); :func:`frame_source` adapts an in-memory array (cut into pieces of ``piece`` frames) or a mapping
``utt -> (T, D)``. Sources are picklable, so each worker of :mod:`spkrec.parallel` reads its own
utterances and no process holds the frames of the corpus.
"""
import numpy as np

from spkrec.errors import SpkrecError


class ArrayFrames:
    """A (T, D) array seen as utterances ``"0", "1", ...`` of at most ``piece`` frames."""

    def __init__(self, X, piece=50000):
        self.X = X
        self.piece = int(piece)
        self.utt_ids = [str(i) for i in range(max(1, -(-len(X) // self.piece)))]

    def __call__(self, utt):
        i = int(utt)
        return self.X[i * self.piece:(i + 1) * self.piece]


class MappingFrames:
    """A mapping ``utt -> (T, D)`` as a frame source (ids in the mapping's order)."""

    def __init__(self, mapping):
        self.mapping = mapping
        self.utt_ids = list(mapping.keys())

    def __call__(self, utt):
        return self.mapping[utt]


def is_frame_source(X):
    """True for a callable ``utt -> frames`` or a mapping (anything :func:`frame_source` passes on)."""
    return callable(X) or hasattr(X, "keys")


def frame_source(X, utt_ids=None, piece=50000):
    """``(source, utt_ids)`` for frames given as a frame source, a mapping or a (T, D) array.

    ``utt_ids`` (default: the source's ``utt_ids``) selects and orders the utterances; an array is cut
    into pieces of ``piece`` frames (it must then be None).
    """
    if hasattr(X, "keys") and not callable(X):
        X = MappingFrames(X)
    if callable(X):
        ids = getattr(X, "utt_ids", None) if utt_ids is None else utt_ids
        if ids is None:
            raise SpkrecError(f"{type(X).__name__}: a frame source needs utt_ids (an attribute, or pass them)")
        return X, list(ids)
    if utt_ids is not None:
        raise SpkrecError("utt_ids go with a frame source (callable or mapping), not with an array of frames")
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0:
        raise SpkrecError(f"expected a non-empty (frames, dim) array of frames, got shape {X.shape}")
    source = ArrayFrames(X, piece)
    return source, source.utt_ids
