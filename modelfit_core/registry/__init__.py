"""Layer 3, registry: finding plugins and assembling the parts of a fit.

Entry points are read without importing the plugins; a plugin's module is
imported when its class is first used. Imports only the layers below.
"""
