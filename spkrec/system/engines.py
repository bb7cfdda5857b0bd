"""What each kind of system does with frames: enrol a speaker, score one recording against speakers.

An engine's ``enroll(frames_list)`` returns the speaker's arrays, each with a leading axis of "rows"
(GMM-UBM: one row, the MAP means; i-vector: one row per enrolment file, its i-vector), and
``score(arrays, owner, X)`` scores the frames X of one test recording against every speaker whose rows
are ``arrays`` (stacked over speakers; ``owner[k]`` is the speaker index of row k) -> (S,) raw scores.
The maths is the library's: :func:`spkrec.gmm.enroll_speakers` / :func:`spkrec.gmm.score_trials` and
:class:`spkrec.ivector.StatsComputer` / :class:`spkrec.ivector.IvectorExtractor` /
:class:`spkrec.backend.BackendPipeline`.
"""
import contextlib
import logging
import os

import numpy as np

from spkrec.errors import SpkrecError

KINDS = ("gmm_ubm", "ivector")
_log = logging.getLogger("spkrec")


@contextlib.contextmanager
def _quiet():
    """Silence the library's per-call progress lines ("score: 1/1 chunks") unless debugging."""
    level = _log.level
    if _log.getEffectiveLevel() > logging.DEBUG:
        _log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        _log.setLevel(level)


class GmmUbmEngine:
    """MAP-adapted speaker GMMs scored by the top-C GMM-UBM LLR (Reynolds et al. 2000)."""

    kind = "gmm_ubm"

    def __init__(self, ubm, relevance_factor=16.0, adapt="m", top_c=5):
        self.ubm = ubm
        self.relevance_factor = float(relevance_factor)
        self.adapt = adapt
        self.top_c = None if top_c is None else int(top_c)

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.gmm import DiagGMM
        s = cfg["scoring"]
        return cls(DiagGMM.load(os.path.join(path, cfg["models"]["ubm"])), s["relevance_factor"], s["adapt"],
                   s["top_c"])

    @property
    def dim(self):
        return self.ubm.means_.shape[1]

    def enroll(self, frames):
        from spkrec.gmm import enroll_speakers
        keys = [str(i) for i in range(len(frames))]
        with _quiet():
            models = enroll_speakers(self.ubm, dict(zip(keys, frames)).__getitem__, {"spk": keys},
                                     self.relevance_factor, self.adapt)
        out = {"means": models.means}
        if models.weights is not None:
            out["weights"] = models.weights
        if models.variances is not None:
            out["variances"] = models.variances
        return out

    def score(self, arrays, owner, X):
        from spkrec.gmm import SpeakerGMMs, score_trials
        ids = [str(i) for i in range(len(owner))]
        models = SpeakerGMMs(ids, arrays["means"], arrays.get("weights"), arrays.get("variances"),
                             self.relevance_factor, self.adapt)
        with _quiet():
            return score_trials(self.ubm, models, {"test": X}.__getitem__, [(i, "test") for i in ids], self.top_c)


class IvectorEngine:
    """i-vectors of the enrolment files, scored by a back end (cosine, or PLDA with all of them)."""

    kind = "ivector"

    def __init__(self, extractor, ubm, pipeline, stats_options):
        from spkrec.ivector import StatsComputer
        self.extractor = extractor
        self.ubm = ubm
        self.pipeline = pipeline
        self.stats = StatsComputer(ubm, **stats_options)

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.backend.cosine import CosineScorer
        from spkrec.backend.pipeline import BackendPipeline
        from spkrec.ivector import IvectorExtractor
        models, s = cfg["models"], cfg["scoring"]
        extractor = IvectorExtractor.load(os.path.join(path, models["extractor"]))
        ubm = load_ubm(os.path.join(path, models["ubm"]))
        steps = []
        if models.get("backend"):
            pipe = BackendPipeline.load(os.path.join(path, models["backend"]))
            if s["backend"] == "plda":
                if not pipe.is_plda:
                    raise SpkrecError(f"{path}: back end {models['backend']} has no PLDA step; re-export the "
                                      "system with a back end trained with --steps ...,plda")
                return cls(extractor, ubm, pipe, s["stats"])
            steps = pipe.steps
        return cls(extractor, ubm, BackendPipeline(steps, CosineScorer()), s["stats"])

    @property
    def dim(self):
        return self.stats.dim

    def ivectors(self, frames):
        N, F = zip(*(self.stats(np.asarray(x)) for x in frames))
        return self.extractor.transform(np.stack(N), np.stack(F), dtype=np.float64)  # one file: exact is cheap

    def enroll(self, frames):
        return {"vectors": self.ivectors(frames)}

    def score(self, arrays, owner, X):
        test = self.ivectors([X])
        return self.pipeline.score(arrays["vectors"], test, enroll_groups=owner)[:, 0]


def load_ubm(path):
    """A FullGMM or DiagGMM from a spkrec model file (the kind in its header decides)."""
    import json
    try:
        with np.load(path, allow_pickle=False) as z:
            kind = json.loads(z["__header__"].tobytes().decode("utf-8"))["kind"]
    except Exception as exc:
        raise SpkrecError(f"{path}: not a readable spkrec model file ({exc}); re-export the system") from None
    if kind == "FullGMM":
        from spkrec.ivector import FullGMM
        return FullGMM.load(path)
    if kind == "DiagGMM":
        from spkrec.gmm import DiagGMM
        return DiagGMM.load(path)
    raise SpkrecError(f"{path}: holds a {kind} model, not a UBM")


ENGINES = {"gmm_ubm": GmmUbmEngine, "ivector": IvectorEngine}
