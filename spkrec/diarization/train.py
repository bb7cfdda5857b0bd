"""A diarization back end trained on WINDOWS: vectors of ``window``-second pieces of the background
speakers' utterances, cut as :func:`spkrec.diarization.diarize` cuts a recording, so that the PLDA's
within-speaker covariance is that of short windows (an utterance-level PLDA under-estimates it, and its
LLRs between windows are then too confident). Kaldi's diarization recipes train their PLDA on segments
for the same reason."""
import numpy as np

from spkrec.errors import SpkrecError


def window_training_vectors(system, data_dir, window=1.5, shift=0.75, min_window=0.5, min_gap=0.3,
                            min_speech=0.2):
    """-> ``(V (n, dim) float64, speakers (n,) str)``: a vector per window of every utterance of a data dir
    (speech regions of the bundle's VAD, uniform windows; seconds)."""
    from spkrec.diarization.frontend import timed_frames
    from spkrec.diarization.pipeline import window_vectors
    from spkrec.diarization.segment import speech_regions, uniform_windows
    from spkrec.io.datadir import DataDir
    data = DataDir(data_dir)
    rate = system.frontend.sample_rate
    blocks, speakers = [], []
    for utt, spk in sorted(data.utt2spk.items()):
        x, r = data.load_audio(utt, target_rate=rate)
        X, voiced, fshift, _ = timed_frames(system, (x, r), name=utt)
        f = lambda s: max(1, int(round(s / fshift)))  # noqa: E731
        regions = speech_regions(voiced, f(min_gap), f(min_speech)) if len(X) else []
        wins = uniform_windows(regions, f(window), f(shift), int(round(min_window / fshift)))
        if wins:
            blocks.append(window_vectors(system, X, voiced, wins))
            speakers += [spk] * len(wins)
    if len(set(speakers)) < 2:
        raise SpkrecError(f"{data_dir}: windows of fewer than 2 speakers; a back end needs several speakers")
    return np.concatenate(blocks), np.asarray(speakers)

