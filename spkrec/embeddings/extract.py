"""Utterance embeddings by sliding windows: window embeddings averaged, then re-normalised.

:func:`embed_utterances` works on in-memory matrices; :func:`extract_embeddings` maps it over the
utterances of a data dir through :mod:`spkrec.parallel` and writes ``embedding.ark/.scp`` plus the
speaker means ``spk_embedding.ark/.scp`` and ``num_utts.ark`` (the same layout as i-vectors, so every
back end applies unchanged).
"""
import logging
import os

import numpy as np

from spkrec.embeddings._torch import require_torch
from spkrec.embeddings.sampling import pad_batch, sliding_windows
from spkrec.errors import SpkrecError
from spkrec.parallel import SERIAL, map_chunks

log = logging.getLogger("spkrec")


def embed_utterances(encoder, mats, window=200, shift=100, raw=False, batch_windows=256):
    """Embeddings ``(n, E)`` float32 of a list of ``(T_i, D)`` matrices.

    Each utterance is cut into windows of ``window`` frames every ``shift`` frames (the last aligned with
    the end; a shorter utterance is one window). With ``raw=False`` the unit window embeddings are averaged
    and re-normalised; with ``raw=True`` the raw projections are averaged (the softmax classifier's input).
    Windows of all utterances are batched together, full-length windows without padding. For an encoder
    with ``exact_lengths`` (the CNN: padding would change its convolutions) short windows are batched only
    with windows of the same length, and windows shorter than its ``min_frames`` are repeated up to it.
    """
    torch = require_torch()
    if not len(mats):
        return np.zeros((0, encoder.projection.out_features), dtype=np.float32)
    full, short = [], []                       # (utt index, window matrix)
    exact = bool(getattr(encoder, "exact_lengths", False))
    min_frames = int(getattr(encoder, "min_frames", 1))
    n_padded = 0
    for i, x in enumerate(mats):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise SpkrecError(f"utterance number {i + 1} has features of shape {x.shape}; need (frames, dim)")
        if x.shape[0] < min_frames:
            x = np.concatenate([x] * (min_frames // x.shape[0] + 1))[:min_frames]
            n_padded += 1
        if x.shape[0] < window:
            short.append((i, x))
        else:
            for s in sliding_windows(x.shape[0], window, shift):
                full.append((i, x[s:s + window]))
    if n_padded:
        log.warning("%d utterance(s) shorter than the encoder's %d frames were repeated up to %d frames",
                    n_padded, min_frames, min_frames)
    dim = encoder.projection.out_features
    device = next(encoder.parameters()).device
    sums = np.zeros((len(mats), dim), dtype=np.float64)
    counts = np.zeros(len(mats), dtype=np.int64)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for group in (full, short):
                if group is short:                     # similar lengths together: less padding
                    group = sorted(group, key=lambda item: item[1].shape[0])
                for items in _batches(group, batch_windows, exact):
                    batch, lengths = pad_batch([m for _, m in items])
                    xb = torch.from_numpy(batch).to(device)
                    out = encoder.embed_raw(xb, torch.from_numpy(lengths))
                    if not raw:
                        out = torch.nn.functional.normalize(out, dim=1)
                    out = out.cpu()
                    idx = np.array([i for i, _ in items])
                    np.add.at(sums, idx, out.numpy().astype(np.float64))
                    np.add.at(counts, idx, 1)
    finally:
        encoder.train(was_training)
    mean = sums / counts[:, None]
    if not raw:
        mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    return mean.astype(np.float32)


def _batches(group, size, exact):
    """Consecutive runs of at most ``size`` items; with ``exact`` a run never mixes window lengths."""
    b = 0
    while b < len(group):
        e = min(b + size, len(group))
        if exact:
            T = group[b][1].shape[0]
            e = b + next((k for k, (_, m) in enumerate(group[b:e]) if m.shape[0] != T), e - b)
        yield group[b:e]
        b = e


def _embed_chunk(utts, model, loader, window, shift, raw):
    from spkrec.embeddings._torch import torch_threads
    with torch_threads(getattr(model, "num_threads", 1)):
        return embed_utterances(model.encoder_, [loader(u) for u in utts], window, shift, raw=raw)


def embed_with_loader(model, loader, utts, window=None, shift=None, raw=False, config=SERIAL, desc=None):
    """Embeddings ``(len(utts), E)`` of utterances read by ``loader(utt) -> (T, D)``, through ``map_chunks``."""
    window = model.window if window is None else int(window)
    shift = model.shift if shift is None else int(shift)
    parts = map_chunks(_embed_chunk, list(utts), config, desc=desc, model=model, loader=loader,
                       window=window, shift=shift, raw=raw)
    if not parts:
        return np.zeros((0, model.embed_dim), dtype=np.float32)
    return np.concatenate(parts)


def extract_embeddings(model, loader, out_dir, spk2utt=None, window=None, shift=None, config=SERIAL):
    """Write ``out_dir/embedding.ark/.scp`` (one unit vector per utterance of ``loader.utt_ids``) and, given
    ``spk2utt``, ``spk_embedding.ark/.scp`` (plain mean of each speaker's utterance embeddings, as Kaldi's
    ``ivector-mean``) and ``num_utts.ark``. Returns ``(utts, embeddings)``.
    """
    from spkrec.io.atomic import write_lines_atomic
    from spkrec.io.kaldi_io import write_vectors
    utts = list(loader.utt_ids)
    if not utts:
        raise SpkrecError("no utterances to embed; check the data dir's feats.scp")
    emb = embed_with_loader(model, loader, utts, window, shift, config=config, desc="extract-embeddings")
    os.makedirs(out_dir, exist_ok=True)
    write_vectors(os.path.join(out_dir, "embedding.ark"), os.path.join(out_dir, "embedding.scp"), zip(utts, emb))
    if spk2utt:
        row = {u: i for i, u in enumerate(utts)}
        spk_rows, counts = [], []
        for spk, members in spk2utt.items():
            idx = [row[u] for u in members if u in row]
            if idx:
                spk_rows.append((spk, emb[idx].mean(0, dtype=np.float64).astype(np.float32)))
                counts.append(f"{spk} {len(idx)}")
        if spk_rows:
            write_vectors(os.path.join(out_dir, "spk_embedding.ark"), os.path.join(out_dir, "spk_embedding.scp"),
                          spk_rows)
            write_lines_atomic(os.path.join(out_dir, "num_utts.ark"), counts)
    log.info("wrote %d embeddings of dimension %d to %s", len(utts), emb.shape[1], out_dir)
    return utts, emb
