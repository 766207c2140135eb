"""Layer 4, fitting: the fitting problem, the loop, the fitters and their tools.

Imports the layers below; nothing below imports it.
"""
