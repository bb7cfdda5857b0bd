"""CNN speaker embeddings: training seconds per epoch and extraction real-time factor (CPU; GPU when present).

Usage: python benchmarks/cnn.py [--corpus data/so762-mini] [--epochs 1] [--archs resnet18,resnet34,vgg] [--work DIR]

Prepares the so762 corpus as a data dir and computes 40 log-mel filter banks (``spkrec.features.pipeline``,
no VAD: every frame is processed), then for the default model of ``spkrec train-cnn`` (thin ResNet-18,
8/16/32/64 channels, 4-head self-attentive pooling, 128-dim embedding, AAM-softmax, 2 s crops, 16 x 4
batches) measures:

* training seconds per epoch with 1 torch thread (and on CUDA when ``torch.cuda.is_available()``);
* extraction real-time factor (seconds of audio per wall-clock second; 300-frame windows) of the network
  alone on pre-loaded features, 1 torch thread, for each of ``--archs`` (untrained weights: the speed
  does not depend on them), and on CUDA when available;
* end to end through ``extract_embeddings`` (reading the ark, the network, writing ark/scp), ``--nj 1``.

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
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--archs", default="resnet18,resnet34,vgg,resnet50")
    p.add_argument("--work", default=None, help="scratch dir (default: a temporary one)")
    args = p.parse_args(argv)

    import torch
    from spkrec.embeddings import CNNEmbedder
    from spkrec.embeddings._torch import torch_threads
    from spkrec.embeddings.extract import embed_utterances, extract_embeddings
    from spkrec.features.pipeline import FeatureLoader, compute_features
    from spkrec.io.prepare import prepare_so762
    from spkrec.parallel import ParallelConfig

    work = args.work or tempfile.mkdtemp(prefix="spkrec_cnn_bench_")
    data = prepare_so762(args.corpus, os.path.join(work, "data"))
    t = time.time()
    compute_features(data.path, os.path.join(work, "fbank"), "fbank",
                     options={"num_mel_bins": 40, "dither": 0.0, "snip_edges": False})
    print(f"features: {time.time() - t:.1f} s", file=sys.stderr)
    loader = FeatureLoader(os.path.join(data.path, "feats.scp"), None, deltas_order=0, cmvn="none")
    utts = loader.utt_ids
    labels = [data.utt2spk[u] for u in utts]
    mats = [loader(u) for u in utts]
    audio_s = sum(m.shape[0] for m in mats) / 100.0
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    rows = []
    model = None
    for device in devices:
        m = CNNEmbedder(epochs=args.epochs, num_threads=1, val_fraction=0.1, device=device).fit(mats, labels)
        per_epoch = np.mean([h["seconds"] for h in m.history_])
        rows.append((f"training default CNN, {device}, 1 torch thread", f"{per_epoch:.1f} s/epoch",
                     f"{len(utts)} utts, loss {m.history_[-1]['loss']:.3f} after {args.epochs} epoch(s)"))
        model = model or m
    for arch in args.archs.split(","):
        enc = CNNEmbedder(arch=arch)._make_encoder(40).eval()
        n_params = sum(q.numel() for q in enc.parameters())
        for device in devices:
            enc.to(device)
            with torch_threads(1):
                embed_utterances(enc, mats[:8], 300, 300)                   # warm-up
                t = time.time()
                embed_utterances(enc, mats, 300, 300)
                if device == "cuda":
                    torch.cuda.synchronize()
                dt = time.time() - t
            rows.append((f"extraction, network only, {arch}, {device}" + (", 1 thread" if device == "cpu" else ""),
                         f"{audio_s / dt:.0f}x real time", f"{n_params / 1e6:.2f} M parameters; {audio_s:.0f} s "
                         f"of audio in {dt:.2f} s"))
        enc.cpu()
    t = time.time()
    extract_embeddings(model, loader, os.path.join(work, "emb"), data.spk2utt, config=ParallelConfig(nj=1))
    dt = time.time() - t
    rows.append(("extraction end to end (default CNN), --nj 1", f"{audio_s / dt:.0f}x real time",
                 f"{len(utts)} utts in {dt:.2f} s"))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs{', ' + torch.cuda.get_device_name() if 'cuda' in devices else ''}; "
          "default CNN: thin ResNet-18 (8 channels), 4-head attention, 128-dim, AAM-softmax; 40 log-mel input")
    print("| measurement | result | notes |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
