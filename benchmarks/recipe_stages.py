"""Whole-recipe wall time per stage: runs ``recipes/so762/run.sh`` and prints the per-stage table from
the run's ``EXP/log/stage_times.tsv`` (written by ``recipes/utils/stages.sh``).

    python benchmarks/recipe_stages.py [--recipe so762] [--exp DIR] [--nj 2] [--stage 0] [--stop-stage 8]
                                       [--table-only] [-- RUN.SH OPTIONS ...]

Default: the issue-13 setting, so762-mini and so762-dev as background, so762-dev as evaluation
(``--train data/so762-mini --train /work/shared/corpora/so762-dev --eval /work/shared/corpora/so762-dev``),
every classical stage (0-8, 10, 20 need ``--stop-stage 100``; stage 9/12 need PyTorch and are slow).
Options after ``--`` replace the corpora and pass anything else to run.sh. ``--table-only`` prints the
table of an existing EXP without running. The load average before and after is printed: on a shared
machine the times are only comparable with the load.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEV = os.path.join(ROOT, "..", "shared", "corpora", "so762-dev")  # the development corpus beside the checkout
DEFAULT = ["--train", os.path.join(ROOT, "data", "so762-mini"), "--train", DEV, "--eval", DEV]


def table(exp):
    """Markdown rows of the latest run in ``exp/log/stage_times.tsv``."""
    path = os.path.join(exp, "log", "stage_times.tsv")
    rows = [line.rstrip("\n").split("\t") for line in open(path)][1:]
    if not rows:
        return "no stage ran"
    last = rows[-1][0]
    rows = [r for r in rows if r[0] == last]
    total = sum(float(r[2]) for r in rows)
    out = [f"run started {last}", "", "| stage | description | wall s | share |", "|---:|---|---:|---:|"]
    out += [f"| {r[1]} | {r[3]} | {float(r[2]):.1f} | {100 * float(r[2]) / total:.0f} % |" for r in rows]
    out.append(f"| | total | {total:.1f} | |")
    return "\n".join(out)


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="so762", help="recipes/RECIPE/run.sh (so762, or e.g. mini: no corpora added)")
    p.add_argument("--exp", default=None, help="default: recipes/RECIPE/exp-bench")
    p.add_argument("--data", default=None, help="data dir of the run (default: recipes/RECIPE/data-bench)")
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--stage", type=int, default=0)
    p.add_argument("--stop-stage", type=int, default=8)
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    here = os.path.join(ROOT, "recipes", args.recipe)
    args.exp = os.path.abspath(args.exp or os.path.join(here, "exp-bench"))
    if not args.table_only:
        data = os.path.abspath(args.data or os.path.join(here, "data-bench"))
        given = any(a in ("--train", "--eval") for a in extra)
        corpora = extra if given or args.recipe != "so762" else DEFAULT + extra
        cmd = ["./run.sh", "--exp", args.exp, "--data", data, "--nj", str(args.nj), "--stage", str(args.stage),
               "--stop-stage", str(args.stop_stage), *corpora]
        print(f"load average before: {os.getloadavg()[0]:.2f}; {' '.join(cmd)}", flush=True)
        t = time.time()
        code = subprocess.call(cmd, cwd=here)
        print(f"exit code {code}, {time.time() - t:.1f} s wall; load average after: {os.getloadavg()[0]:.2f}")
    print(table(args.exp))


if __name__ == "__main__":
    main()
