"""spkrec.io."""
