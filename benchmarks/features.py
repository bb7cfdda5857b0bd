"""Feature-extraction speed: real-time factors of spkrec and reference libraries, single thread.

Usage: python benchmarks/features.py [AUDIO_DIR ...] [--repeats 3] [--max-seconds S] [--same-process]

Loads every WAV/FLAC/SPHERE file under the directories (default: data/), runs every method on every
utterance and reports the real-time factor (seconds of audio per CPU second, best of ``--repeats``
rounds) and the ratio to the reference a user would pick (python_speech_features for MFCC/fbank,
spafe for PLP/LPC/LPCC).  Prints a Markdown table.

By default each (round, method) pass runs in a fresh worker process, methods in turn within a round
(so outside load, which comes and goes, hits all methods alike): a method's speed depends on the
allocator state its neighbours leave behind (glibc raises its mmap threshold after large frees, which
halves python_speech_features' page faults when librosa ran just before it).  ``--same-process``
runs all methods interleaved per utterance in this process instead.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

AUDIO_EXTENSIONS = (".wav", ".flac", ".sph")


def load_audio_dirs(dirs, max_seconds=None):
    """All audio under ``dirs`` as a list of (signal float32 int16 scale, rate), sorted by path.

    A seeded Gaussian dither of one int16 step is added once, so that references without their own
    dither (spafe's LPC) do not fail on digital silence; every method sees the same signals.
    """
    from spkrec.io.audio import read_audio
    paths = []
    for d in dirs:
        for root, _, files in os.walk(d):
            paths += [os.path.join(root, f) for f in files if f.lower().endswith(AUDIO_EXTENSIONS)]
    signals, total = [], 0.0
    for path in sorted(paths):
        try:
            x, rate = read_audio(path)
        except ValueError as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        x = x + np.random.default_rng(len(signals)).standard_normal(x.shape[0]).astype(np.float32)
        signals.append((x, rate))
        total += len(x) / rate
        if max_seconds and total >= max_seconds:
            break
    return signals


def _optional(module, name):
    """Attribute ``name`` of ``module`` or None when the module (or name) is not available."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _knf(kind):
    knf = importlib.import_module("kaldi_native_fbank")

    def run(x, rate):
        opts = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
        opts.frame_opts.samp_freq = float(rate)
        comp = knf.OnlineMfcc(opts) if kind == "mfcc" else knf.OnlineFbank(opts)
        comp.accept_waveform(float(rate), x)
        comp.input_finished()
        return np.array([comp.get_frame(i) for i in range(comp.num_frames_ready)], dtype=np.float32)
    return run


def methods():
    """(group, name, callable(x, rate) or None) in table order; the first of each group is ours with
    the psf/spafe-comparable settings, the reference is marked in REFERENCE."""
    mfcc, fbank = _optional("spkrec.features.mel", "mfcc"), _optional("spkrec.features.mel", "fbank")
    plp = _optional("spkrec.features.perceptual", "plp")
    rasta_plp = _optional("spkrec.features.perceptual", "rasta_plp")
    lpc, lpcc = _optional("spkrec.features.linpred", "lpc"), _optional("spkrec.features.linpred", "lpcc")
    psf_mfcc = _optional("python_speech_features", "mfcc")
    psf_logfbank = _optional("python_speech_features", "logfbank")
    librosa_feature = _optional("librosa", "feature")
    spafe_plp = _optional("spafe.features.rplp", "plp")
    spafe_lpc = _optional("spafe.features.lpc", "lpc")
    spafe_lpcc = _optional("spafe.features.lpc", "lpcc")
    have_knf = _optional("kaldi_native_fbank", "OnlineMfcc") is not None

    def wrap(func, **kw):
        return None if func is None else (lambda x, r: func(x, r, **kw))

    def librosa_call(kind):
        if librosa_feature is None:
            return None
        common = dict(n_fft=512, win_length=400, hop_length=160, center=False, n_mels=26)
        if kind == "mfcc":
            return lambda x, r: librosa_feature.mfcc(y=x, sr=r, n_mfcc=13, **common)
        return lambda x, r: librosa_feature.melspectrogram(y=x, sr=r, **common)

    return [
        ("MFCC", "spkrec mfcc preset=psf", wrap(mfcc, preset="psf")),
        ("MFCC", "spkrec mfcc preset=kaldi (dither 1)", wrap(mfcc, preset="kaldi")),
        ("MFCC", "python_speech_features mfcc", None if psf_mfcc is None else (lambda x, r: psf_mfcc(x, r))),
        ("MFCC", "librosa mfcc (512/400/160, 26 mels)", librosa_call("mfcc")),
        ("MFCC", "kaldi_native_fbank mfcc", _knf("mfcc") if have_knf else None),
        ("fbank", "spkrec fbank preset=psf", wrap(fbank, preset="psf")),
        ("fbank", "spkrec fbank preset=kaldi (dither 1)", wrap(fbank, preset="kaldi")),
        ("fbank", "python_speech_features logfbank",
         None if psf_logfbank is None else (lambda x, r: psf_logfbank(x, r))),
        ("fbank", "librosa melspectrogram (512/400/160, 26 mels)", librosa_call("mel")),
        ("fbank", "kaldi_native_fbank fbank", _knf("fbank") if have_knf else None),
        ("PLP", "spkrec plp (order 12, 13 ceps)", wrap(plp)),
        ("PLP", "spkrec rasta_plp (order 12, 13 ceps)", wrap(rasta_plp)),
        ("PLP", "spafe plp (order 13)", wrap(spafe_plp, order=13)),
        ("LPC", "spkrec lpc (order 12 + gain)", wrap(lpc, order=12)),
        ("LPC", "spafe lpc (order 13)", wrap(spafe_lpc, order=13)),
        ("LPCC", "spkrec lpcc (order 12, 13 ceps)", wrap(lpcc)),
        ("LPCC", "spafe lpcc (order 13)", wrap(spafe_lpcc, order=13)),
    ]


REFERENCE = {"MFCC": "python_speech_features mfcc", "fbank": "python_speech_features logfbank",
             "PLP": "spafe plp (order 13)", "LPC": "spafe lpc (order 13)", "LPCC": "spafe lpcc (order 13)"}


def interleaved_round(table, signals, totals):
    """One round: for each utterance, run every method once; add each call's CPU seconds (of this
    process) to ``totals[name]``.  Interleaving per utterance makes load from other processes, which
    comes and goes, hit all methods alike."""
    for x, rate in signals:
        for _, name, func in table:
            if name not in totals:
                continue
            start = time.process_time()
            try:
                func(x, rate)
            except Exception as exc:  # a broken reference must not hide the other numbers
                print(f"{name}: failed ({type(exc).__name__}: {exc})", file=sys.stderr)
                totals.pop(name)
                continue
            totals[name] += time.process_time() - start


def _warm_up(table, signals):
    """Call each method once (imports, plans, caches); return the names that work."""
    working = []
    for _, name, func in table:
        if func is None:
            continue
        try:
            func(*signals[0])
            working.append(name)
        except Exception as exc:
            print(f"{name}: failed ({type(exc).__name__}: {exc})", file=sys.stderr)
    return working


def worker(name, dirs, max_seconds):
    """One timed pass of method ``name`` over the audio, in this (fresh) process: its CPU seconds."""
    signals = load_audio_dirs(dirs, max_seconds)
    table = [row for row in methods() if row[1] == name]
    warnings.simplefilter("ignore")
    with threadpool_limits(limits=1):
        if not _warm_up(table, signals):
            return None
        totals = {name: 0.0}
        interleaved_round(table, signals, totals)
    return totals.get(name)


def isolated_rounds(names, args):
    """Best CPU seconds per method over ``args.repeats`` rounds of one fresh process per method."""
    best = {name: np.inf for name in names}
    for round_ in range(args.repeats):
        for name in list(best):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, *args.dirs]
            if args.max_seconds:
                cmd += ["--max-seconds", str(args.max_seconds)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            cpu = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
            if cpu is None:
                print(f"{name}: worker failed\n{done.stderr[-2000:]}", file=sys.stderr)
                best.pop(name)
                continue
            best[name] = min(best[name], cpu)
        print(f"round {round_ + 1}/{args.repeats} done", file=sys.stderr)
    return best


def same_process_rounds(table, signals, repeats):
    """Best CPU seconds per method, all methods interleaved per utterance in this process."""
    with threadpool_limits(limits=1):
        best = {name: np.inf for name in _warm_up(table, signals)}
        for round_ in range(repeats):
            totals = {name: 0.0 for name in best}
            interleaved_round(table, signals, totals)
            best = {name: min(best[name], totals[name]) for name in totals}
            print(f"round {round_ + 1}/{repeats} done", file=sys.stderr)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=["data"], help="audio directories (default: data/)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per method; the best counts")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="use only the first files (sorted) up to this much audio")
    parser.add_argument("--same-process", action="store_true",
                        help="run all methods interleaved in this process instead of one process each")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.dirs, args.max_seconds)))
        return
    signals = load_audio_dirs(args.dirs, args.max_seconds)
    if not signals:
        parser.error(f"no audio found under {' '.join(args.dirs)}")
    seconds = sum(len(x) / rate for x, rate in signals)
    mode = "all methods in one process" if args.same_process else "one fresh process per method and round"
    print(f"{len(signals)} files, {seconds:.1f} s of audio from {' '.join(args.dirs)}; single thread, "
          f"best of {args.repeats}, {mode}\n")
    table = methods()
    warnings.simplefilter("ignore")
    if args.same_process:
        best = same_process_rounds(table, signals, args.repeats)
    else:
        best = isolated_rounds([name for _, name, func in table if func is not None], args)
    rtf = {name: seconds / max(cpu, 1e-9) for name, cpu in best.items()}
    rows = [(group, name, rtf.get(name)) for group, name, _ in table]
    print("| feature | implementation | real-time factor | vs reference |")
    print("|---|---|---:|---:|")
    for group, name, value in rows:
        ref = rtf.get(REFERENCE[group])
        ratio = f"{value / ref:.2f}x" if value is not None and ref else "n/a"
        shown = "n/a" if value is None else f"{value:,.0f}x"
        print(f"| {group} | {name}{' (reference)' if name == REFERENCE[group] else ''} | {shown} | {ratio} |")


if __name__ == "__main__":
    main()
