"""UTF-8 text inputs read line by line, with a ``file:line`` error for bytes that are not UTF-8."""
from spkrec.errors import SpkrecError


def not_utf8_message(path, lineno, line, names_files=False):
    """The error text for ``line`` (read with ``errors="surrogateescape"``) holding a non-UTF-8 byte, or None.

    ``names_files``: the file is a table of paths (wav.scp ...), whose files must get UTF-8 names too.
    """
    bad = next((i for i, c in enumerate(line) if "\udc80" <= c <= "\udcff"), None)
    if bad is None:
        return None
    raw = line.rstrip("\r\n").encode("utf-8", "surrogateescape")
    return (f"{path}:{lineno}: byte 0x{ord(line[bad]) - 0xDC00:02x} at column {bad + 1} is not UTF-8 "
            f"({raw[:80]!r}); spkrec reads text files as UTF-8: convert the file (e.g. `iconv -f latin1 "
            "-t utf-8`)" + (" and rename the files it names to UTF-8 names" if names_files else ""))


def utf8_lines(path):
    """Yield ``(lineno, line)`` (1-based; line with its newline) of a UTF-8 text file.

    A line that is not UTF-8 raises :class:`SpkrecError` naming the file, line and column.
    """
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            if "\udc80" <= max(line, default="") and (msg := not_utf8_message(path, lineno, line)):
                raise SpkrecError(msg)
            yield lineno, line
