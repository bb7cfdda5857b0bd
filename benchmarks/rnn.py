"""RNN speaker embeddings: training seconds per epoch and extraction real-time factor (default model).

Usage: python benchmarks/rnn.py [--corpus data/so762-mini] [--epochs 2] [--work DIR]

Prepares the so762 corpus as a data dir, computes 20-dim MFCC + energy VAD (``spkrec.features.pipeline``),
then, for the default model of ``spkrec train-rnn`` (2-layer LSTM, 128 units, mean pooling, 128-dim
embedding, softmax loss, 2 s crops, 16 x 4 batches, inputs 60-dim MFCC + deltas after sliding CMN):

* training seconds per epoch with 1 and 2 torch threads;
* extraction real-time factor (seconds of audio per wall-clock second; 200-frame windows every 100
  frames) of the network alone on pre-loaded features (1 and 2 torch threads), and end to end through
  ``extract_embeddings`` (reading the ark, deltas, CMVN, VAD, the network, writing ark/scp) with
  ``--nj 1`` and ``--nj 2`` (processes, one torch thread each).

Prints a Markdown table. On a busy machine the numbers are noisy; say so when reporting them.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "data", "so762-mini"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--work", default=None, help="scratch dir (default: a temporary one)")
    args = p.parse_args(argv)

    import torch
    from spkrec.embeddings import RNNEmbedder
    from spkrec.embeddings.extract import embed_utterances, extract_embeddings
    from spkrec.embeddings._torch import torch_threads
    from spkrec.features.pipeline import FeatureLoader, compute_features, compute_vad
    from spkrec.io.prepare import prepare_so762
    from spkrec.parallel import ParallelConfig

    work = args.work or tempfile.mkdtemp(prefix="spkrec_rnn_bench_")
    data = prepare_so762(args.corpus, os.path.join(work, "data"))
    t = time.time()
    compute_features(data.path, os.path.join(work, "mfcc"), "mfcc", options={"num_ceps": 20, "dither": 0.0})
    compute_vad(data.path)
    print(f"features: {time.time() - t:.1f} s", file=sys.stderr)
    loader = FeatureLoader(os.path.join(data.path, "feats.scp"), os.path.join(data.path, "vad.scp"))
    utts = loader.utt_ids
    labels = [data.utt2spk[u] for u in utts]
    mats = [loader(u) for u in utts]
    num_frames_all = sum(loader.raw(u).shape[0] for u in utts)        # audio duration, 10 ms frames
    audio_s = num_frames_all / 100.0
    voiced_s = sum(m.shape[0] for m in mats) / 100.0

    rows = []
    for threads in (1, 2):
        model = RNNEmbedder(epochs=args.epochs, num_threads=threads, val_fraction=0.1)
        t = time.time()
        model.fit(mats, labels)
        per_epoch = np.mean([h["seconds"] for h in model.history_])
        rows.append((f"training, {threads} torch thread(s)", f"{per_epoch:.1f} s/epoch",
                     f"{len(utts)} utts, {model.history_[-1]['loss']:.3f} final loss"))
    for threads in (1, 2):
        with torch_threads(threads):
            embed_utterances(model.encoder_, mats[:8])                  # warm-up
            t = time.time()
            embed_utterances(model.encoder_, mats)
            dt = time.time() - t
        rows.append((f"extraction, network only, {threads} torch thread(s)", f"{audio_s / dt:.0f}x real time",
                     f"{voiced_s:.0f} s voiced of {audio_s:.0f} s audio in {dt:.2f} s"))
    for nj in (1, 2):
        model.num_threads = 1
        t = time.time()
        extract_embeddings(model, loader, os.path.join(work, f"emb{nj}"), data.spk2utt,
                           config=ParallelConfig(nj=nj))
        dt = time.time() - t
        rows.append((f"extraction end to end, --nj {nj}", f"{audio_s / dt:.0f}x real time",
                     f"{len(utts)} utts in {dt:.2f} s"))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; default model: 2-layer LSTM 128, mean pooling, "
          "128-dim embedding, softmax loss; 60-dim MFCC+deltas input")
    print("| measurement | result | notes |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
