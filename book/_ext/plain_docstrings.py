"""Sphinx extension: show adabit_lite docstrings verbatim.

The package's docstrings are plain text that state equations as coded (|x|, indented formulas), not
reStructuredText; this renders each one as a plain-text block (no syntax colouring, lines wrapped
by the book's style sheet), exactly as a reader sees it in the source.
"""


def _verbatim(app, what, name, obj, options, lines):
    if not lines:
        return
    body = ["   " + line for line in lines]
    lines[:] = [".. code-block:: text", ""] + body + [""]


def _skip_filler(app, what, name, obj, skip, options):
    """Leave out the fields that namedtuple documents as "Alias for field number N"."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _verbatim)
    app.connect("autodoc-skip-member", _skip_filler)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
