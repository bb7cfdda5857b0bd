"""spkrec.eval."""
