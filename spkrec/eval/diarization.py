"""Diarization error rate (DER) and Jaccard error rate (JER), computed with pyannote.metrics.

DER = (missed speech + false alarm + speaker confusion) / total reference speech, all in seconds of
scored time, after the optimal one-to-one mapping of hypothesis to reference speakers (NIST md-eval).
``collar`` is per side, as md-eval's ``-c`` and dscore's ``--collar``: ``collar=0.25`` leaves 0.25 s
either side of every reference boundary unscored (pyannote's own ``collar`` is the whole width, so it is
passed ``2 * collar``). ``skip_overlap`` leaves the regions where reference speakers overlap unscored.
Without a UEM a file is scored over the union of the reference's and the hypothesis's extents.
JER (DIHARD III) averages, over reference speakers, 1 - intersection/union of the mapped speakers' speech.
"""
import warnings

from spkrec.errors import SpkrecError


def _pyannote():
    try:
        from pyannote.core import Annotation, Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
    except ImportError:
        raise SpkrecError("scoring diarization needs pyannote.metrics; pip install 'spkrec[diarization]'") from None
    return Annotation, Segment, Timeline, DiarizationErrorRate, JaccardErrorRate


def _annotation(turns, uri):
    Annotation, Segment, _, _, _ = _pyannote()
    ann = Annotation(uri=uri)
    for k, (start, end, speaker) in enumerate(turns):
        if end > start:
            ann[Segment(float(start), float(end)), k] = str(speaker)
    return ann


def diarization_error(reference, hypothesis, uem=None, collar=0.0, skip_overlap=False):
    """Score hypothesis against reference turns.

    reference, hypothesis : ``{file: [(start, end, speaker)]}`` (as :func:`spkrec.io.rttm.read_rttm`);
    every reference file is scored (a file missing from the hypothesis counts as all missed).
    uem : ``{file: [(start, end)]}`` or None. collar : seconds per side. skip_overlap : bool.

    Returns ``{"files": {file: row}, "total": row}``, a row being a dict with ``der``, ``miss``, ``fa``,
    ``confusion`` (fractions of the reference speech), ``jer``, ``speech`` (seconds of scored reference
    speech), ``miss_s``, ``fa_s``, ``confusion_s`` (seconds), ``ref_speakers``, ``hyp_speakers`` and
    ``speaker_count_error`` (``|hyp - ref|``; in the total, the sum over files).
    """
    _, Segment, Timeline, DER, JER = _pyannote()
    if collar < 0:
        raise SpkrecError(f"collar {collar} is negative; give 0 or more seconds")
    extra = sorted(set(hypothesis) - set(reference))
    if extra:
        raise SpkrecError(f"hypothesis has files not in the reference ({', '.join(extra[:3])}); "
                          "score the same files")
    if not reference:
        raise SpkrecError("the reference has no speaker turns; give a reference RTTM with SPEAKER lines")
    der = DER(collar=2.0 * collar, skip_overlap=skip_overlap)
    jer = JER(collar=2.0 * collar, skip_overlap=skip_overlap)
    files = {}
    for name in sorted(reference):
        ref = _annotation(reference[name], name)
        hyp = _annotation(hypothesis.get(name, []), name)
        kw = {}
        if uem is not None:
            if name not in uem:
                raise SpkrecError(f"file {name} has no UEM line; add its scored region to the UEM file")
            kw["uem"] = Timeline([Segment(s, e) for s, e in uem[name]], uri=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = der(ref, hyp, detailed=True, **kw)
            j = jer(ref, hyp, **kw)
        files[name] = _row(c, j, len(ref.labels()), len(hyp.labels()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = _row(dict(der.accumulated_), abs(jer), 0, 0)
    total["ref_speakers"] = sum(r["ref_speakers"] for r in files.values())
    total["hyp_speakers"] = sum(r["hyp_speakers"] for r in files.values())
    total["speaker_count_error"] = sum(r["speaker_count_error"] for r in files.values())
    return {"files": files, "total": total}


def _row(c, jer_value, n_ref, n_hyp):
    speech = float(c["total"])
    miss, fa, conf = float(c["missed detection"]), float(c["false alarm"]), float(c["confusion"])
    frac = (lambda x: x / speech) if speech > 0 else (lambda x: 0.0 if x == 0 else float("inf"))
    return {"der": frac(miss + fa + conf), "miss": frac(miss), "fa": frac(fa), "confusion": frac(conf),
            "jer": float(jer_value), "speech": speech, "miss_s": miss, "fa_s": fa, "confusion_s": conf,
            "ref_speakers": n_ref, "hyp_speakers": n_hyp, "speaker_count_error": abs(n_hyp - n_ref)}


def format_table(result, percent=True):
    """Markdown table of :func:`diarization_error`'s result: one row per file, then the total."""
    head = "| file | DER % | miss % | FA % | confusion % | JER % | speech s | ref spk | hyp spk |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = list(result["files"].items()) + [("TOTAL", result["total"])]
    for name, r in rows:
        lines.append(f"| {name} | {100 * r['der']:.2f} | {100 * r['miss']:.2f} | {100 * r['fa']:.2f} | "
                     f"{100 * r['confusion']:.2f} | {100 * r['jer']:.2f} | {r['speech']:.2f} | "
                     f"{r['ref_speakers']} | {r['hyp_speakers']} |")
    return lines


def plot_timeline(reference, hypothesis, path, title=None):
    """A picture of one recording: reference turns (top row per speaker) above hypothesis turns, on a common
    time axis (seconds). reference, hypothesis : ``[(start, end, speaker)]``. Written atomically."""
    from matplotlib import colormaps

    from spkrec.eval.plots import _new_figure, save_figure
    ref_spk = sorted({t[2] for t in reference})
    hyp_spk = sorted({t[2] for t in hypothesis})
    rows = [("ref", s) for s in ref_spk] + [("hyp", s) for s in hyp_spk]
    fig = _new_figure((10, 0.4 * len(rows) + 1.2))
    ax = fig.add_subplot(111)
    colours = colormaps["tab10"]
    for i, (kind, spk) in enumerate(rows):
        turns = reference if kind == "ref" else hypothesis
        names = ref_spk if kind == "ref" else hyp_spk
        spans = [(s, e - s) for s, e, k in turns if k == spk]
        ax.broken_barh(spans, (len(rows) - 1 - i - 0.4, 0.8), color=colours(names.index(spk) % 10),
                       alpha=0.9 if kind == "ref" else 0.6)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{k} {s}" for k, s in reversed(rows)], fontsize=8)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    return fig


__all__ = ["diarization_error", "format_table", "plot_timeline"]
