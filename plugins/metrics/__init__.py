"""modelfit metrics plugins."""
