"""Data-dir verbs: ``prepare-data``, ``validate-data-dir``, ``subset-data-dir``, ``make-trials``."""
import logging
import sys

from spkrec.cli.common import add_parallel_args, positive_int

log = logging.getLogger("spkrec")


def _prepare_args(p):
    p.add_argument("corpus", choices=["timit", "so762", "librispeech", "voxceleb1", "fsdd"], help="corpus layout")
    p.add_argument("src", help="corpus directory")
    p.add_argument("dest", help="data dir to write (wav.scp, utt2spk, spk2utt, spk2gender)")
    p.add_argument("--trials", default=None,
                   help="voxceleb1: official trial list (e.g. veri_test2.txt), converted to DEST/trials")
    p.add_argument("--sets", default=None,
                   help="timit: comma-separated sets to include: train, test or train,test "
                        "(default: all present)")


def _prepare_run(args):
    from spkrec.io.prepare import prepare_corpus
    sets = [s for s in args.sets.split(",") if s] if args.sets else None
    data = prepare_corpus(args.corpus, args.src, args.dest, trials_path=args.trials, sets=sets)
    log.info("%s: %d utterances, %d speakers", data.path, len(data.utt2spk), len(data.spk2utt))
    return 0


def _validate_args(p):
    p.add_argument("data", help="data dir")
    p.add_argument("--no-check-audio", action="store_true", help="skip opening every audio file")
    p.add_argument("--decode", action="store_true",
                   help="decode every audio file completely (finds truncated FLAC and NaN/inf samples; "
                        "slower, runs in --nj jobs)")
    add_parallel_args(p)


def _validate_run(args):
    from spkrec.io.datadir import validate_data_dir
    warnings = []
    problems = validate_data_dir(args.data, check_audio=not args.no_check_audio, nj=args.nj,
                                 warnings=warnings, decode=args.decode)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for p in problems:
        print(p)
    if problems:
        print(f"spkrec validate-data-dir: {len(problems)} problem(s) in {args.data}", file=sys.stderr)
        return 1
    log.info("%s: OK", args.data)
    return 0


def _subset_args(p):
    p.add_argument("data", help="source data dir")
    p.add_argument("out", help="destination data dir")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--spk-list", help="file with one speaker id per line")
    g.add_argument("--utt-list", help="file with one utterance id per line")
    g.add_argument("--first-utts-per-spk", type=positive_int, metavar="N",
                   help="first N utterances (sorted) of each speaker")
    g.add_argument("--last-utts-per-spk", type=positive_int, metavar="N",
                   help="last N utterances (sorted) of each speaker")


def _subset_run(args):
    from spkrec.io.datadir import read_table, subset_data_dir
    utts = spks = None
    if args.utt_list:
        utts = list(read_table(args.utt_list, 1, None, "utterance list"))
    if args.spk_list:
        spks = list(read_table(args.spk_list, 1, None, "speaker list"))
    data = subset_data_dir(args.data, args.out, utts=utts, spks=spks, first_per_spk=args.first_utts_per_spk,
                           last_per_spk=args.last_utts_per_spk)
    log.info("%s: %d utterances, %d speakers", data.path, len(data.utt2spk), len(data.spk2utt))
    return 0


def _trials_args(p):
    p.add_argument("data", help="data dir to split")
    p.add_argument("enroll_dir", help="enrolment data dir to write")
    p.add_argument("test_dir", help="test data dir to write")
    p.add_argument("trials", help="trials file to write (<spk> <test-utt> target|nontarget)")
    p.add_argument("--num-enroll", type=positive_int, default=3, help="enrolment utterances per speaker (default 3)")
    p.add_argument("--num-test", type=positive_int, default=None,
                   help="test utterances per speaker (default: all the rest)")
    p.add_argument("--skip-short", action="store_true",
                   help="leave out (with a warning) speakers with fewer than --num-enroll + 1 utterances")


def _trials_run(args):
    from spkrec.io.trials import make_trials
    rows = make_trials(args.data, args.enroll_dir, args.test_dir, args.trials, num_enroll=args.num_enroll,
                       num_test=args.num_test, skip_short=args.skip_short)
    log.info("%s: %d trials (%d target)", args.trials, len(rows), sum(1 for r in rows if r[2]))
    return 0


def _folds_args(p):
    p.add_argument("data", help="background data dir (utt2spk)")
    p.add_argument("out_dir", help="writes OUT_DIR/fold<k>/{train,enroll,test,test/trials}")
    p.add_argument("--num-folds", type=int, default=4, help="number of speaker folds (default 4)")
    p.add_argument("--num-enroll", type=positive_int, default=3,
                   help="enrolment utterances per speaker in each fold's trials (default 3)")
    p.add_argument("--rotations", type=positive_int, default=1,
                   help="models per speaker in each fold, enrolled on rotating windows of its utterances "
                        "(default 1: one model, its first --num-enroll utterances); more give more trials")


def _folds_run(args):
    from spkrec.io.trials import make_folds
    folds = make_folds(args.data, args.out_dir, num_folds=args.num_folds, num_enroll=args.num_enroll,
                       rotations=args.rotations)
    for d, rows in folds:
        log.info("%s: %d trials (%d target)", d, len(rows), sum(1 for r in rows if r[2]))
    return 0


def _combine_args(p):
    p.add_argument("out", help="destination data dir")
    p.add_argument("sources", nargs="+", help="data dirs to combine")


def _combine_run(args):
    from spkrec.io.datadir import combine_data_dirs
    data = combine_data_dirs(args.out, args.sources)
    log.info("%s: %d utterances, %d speakers", data.path, len(data.utt2spk), len(data.spk2utt))
    return 0


COMMANDS = {
    "combine-data-dirs": (_combine_args, _combine_run),
    "prepare-data": (_prepare_args, _prepare_run),
    "validate-data-dir": (_validate_args, _validate_run),
    "subset-data-dir": (_subset_args, _subset_run),
    "make-trials": (_trials_args, _trials_run),
    "make-folds": (_folds_args, _folds_run),
}
