"""The notebooks' shape and the build guard (no notebook is executed here)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from diag.book import NOTEBOOKS, ROOT, BuildError, build_book, notebook_problems, source_tree, swapped_in
from diag.errors import DiagError


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_has_a_parameters_cell_and_no_own_logic(name: str) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and all(name in tagged[0].source for name in ("profile", "results_dir", "overrides"))
    setup = notebook.cells[notebook.cells.index(tagged[0]) + 1].source
    assert "workflow.setup(profile, results_dir, data_dir, compute, overrides)" in setup  # one setup for every chapter
    for cell in notebook.cells:
        assert not cell.get("outputs"), f"{name}: outputs come from the build, not from commits"
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            assert not defs, f"{name} defines {defs}: logic belongs in the diag package"
    assert notebook.cells[0].source.startswith("# ")


def test_every_notebook_is_in_the_toc() -> None:
    toc = (ROOT / "_toc.yml").read_text()
    assert all(f"book/chapters/{name}" in toc for name in NOTEBOOKS)


def test_reproduce_needs_the_source_tree(tmp_path: Path) -> None:
    assert source_tree() == ROOT
    with pytest.raises(DiagError, match="book's sources .* are not here"):
        source_tree(tmp_path)


def test_a_failed_build_leaves_the_old_folder_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "chapters"
    target.mkdir()
    (target / "01-data.ipynb").write_text("the old chapter")
    with pytest.raises(RuntimeError):
        with swapped_in(target) as fresh:
            (fresh / "01-data.ipynb").write_text("half a new chapter")
            raise RuntimeError("notebook 02 failed")
    assert (target / "01-data.ipynb").read_text() == "the old chapter"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chapters"]  # no temporary folder left
    with swapped_in(target) as fresh:
        (fresh / "01-data.ipynb").write_text("the new chapter")
    assert (target / "01-data.ipynb").read_text() == "the new chapter"


def executed(tmp_path: Path, outputs: list, exception: bool = False) -> Path:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 / 0")
    cell.outputs = outputs
    notebook.cells = [cell]
    notebook.metadata["papermill"] = {"exception": exception}
    path = tmp_path / "04-zero-shot.ipynb"
    nbformat.write(notebook, path)
    return path


def test_guard_finds_error_outputs_and_papermill_flag(tmp_path: Path) -> None:
    error = nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    assert notebook_problems(executed(tmp_path, [error])) == ["04-zero-shot.ipynb, cell 0: ZeroDivisionError: division by zero"]
    assert notebook_problems(executed(tmp_path, [], exception=True)) == ["04-zero-shot.ipynb: papermill recorded an exception"]
    assert notebook_problems(executed(tmp_path, [nbformat.v4.new_output("stream", text="ok")])) == []


def test_build_refuses_a_book_with_a_failed_chapter(tmp_path: Path) -> None:
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])
    path = executed(tmp_path, [error])
    path.rename(tmp_path / "book" / "chapters" / path.name)
    with pytest.raises(BuildError, match="ValueError: bad"):
        build_book(tmp_path)


def test_mathjax_is_local_and_no_remote_inventories() -> None:
    config = (ROOT / "_config.yml").read_text()
    assert 'mathjax_path: "mathjax/tex-svg.js"' in config and "intersphinx_mapping: {}" in config
    assert (ROOT / "book" / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000


def test_a_relative_build_folder_is_built_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make book` passes results/demo/book-build: jupyter-book, run inside it, must get an absolute path."""
    import subprocess

    (tmp_path / "book-build" / "book" / "chapters").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    seen = []

    def fake_run(command, cwd, **kwargs):
        seen.append((command, cwd))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr("diag.book.subprocess.run", fake_run)
    build_book(Path("book-build"))
    (command, cwd), = seen
    assert Path(command[2]).is_absolute() and Path(command[2]) == tmp_path / "book-build" and Path(cwd).is_absolute()
