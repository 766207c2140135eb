"""modelfit's built-in plugins, registered through the ``modelfit`` entry points."""
