"""``spkrec compute-feats`` and ``spkrec compute-vad``.

Feature options come from a Kaldi-style ``--config`` file (one ``--name=value`` per line) and can be
overridden on the command line with the same ``--name=value`` form (e.g. ``--num-ceps=20``); an
option the chosen feature does not take is an error listing the ones it does.
"""
import argparse

from spkrec.cli.common import (add_command_args, add_parallel_args, finite_float, nonneg_int,
                               parallel_config, positive_int, probability)


def _accept_feature_options(parser):
    """Let ``parser`` collect unknown ``--name=value`` tokens into ``args.extra_options`` (a dict)."""
    from spkrec.features.config import parse_option
    parser.allow_abbrev = False  # '--frame=...' must not silently mean a known option

    def parse_args(args=None, namespace=None):
        ns, extra = argparse.ArgumentParser.parse_known_args(parser, args, namespace)
        options = {}
        for token in extra:
            if not token.startswith("--"):
                parser.error(f"unexpected argument {token!r}")
            if "=" not in token:
                parser.error(f"unknown option {token!r}; pass feature options as --name=value (e.g. --num-ceps=20)")
            key, value = parse_option(token, "command line")
            options[key] = value
        ns.extra_options = options
        return ns

    parser.parse_args = parse_args


def add_compute_feats_arguments(parser):
    from spkrec.features.config import FEATURE_TYPES
    parser.add_argument("data", metavar="DATA", help="data dir (wav.scp, utt2spk); gets feats.scp, utt2num_frames")
    parser.add_argument("feat_dir", metavar="FEATDIR", help="where the ark/scp chunks are written")
    parser.add_argument("--feat-type", default="mfcc", choices=list(FEATURE_TYPES), help="feature type (default mfcc)")
    parser.add_argument("--config", default=None, help="Kaldi-style option file, e.g. conf/mfcc.conf")
    parser.add_argument("--preset", choices=["kaldi", "psf"], default=None,
                        help="mfcc/fbank defaults: Kaldi's compute-*-feats or python_speech_features "
                             "(default: the feature's own, kaldi for mfcc/fbank)")
    parser.add_argument("--sample-frequency", type=positive_int, default=None, metavar="HZ",
                        help="compute at this rate, resampling files at other rates (default: 16000, "
                             "and a file at another rate is an error)")
    add_command_args(parser, "wav.scp")
    parser.add_argument("--utts-per-chunk", type=positive_int, default=100,
                        help="utterances per ark/scp chunk, the unit of resuming (default 100)")
    add_parallel_args(parser)
    parser.epilog = "Other --name=value options (e.g. --num-ceps=20 --dither=0) are passed to the feature function."
    _accept_feature_options(parser)


def run_compute_feats(args):
    from spkrec.features.pipeline import compute_features
    options = dict(args.extra_options)
    if args.preset is not None:
        options["preset"] = args.preset
    if args.sample_frequency is not None:
        options["sample_frequency"] = args.sample_frequency
    compute_features(args.data, args.feat_dir, args.feat_type, options=options, config=args.config,
                     allow_commands=args.allow_commands, parallel=parallel_config(args),
                     utts_per_chunk=args.utts_per_chunk, command_timeout=args.command_timeout)
    return 0


def add_compute_vad_arguments(parser):
    parser.add_argument("data", metavar="DATA", help="data dir with feats.scp (column 0 = log energy); gets vad.scp")
    parser.add_argument("vad_dir", metavar="VADDIR", nargs="?", default=None,
                        help="where the ark/scp chunks are written (default: DATA/vad)")
    parser.add_argument("--config", default=None, help="Kaldi-style option file, e.g. conf/vad.conf")
    parser.add_argument("--vad-energy-threshold", type=finite_float, default=None,
                        help="constant term of the log-energy threshold (default 5.0)")
    parser.add_argument("--vad-energy-mean-scale", type=finite_float, default=None,
                        help="plus this times the mean log energy of the utterance (default 0.5)")
    parser.add_argument("--vad-frames-context", type=nonneg_int, default=None,
                        help="frames of context either side that vote (default 0)")
    parser.add_argument("--vad-proportion-threshold", type=probability, default=None,
                        help="proportion of the context that must be above the threshold (default 0.6)")
    parser.add_argument("--utts-per-chunk", type=positive_int, default=100, help="utterances per ark/scp chunk")
    add_command_args(parser, "feats.scp")
    add_parallel_args(parser)
    _accept_feature_options(parser)


def run_compute_vad(args):
    from spkrec.features.config import option_name
    from spkrec.features.pipeline import compute_vad
    options = dict(args.extra_options)
    for name in ("vad_energy_threshold", "vad_energy_mean_scale", "vad_frames_context", "vad_proportion_threshold"):
        value = getattr(args, name)
        if value is not None:
            options[option_name(name)] = value
    compute_vad(args.data, args.vad_dir, options=options, config=args.config, parallel=parallel_config(args),
                utts_per_chunk=args.utts_per_chunk, allow_commands=args.allow_commands)
    return 0


COMMANDS = {
    "compute-feats": (add_compute_feats_arguments, run_compute_feats),
    "compute-vad": (add_compute_vad_arguments, run_compute_vad),
}
