"""What each kind of system does with frames: enrol a speaker, score recordings against speakers.

An engine's ``enroll(frames_list)`` returns the speaker's arrays, each with a leading axis of "rows"
(GMM-UBM and GSV-SVM: one row, the MAP means or the SVM; i-vector and RNN: one row per enrolment file,
its vector). ``represent(X)`` turns the frames X of one test recording into what scoring needs (the
frames, a vector, a supervector) and ``score_many(arrays, owners, reps)`` scores K such representations
against every speaker whose rows are ``arrays`` (stacked over speakers; ``owners[""][k]`` is the speaker
of row k) -> (S, K) raw scores. ``pack(reps)`` / ``unpack(arrays)`` store representations in arrays (the
score-normalisation cohort of a bundle). The maths is the library's: :func:`spkrec.gmm.enroll_speakers` /
:func:`spkrec.gmm.score_trials`, :func:`spkrec.gmm.extract_supervectors` / :class:`spkrec.backend.GSVSVM`,
:class:`spkrec.ivector.StatsComputer` / :class:`spkrec.ivector.IvectorExtractor` /
:class:`spkrec.backend.BackendPipeline`.
"""
import contextlib
import logging
import os

import numpy as np

from spkrec.errors import SpkrecError

KINDS = ("gmm_ubm", "gsv_svm", "ivector", "rnn", "cnn", "hmm")
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

    def represent(self, X):
        return np.asarray(X)

    def score_many(self, arrays, owners, reps):
        from spkrec.gmm import SpeakerGMMs, score_trials
        ids = [str(i) for i in range(len(owners[""]))]
        models = SpeakerGMMs(ids, arrays["means"], arrays.get("weights"), arrays.get("variances"),
                             self.relevance_factor, self.adapt)
        tests = [str(k) for k in range(len(reps))]
        with _quiet():
            s = score_trials(self.ubm, models, dict(zip(tests, reps)).__getitem__,
                             [(i, t) for t in tests for i in ids], self.top_c)
        return s.reshape(len(tests), len(ids)).T

    @staticmethod
    def pack(reps):
        return {"frames": np.concatenate(reps).astype(np.float32),
                "lengths": np.array([len(r) for r in reps], dtype=np.int64)}

    @staticmethod
    def unpack(arrays):
        return np.split(arrays["frames"], np.cumsum(arrays["lengths"])[:-1])


class GsvSvmEngine:
    """GMM-supervector SVMs (Campbell et al. 2006): each speaker's linear SVM, trained at enrolment on its
    files' MAP supervectors against the bundle's background supervectors."""

    kind = "gsv_svm"

    def __init__(self, ubm, background, relevance_factor=16.0, C=1.0, class_weight="balanced"):
        self.ubm = ubm
        self.background = np.asarray(background)
        self.relevance_factor = float(relevance_factor)
        self.C = float(C)
        self.class_weight = class_weight

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.gmm import DiagGMM
        from spkrec.io.atomic import load_npz
        s = cfg["scoring"]
        arrays, _ = load_npz(os.path.join(path, cfg["models"]["background"]), "Supervectors")
        return cls(DiagGMM.load(os.path.join(path, cfg["models"]["ubm"])), arrays["supervectors"],
                   s["relevance_factor"], s["C"], s["class_weight"])

    @property
    def dim(self):
        return self.ubm.means_.shape[1]

    def supervectors(self, frames):
        from spkrec.gmm import extract_supervectors
        keys = [str(i) for i in range(len(frames))]
        with _quiet():
            return extract_supervectors(self.ubm, dict(zip(keys, frames)).__getitem__, keys, self.relevance_factor)

    def enroll(self, frames):
        from spkrec.backend.svm import GSVSVM
        X = self.supervectors(frames)
        svm = GSVSVM(C=self.C, class_weight=self.class_weight).fit(X, np.zeros(len(X), dtype=int), self.background)
        return {"coef": svm.coef_, "intercept": svm.intercept_}

    def represent(self, X):
        return self.supervectors([X])[0]

    def score_many(self, arrays, owners, reps):
        return arrays["coef"] @ np.stack(reps).astype(np.float64).T + arrays["intercept"][:, None]

    @staticmethod
    def pack(reps):
        return {"vectors": np.stack(reps)}

    @staticmethod
    def unpack(arrays):
        return list(arrays["vectors"])


class HmmEngine:
    """Text-dependent verification with phrase HMMs (:mod:`spkrec.hmm`): a speaker enrols one pass-phrase
    (MAP-adapted copy of that phrase's speaker-independent HMM); a test is scored by the HMM LLR of
    :func:`spkrec.hmm.score_trials` (``background`` ``all``: against the best SI phrase model, so the wrong
    phrase is rejected too). The speaker's arrays hold the phrase's index in the bundle's phrase list."""

    kind = "hmm"
    text_dependent = True

    def __init__(self, si, relevance_factor=2.0, adapt="m", method="forward", background="all"):
        self.si = si
        self.relevance_factor = float(relevance_factor)
        self.adapt = adapt
        self.method = method
        self.background = background

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.hmm import PhraseHMMSet
        s = cfg["scoring"]
        return cls(PhraseHMMSet.load(os.path.join(path, cfg["models"]["hmms"])), s["relevance_factor"], s["adapt"],
                   s["method"], s["background"])

    @property
    def dim(self):
        return self.si.dim_

    def phrase(self, phrase=None):
        """The phrase to enrol: ``phrase``, or the bundle's only one; a one-line error otherwise."""
        phrases = self.si.phrases
        if phrase is None:
            if len(phrases) == 1:
                return phrases[0]
            raise SpkrecError(f"this text-dependent system has {len(phrases)} pass-phrases ({', '.join(phrases)}); "
                              "say which one the recordings say with --phrase")
        if phrase not in self.si:
            raise SpkrecError(f"phrase {phrase!r} has no HMM in this system (phrases: {', '.join(phrases)}); "
                              "give one of them with --phrase")
        return phrase

    def enroll(self, frames, phrase=None):
        from spkrec.hmm import enroll_speaker_hmms
        phrase = self.phrase(phrase)
        keys = [str(i) for i in range(len(frames))]
        with _quiet():
            models = enroll_speaker_hmms(self.si, dict(zip(keys, frames)).__getitem__, {("speaker", phrase): keys},
                                         self.relevance_factor, adapt=self.adapt)
        adapted = {"weights": models.weights, "variances": models.variances}
        return {"means": models.means, "phrase": np.array([self.si.phrases.index(phrase)], dtype=np.int64),
                **{k: v for k, v in adapted.items() if v is not None}}

    def represent(self, X):
        return np.asarray(X)

    def score_many(self, arrays, owners, reps):
        from spkrec.hmm import SpeakerHMMs, score_trials
        ids = [str(i) for i in range(len(owners[""]))]
        models = SpeakerHMMs(ids, [self.si.phrases[k] for k in arrays["phrase"]], arrays["means"], None,
                             self.relevance_factor, arrays.get("weights"), arrays.get("variances"))
        tests = [str(k) for k in range(len(reps))]
        with _quiet():
            s = score_trials(self.si, models, dict(zip(tests, reps)).__getitem__,
                             [(m, t) for t in tests for m in models.ids], self.method, self.background)
        return s.reshape(len(tests), len(ids)).T

    pack = staticmethod(GmmUbmEngine.pack)
    unpack = staticmethod(GmmUbmEngine.unpack)


def _vector_pipeline(path, cfg):
    """The back end of a vector system: its PLDA pipeline, or cosine after its (optional) transforms."""
    from spkrec.backend.cosine import CosineScorer
    from spkrec.backend.pipeline import BackendPipeline
    name = cfg["models"].get("backend")
    if not name:
        return BackendPipeline([], CosineScorer())
    pipe = BackendPipeline.load(os.path.join(path, name))
    if cfg["scoring"]["backend"] == "plda":
        if not pipe.is_plda:
            raise SpkrecError(f"{path}: back end {name} has no PLDA step; re-export the system with a back end "
                              "trained with --steps ...,plda")
        return pipe
    return BackendPipeline(pipe.steps, CosineScorer())


class _VectorEngine:
    """One vector per enrolment file (``vectors(frames_list) -> (n, dim)``), scored by a back end (cosine,
    or PLDA using all of a speaker's vectors)."""

    def enroll(self, frames):
        return {"vectors": self.vectors(frames)}

    def represent(self, X):
        return self.vectors([X])[0]

    def score_many(self, arrays, owners, reps):
        return self.pipeline.score_pairs(arrays["vectors"], np.stack(reps), enroll_groups=owners[""])

    @staticmethod
    def pack(reps):
        return {"vectors": np.stack(reps)}

    @staticmethod
    def unpack(arrays):
        return list(arrays["vectors"])


class IvectorEngine(_VectorEngine):
    """i-vectors (:class:`spkrec.ivector.IvectorExtractor`, float64 for single files)."""

    kind = "ivector"

    def __init__(self, extractor, ubm, pipeline, stats_options):
        from spkrec.ivector import StatsComputer
        self.extractor = extractor
        self.ubm = ubm
        self.pipeline = pipeline
        self.stats = StatsComputer(ubm, **stats_options)

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.ivector import IvectorExtractor
        models = cfg["models"]
        extractor = IvectorExtractor.load(os.path.join(path, models["extractor"]))
        return cls(extractor, load_ubm(os.path.join(path, models["ubm"])), _vector_pipeline(path, cfg),
                   cfg["scoring"]["stats"])

    @property
    def dim(self):
        return self.stats.dim

    def vectors(self, frames):
        N, F = zip(*(self.stats(np.asarray(x)) for x in frames))
        return self.extractor.transform(np.stack(N), np.stack(F), dtype=np.float64)  # one file: exact is cheap

    ivectors = vectors


class RnnEngine(_VectorEngine):
    """Neural speaker embeddings: RNN (:class:`spkrec.embeddings.train.RNNEmbedder`) or CNN
    (:class:`spkrec.embeddings.cnn.CNNEmbedder`) encoders; needs PyTorch."""

    kind = "rnn"

    def __init__(self, model, pipeline):
        self.model = model
        self.pipeline = pipeline

    @classmethod
    def from_bundle(cls, path, cfg):
        from spkrec.embeddings._torch import require_torch
        require_torch()
        from spkrec.embeddings.cnn import load_embedder
        return cls(load_embedder(os.path.join(path, cfg["models"]["encoder"])), _vector_pipeline(path, cfg))

    @property
    def dim(self):
        return int(self.model.encoder_.input_dim)

    def vectors(self, frames):
        from spkrec.embeddings.extract import embed_with_loader
        return embed_with_loader(self.model, dict(enumerate(frames)).__getitem__, range(len(frames)))


def load_ubm(path):
    """A FullGMM or DiagGMM from a spkrec model file (the kind in its header decides)."""
    from spkrec.io.atomic import read_npz_header
    kind = read_npz_header(path)["kind"]
    if kind == "FullGMM":
        from spkrec.ivector import FullGMM
        return FullGMM.load(path)
    if kind == "DiagGMM":
        from spkrec.gmm import DiagGMM
        return DiagGMM.load(path)
    raise SpkrecError(f"{path}: holds a {kind} model, not a UBM")


ENGINES = {"gmm_ubm": GmmUbmEngine, "gsv_svm": GsvSvmEngine, "ivector": IvectorEngine, "rnn": RnnEngine,
           "cnn": RnnEngine, "hmm": HmmEngine}
