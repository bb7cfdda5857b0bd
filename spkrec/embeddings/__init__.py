"""spkrec.embeddings."""
