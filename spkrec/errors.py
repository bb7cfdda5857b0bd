"""The one exception type users see: a one-line message naming the file, the line and what to do."""


class SpkrecError(ValueError):
    """A user-facing error (bad input, missing file, malformed line).

    The CLI prints ``str(err)`` as a single line and exits with status 1, without a traceback.
    Build messages as ``"<file>:<line>: <what is wrong>; <what to do>"`` where a file and line exist.
    """


class OptionRangeError(Exception):
    """A numeric command-line option outside its range (raised by the argparse types of
    ``spkrec.cli.common``). Not a ValueError on purpose: argparse lets it through instead of turning it
    into a usage message, so the CLI reports it as one error line naming the option, exit status 1."""

