"""``spkrec train-rnn``, ``spkrec extract-embeddings`` (RNN and CNN models) and ``spkrec classify-rnn`` (need the [rnn] extra).

PyTorch is imported only when a verb runs; without it the verb exits with status 1 and the install hint.
"""
import json
import logging
import os

from spkrec.cli.common import (add_feature_args, add_parallel_args, command_options, feature_loader,
                               feature_options, finite_float, fraction, parallel_config, positive_float,
                               positive_int)
from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")

MODEL_FILE = "final.pt"


def _labels(data, utts):
    from spkrec.io.datadir import DataDir
    utt2spk = DataDir(data).utt2spk
    missing = [u for u in utts if u not in utt2spk]
    if missing:
        raise SpkrecError(f"{os.path.join(data, 'utt2spk')}: utterance {missing[0]!r} of feats.scp has no speaker "
                          f"({len(missing)} such); fix utt2spk or recompute features")
    return [utt2spk[u] for u in utts]


def _model_args(p, for_classifier=False):
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=["lstm", "gru"], default="lstm", help="recurrent cell (default lstm)")
    g.add_argument("--layers", type=positive_int, default=2, help="recurrent layers, 1-3 (default 2)")
    g.add_argument("--hidden", type=positive_int, default=128, help="units per layer and direction (default 128)")
    g.add_argument("--bidirectional", action="store_true", help="bidirectional recurrent layers")
    g.add_argument("--pooling", choices=["mean", "last", "attentive"], default="mean",
                   help="temporal pooling: masked mean, last state, attentive statistics (default mean)")
    g.add_argument("--embed-dim", type=positive_int, default=128, help="embedding dimension (default 128)")
    t = p.add_argument_group("training")
    if not for_classifier:
        t.add_argument("--loss", choices=["softmax", "triplet", "contrastive", "ge2e"], default="softmax",
                       help="training objective (default softmax)")
        t.add_argument("--margin", type=finite_float, default=None,
                       help="triplet (default 0.2) / contrastive (1.0) margin")
        t.add_argument("--val-fraction", type=fraction, default=0.1,
                       help="fraction of the speakers held out for the validation EER per epoch (default 0.1)")
    t.add_argument("--epochs", type=positive_int, default=10 if not for_classifier else 30,
                   help=f"training epochs (default {10 if not for_classifier else 30})")
    t.add_argument("--crop-frames", type=positive_int, default=200, help="random crop length in frames (default 200)")
    t.add_argument("--batch-speakers", type=positive_int, default=16, help="speakers per batch N (default 16)")
    t.add_argument("--batch-utts", type=positive_int, default=4, help="utterances per speaker per batch M (default 4)")
    t.add_argument("--batches-per-epoch", type=positive_int, default=None,
                   help="batches per epoch (default: visit every training utterance about once)")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 0.001)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--num-threads", type=positive_int, default=1,
                   help="torch threads for training and embedding (default 1; parallelise with --nj)")
    t.add_argument("--window", type=positive_int, default=200, help="extraction window in frames (default 200)")
    t.add_argument("--shift", type=positive_int, default=100, help="extraction window shift in frames (default 100)")


def _params(args, for_classifier=False):
    params = dict(cell=args.cell, num_layers=args.layers, hidden_size=args.hidden,
                  bidirectional=args.bidirectional, pooling=args.pooling, embed_dim=args.embed_dim,
                  epochs=args.epochs, crop_frames=args.crop_frames,
                  batch_speakers=args.batch_speakers, batch_utts=args.batch_utts,
                  batches_per_epoch=args.batches_per_epoch, lr=args.lr, random_state=args.seed,
                  num_threads=args.num_threads, window=args.window, shift=args.shift)
    if not for_classifier:
        params.update(loss=args.loss, margin=args.margin, val_fraction=args.val_fraction)
    return params


# ---------------------------------------------------------------------------------------------- train-rnn

def add_train(p):
    _model_args(p)
    add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("--no-resume", action="store_true", help="start again even if OUT_DIR has a checkpoint")
    p.add_argument("data", metavar="DATA", help="training data dir with feats.scp [vad.scp] utt2spk")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help="writes final.pt, checkpoint.pt (each epoch), loss_curve.png, history.json")


def run_train(args):
    from spkrec.embeddings._torch import require_torch
    require_torch()
    from spkrec.embeddings.train import RNNEmbedder
    return train_embedder(RNNEmbedder(**_params(args)), args, feature_options(args))


def train_embedder(model, args, opts):
    """train-rnn / train-cnn: fit ``model`` on ``args.data`` (features ``opts``) with checkpoints in
    ``args.out_dir``, then write final.pt and history.json there."""
    loader = feature_loader(args.data, opts, command_options(args))
    utts = loader.utt_ids
    model.meta_ = {"features": opts}
    model.fit(utts, _labels(args.data, utts), loader=loader, checkpoint_dir=args.out_dir,
              resume=not args.no_resume, config=parallel_config(args))
    model.save(os.path.join(args.out_dir, MODEL_FILE))
    from spkrec.io.atomic import write_text_atomic
    write_text_atomic(os.path.join(args.out_dir, "history.json"), json.dumps(model.history_, indent=1) + "\n")
    last = model.history_[-1] if model.history_ else None
    if last:
        log.info("trained %d epochs: final loss %.4f%s; model in %s", last["epoch"], last["loss"],
                 "" if last["val_eer"] is None else f", validation EER {100 * last['val_eer']:.2f} %",
                 os.path.join(args.out_dir, MODEL_FILE))
    return 0


# ---------------------------------------------------------------------------------------- extract-embeddings

def add_extract(p):
    p.add_argument("--window", type=positive_int, default=None, help="window in frames (default: the model's, 200)")
    p.add_argument("--shift", type=positive_int, default=None, help="window shift in frames (default: the model's, 100)")
    add_feature_args(p, "the model")
    add_parallel_args(p)
    p.add_argument("model", metavar="MODEL_DIR", help="train-rnn or train-cnn output dir (or its final.pt)")
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp [vad.scp] [utt2spk]")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help="writes embedding.ark/.scp, spk_embedding.ark/.scp, num_utts.ark")


def run_extract(args):
    from spkrec.embeddings._torch import require_torch
    require_torch()
    from spkrec.embeddings.cnn import load_embedder
    from spkrec.embeddings.extract import extract_embeddings
    from spkrec.io.datadir import DataDir
    path = os.path.join(args.model, MODEL_FILE) if os.path.isdir(args.model) else args.model
    model = load_embedder(path)
    loader = feature_loader(args.data, feature_options(args, model.meta_.get("features")), command_options(args))
    if loader.dim != model.encoder_.input_dim:
        raise SpkrecError(f"{loader.feats_scp}: features have {loader.dim} dimensions (after deltas) but the model "
                          f"{path} takes {model.encoder_.input_dim}; use the training features and options")
    data = DataDir(args.data)
    spk2utt = data.spk2utt if data.has("utt2spk") else None
    extract_embeddings(model, loader, args.out_dir, spk2utt, args.window, args.shift, parallel_config(args))
    return 0


# ---------------------------------------------------------------------------------------------- classify-rnn

def add_classify(p):
    _model_args(p, for_classifier=True)
    add_feature_args(p)
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
    return classify_embedder(args, feature_options(args), _params(args, for_classifier=True), "classify-rnn")


def classify_embedder(args, opts, params, verb, embedder=None):
    """classify-rnn / classify-cnn: train the closed-set classifier on ENROLL, score TEST, report top-k."""
    from spkrec.embeddings.classify import classify_closed_set, identification_report
    from spkrec.io.datadir import DataDir
    from spkrec.io.scores import write_scores
    commands = command_options(args)
    enroll_loader, test_loader = feature_loader(args.enroll, opts, commands), feature_loader(args.test, opts, commands)
    enroll_utts = enroll_loader.utt_ids
    model, rows = classify_closed_set(enroll_utts, _labels(args.enroll, enroll_utts), test_loader.utt_ids,
                                      enroll_loader=enroll_loader, test_loader=test_loader,
                                      config=parallel_config(args), checkpoint_dir=args.model_dir,
                                      embedder=embedder, **params)
    write_scores(args.scores, rows)
    if args.model_dir:
        model.meta_ = {"features": opts}
        model.save(os.path.join(args.model_dir, MODEL_FILE))
    test = DataDir(args.test)
    if test.has("utt2spk"):
        utt2spk = {u: test.utt2spk[u] for u in test_loader.utt_ids if u in test.utt2spk}
        if set(utt2spk.values()) <= set(model.classes_) and len(utt2spk) == len(test_loader.utt_ids):
            top1, topk, k = identification_report(rows, utt2spk, args.top_k, what=args.scores)
            print(f"{verb}: {len(utt2spk)} test utterances, {len(model.classes_)} speakers: "
                  f"top-1 {100 * top1:.2f} %, top-{k} {100 * topk:.2f} %")
            if args.confusion:
                from spkrec.eval.identification import confusion_matrix, identification_scores
                from spkrec.eval.plots import plot_confusion
                matrix, true_idx = identification_scores(rows, utt2spk, list(model.classes_), what=args.scores)
                plot_confusion(confusion_matrix(matrix, true_idx), list(model.classes_), args.confusion)
        else:
            log.warning("%s: some test speakers are not enrolled (open set); top-k accuracy not reported", args.test)
    log.info("wrote %s (%d scores)", args.scores, len(rows))
    return 0


COMMANDS = {
    "train-rnn": (add_train, run_train),
    "extract-embeddings": (add_extract, run_extract),
    "classify-rnn": (add_classify, run_classify),
}
