"""One recording -> speaker turns: VAD regions, uniform windows, a vector per window from a system
bundle (i-vector or RNN), a pairwise score matrix (the bundle's PLDA, or cosine), clustering, optional
GMM resegmentation, turns."""
import dataclasses
import json
import os

import numpy as np

from spkrec.diarization.cluster import absorb_small, ahc, merge_by_llr, relabel, spectral
from spkrec.diarization.frontend import timed_frames
from spkrec.diarization.segment import runs, speech_regions, uniform_windows
from spkrec.errors import SpkrecError
from spkrec.io.rttm import Turn

CONFIG_FILE = "diarization.json"


@dataclasses.dataclass
class DiarizationConfig:
    """Options of :func:`diarize` (seconds unless said otherwise).

    window, shift, min_window : uniform windows (a speech region shorter than ``window`` is one window if
    at least ``min_window``); max_windows : a longer recording gets a longer shift (AHC needs the
    (n, n) matrix). min_gap : pauses shorter than this are bridged; min_speech : shorter speech regions are
    dropped. scoring : ``"cosine"`` (default: bounded scores whose threshold carries over between models),
    ``"plda"`` (better when its threshold is tuned for the bundle, as the recipe does) or ``"auto"`` (PLDA
    when the bundle has one). clustering : ``"ahc"`` or ``"spectral"``. threshold : stop score of AHC
    (spectral: the affinity's midpoint); None: -0.1 for cosine, -5 for PLDA (the LLR scale depends on the
    model: tune it; the recipe writes the tuned one to the bundle's diarization.json).
    num_speakers : fixed number (overrides the threshold). min_cluster : clusters holding less than this
    much window time are merged into their most similar cluster (0: keep all). merge_threshold : then
    clusters are merged while the highest cluster-level PLDA LLR of a pair (one's windows against the
    other's mean, :func:`~spkrec.diarization.cluster.merge_by_llr`) is at least this (None: no merging; PLDA bundles;
    the recipe tunes it with ``threshold``). vbx : VB-HMM clustering
    (:mod:`spkrec.diarization.vbx`, PLDA bundles) started from the AHC labels, with vbx_fa, vbx_fb,
    vbx_loop. resegment : GMM resegmentation; switch_penalty (nats per change), reseg_iters.
    """
    window: float = 1.5
    shift: float = 0.25
    min_window: float = 0.5
    max_windows: int = 3000
    min_gap: float = 0.3
    min_speech: float = 0.2
    scoring: str = "cosine"
    clustering: str = "ahc"
    threshold: float = None
    num_speakers: int = None
    min_cluster: float = 2.0
    merge_threshold: float = None
    vbx: bool = False
    vbx_fa: float = 1.0
    vbx_fb: float = 10.0
    vbx_loop: float = 0.9
    resegment: bool = False
    switch_penalty: float = 30.0
    reseg_iters: int = 2

    def check(self):
        if not (self.window > 0 and 0 < self.shift <= self.window and 0 <= self.min_window <= self.window):
            raise SpkrecError(f"windows: need 0 < shift <= window and 0 <= min_window <= window (got window "
                              f"{self.window}, shift {self.shift}, min_window {self.min_window})")
        if self.scoring not in ("auto", "plda", "cosine"):
            raise SpkrecError(f"scoring {self.scoring!r}: choose plda, cosine or auto")
        if self.clustering not in ("ahc", "spectral"):
            raise SpkrecError(f"clustering {self.clustering!r}: choose ahc or spectral")
        if self.min_cluster < 0 or int(self.max_windows) < 2:
            raise SpkrecError(f"min_cluster {self.min_cluster} must be >= 0 and max_windows {self.max_windows} "
                              ">= 2")
        if not (0 < self.vbx_loop < 1 and self.vbx_fa > 0 and self.vbx_fb > 0):
            raise SpkrecError("vbx: need 0 < vbx_loop < 1, vbx_fa > 0 and vbx_fb > 0")
        if self.merge_threshold is not None and not np.isfinite(self.merge_threshold):
            raise SpkrecError(f"merge_threshold {self.merge_threshold}: give a finite PLDA LLR")
        if self.num_speakers is not None and int(self.num_speakers) < 1:
            raise SpkrecError(f"num_speakers {self.num_speakers}: give 1 or more")
        return self

    def save(self, path):
        from spkrec.io.atomic import write_text_atomic
        write_text_atomic(path, json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def for_system(cls, system_path, **overrides):
        """The bundle's ``diarization.json`` (written by the diarization recipe: the tuned threshold), if any,
        with ``overrides`` (those not None) on top."""
        values = {}
        path = os.path.join(os.fspath(system_path), CONFIG_FILE)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    values = json.load(f)
            except (OSError, ValueError) as exc:
                raise SpkrecError(f"{path}: not a readable diarization config ({exc}); re-run the recipe") from None
            known = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in values.items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).check()


def _engine(system):
    engine = system.engine
    if engine is None or not hasattr(engine, "vectors"):
        raise SpkrecError(f"{system.path}: a {system.kind} system gives no vector per window; diarize with an "
                          "i-vector or RNN system bundle")
    return engine


def window_vectors(system, X, voiced, windows):
    """(n, dim) vectors of the windows ``[(start, end)]`` (frames of ``X``; the voiced ones when there are
    at least 10)."""
    engine = _engine(system)
    blocks = []
    for s, e in windows:
        v = voiced[s:e]
        blocks.append(X[s:e][v] if v.sum() >= 10 else X[s:e])
    return np.asarray(engine.vectors(blocks), dtype=np.float64)


def recording_normalised(pipe, V):
    """The back end's transforms of a recording's window vectors, then centred on the recording's own mean
    and length-normalised again (to the norm of the pipeline's last length normalisation, else 1): a
    per-file normalisation that takes out what the windows share (channel, room, level) -> (n, dim)."""
    from spkrec.backend.transforms import LengthNorm
    T = pipe.transform(V) if pipe.steps else np.asarray(V, np.float64)
    if len(T) > 2:
        T = T - T.mean(axis=0)
    lnorms = [step for step in pipe.steps if isinstance(step, LengthNorm)]
    return LengthNorm(lnorms[-1].scale if lnorms else "unit").fit(T).transform(T)


def window_scores(system, V, scoring="auto"):
    """(n, n) symmetric score matrix of window vectors, both on :func:`recording_normalised` vectors: the
    bundle's PLDA LLRs, or their cosine similarity. -> ``(S, scoring used)``."""
    pipe = _engine(system).pipeline
    if scoring == "auto":
        scoring = "plda" if pipe.is_plda else "cosine"
    if scoring == "plda" and not pipe.is_plda:
        raise SpkrecError(f"{system.path}: the system's back end has no PLDA; use cosine scoring")
    T = recording_normalised(pipe, V)
    if scoring == "plda":
        S = pipe.scorer.score_pairs(T, T)
    else:
        from spkrec.backend.transforms import LengthNorm
        T = LengthNorm("unit").fit(T).transform(T)
        S = T @ T.T
    S = np.asarray(S, np.float64)
    return 0.5 * (S + S.T), scoring


def _vbx(system, V, labels, cfg):
    from spkrec.diarization.vbx import vbx_labels
    pipe = _engine(system).pipeline
    if not pipe.is_plda:
        raise SpkrecError(f"{system.path}: VBx needs a PLDA back end (its across-speaker covariance)")
    Z = pipe.scorer.transform(recording_normalised(pipe, V))
    return relabel(vbx_labels(Z, pipe.scorer.psi_, labels, cfg.vbx_loop, cfg.vbx_fa, cfg.vbx_fb))


def _merge(system, V, labels, threshold):
    pipe = _engine(system).pipeline
    if not pipe.is_plda:
        raise SpkrecError(f"{system.path}: merging by PLDA LLR (merge_threshold) needs a PLDA back end")
    return merge_by_llr(pipe.scorer, recording_normalised(pipe, V), labels, threshold)


def _frame_labels(n_frames, regions, windows, win_labels):
    labels = np.full(n_frames, -1, np.int64)
    if not windows:
        for s, e in regions:
            labels[s:e] = 0
        return labels
    centres = np.array([(s + e) / 2.0 for s, e in windows])
    for s, e in regions:
        t = np.arange(s, e) + 0.5
        nearest = np.argmin(np.abs(t[:, None] - centres[None, :]), axis=1) if len(windows) < 4000 else \
            np.clip(np.searchsorted(centres, t), 0, len(centres) - 1)
        labels[s:e] = win_labels[nearest]
    return labels


def _turns(labels, shift, duration):
    turns = []
    for k in np.unique(labels[labels >= 0]):
        for s, e in runs(labels == k):
            turns.append(Turn(round(s * shift, 3), round(min(e * shift, duration), 3), f"spk{k + 1:02d}"))
    return sorted(turns)


def diarize(system, audio, config=None, name=None, return_details=False, **options):
    """Who spoke when in one recording (a path or ``(samples, rate)``) -> ``[Turn(start, end, speaker)]``.

    system : a loaded i-vector or RNN :class:`spkrec.system.api.System`. config : a
    :class:`DiarizationConfig` (``options`` override its fields). A recording without speech gives ``[]``;
    one shorter than a window, one speaker. With ``return_details`` also a dict of the windows (seconds),
    their labels and the score matrix."""
    cfg = dataclasses.replace(config or DiarizationConfig(), **options).check()
    X, voiced, shift, duration = timed_frames(system, audio, name)
    f = lambda seconds: max(1, int(round(seconds / shift)))  # noqa: E731
    regions = speech_regions(voiced, f(cfg.min_gap), f(cfg.min_speech)) if len(X) else []
    win_shift = f(cfg.shift)
    speech = sum(e - s for s, e in regions)
    if speech / win_shift > cfg.max_windows:      # a long recording: fewer windows, same window length
        win_shift = min(f(cfg.window), int(np.ceil(speech / cfg.max_windows)))
    windows = uniform_windows(regions, f(cfg.window), win_shift, int(round(cfg.min_window / shift)))
    S, used = np.zeros((0, 0)), None
    if len(windows) >= 2:
        V = window_vectors(system, X, voiced, windows)
        S, used = window_scores(system, V, cfg.scoring)
        threshold = cfg.threshold if cfg.threshold is not None else (-5.0 if used == "plda" else -0.1)
        k = None if cfg.num_speakers is None else int(cfg.num_speakers)
        if cfg.clustering == "ahc":
            win_labels = ahc(S, threshold, k)
        else:
            win_labels = spectral(S, k, threshold)
        if k is None and cfg.min_cluster > 0:
            min_size = max(1, int(round(cfg.min_cluster / (win_shift * shift))))
            win_labels = absorb_small(S, win_labels, min_size)
        if cfg.merge_threshold is not None and k is None and win_labels.max() > 0:
            win_labels = _merge(system, V, win_labels, cfg.merge_threshold)
        if cfg.vbx and k is None and win_labels.max() > 0:
            win_labels = _vbx(system, V, win_labels, cfg)
    else:
        win_labels = np.zeros(len(windows), np.int64)
    labels = _frame_labels(len(X), regions, windows, win_labels)
    if cfg.resegment and len(np.unique(win_labels)) > 1:
        from spkrec.diarization.resegment import resegment
        ubm = getattr(system.engine, "ubm", None)
        labels = resegment(X, labels, regions, ubm, cfg.reseg_iters, cfg.switch_penalty)
    turns = _turns(labels, shift, duration)
    if return_details:
        return turns, {"windows": [(s * shift, e * shift) for s, e in windows], "labels": win_labels,
                       "scores": S, "scoring": used, "duration": duration}
    return turns
