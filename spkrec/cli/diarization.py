"""``spkrec diarize | score-diarization | train-diarization-backend | simulate-conversations``: who spoke
when, its DER, a back end trained on windows, and simulated conversations to develop it on."""
import json
import os

from spkrec.cli.common import finite_float, fraction, nonneg_float, nonneg_int, positive_float, positive_int
from spkrec.errors import SpkrecError


# ---------------------------------------------------------------- diarize
def add_diarize_args(parser):
    parser.add_argument("system", help="an i-vector or RNN system bundle (spkrec export-system)")
    parser.add_argument("files", nargs="*", help="audio files; the recording id is the file name without extension")
    parser.add_argument("--scp", help="or a wav.scp-style list '<recording-id> <path>'")
    parser.add_argument("--rttm", required=True, help="output RTTM file")
    parser.add_argument("--num-speakers", type=positive_int, help="number of speakers (default: by threshold)")
    parser.add_argument("--num-speakers-file",
                        help="'<recording-id> <number of speakers>' lines (reco2num_spk): each recording's known count")
    parser.add_argument("--merge-threshold", type=finite_float,
                        help="after AHC, merge clusters while their cluster-level PLDA LLR is at least this "
                             "(default: the bundle's diarization.json, else no merging)")
    parser.add_argument("--threshold", type=finite_float,
                        help="clustering stop score (default: the bundle's diarization.json, else -0.1 cosine / 0 PLDA)")
    parser.add_argument("--window", type=positive_float, help="window length in seconds (default 1.5)")
    parser.add_argument("--shift", type=positive_float, help="window shift in seconds (default 0.25)")
    parser.add_argument("--scoring", choices=["cosine", "plda", "auto"],
                        help="window scoring (default: the bundle's diarization.json, else cosine)")
    parser.add_argument("--min-cluster", type=nonneg_float,
                        help="seconds: smaller clusters are merged into their nearest (default 2; 0: keep all)")
    parser.add_argument("--vbx", action="store_true", default=None,
                        help="VB-HMM (VBx) clustering started from the AHC labels (PLDA bundles)")
    parser.add_argument("--clustering", choices=["ahc", "spectral"], help="clustering (default ahc)")
    parser.add_argument("--resegment", action="store_true", default=None,
                        help="GMM resegmentation of the frames after clustering")


def _recordings(args):
    items = []
    if args.scp:
        from spkrec.io.datadir import read_table
        items += list(read_table(args.scp, min_fields=2, max_fields=2, what="wav.scp").items())
    items += [(os.path.splitext(os.path.basename(f))[0], f) for f in args.files]
    if not items:
        raise SpkrecError("no audio files given; name files or --scp LIST")
    seen = {}
    for rid, path in items:
        if rid in seen and seen[rid] != path:
            raise SpkrecError(f"two files share the recording id {rid!r} ({seen[rid]}, {path}); use --scp with ids")
        seen[rid] = path
    return seen


def _num_speakers(args, recordings):
    """{recording id: number of speakers} of --num-speakers-file (every recording must be listed), or None."""
    if not args.num_speakers_file:
        return None
    if args.num_speakers is not None:
        raise SpkrecError("give --num-speakers or --num-speakers-file, not both")
    from spkrec.io.datadir import read_table
    table = read_table(args.num_speakers_file, min_fields=2, max_fields=2, what="num-speakers file")
    missing = [rid for rid in recordings if rid not in table]
    if missing:
        raise SpkrecError(f"{args.num_speakers_file}: no number of speakers for {len(missing)} recording(s), "
                          f"e.g. {missing[0]!r}")
    counts = {}
    for rid in recordings:
        try:
            counts[rid] = int(table[rid])
        except ValueError:
            counts[rid] = 0
        if counts[rid] < 1:
            raise SpkrecError(f"{args.num_speakers_file}: {rid}: number of speakers {table[rid]!r} is not an integer >= 1")
    return counts


def run_diarize(args):
    import logging

    import spkrec
    from spkrec.diarization import DiarizationConfig, diarize
    from spkrec.io.rttm import write_rttm
    cfg = DiarizationConfig.for_system(args.system, num_speakers=args.num_speakers, threshold=args.threshold,
                                       window=args.window, shift=args.shift, scoring=args.scoring,
                                       clustering=args.clustering, resegment=args.resegment,
                                       min_cluster=args.min_cluster, vbx=args.vbx,
                                       merge_threshold=args.merge_threshold)
    recordings = _recordings(args)
    counts = _num_speakers(args, recordings)
    system = spkrec.load_system(args.system)
    out = {}
    for rid, path in recordings.items():
        out[rid] = diarize(system, path, cfg, name=path, **({"num_speakers": counts[rid]} if counts else {}))
        if out[rid]:
            logging.getLogger("spkrec").info("%s: %d turns, %d speakers", rid, len(out[rid]),
                                             len({t.speaker for t in out[rid]}))
        else:
            logging.getLogger("spkrec").warning("%s: no speech found (energy VAD); no turns in the RTTM", rid)
    write_rttm(args.rttm, out)
    return 0


# ---------------------------------------------------------------- train-diarization-backend
def add_train_backend_args(parser):
    parser.add_argument("system", help="an i-vector or RNN system bundle (its front end and vector extractor)")
    parser.add_argument("data", help="data dir of background speakers (wav.scp, utt2spk), not the test speakers")
    parser.add_argument("out", help="output back end (.npz), for spkrec export-system --backend")
    parser.add_argument("--steps", default="center,lnorm,plda",
                        help="back-end steps as in train-backend --steps (default %(default)s)")
    parser.add_argument("--window", type=positive_float, default=1.5, help="window length in seconds (default 1.5)")
    parser.add_argument("--shift", type=positive_float, default=0.75, help="window shift in seconds (default 0.75)")


def run_train_backend(args):
    import logging

    import spkrec
    from spkrec.diarization.train import window_training_vectors
    if args.shift > args.window:
        raise SpkrecError(f"--shift {args.shift} is above --window {args.window}")
    system = spkrec.load_system(args.system)
    V, y = window_training_vectors(system, args.data, window=args.window, shift=args.shift)
    from spkrec.backend.pipeline import make_pipeline
    pipe = make_pipeline(args.steps).fit(V, y)
    pipe.save(args.out)
    logging.getLogger("spkrec").info("wrote %s: %s on %d windows of %d speakers", args.out, args.steps, len(V),
                                     len(set(y.tolist())))
    return 0


# ---------------------------------------------------------------- score-diarization
def add_score_args(parser):
    parser.add_argument("ref", help="reference RTTM")
    parser.add_argument("hyp", help="hypothesis RTTM")
    parser.add_argument("--uem", help="UEM file: the scored regions (default: union of reference and hypothesis)")
    parser.add_argument("--collar", type=nonneg_float, default=0.25,
                        help="seconds left unscored either side of each reference boundary (default 0.25)")
    parser.add_argument("--skip-overlap", action="store_true", help="leave overlapped reference speech unscored")
    parser.add_argument("--json", action="store_true", help="print per-file and total numbers as JSON")
    parser.add_argument("--plot-dir", help="also write DIR/<file>.png: reference vs hypothesis timeline")


def run_score(args):
    from spkrec.eval.diarization import diarization_error, format_table
    from spkrec.io.rttm import read_rttm, read_uem
    ref, hyp = read_rttm(args.ref), read_rttm(args.hyp)
    uem = read_uem(args.uem) if args.uem else None
    res = diarization_error(ref, hyp, uem=uem, collar=args.collar, skip_overlap=args.skip_overlap)
    if args.plot_dir:
        from spkrec.eval.diarization import plot_timeline
        for name, row in res["files"].items():
            plot_timeline(ref[name], hyp.get(name, []), os.path.join(args.plot_dir, f"{name}.png"),
                          title=f"{name}: DER {100 * row['der']:.1f} % (collar {args.collar:g} s)")
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        print("\n".join(format_table(res)))
        t = res["total"]
        print(f"DER {100 * t['der']:.2f} % (miss {100 * t['miss']:.2f}, false alarm {100 * t['fa']:.2f}, "
              f"confusion {100 * t['confusion']:.2f}), JER {100 * t['jer']:.2f} %, speaker-count error "
              f"{t['speaker_count_error']}; collar {args.collar:g} s{', overlap skipped' if args.skip_overlap else ''}")
    return 0


# ---------------------------------------------------------------- simulate-conversations
def add_simulate_args(parser):
    parser.add_argument("data", help="data dir of single-speaker utterances (wav.scp, utt2spk)")
    parser.add_argument("out", help="output dir: wav/, wav.scp, ref.rttm, uem, reco2num_spk, README")
    parser.add_argument("--num-conversations", type=positive_int, default=10,
                        help="conversations to build (default %(default)s)")
    parser.add_argument("--min-speakers", type=positive_int, default=2,
                        help="fewest speakers in a conversation (default %(default)s)")
    parser.add_argument("--max-speakers", type=positive_int, default=4,
                        help="most speakers in a conversation (default %(default)s)")
    parser.add_argument("--turns-per-speaker", type=positive_int, default=3,
                        help="turns (utterances) of each speaker (default %(default)s)")
    parser.add_argument("--min-pause", type=nonneg_float, default=0.2, help="seconds (default 0.2)")
    parser.add_argument("--max-pause", type=nonneg_float, default=1.0, help="seconds (default 1.0)")
    parser.add_argument("--overlap-prob", type=fraction, default=0.0,
                        help="probability that a turn starts before the previous one ends (default 0)")
    parser.add_argument("--max-overlap", type=positive_float, default=0.5, help="seconds (default 0.5)")
    parser.add_argument("--babble", type=nonneg_int, default=0, help="number of babble speakers (default 0: none)")
    parser.add_argument("--babble-snr", type=finite_float, default=15.0, help="dB (default 15)")
    parser.add_argument("--level-spread", type=nonneg_float, default=0.0,
                        help="dB: each speaker's level drawn uniformly within this range (default 0)")
    parser.add_argument("--rt60", type=nonneg_float, default=0.0,
                        help="seconds: synthetic reverberation, one impulse response per speaker (default 0: none)")
    parser.add_argument("--snr", type=finite_float, help="dB: white noise added at this SNR (default: none)")
    parser.add_argument("--rate", type=positive_int, default=16000, help="output sample rate (default 16000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: speakers, utterances, pauses, overlaps, babble (default %(default)s)")
    parser.add_argument("--prefix", default="conv", help="recording id prefix (default conv)")


def run_simulate(args):
    from spkrec.diarization.simulate import simulate_conversations
    if args.max_pause < args.min_pause:
        raise SpkrecError(f"--max-pause {args.max_pause} is below --min-pause {args.min_pause}")
    simulate_conversations(args.data, args.out, args.num_conversations, args.min_speakers, args.max_speakers,
                           args.turns_per_speaker, (args.min_pause, args.max_pause), args.overlap_prob,
                           args.max_overlap, args.babble, args.babble_snr, args.rate, args.seed, args.prefix,
                           args.level_spread, args.rt60, args.snr)
    return 0


COMMANDS = {
    "diarize": (add_diarize_args, run_diarize),
    "score-diarization": (add_score_args, run_score),
    "train-diarization-backend": (add_train_backend_args, run_train_backend),
    "simulate-conversations": (add_simulate_args, run_simulate),
}
