"""Feature pipelines over data dirs: ``compute_features`` / ``compute_vad`` (audio -> ark/scp) and
:class:`FeatureLoader` (ark/scp -> model-ready frames: deltas, then CMVN, then VAD frame selection).

Chunk files: utterances (C-sorted) are cut into fixed chunks of ``utts_per_chunk`` independent of
``nj``, so the arks are identical for any number of jobs. Chunk ``n`` (1-based) is written to
``FEATDIR/raw_<type>_<dataname>.<n>.ark/.scp`` (ark first, then scp, each atomically); a chunk whose
scp exists, lists exactly its utterances and points into a complete ark is not recomputed, so a killed
run resumes. The feature options are stored next to the chunks; different options recompute all.
"""
import json
import logging
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic, write_text_atomic
from spkrec.io.datadir import c_sorted
from spkrec.io.kaldi_io import load_matrix, matrix_shape, read_scp, write_matrices, write_vectors
from spkrec.parallel import SERIAL, chunk, map_items

log = logging.getLogger("spkrec")

CMVN_TYPES = ("sliding", "utterance", "none", "warp")


class FeatureLoader:
    """Picklable callable ``loader(utt) -> (num_frames, dim)`` float32 model input.

    Steps: read the raw matrix from ``feats_scp``; append deltas (``deltas_order``, window 2, Kaldi
    ``add-deltas``); normalise (``cmvn``: ``"sliding"`` = Kaldi ``apply-cmvn-sliding --center=true
    --cmn-window=cmvn_window`` without variance normalisation, ``"utterance"`` = mean subtraction,
    ``"warp"`` = feature warping over an odd window of ``cmvn_window`` rounded up (300 -> 301),
    ``"none"``); keep the frames marked voiced in ``vad_scp`` (if given).

    Only paths and options are stored; the scp files are read on first use in each process.
    ``utt_ids`` lists the utterances of ``feats_scp`` (file order); ``dim`` the output dimension.
    Table entries that are commands (``cmd |``) are refused unless ``allow_commands``; features with
    NaN or inf are an error naming the ``feats.scp`` line.
    """

    def __init__(self, feats_scp, vad_scp=None, deltas_order=2, cmvn="sliding", cmvn_window=300,
                 allow_commands=False, command_timeout=300.0):
        if cmvn not in CMVN_TYPES:
            raise SpkrecError(f"unknown cmvn type {cmvn!r}; use one of {', '.join(CMVN_TYPES)}")
        if int(deltas_order) < 0:
            raise SpkrecError(f"deltas_order must be >= 0, got {deltas_order}")
        self.feats_scp = os.fspath(feats_scp)
        self.vad_scp = None if vad_scp is None else os.fspath(vad_scp)
        self.deltas_order = int(deltas_order)
        self.cmvn = cmvn
        self.cmvn_window = int(cmvn_window)
        self.allow_commands = bool(allow_commands)
        self.command_timeout = float(command_timeout)
        self._feats = self._vad = self._dim = None
        self._lines = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_feats"] = state["_vad"] = None
        return state

    def __repr__(self):
        return (f"FeatureLoader({self.feats_scp!r}, vad_scp={self.vad_scp!r}, deltas_order={self.deltas_order}, "
                f"cmvn={self.cmvn!r}, cmvn_window={self.cmvn_window})")

    def _tables(self):
        if self._feats is None:
            self._lines = {"feats": {}, "vad": {}}
            self._feats = read_scp(self.feats_scp, self.allow_commands, self._lines["feats"])
            if not self._feats:
                raise SpkrecError(f"{self.feats_scp}: no utterances; run `spkrec compute-feats` first")
            self._vad = (None if self.vad_scp is None else
                         read_scp(self.vad_scp, self.allow_commands, self._lines["vad"]))
        return self._feats, self._vad

    @property
    def utt_ids(self):
        return list(self._tables()[0])

    @property
    def dim(self):
        if self._dim is None:
            feats, _ = self._tables()
            rx = next(iter(feats.values()))
            shape = matrix_shape(rx, allow_commands=self.allow_commands)
            if len(shape) != 2:
                raise SpkrecError(f"{self.feats_scp}:1: entry {rx!r} is not a matrix (shape {shape}); "
                                  "give a feats.scp of (frames, dim) matrices")
            self._dim = shape[1] * (self.deltas_order + 1)
        return self._dim

    def __len__(self):
        return len(self._tables()[0])

    def raw(self, utt):
        """The stored (T, D) matrix of ``utt`` as float32."""
        feats, _ = self._tables()
        if utt not in feats:
            raise SpkrecError(f"{self.feats_scp}: utterance {utt!r} not found; recompute features for it "
                              "or remove it from the data dir")
        where = f"{self.feats_scp}:{self._lines['feats'].get(utt, '?')}"
        x = np.asarray(load_matrix(feats[utt], name=where, allow_commands=self.allow_commands,
                                   command_timeout=self.command_timeout),
                       dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise SpkrecError(f"{where}: {utt!r} holds an empty or non-matrix entry {x.shape}; "
                              "recompute its features")
        check_finite(x, f"{where}: features of {utt!r}")
        return x

    def normalise(self, x):
        """Deltas then CMVN of a raw (T, D) matrix (no VAD)."""
        from spkrec.features.dynamic import deltas
        from spkrec.features.norm import cmvn, feature_warping, sliding_cmvn
        if self.deltas_order > 0:
            x = deltas(x, order=self.deltas_order)
        if self.cmvn == "sliding":
            x = sliding_cmvn(x, window=self.cmvn_window, center=True)
        elif self.cmvn == "utterance":
            x = cmvn(x)
        elif self.cmvn == "warp":
            x = feature_warping(x, window=self.cmvn_window | 1)
        return np.asarray(x, dtype=np.float32)

    def __call__(self, utt):
        x = self.normalise(self.raw(utt))
        _, vad = self._tables()
        if vad is None:
            return x
        if utt not in vad:
            raise SpkrecError(f"{self.vad_scp}: utterance {utt!r} has no VAD decisions; "
                              "re-run `spkrec compute-vad` on this data dir")
        v = np.asarray(load_matrix(vad[utt], name=f"{self.vad_scp}:{self._lines['vad'].get(utt, '?')}",
                                   allow_commands=self.allow_commands,
                                   command_timeout=self.command_timeout)).reshape(-1)
        if v.shape[0] != x.shape[0]:
            raise SpkrecError(f"{self.vad_scp}: {utt!r} has {v.shape[0]} VAD decisions for {x.shape[0]} "
                              "frames; re-run `spkrec compute-vad` after `compute-feats`")
        voiced = v > 0.5
        if not voiced.any():
            raise SpkrecError(f"{self.vad_scp}: utterance {utt!r} has no voiced frames; remove it from the "
                              "data dir or lower --vad-energy-threshold and re-run compute-vad")
        return x[voiced]


def check_finite(x, what):
    """Raise :class:`SpkrecError` ``"<what> ... NaN/inf at frame t"`` when ``x`` (T, D) is not all finite."""
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise SpkrecError(f"{what} contain {x[tuple(bad)]} at frame {bad[0]} (dim {bad[-1]}); recompute them "
                          "from valid audio (check the audio for NaN/inf samples)")


# --------------------------------------------------------------------------- compute-feats / compute-vad

def data_name(data_dir):
    """Name used in chunk file names: the data dir's base name."""
    return os.path.basename(os.path.normpath(os.path.abspath(data_dir)))


def _chunk_complete(ark, scp, utts):
    """True when ``scp`` lists exactly ``utts`` (in order) and the ark holds all of their matrices."""
    if not (os.path.isfile(ark) and os.path.isfile(scp)):
        return False
    try:
        table = read_scp(scp)
        if list(table) != list(utts):
            return False
        last = table[utts[-1]]
        path, offset = last.rsplit(":", 1)
        if os.path.abspath(path) != os.path.abspath(ark):
            return False
        _, end = matrix_shape(last, with_end=True)
        return end == os.path.getsize(ark)
    except (SpkrecError, ValueError, OSError):
        return False


def _num_frames_of_chunk(scp):
    return [(utt, matrix_shape(rx)[0]) for utt, rx in read_scp(scp).items()]


def _compute_feats_chunk(job, data_dir, feat_dir, feat_type, prefix, options, sample_rate, resample,
                         allow_commands, command_timeout=None):
    from spkrec.features.config import feature_function
    from spkrec.io.datadir import DataDir
    n, utts = job
    ark = os.path.join(feat_dir, f"{prefix}.{n}.ark")
    scp = os.path.join(feat_dir, f"{prefix}.{n}.scp")
    if _chunk_complete(ark, scp, utts):
        return n, _num_frames_of_chunk(scp), True
    data = DataDir(data_dir)
    func = feature_function(feat_type)

    def features():
        for utt in utts:
            signal, rate = data.load_audio(utt, target_rate=sample_rate if resample else None,
                                           allow_commands=allow_commands, command_timeout=command_timeout)
            if rate != sample_rate:
                rec = data.segments[utt][0] if data.segments else utt
                raise SpkrecError(
                    f"{data.file('wav.scp')}:{data.line_of('wav.scp', rec)}: audio of {utt!r} is sampled at "
                    f"{rate} Hz but features are computed at {sample_rate} Hz; pass --sample-frequency={rate} "
                    f"to use the file's rate, or --sample-frequency={sample_rate} to resample")
            feats = np.asarray(func(signal, rate, **options), dtype=np.float32)
            check_finite(feats, f"{data.file('wav.scp')}:{data.line_of('wav.scp', utt)}: features of {utt!r}")
            if feats.shape[0] == 0:
                raise SpkrecError(f"{data.file('wav.scp')}:{data.line_of('wav.scp', utt)}: {utt!r} is too short "
                                  f"for one frame ({signal.size / rate:.3f} s); remove it from the data dir")
            num_frames.append((utt, feats.shape[0]))
            yield utt, feats

    num_frames = []
    write_matrices(ark, scp, features())
    return n, num_frames, False


def _check_feature_options(feat_type, options, sample_rate):
    """Run the feature function once on 0.1 s of noise so a bad option fails before any work starts."""
    from spkrec.features.config import check_options, feature_function
    func = feature_function(feat_type)
    check_options(func, options, f"--feat-type {feat_type}")
    probe = np.random.default_rng(0).normal(0.0, 100.0, int(sample_rate * 0.1)).astype(np.float32)
    try:
        func(probe, sample_rate, **options)
    except SpkrecError as err:
        raise SpkrecError(f"--feat-type {feat_type}: {err}") from None
    except (TypeError, ValueError) as err:
        raise SpkrecError(f"--feat-type {feat_type}: bad option ({err}); fix the config file or command line") \
            from None


def resolve_options(config=None, options=None):
    """Merge a Kaldi-style config file (path or dict) with overrides (``options`` wins)."""
    from spkrec.features.config import read_config
    merged = {}
    if config:
        merged.update(read_config(config) if isinstance(config, (str, os.PathLike)) else dict(config))
    merged.update(options or {})
    return merged


def compute_features(data_dir, feat_dir, feat_type="mfcc", options=None, config=None, sample_rate=16000,
                     allow_commands=False, parallel=SERIAL, utts_per_chunk=100, command_timeout=None):
    """Compute features of every utterance of ``data_dir`` into ``feat_dir`` ark/scp chunks.

    ``options`` (keywords of the feature function, e.g. ``{"num_ceps": 20}``) override those of
    ``config`` (a Kaldi-style option file). ``sample_frequency`` among them sets ``sample_rate`` and
    turns on resampling; otherwise audio at another rate is an error naming its ``wav.scp`` line.
    Writes ``DATA/feats.scp`` and ``DATA/utt2num_frames`` (sorted, atomic). Returns ``{utt: num_frames}``.
    """
    from spkrec.features.config import FEATURE_TYPES
    from spkrec.io.datadir import DataDir
    if feat_type not in FEATURE_TYPES:
        raise SpkrecError(f"unknown feature type {feat_type!r}; use one of {', '.join(FEATURE_TYPES)}")
    opts = resolve_options(config, options)
    resample = "sample_frequency" in opts
    if resample:
        sample_rate = opts.pop("sample_frequency")
        if not isinstance(sample_rate, (int, float)) or sample_rate <= 0 or int(sample_rate) != sample_rate:
            raise SpkrecError(f"--sample-frequency={sample_rate!r} is not a positive whole number of Hz")
    sample_rate = int(sample_rate)
    _check_feature_options(feat_type, opts, sample_rate)

    data = DataDir(data_dir)
    utts = data.utts
    if not utts:
        raise SpkrecError(f"{data.file('utt2spk')}: no utterances; prepare the data dir first")
    wav_scp, segments = data.wav_scp, data.segments
    for utt in utts:  # every utterance must have audio; fail before any work
        if (segments[utt][0] if segments and utt in segments else utt) not in wav_scp:
            table = "segments" if segments else "utt2spk"
            raise SpkrecError(f"{data.file(table)}:{data.line_of(table, utt)}: utterance {utt!r} has no audio "
                              f"in {data.file('wav.scp')}; add it there or remove the utterance")
    os.makedirs(feat_dir, exist_ok=True)
    prefix = f"raw_{feat_type.replace('-', '_')}_{data_name(data_dir)}"
    _reset_if_options_changed(feat_dir, prefix, {"feat_type": feat_type, "sample_rate": sample_rate,
                                                 "options": opts})
    for name in ("feats.scp", "utt2num_frames"):  # a failed run must not leave the old tables to be trusted
        if data.has(name):
            os.remove(data.file(name))
    jobs = list(enumerate(chunk(utts, -(-len(utts) // max(1, int(utts_per_chunk)))), 1))
    log.info("computing %s features of %d utterances of %s in %d chunks (nj=%d)", feat_type, len(utts),
             data_dir, len(jobs), parallel.nj)
    results = map_items(_compute_feats_chunk, jobs, parallel, desc=f"compute-feats {data_name(data_dir)}",
                        data_dir=os.fspath(data_dir), feat_dir=os.fspath(feat_dir), feat_type=feat_type,
                        prefix=prefix, options=opts, sample_rate=sample_rate, resample=resample,
                        allow_commands=allow_commands, command_timeout=command_timeout)
    reused = sum(1 for _, _, skipped in results if skipped)
    if reused:
        log.info("reused %d complete chunk(s) of an earlier run", reused)
    scp_lines, num_frames = {}, {}
    for n, frames, _ in results:
        scp_lines.update(read_scp(os.path.join(feat_dir, f"{prefix}.{n}.scp")))
        num_frames.update(frames)
    keys = c_sorted(scp_lines)
    write_lines_atomic(data.file("feats.scp"), [f"{k} {scp_lines[k]}" for k in keys])
    write_lines_atomic(data.file("utt2num_frames"), [f"{k} {num_frames[k]}" for k in keys])
    log.info("wrote %s and utt2num_frames (%d utterances, %d frames)", data.file("feats.scp"), len(keys),
             sum(num_frames.values()))
    return {k: num_frames[k] for k in keys}


def _reset_if_options_changed(out_dir, prefix, settings):
    """Remember the settings of a run; chunks of a run with other settings are removed (recomputed)."""
    path = os.path.join(out_dir, f"{prefix}.options.json")
    text = json.dumps(settings, sort_keys=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
        log.warning("%s: options changed since the last run; recomputing all chunks", path)
    for name in os.listdir(out_dir):
        if name.startswith(prefix + ".") and name.endswith((".ark", ".scp")):
            os.remove(os.path.join(out_dir, name))
    write_text_atomic(path, text)


def _compute_vad_chunk(job, feats_scp, vad_dir, prefix, options, allow_commands=False):
    from spkrec.features.vad import vad_energy
    n, items = job  # items: [(utt, rxfilename, line)]
    ark = os.path.join(vad_dir, f"{prefix}.{n}.ark")
    scp = os.path.join(vad_dir, f"{prefix}.{n}.scp")
    stats = []

    def decisions():
        for utt, rx, line in items:
            x = load_matrix(rx, name=f"{feats_scp}:{line}", allow_commands=allow_commands)
            if np.ndim(x) != 2 or len(x) == 0:
                raise SpkrecError(f"{feats_scp}:{line}: {utt!r} holds an empty or non-matrix entry "
                                  f"{np.shape(x)}; recompute its features")
            check_finite(x, f"{feats_scp}:{line}: features of {utt!r}")
            v = vad_energy(x, **options)
            stats.append((utt, int(v.sum()), v.shape[0]))
            yield utt, v

    write_vectors(ark, scp, decisions())
    return n, stats


def compute_vad(data_dir, vad_dir=None, options=None, config=None, parallel=SERIAL, utts_per_chunk=100,
                allow_commands=False):
    """Energy VAD (:func:`spkrec.features.vad_energy`) of every utterance of ``DATA/feats.scp``.

    Writes ``vad_dir/vad_<dataname>.<n>.ark/.scp`` (float32 0/1 vectors; ``vad_dir`` defaults to
    ``DATA/vad``) and ``DATA/vad.scp``; warns about utterances with no voiced frame, and fails
    (before writing ``vad.scp``) when no utterance has one. Returns ``{utt: (num_voiced, num_frames)}``.
    """
    import inspect
    from spkrec.features.vad import vad_energy
    from spkrec.io.datadir import DataDir
    data = DataDir(data_dir)
    vad_dir = os.fspath(vad_dir) if vad_dir else data.file("vad")
    opts = resolve_options(config, options)
    accepted = set(inspect.signature(vad_energy).parameters) - {"feats"}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise SpkrecError(f"compute-vad does not take option(s) "
                          f"{', '.join('--' + u.replace('_', '-') for u in unknown)}; its options are "
                          "--vad-energy-threshold, --vad-energy-mean-scale, --vad-frames-context, "
                          "--vad-proportion-threshold")
    vad_energy(np.zeros((3, 2), dtype=np.float32), **opts)  # value checks before any work
    if not data.has("feats.scp"):
        raise SpkrecError(f"{data.file('feats.scp')}: not found; run `spkrec compute-feats` first")
    lines = {}
    feats = read_scp(data.file("feats.scp"), allow_commands, lines)
    if not feats:
        raise SpkrecError(f"{data.file('feats.scp')}: empty; run `spkrec compute-feats` first")
    os.makedirs(vad_dir, exist_ok=True)
    prefix = f"vad_{data_name(data_dir)}"
    items = [(u, feats[u], lines[u]) for u in c_sorted(feats)]
    jobs = list(enumerate(chunk(items, -(-len(items) // max(1, int(utts_per_chunk)))), 1))
    results = map_items(_compute_vad_chunk, jobs, parallel, desc=f"compute-vad {data_name(data_dir)}",
                        feats_scp=data.file("feats.scp"), vad_dir=vad_dir, prefix=prefix, options=opts,
                        allow_commands=allow_commands)
    scp_lines, stats = {}, {}
    for n, chunk_stats in results:
        scp_lines.update(read_scp(os.path.join(vad_dir, f"{prefix}.{n}.scp")))
        for utt, voiced, total in chunk_stats:
            stats[utt] = (voiced, total)
            if voiced == 0:
                log.warning("utterance %s has no voiced frames (of %d); it will be unusable for training "
                            "and scoring unless --vad-energy-threshold is lowered", utt, total)
    keys = c_sorted(scp_lines)
    voiced = sum(v for v, _ in stats.values())
    total = sum(t for _, t in stats.values())
    if stats and voiced == 0:
        raise SpkrecError(f"{data.file('feats.scp')}: no utterance has a voiced frame; check that column 0 of "
                          "the features is log energy and lower --vad-energy-threshold")
    write_lines_atomic(data.file("vad.scp"), [f"{k} {scp_lines[k]}" for k in keys])
    log.info("wrote %s: %d utterances, %d of %d frames voiced (%.1f %%)", data.file("vad.scp"), len(keys),
             voiced, total, 100.0 * voiced / max(total, 1))
    return {k: stats[k] for k in keys}
