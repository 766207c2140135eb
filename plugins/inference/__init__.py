"""modelfit inference plugins."""
