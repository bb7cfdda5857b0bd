"""The one exception type users see: a one-line message naming the file, the line and what to do."""


class SpkrecError(ValueError):
    """A user-facing error (bad input, missing file, malformed line).

    The CLI prints ``str(err)`` as a single line and exits with status 1, without a traceback.
    Build messages as ``"<file>:<line>: <what is wrong>; <what to do>"`` where a file and line exist.
    """


def where(path, lineno=None):
    """Format a location prefix ``path:lineno`` (``lineno`` is 1-based) for error messages."""
    return f"{path}:{lineno}" if lineno is not None else f"{path}"
