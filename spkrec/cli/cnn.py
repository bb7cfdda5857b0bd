"""``spkrec train-cnn``, ``spkrec classify-cnn`` (need the [rnn] extra) and ``spkrec identify-knn`` (no PyTorch).

CNN models are extracted with ``spkrec extract-embeddings`` (which reads RNN and CNN models alike).
Features: log-mel filter banks (``compute-feats --feat-type fbank``); the CNN verbs default to
``--deltas-order 0 --cmvn none`` (the encoder removes each window's mean itself).
"""
import json
import logging
import os

from spkrec.cli.common import (add_feature_args, add_parallel_args, command_options, feature_loader,
                               feature_options, finite_float, fraction, parallel_config, positive_float,
                               positive_int, probability)
from spkrec.cli.rnn import MODEL_FILE, classify_embedder, train_embedder
from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")

CNN_FEATURES = {"deltas_order": 0, "cmvn": "none"}


def _model_args(p, for_classifier=False):
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=["vgg", "resnet18", "resnet34", "resnet50"], default="resnet18",
                   help="CNN: VGG-like, thin ResNet-18/34, ResNet-50 (bottlenecks) (default resnet18)")
    g.add_argument("--channels", type=positive_int, default=8,
                   help="channels of the first stage, doubled in each of the 3 others (default 8: thin)")
    g.add_argument("--pooling", choices=["avg", "stats", "attention"], default="attention",
                   help="temporal pooling: average, mean+std, multi-head self-attention (default attention)")
    g.add_argument("--heads", type=positive_int, default=4, help="attention heads (default 4)")
    g.add_argument("--embed-dim", type=positive_int, default=128, help="embedding dimension (default 128)")
    g.add_argument("--no-cmn", action="store_true", help="no per-window mean normalisation inside the encoder")
    t = p.add_argument_group("training")
    t.add_argument("--loss", choices=["aam", "softmax", "triplet", "contrastive", "ge2e"],
                   default="softmax" if for_classifier else "aam",
                   help=f"training objective (default {'softmax' if for_classifier else 'aam'})")
    t.add_argument("--margin", type=finite_float, default=None, help="AAM (default 0.2) / triplet / contrastive margin")
    if not for_classifier:
        t.add_argument("--val-fraction", type=fraction, default=0.1,
                       help="fraction of the speakers held out for the validation EER per epoch (default 0.1)")
    t.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default 10)")
    t.add_argument("--crop-frames", type=positive_int, default=200, help="random crop length in frames (default 200)")
    t.add_argument("--batch-speakers", type=positive_int, default=16, help="speakers per batch N (default 16)")
    t.add_argument("--batch-utts", type=positive_int, default=4, help="utterances per speaker per batch M (default 4)")
    t.add_argument("--batches-per-epoch", type=positive_int, default=None,
                   help="batches per epoch (default: visit every training utterance about once)")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 0.001)")
    t.add_argument("--babble", type=probability, default=0.0,
                   help="probability that a crop gets babble from other training utterances (default 0)")
    t.add_argument("--babble-utts", type=positive_int, default=3, help="utterances summed into the babble (default 3)")
    t.add_argument("--babble-snr", type=finite_float, nargs=2, default=(5.0, 20.0), metavar=("LOW", "HIGH"),
                   help="babble SNR range in dB (default 5 20)")
    t.add_argument("--speed", type=probability, default=0.0,
                   help="probability that a crop is speed (tempo) perturbed (default 0)")
    t.add_argument("--speed-factors", type=positive_float, nargs="+", default=(0.9, 1.1),
                   help="speed factors to draw from (default 0.9 1.1)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="training device (default auto: CUDA when available)")
    t.add_argument("--warm-start", metavar="MODEL", default=None,
                   help="start from the encoder of this train-cnn model (dir or final.pt; same architecture)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--num-threads", type=positive_int, default=1, help="torch threads (default 1)")
    t.add_argument("--window", type=positive_int, default=300, help="extraction window in frames (default 300)")
    t.add_argument("--shift", type=positive_int, default=300, help="extraction window shift in frames (default 300)")


def _warm_path(args):
    warm = args.warm_start
    return os.path.join(warm, MODEL_FILE) if warm and os.path.isdir(warm) else warm


def _params(args, for_classifier=False):
    warm = _warm_path(args)
    params = dict(arch=args.arch, channels=args.channels, pooling=args.pooling, heads=args.heads,
                  embed_dim=args.embed_dim, cmn=not args.no_cmn, loss=args.loss, margin=args.margin,
                  epochs=args.epochs, crop_frames=args.crop_frames, batch_speakers=args.batch_speakers,
                  batch_utts=args.batch_utts, batches_per_epoch=args.batches_per_epoch, lr=args.lr,
                  babble=args.babble, babble_utts=args.babble_utts, babble_snr=tuple(args.babble_snr),
                  speed=args.speed, speed_factors=tuple(args.speed_factors), device=args.device,
                  warm_start=warm, random_state=args.seed, num_threads=args.num_threads,
                  window=args.window, shift=args.shift)
    if not for_classifier:
        params["val_fraction"] = args.val_fraction
    return params


def _add_feature_args(p):
    add_feature_args(p)
    for action in p._actions:                 # the CNN's own defaults, in the help
        if action.dest == "deltas_order":
            action.help = "delta order (default: the --warm-start model's, else 0)"
        elif action.dest == "cmvn":
            action.help = "feature normalisation (default: the --warm-start model's, else none: the encoder removes the mean)"


def _feature_opts(args):
    stored = CNN_FEATURES
    if args.warm_start:                      # the warm-start model's features, unless given
        from spkrec.embeddings.cnn import CNNEmbedder
        stored = CNNEmbedder.load(_warm_path(args)).meta_.get("features", CNN_FEATURES)
    return feature_options(args, stored)


# ---------------------------------------------------------------------------------------------- train-cnn

def add_train(p):
    _model_args(p)
    _add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("--no-resume", action="store_true", help="start again even if OUT_DIR has a checkpoint")
    p.add_argument("data", metavar="DATA", help="training data dir with fbank feats.scp [vad.scp] utt2spk")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help="writes final.pt, checkpoint.pt (each epoch), loss_curve.png, history.json")


def run_train(args):
    from spkrec.embeddings._torch import require_torch
    require_torch()
    from spkrec.embeddings.cnn import CNNEmbedder
    return train_embedder(CNNEmbedder(**_params(args)), args, _feature_opts(args))


# ---------------------------------------------------------------------------------------------- classify-cnn

def add_classify(p):
    _model_args(p, for_classifier=True)
    _add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("--top-k", type=positive_int, default=5, help="also report top-k accuracy (default 5)")
    p.add_argument("--confusion", metavar="PNG", default=None, help="write the confusion-matrix image here")
    p.add_argument("--model-dir", default=None, help="keep the classifier, its checkpoint and loss curve here")
    p.add_argument("enroll", metavar="ENROLL_DATA", help="enrolment data dir (feats.scp [vad.scp] utt2spk)")
    p.add_argument("test", metavar="TEST_DATA", help="test data dir (feats.scp [vad.scp] [utt2spk])")
    p.add_argument("scores", metavar="OUT_SCORES", help="score file '<spk> <test-utt> <log-posterior>'")


def run_classify(args):
    from spkrec.embeddings._torch import require_torch
    require_torch()
    from spkrec.embeddings.cnn import CNNEmbedder
    return classify_embedder(args, _feature_opts(args), _params(args, for_classifier=True), "classify-cnn",
                             embedder=CNNEmbedder)


# ---------------------------------------------------------------------------------------------- identify-knn

def add_knn(p):
    p.add_argument("-k", "--k", type=positive_int, default=5, help="neighbours that vote (default 5)")
    p.add_argument("--weights", choices=["majority", "distance"], default="majority",
                   help="one vote per neighbour, or 1/(cosine distance) (default majority)")
    p.add_argument("--index", choices=["sklearn", "faiss", "auto"], default="sklearn",
                   help="neighbour search: sklearn NearestNeighbors (cosine), faiss (if installed), auto")
    p.add_argument("--test-utt2spk", default=None, help="utt2spk of the test utterances: print top-1/top-k accuracy")
    p.add_argument("--top-k", type=positive_int, default=5, help="k of the top-k accuracy (default 5)")
    p.add_argument("--neighbours", metavar="FILE", default=None,
                   help="also write '<test-utt> <enroll-utt>:<cosine> ...' (the k nearest) here")
    p.add_argument("--json", action="store_true", help="print the accuracy as one JSON object")
    p.add_argument("enroll", metavar="ENROLL_SCP", help="embedding.scp (or ivector.scp) of the enrolled utterances")
    p.add_argument("enroll_utt2spk", metavar="ENROLL_UTT2SPK", help="utt2spk of the enrolled utterances")
    p.add_argument("test", metavar="TEST_SCP", help="embedding.scp of the test utterances")
    p.add_argument("scores", metavar="OUT_SCORES",
                   help="'<spk> <test-utt> <vote>' for every enrolled speaker and test utterance")


def run_knn(args):
    from spkrec.cli.eval import _read_utt2spk
    from spkrec.embeddings.knn import knn_identify, nearest
    from spkrec.io.atomic import write_lines_atomic
    from spkrec.io.kaldi_io import read_vectors
    from spkrec.io.scores import write_scores
    e_keys, E = read_vectors(args.enroll)
    t_keys, X = read_vectors(args.test)
    utt2spk = _read_utt2spk(args.enroll_utt2spk)
    missing = [u for u in e_keys if u not in utt2spk]
    if missing:
        raise SpkrecError(f"{args.enroll_utt2spk}: enrolled utterance {missing[0]!r} of {args.enroll} has no speaker "
                          f"({len(missing)} such); give the utt2spk of the enrolment data")
    scores, speakers = knn_identify(E, [utt2spk[u] for u in e_keys], X, args.k, args.weights, args.index)
    write_scores(args.scores, [(s, t, float(scores[i, j])) for i, t in enumerate(t_keys)
                               for j, s in enumerate(speakers)])
    if args.neighbours:
        sim, idx = nearest(E, X, args.k, args.index)
        write_lines_atomic(args.neighbours, [t + " " + " ".join(f"{e_keys[j]}:{s:.6f}" for s, j in zip(sim[i], idx[i]))
                                             for i, t in enumerate(t_keys)])
    if args.test_utt2spk:
        import numpy as np
        test_spk = _read_utt2spk(args.test_utt2spk)
        col = {s: j for j, s in enumerate(speakers)}
        known = [i for i, t in enumerate(t_keys) if test_spk.get(t) in col]
        if len(known) < len(t_keys):
            log.warning("%d test utterances have no enrolled speaker (or no utt2spk line): not counted",
                        len(t_keys) - len(known))
        if not known:
            raise SpkrecError(f"{args.test_utt2spk}: no test utterance belongs to an enrolled speaker")
        from spkrec.eval.identification import top_k_accuracy
        true = np.array([col[test_spk[t_keys[i]]] for i in known])
        k = min(args.top_k, len(speakers))
        result = {"top1": top_k_accuracy(scores[known], true, 1), "topk": top_k_accuracy(scores[known], true, k),
                  "top_k": k, "k": args.k,
                  "num_test": len(known), "num_speakers": len(speakers)}
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            print(f"identify-knn: {len(known)} test utterances, {len(speakers)} speakers, k={args.k} "
                  f"({args.weights}): top-1 {100 * result['top1']:.2f} %, top-{k} {100 * result['topk']:.2f} %")
    log.info("wrote %s (%d scores)", args.scores, scores.size)
    return 0


COMMANDS = {
    "train-cnn": (add_train, run_train),
    "classify-cnn": (add_classify, run_classify),
    "identify-knn": (add_knn, run_knn),
}
