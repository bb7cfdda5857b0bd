"""Command-line front end: ``spkrec <verb> [options]``. Thin over the library."""
