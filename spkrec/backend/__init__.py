"""spkrec.backend."""
