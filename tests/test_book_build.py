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
