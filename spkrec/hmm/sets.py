"""Model files: the speaker-independent HMMs of all phrases, and the MAP-adapted speaker x phrase models.

``PhraseHMMSet`` (one ``.npz``, kind ``PhraseHMMSet``): P phrases with the same S states and M Gaussians
per state; arrays ``phrases (P,)``, ``startprob (P, S)``, ``transmat (P, S, S)``, ``weights (P, S, M)``,
``means``/``variances (P, S, M, D)``, ``var_floor (P, D)``; meta: hyper-parameters, feature options.

``SpeakerHMMs`` (kind ``SpeakerHMMs``): n models, each a speaker saying a phrase, that share the SI
model's transitions: ``ids (n,)`` (model ids, ``<speaker>-<phrase>``),
``speakers (n,)``, ``phrases (n,)``, ``means (n, S, M, D)``, ``frames (n,)`` (enrolment frames), and with
``adapt`` ``mw``/``mwv`` also ``weights (n, S, M)`` / ``variances (n, S, M, D)`` (else the SI model's).
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.hmm.model import PhraseHMM
from spkrec.io.atomic import load_npz, save_npz
from spkrec.io.prepare import td_model_id

HYPER = ("n_states", "n_components", "n_iter", "n_iter_per_split", "var_floor", "self_loop",
         "end_in_last", "random_state")

OLD_NAMES = {"num_states": "n_states", "num_mix": "n_components", "num_iters": "n_iter",
             "num_iters_per_split": "n_iter_per_split"}   # files written before the scikit-learn names


model_id = td_model_id
"""The id of the model of ``speaker`` saying ``phrase``: ``<speaker>-<phrase>`` (spaces -> ``_``)."""


class PhraseHMMSet:
    """``{phrase: PhraseHMM}`` (insertion order kept) with a shared topology, saved as one file."""

    def __init__(self, models, meta=None):
        self.models = dict(models)
        self.meta = dict(meta or {})
        shapes = {m.means_.shape for m in self.models.values()}
        if len(shapes) > 1:
            raise SpkrecError(f"PhraseHMMSet: phrase models of different shapes {sorted(shapes)}; "
                              "train all phrases with the same --num-states and --num-mix")

    @property
    def phrases(self):
        return list(self.models)

    def __getitem__(self, phrase):
        return self.models[phrase]

    def __contains__(self, phrase):
        return phrase in self.models

    @property
    def dim_(self):
        return next(iter(self.models.values())).dim_

    def save(self, path):
        ms = list(self.models.values())
        arrays = {"phrases": np.array(self.phrases, dtype=str),
                  "startprob": np.stack([m.startprob_ for m in ms]), "transmat": np.stack([m.transmat_ for m in ms]),
                  "weights": np.stack([m.weights_ for m in ms]), "means": np.stack([m.means_ for m in ms]),
                  "variances": np.stack([m.variances_ for m in ms]), "var_floor": np.stack([m.var_floor_ for m in ms])}
        hyper = {k: v for k, v in ms[0].get_params().items() if k in HYPER}
        save_npz(path, "PhraseHMMSet", arrays, {"hyper": hyper, **self.meta})

    @classmethod
    def load(cls, path):
        a, meta = load_npz(path, "PhraseHMMSet")
        hyper = {OLD_NAMES.get(k, k): v for k, v in meta.pop("hyper", {}).items()}
        models = {}
        for i, phrase in enumerate(a["phrases"].tolist()):
            m = PhraseHMM.from_params(a["startprob"][i], a["transmat"][i], a["weights"][i], a["means"][i],
                                      a["variances"][i], **{k: v for k, v in hyper.items()
                                                             if k not in ("n_states", "n_components")})
            m.var_floor_ = a["var_floor"][i]
            models[phrase] = m
        return cls(models, meta)


class SpeakerHMMs:
    """MAP-adapted models (means, and weights/variances when adapted) of speakers saying phrases; see the
    module docstring."""

    def __init__(self, speakers, phrases, means, frames=None, relevance_factor=16.0, weights=None, variances=None):
        self.speakers = [str(s) for s in speakers]
        self.phrases = [str(p) for p in phrases]
        self.ids = [model_id(s, p) for s, p in zip(self.speakers, self.phrases)]
        self.means = np.asarray(means, dtype=np.float64)
        self.frames = np.zeros(len(self.ids), dtype=np.int64) if frames is None else np.asarray(frames, np.int64)
        self.relevance_factor = float(relevance_factor)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.variances = None if variances is None else np.asarray(variances, dtype=np.float64)
        self.adapt = "m" + ("w" if self.weights is not None else "") + ("v" if self.variances is not None else "")
        self.index = {m: i for i, m in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise SpkrecError("SpeakerHMMs: a speaker/phrase pair appears twice")

    def __len__(self):
        return len(self.ids)

    def model(self, mid, si):
        """The :class:`PhraseHMM` of model id ``mid`` (``si``: the :class:`PhraseHMMSet` it was adapted from)."""
        return self.model_at(self.index[mid], si)

    def model_at(self, i, si):
        """The :class:`PhraseHMM` of the ``i``-th model."""
        return si[self.phrases[i]].with_params(self.means[i], None if self.weights is None else self.weights[i],
                                               None if self.variances is None else self.variances[i])

    def save(self, path):
        arrays = {"speakers": np.array(self.speakers, dtype=str), "phrases": np.array(self.phrases, dtype=str),
                  "means": self.means, "frames": self.frames}
        for name in ("weights", "variances"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        save_npz(path, "SpeakerHMMs", arrays, {"relevance_factor": self.relevance_factor, "adapt": self.adapt})

    @classmethod
    def load(cls, path):
        a, meta = load_npz(path, "SpeakerHMMs")
        return cls(a["speakers"].tolist(), a["phrases"].tolist(), a["means"], a["frames"],
                   meta.get("relevance_factor", 16.0), a.get("weights"), a.get("variances"))
