"""``export-system``, ``enroll``, ``verify``, ``identify-files``, ``make-data-dir``: a trained system on
your own recordings (see :mod:`spkrec.system`)."""
import json
import logging
import os

from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")


# ------------------------------------------------------------------------------------ export-system
def add_export(p):
    p.add_argument("--kind", required=True, choices=["gmm_ubm", "gsv_svm", "ivector", "rnn", "cnn", "hmm", "fusion"],
                   help="kind of system")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write (replaced if it exists)")
    p.add_argument("--name", default=None, help="system name shown in outputs (default: the --out folder's name)")
    g = p.add_argument_group("front end (what compute-feats and compute-vad used)")
    g.add_argument("--feat-type", default="mfcc", help="compute-feats --feat-type (default mfcc)")
    g.add_argument("--feat-config", default=None, metavar="CONF",
                   help="compute-feats --config file, e.g. conf/mfcc.conf (required but for a fusion; its "
                        "--sample-frequency sets the system's rate, default 16000)")
    v = g.add_mutually_exclusive_group()
    v.add_argument("--vad-config", default=None, metavar="CONF", help="compute-vad --config file, e.g. conf/vad.conf")
    v.add_argument("--no-vad", action="store_true", help="the models were trained without vad.scp")
    g.add_argument("--vad-feat-config", default=None, metavar="CONF",
                   help="when the VAD decided on other features than the model's (the recipes' CNN: log-mel banks "
                        "with the MFCC front end's VAD): the compute-feats --config of those, e.g. conf/mfcc.conf")
    g.add_argument("--vad-feat-type", default="mfcc", help="their --feat-type (default mfcc)")
    g = p.add_argument_group("gmm_ubm")
    g.add_argument("--ubm", default=None, help="diagonal UBM file, or a dir with final.ubm.npz (train-ubm)")
    g.add_argument("--relevance-factor", type=float, default=16.0, help="MAP relevance factor (default 16)")
    g.add_argument("--adapt", choices=["m", "mw", "mwv"], default="m", help="MAP-adapted parameters (default m)")
    g.add_argument("--top-c", type=int, default=5, help="Gaussians per frame in scoring; 0 = all (default 5)")
    g = p.add_argument_group("gsv_svm (also --ubm, --relevance-factor)")
    g.add_argument("--background-supervectors", default=None, metavar="SCP",
                   help="supervector.scp of the background speakers (extract-supervectors), as train-svm uses")
    g.add_argument("--svm-C", type=float, default=1.0, help="SVM soft-margin cost (train-svm --C; default 1)")
    g.add_argument("--svm-class-weight", choices=["balanced", "none"], default="balanced",
                   help="train-svm --class-weight (default balanced)")
    g = p.add_argument_group("ivector, rnn and cnn")
    g.add_argument("--extractor", default=None,
                   help="ivector: train-ivector-extractor dir (extractor.npz and final.ubm.npz)")
    g.add_argument("--rnn", default=None,
                   help="rnn / cnn: train-rnn or train-cnn dir (final.pt) or the .pt file (needs PyTorch)")
    g.add_argument("--scoring", choices=["plda", "cosine"], default=None,
                   help="back-end scoring (default: plda with --backend, else cosine)")
    g.add_argument("--backend", default=None, metavar="BACKEND.npz",
                   help="train-backend model: its PLDA (--scoring plda) or its transforms before cosine")
    g = p.add_argument_group("hmm (text-dependent; also --relevance-factor, --adapt as enroll-hmm)")
    g.add_argument("--hmm", default=None, help="speaker-independent phrase HMMs: hmms.npz or the train-hmm dir")
    g.add_argument("--hmm-method", choices=["forward", "viterbi"], default="forward",
                   help="score-hmm --method (default forward)")
    g.add_argument("--hmm-background", choices=["all", "claimed", "phrase"], default="all",
                   help="score-hmm --background (default all)")
    g = p.add_argument_group("score normalisation (any kind but fusion)")
    g.add_argument("--snorm-cohort", default=None, metavar="DATA_DIR",
                   help="normalise scores with this cohort (a data dir with feats.scp, vad.scp: e.g. the background "
                        "speakers): its speakers' models and single recordings are stored in the bundle")
    g.add_argument("--snorm-method", choices=["z", "t", "s", "as"], default="s",
                   help="as score-norm --method (default s: symmetric S-norm; as: adaptive)")
    g.add_argument("--snorm-top-n", type=int, default=200, help="cohort scores kept by --snorm-method as (default 200)")
    g = p.add_argument_group("fusion")
    g.add_argument("--component", action="append", default=[], metavar="BUNDLE",
                   help="a component system bundle (repeat, in the order of the fusion's weights)")
    g.add_argument("--fusion", default=None, metavar="FUSION.npz", help="the `spkrec fuse --model-out` file")
    g = p.add_argument_group("calibration and thresholds")
    g.add_argument("--calibration", default=None, metavar="CAL.npz",
                   help="LinearCalibration file (llr = scale * score + offset); default: uncalibrated")
    g.add_argument("--target-prior", type=float, default=None,
                   help="prior of the Bayes threshold -logit(p) (default: the calibration's, else 0.5)")
    g.add_argument("--eer-threshold-from", nargs=2, default=None, metavar=("SCORES", "TRIALS"),
                   help="also store the EER threshold measured on this system's scores of these trials")
    p.epilog = "Other --name=value options (e.g. --seed=0) are feature options, as for compute-feats."
    from spkrec.cli.features import _accept_feature_options
    _accept_feature_options(p)


def run_export(args):
    from spkrec.features.pipeline import resolve_options
    from spkrec.system import export_system
    feat = vad = None
    if args.kind != "fusion":   # a fusion takes its components' front end
        if args.feat_config is None:
            raise SpkrecError("give --feat-config, the option file compute-feats used "
                              "(e.g. conf/mfcc.conf), so the system computes the same features")
        if args.vad_config is None and not args.no_vad:
            raise SpkrecError("give --vad-config (the compute-vad option file, e.g. conf/vad.conf) "
                              "or --no-vad if the models were trained on all frames")
        feat = resolve_options(args.feat_config, args.extra_options)
        if args.vad_config:
            vad = resolve_options(args.vad_config)  # Kaldi names (--vad-energy-threshold) mapped by read_config
    vad_features = None
    if args.vad_feat_config:
        # the dither seed of the command line applies to them too (compute-feats --seed of both front ends)
        seed = {k: v for k, v in args.extra_options.items() if k == "seed"}
        vad_features = (args.vad_feat_type, resolve_options(args.vad_feat_config, seed))
    system = export_system(args.out, args.kind, ubm=args.ubm, extractor=args.extractor, rnn=args.rnn, backend=args.backend,
                           scoring=args.scoring, feat_type=args.feat_type, feat_options=feat, vad_options=vad,
                           relevance_factor=args.relevance_factor, adapt=args.adapt,
                           top_c=None if args.top_c == 0 else args.top_c,
                           background=args.background_supervectors, svm_C=args.svm_C,
                           svm_class_weight=None if args.svm_class_weight == "none" else "balanced",
                           components=args.component, fusion=args.fusion, snorm_cohort=args.snorm_cohort,
                           snorm_method=args.snorm_method, snorm_top_n=args.snorm_top_n,
                           calibration=args.calibration, target_prior=args.target_prior,
                           eer_from=args.eer_threshold_from, name=args.name, vad_features=vad_features,
                           hmm=args.hmm, hmm_method=args.hmm_method, hmm_background=args.hmm_background)
    log.info("wrote %s (%s, %s, default threshold %.4f)", args.out, system.kind,
             "calibrated" if system.calibrated else "uncalibrated", system.threshold)


# ------------------------------------------------------------------------------------ enroll
def _add_common(p, db_help):
    p.add_argument("system", metavar="SYSTEM", help="system bundle directory (spkrec export-system)")
    p.add_argument("db", metavar="SPEAKERS_DB", help=db_help)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def add_enroll(p):
    _add_common(p, "speaker database: a .npz file, or a directory (speakers.npz); created if missing")
    p.add_argument("--speaker", nargs="+", action="append", default=[], metavar=("NAME", "FILE"),
                   help="enrol NAME from FILE... (repeatable: --speaker alice a.wav b.wav --speaker bob c.wav)")
    p.add_argument("--from-dir", default=None, metavar="DIR", help="enrol every DIR/<speaker>/ folder's recordings")
    p.add_argument("--list", default=None, metavar="CSV", help="enrol from speaker,path lines")
    p.add_argument("--remove", action="append", default=[], metavar="NAME", help="remove a speaker (repeatable)")
    p.add_argument("--phrase", default=None,
                   help="text-dependent (hmm) systems: the pass-phrase the recordings say (one of the system's)")


def run_enroll(args):
    from spkrec.io.userdata import speakers_from_dir, speakers_from_list
    from spkrec.system import load_system
    sources = [x for x in (args.speaker or None, args.from_dir, args.list) if x is not None]
    if len(sources) > 1:
        raise SpkrecError("give only one of --speaker NAME FILE..., --from-dir DIR, --list CSV")
    if not sources and not args.remove:
        raise SpkrecError("nothing to do; give --speaker NAME FILE..., --from-dir DIR, --list CSV or --remove NAME")
    speakers = {}
    for name, *files in args.speaker:
        if not files:
            raise SpkrecError(f"speaker {name!r} has no audio files; write --speaker {name} FILE...")
        if name in speakers:
            raise SpkrecError(f"speaker {name!r} is given twice; give all of its files after one --speaker")
        speakers[name] = files
    system = load_system(args.system)
    db = system.load_db(args.db, create=True)
    for name in args.remove:
        db.check_speaker(name, args.db)
        db.remove(name)
    if args.from_dir:
        speakers = speakers_from_dir(args.from_dir)
    elif args.list:
        speakers = speakers_from_list(args.list)
    if speakers:
        system.enroll(speakers, db, phrase=args.phrase)
    db.save(args.db)
    for name in args.remove:
        print(json.dumps({"speaker": name, "status": "removed"}) if args.json else f"{name} removed")
    for name in speakers:
        if args.json:
            print(json.dumps({"speaker": name, "files": db.files(name), "status": "enrolled"}))
        else:
            print(f"{name} enrolled from {len(speakers[name])} file(s)")
    log.info("%s: %d speaker(s)", args.db, len(db))


# ------------------------------------------------------------------------------------ verify
def _add_threshold(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, help="decision threshold on the calibrated LLR")
    g.add_argument("--target-prior", type=float, default=None, help="use the Bayes threshold -logit(p) of this prior")


def add_verify(p):
    _add_common(p, "speaker database (spkrec enroll)")
    p.add_argument("speaker", metavar="NAME", help="the claimed speaker")
    p.add_argument("files", nargs="+", metavar="FILE", help="test recordings")
    _add_threshold(p)


def run_verify(args):
    from spkrec.system import load_system
    system = load_system(args.system)
    db = system.load_db(args.db)
    db.check_speaker(args.speaker, args.db)
    for f in args.files:
        r = system.verify(db, args.speaker, f, threshold=args.threshold, target_prior=args.target_prior)
        if args.json:
            print(json.dumps(r.to_dict()), flush=True)
        else:
            print(f"{r.file} {r.speaker} score {r.score:.4f} llr {r.llr:.4f} {r.decision}", flush=True)


# ------------------------------------------------------------------------------------ identify-files
def add_identify(p):
    _add_common(p, "speaker database (spkrec enroll)")
    p.add_argument("files", nargs="+", metavar="FILE", help="recordings to identify")
    p.add_argument("--top", type=int, default=5, help="speakers listed per file (default 5)")
    p.add_argument("--open-set", action="store_true",
                   help="answer 'unknown' when the best calibrated LLR is below the threshold")
    _add_threshold(p)


def run_identify(args):
    from spkrec.system import load_system
    system = load_system(args.system)
    db = system.load_db(args.db)
    for f in args.files:
        r = system.identify(db, f, top=args.top, open_set=args.open_set, threshold=args.threshold,
                            target_prior=args.target_prior)
        if args.json:
            print(json.dumps({"file": r.file, "top": r.top, "decision": r.decision}), flush=True)
        else:
            best = "  ".join(f"{t['speaker']} {t['score']:.4f} {t['llr']:.4f}" for t in r.top)
            print(f"{r.file} {r.decision}  {best}", flush=True)


# ------------------------------------------------------------------------------------ make-data-dir
def add_make_data_dir(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--from-dir", default=None, metavar="DIR", help="one folder per speaker: DIR/<speaker>/...")
    g.add_argument("--from-list", default=None, metavar="CSV", help="speaker,path lines")
    p.add_argument("out", metavar="OUT_DATA_DIR", help="data dir to write (wav.scp, utt2spk, spk2utt)")


def run_make_data_dir(args):
    from spkrec.io.userdata import make_data_dir, speakers_from_dir, speakers_from_list
    speakers = speakers_from_dir(args.from_dir) if args.from_dir else speakers_from_list(args.from_list)
    data = make_data_dir(speakers, args.out)
    log.info("wrote %s: %d speakers, %d utterances", args.out, len(speakers), len(data.utts))


COMMANDS = {
    "export-system": (add_export, run_export),
    "enroll": (add_enroll, run_enroll),
    "verify": (add_verify, run_verify),
    "identify-files": (add_identify, run_identify),
    "make-data-dir": (add_make_data_dir, run_make_data_dir),
}
