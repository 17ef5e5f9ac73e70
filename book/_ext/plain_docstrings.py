"""Sphinx extension: show adabit_lite docstrings verbatim.

The package's docstrings are plain text that state equations as coded (|x|, indented formulas), not
reStructuredText; this renders each one as a literal block, exactly as a reader sees it in the
source.
"""


def _verbatim(app, what, name, obj, options, lines):
    if not lines:
        return
    body = ["   " + line for line in lines]
    lines[:] = ["::", ""] + body + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _verbatim)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
