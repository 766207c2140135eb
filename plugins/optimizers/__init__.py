"""modelfit optimizers plugins."""
