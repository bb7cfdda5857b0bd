"""Simulated conversations for developing and testing diarization (no real multi-speaker corpus needed).

Each conversation takes 2-4 speakers of a data dir and lays their utterances (leading and trailing
silence trimmed by an energy gate) one after another: the next turn goes to another speaker, after a
pause drawn from ``pause`` seconds, or, with probability ``overlap_prob``, starting up to ``max_overlap``
seconds before the previous turn ends. Optional babble: utterances of speakers outside the conversation,
summed, looped and added at ``babble_snr`` dB. Optional channel effects: each speaker's own level (a gain
drawn uniformly within ``level_spread_db``), own room (a synthetic exponentially decaying noise impulse
response of reverberation time ``rt60`` seconds after a direct-path impulse: a crude room model, no
geometry) and white noise at ``snr`` dB. The reference turns are the trimmed utterances' extents
(pauses inside an utterance count as speech, as in hand-made references). This is SIMULATED data: the
turn taking, channel and overlap statistics are not those of real conversations.
"""
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.rttm import Turn


def trim_silence(x, rate, floor_db=35.0, frame_s=0.025):
    """``x`` without the leading and trailing frames more than ``floor_db`` below its loudest frame."""
    n = max(1, int(rate * frame_s))
    m = len(x) // n
    if m < 1:
        return x
    e = 10 * np.log10(np.mean(np.asarray(x[: m * n], np.float64).reshape(m, n) ** 2, axis=1) + 1e-3)
    keep = np.flatnonzero(e > e.max() - floor_db)
    return x[keep[0] * n: (keep[-1] + 1) * n]


def room_response(rate, rt60, rng, direct_to_reverb_db=0.0):
    """A synthetic impulse response (n,): a unit direct path, then Gaussian noise decaying by 60 dB in
    ``rt60`` seconds, scaled so that the tail's energy is ``direct_to_reverb_db`` below the direct path's."""
    n = max(2, int(rt60 * rate))
    t = np.arange(n) / rate
    tail = rng.normal(size=n) * np.exp(-6.908 * t / rt60)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-direct_to_reverb_db / 10) / max(np.sum(tail ** 2), 1e-12))
    tail[0] = 1.0
    return tail


def simulate_conversation(utterances, rate, rng, num_turns=8, pause=(0.2, 1.0), overlap_prob=0.0,
                          max_overlap=0.5, babble=None, babble_snr=15.0, level_spread_db=0.0, rt60=0.0,
                          snr=None):
    """One conversation.

    utterances : ``{speaker: [signal (n,) float32, ...]}`` at ``rate`` (int16 scale), 1 or more speakers.
    rng : a ``numpy.random.Generator``. babble : list of signals or None. level_spread_db, rt60 (s),
    snr (dB, None: only a faint noise floor): channel effects (module notes).
    -> ``(signal (n,) float32, [Turn(start, end, speaker)])``."""
    from scipy.signal import fftconvolve
    speakers = sorted(utterances)
    if not speakers or any(not utterances[s] for s in speakers):
        raise SpkrecError("simulate_conversation: every speaker needs at least one utterance")
    order = [speakers[k % len(speakers)] for k in rng.permutation(len(speakers))]
    while len(order) < num_turns:
        others = [s for s in speakers if s != order[-1]] or speakers
        order.append(others[rng.integers(len(others))])
    used = {s: 0 for s in speakers}
    fx = np.random.default_rng(int(rng.integers(2 ** 32)))   # effects: own stream, same turns with or without
    gain = {s: 10 ** (fx.uniform(-0.5, 0.5) * level_spread_db / 20) for s in speakers}
    rooms = {s: room_response(rate, rt60, fx) for s in speakers} if rt60 > 0 else {}
    pieces, turns, t = [], [], 0.0
    for k, spk in enumerate(order[:max(num_turns, len(speakers))]):
        pool = utterances[spk]
        x = trim_silence(pool[used[spk] % len(pool)], rate)
        used[spk] += 1
        dry = len(x)
        if spk in rooms:
            x = fftconvolve(np.asarray(x, np.float64), rooms[spk])
        x = gain[spk] * np.asarray(x, np.float64)
        if k:
            if overlap_prob > 0 and rng.random() < overlap_prob:
                t = max(turns[-1].start + 0.1, t - rng.uniform(0.1, max_overlap))
            else:
                t += rng.uniform(*pause)
        start = int(round(t * rate))
        pieces.append((start, x))
        turns.append(Turn(round(start / rate, 3), round((start + dry) / rate, 3), spk))
        t = max(t, (start + dry) / rate)
    n = max(s + len(x) for s, x in pieces) + int(0.5 * rate)
    y = np.zeros(n, np.float64)
    for s, x in pieces:
        y[s:s + len(x)] += x
    if babble:
        b = np.zeros(n)
        for x in babble:
            reps = np.tile(x, n // max(1, len(x)) + 1)[:n]
            b += np.roll(reps, int(rng.integers(n)))
        speech = np.mean(np.concatenate([x for _, x in pieces]).astype(np.float64) ** 2)
        b *= np.sqrt(speech / max(np.mean(b ** 2), 1e-9) / 10 ** (babble_snr / 10))
        y += b
    if snr is not None:
        speech = np.mean(np.concatenate([x for _, x in pieces]) ** 2)
        y += fx.normal(0, np.sqrt(speech / 10 ** (snr / 10)), n)
    y += fx.normal(0, 3.0, n)  # a faint noise floor: no digital silence
    return np.clip(y, -32768, 32767).astype(np.float32), sorted(turns)


def simulate_conversations(data_dir, out_dir, num_conversations=4, min_speakers=2, max_speakers=4,
                           turns_per_speaker=3, pause=(0.2, 1.0), overlap_prob=0.0, max_overlap=0.5,
                           babble=0, babble_snr=15.0, rate=16000, seed=0, prefix="conv", level_spread_db=0.0,
                           rt60=0.0, snr=None):
    """Write ``num_conversations`` simulated conversations from a data dir's utterances to ``out_dir``:
    ``wav/<id>.wav`` (16-bit), ``wav.scp``, ``ref.rttm``, ``uem`` (whole files), ``reco2num_spk`` and a
    README saying how they were made. Speakers are drawn without replacement while enough remain.
    -> ``{id: [Turn]}``."""
    import soundfile as sf

    from spkrec.io.atomic import atomic_path, write_lines_atomic, write_text_atomic
    from spkrec.io.datadir import DataDir
    from spkrec.io.rttm import write_rttm, write_uem
    if not 1 <= min_speakers <= max_speakers:
        raise SpkrecError(f"speakers per conversation: need 1 <= min ({min_speakers}) <= max ({max_speakers})")
    data = DataDir(data_dir)
    spk2utt = data.spk2utt
    if len(spk2utt) < max_speakers + (1 if babble else 0):
        raise SpkrecError(f"{data_dir}: {len(spk2utt)} speakers, fewer than {max_speakers} per conversation"
                          f"{' plus babble' if babble else ''}; use a larger data dir or fewer speakers")
    rng = np.random.default_rng(seed)
    all_spk = sorted(spk2utt)
    pool = []
    os.makedirs(os.path.join(out_dir, "wav"), exist_ok=True)
    refs, lengths, scp, nspk = {}, {}, [], []
    for c in range(num_conversations):
        k = int(rng.integers(min_speakers, max_speakers + 1))
        if len(pool) < k:
            pool = list(rng.permutation(all_spk))
        chosen = sorted(pool[:k])
        pool = pool[k:]
        utts = {s: [data.load_audio(u, target_rate=rate)[0]
                    for u in rng.permutation(spk2utt[s])[:turns_per_speaker]] for s in chosen}
        noise = None
        if babble:
            others = [s for s in all_spk if s not in chosen]
            noise = [data.load_audio(rng.choice(spk2utt[s]), target_rate=rate)[0]
                     for s in rng.choice(others, size=min(int(babble), len(others)), replace=False)]
        y, turns = simulate_conversation(utts, rate, rng, num_turns=k * turns_per_speaker, pause=pause,
                                         overlap_prob=overlap_prob, max_overlap=max_overlap, babble=noise,
                                         babble_snr=babble_snr, level_spread_db=level_spread_db, rt60=rt60,
                                         snr=snr)
        name = f"{prefix}{c + 1:03d}"
        path = os.path.join(out_dir, "wav", f"{name}.wav")
        with atomic_path(path) as tmp:
            sf.write(tmp, np.round(y).astype(np.int16), rate, format="WAV", subtype="PCM_16")
        refs[name] = turns
        scp.append(f"{name} {os.path.abspath(path)}")
        nspk.append(f"{name} {k}")
        lengths[name] = len(y) / rate
    write_rttm(os.path.join(out_dir, "ref.rttm"), refs)
    write_uem(os.path.join(out_dir, "uem"), {n: [(0.0, d)] for n, d in lengths.items()})
    write_lines_atomic(os.path.join(out_dir, "wav.scp"), scp)
    write_lines_atomic(os.path.join(out_dir, "reco2num_spk"), nspk)
    write_text_atomic(os.path.join(out_dir, "README"),
                      f"SIMULATED conversations (spkrec simulate-conversations, seed {seed}) from the utterances of "
                      f"{os.path.abspath(data_dir)}: {min_speakers}-{max_speakers} speakers, {turns_per_speaker} turns "
                      f"each, pauses {pause[0]}-{pause[1]} s, overlap probability {overlap_prob} (up to "
                      f"{max_overlap} s), babble of {babble} speakers at {babble_snr} dB, speaker levels within "
                      f"{level_spread_db} dB, synthetic reverberation RT60 {rt60} s, white noise "
                      f"{'none' if snr is None else f'at {snr} dB'}. Reference turns are "
                      "the silence-trimmed utterances (ref.rttm). Not real conversations.\n")
    return refs
