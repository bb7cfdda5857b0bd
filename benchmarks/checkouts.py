"""Shared by the benchmarks that compare this tree with another spkrec checkout, back to back.

Each measurement runs in a fresh process with ``PYTHONPATH`` set to one checkout (plus this folder,
for the synthetic-data helpers of ``benchmarks/ivector.py``), so both checkouts see the same load.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""This tree's root."""


def add_other_argument(parser, required=True):
    """``--other CHECKOUT``: the spkrec checkout to compare with (optional when ``required`` is False)."""
    parser.add_argument("--other", required=required, default="", metavar="CHECKOUT",
                        help="the spkrec checkout to compare with (e.g. `git worktree add /tmp/old main`)"
                             + ("" if required else "; default none"))


def run_child(tree, code, *argv, **env):
    """Run ``python -c code argv...`` with ``tree``'s spkrec (and ``env`` added); its last stdout line
    parsed as JSON. A failing child ends the benchmark with its stderr."""
    path = os.pathsep.join([tree, os.path.dirname(os.path.abspath(__file__))])
    res = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=path, **env))
    if res.returncode:
        sys.exit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])
