"""Running the shell commands of Kaldi-style table entries (``wav.scp``'s ``cmd |``), safely bounded.

A command runs only when the user asked for it (``--allow-commands``), with its standard input closed
(``cat |`` reads nothing instead of hanging on the terminal) and a wall-clock timeout after which it is
killed; a failure, a timeout or an empty output is a :class:`~spkrec.errors.SpkrecError` naming the
table line.
"""
import subprocess

from spkrec.errors import SpkrecError

DEFAULT_TIMEOUT = 300.0
"""Seconds a table command may run (``--command-timeout``)."""


def is_command(entry):
    """Whether a table value is a Kaldi command (``cmd |``, or the output form ``| cmd``)."""
    entry = entry.strip()
    return entry.endswith("|") or entry.startswith("|")


def refuse_command(entry, where, table, what="entry"):
    """The one-line error for a command entry when ``--allow-commands`` was not given."""
    return SpkrecError(f"{where}: {what} is a command ({entry.strip()!r}); {table} commands run only with "
                       "--allow-commands (a command can run any program): pass it if you trust this file, "
                       "or list a file path instead")


def run_command(entry, where, timeout=DEFAULT_TIMEOUT):
    """Run ``entry`` (``"cmd |"``) through the shell; returns its standard output (bytes).

    Standard input is ``/dev/null``; after ``timeout`` seconds (``None``: no limit) the command is
    killed. Raises :class:`SpkrecError` naming ``where`` on a non-zero exit, a timeout or no output.
    """
    cmd = entry.strip()
    if cmd.startswith("|"):
        raise SpkrecError(f"{where}: {cmd!r} is an output pipe ('| cmd'), not an input; an input command "
                          "ends with '|'")
    cmd = cmd[:-1]
    try:
        proc = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SpkrecError(f"{where}: command {entry.strip()!r} did not finish in {timeout:g} s and was killed; "
                          "fix the command or raise --command-timeout") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise SpkrecError(f"{where}: command {entry.strip()!r} failed (exit {proc.returncode})"
                          + (f": {msg[-1]}" if msg else "") + "; fix the command")
    if not proc.stdout:
        raise SpkrecError(f"{where}: command {entry.strip()!r} wrote nothing to its standard output; "
                          "fix the command")
    return proc.stdout
