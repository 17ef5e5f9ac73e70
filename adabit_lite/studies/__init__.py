"""The numerical experiments that the book's chapters show, one module per chapter topic.

The notebooks stay thin: they call these functions, and tests call them too.  Modules here may
use everything in the package (models, training); nothing in the package imports them.
"""
