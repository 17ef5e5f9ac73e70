"""book/build.py's own steps (the whole build is tested by tests/test_book.py)."""

import nbformat

from adabit_lite.chapter import load_book_build, project_root


def test_the_injected_parameters_cell_is_removed_from_the_page(tmp_path):
    build = load_book_build(project_root())
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("epochs = 10  # default", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nrecord_path = "/abs/path.json"',
                                  metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(epochs)")])
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, str(path))
    build.hide_injected_parameters(path)
    tags = [c.metadata.get("tags", []) for c in nbformat.read(str(path), as_version=4).cells]
    assert tags == [["parameters"], ["injected-parameters", "remove-cell"], []]


def test_the_api_page_shows_no_dollar_math():
    """The API page (autodoc) renders docstrings and ``#:``-documented constants as text, where
    ``$...$`` stays unrendered (the browser check of the built book finds it, after minutes); the
    chapters' sentences may use it, the documented API may not."""
    import importlib
    import inspect
    import pkgutil
    import re

    import adabit_lite

    def math(text):  # $...$ outside ``code`` (where an environment variable may stand)
        return re.search(r"\$[^$\s][^$]*\$", re.sub(r"``.*?``", "", text or "", flags=re.S))

    found = []
    for info in pkgutil.walk_packages(adabit_lite.__path__, "adabit_lite."):
        module = importlib.import_module(info.name)
        objects = [module] + [v for _, v in inspect.getmembers(module)
                              if (inspect.isfunction(v) or inspect.isclass(v))
                              and v.__module__ == info.name]
        for obj in objects:
            if math(inspect.getdoc(obj)):
                found.append(f"{info.name}: docstring of {getattr(obj, '__name__', obj)}")
        source = inspect.getsource(module)
        for name in re.findall(r"^#:.*\n([A-Za-z_]\w*)\s*[:=]", source, re.M):
            value = getattr(module, name, None)
            if isinstance(value, str) and math(value):
                found.append(f"{info.name}.{name}")
    assert not found, found
