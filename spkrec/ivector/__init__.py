"""spkrec.ivector."""
