"""Batches for training (numpy only): N speakers x M utterances, random fixed-length crops, padding."""
import numpy as np

from spkrec.errors import SpkrecError


def nm_batches(spk_utts, num_speakers, num_utts, num_batches, rng):
    """Speaker-major batches of ``num_speakers`` distinct speakers x ``num_utts`` utterance indices each.

    ``spk_utts``: list (one per speaker) of lists of utterance indices. Speakers are visited in shuffled
    order, cycling; each speaker's utterances in shuffled order, cycling (so a speaker with fewer than
    ``num_utts`` utterances repeats some, which then get different crops). Returns a list of
    ``(utt_indices (N*M,), speaker_labels (N*M,))`` int64 array pairs.
    """
    n_spk = len(spk_utts)
    if n_spk < 2:
        raise SpkrecError(f"training needs at least 2 speakers, got {n_spk}")
    n = min(int(num_speakers), n_spk)
    spk_order, spk_pos = rng.permutation(n_spk), 0
    utt_orders = [rng.permutation(len(u)) for u in spk_utts]
    utt_pos = [0] * n_spk
    batches = []
    for _ in range(int(num_batches)):
        if spk_pos + n > n_spk:                                   # reshuffle: every speaker once per cycle
            spk_order, spk_pos = rng.permutation(n_spk), 0
        chosen = spk_order[spk_pos:spk_pos + n]
        spk_pos += n
        utts, labels = [], []
        for s in chosen:
            for _ in range(int(num_utts)):
                if utt_pos[s] == len(spk_utts[s]):
                    utt_orders[s], utt_pos[s] = rng.permutation(len(spk_utts[s])), 0
                utts.append(spk_utts[s][utt_orders[s][utt_pos[s]]])
                utt_pos[s] += 1
                labels.append(s)
        batches.append((np.asarray(utts, dtype=np.int64), np.asarray(labels, dtype=np.int64)))
    return batches


def random_crop(x, crop_frames, rng):
    """A random window of ``crop_frames`` frames of ``x (T, D)`` (all of ``x`` when it is shorter)."""
    T = x.shape[0]
    if T <= crop_frames:
        return x
    start = int(rng.integers(0, T - crop_frames + 1))
    return x[start:start + crop_frames]


def pad_batch(mats):
    """Stack ``(T_i, D)`` matrices into ``(B, max T, D)`` float32 zero-padded, plus lengths ``(B,)`` int64."""
    lengths = np.array([m.shape[0] for m in mats], dtype=np.int64)
    out = np.zeros((len(mats), int(lengths.max()), mats[0].shape[1]), dtype=np.float32)
    for i, m in enumerate(mats):
        out[i, :m.shape[0]] = m
    return out, lengths


def sliding_windows(num_frames, window, shift):
    """Start frames of windows of ``window`` frames every ``shift`` frames covering ``[0, num_frames)``.

    The last window is aligned with the end so no frame is left out; an utterance shorter than one window
    is a single (short) window starting at 0.
    """
    if window < 1 or shift < 1:
        raise SpkrecError(f"--window and --shift must be positive, got {window} and {shift}")
    if num_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_frames - window + 1, shift, dtype=np.int64)
    if starts[-1] + window < num_frames:
        starts = np.append(starts, num_frames - window)
    return starts
