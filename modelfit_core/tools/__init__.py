"""Layer 5, tools: what a user runs around a fit.

The command line, configuration files, the demo, plots, bundled datasets
and the contract checks for plugin authors. Nothing in the core imports it.
"""
