"""modelfit backends plugins."""
