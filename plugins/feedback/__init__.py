"""modelfit feedback plugins."""
