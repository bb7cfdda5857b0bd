"""spkrec.gmm."""
