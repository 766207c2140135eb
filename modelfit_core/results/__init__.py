"""Layer 3, results: every evaluated parameter set, in memory and in SQLite.

Independent of the registry; imports only the layers below.
"""
