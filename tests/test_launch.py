"""The chapters' source-notebook line and launch links (book/_ext/diag_launch.py), in a small Sphinx build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diag.book import ROOT

HUBS = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
        "jupyterhub_url": "https://hub.example.org"}


def build(tmp_path: Path, settings: dict) -> str:
    """A two-page Sphinx site with the extension: an index and a chapter page named as the book's are."""
    from sphinx.cmd.build import build_main

    source = tmp_path / "src"
    (source / "book" / "chapters").mkdir(parents=True)
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        f"extensions = ['diag_launch']\ndiag_launch = {settings!r}\n"
    )
    (source / "index.rst").write_text("Book\n====\n\n.. toctree::\n\n   book/chapters/04-zero-shot\n")
    (source / "book" / "chapters" / "04-zero-shot.rst").write_text("Zero-shot\n=========\n\nText.\n")
    assert build_main(["-b", "html", "-q", "-W", str(source), str(tmp_path / "out")]) == 0
    index = (tmp_path / "out" / "index.html").read_text()
    assert "Source notebook" not in index  # chapter pages only
    return (tmp_path / "out" / "book" / "chapters" / "04-zero-shot.html").read_text()


def test_without_a_repository_url_a_chapter_names_its_notebook_and_offers_no_link(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIAG_REPOSITORY_URL", raising=False)
    page = build(tmp_path, {"repository_url": "", **HUBS})
    assert "Source notebook: <code>notebooks/04-zero-shot.ipynb</code>" in page
    assert "diag-launch" not in page and "mybinder" not in page and "colab" not in page


def test_the_workflows_repository_url_gives_each_service_a_link_to_the_source_notebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIAG_REPOSITORY_URL", "https://github.com/someone/diag")
    monkeypatch.setenv("DIAG_REPOSITORY_BRANCH", "main")
    page = build(tmp_path, {"repository_url": "", "branch": "dev", **HUBS})
    links = dict(re.findall(r'<a class="diag-launch" href="([^"]+)">(\w+)</a>', page))
    links = {label: href.replace("&amp;", "&") for href, label in links.items()}
    assert links["Binder"] == "https://mybinder.org/v2/gh/someone/diag/main?labpath=notebooks/04-zero-shot.ipynb"
    assert links["Colab"] == "https://colab.research.google.com/github/someone/diag/blob/main/notebooks/04-zero-shot.ipynb"
    assert links["JupyterHub"].startswith("https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com")
    assert "urlpath=lab%2Ftree%2Fdiag%2Fnotebooks%2F04-zero-shot.ipynb" in links["JupyterHub"]
    assert 'href="https://github.com/someone/diag/blob/main/notebooks/04-zero-shot.ipynb"' in page
    no_hub = build(tmp_path / "again", {"repository_url": "", **HUBS, "jupyterhub_url": ""})
    assert "JupyterHub" not in no_hub and "Binder" in no_hub  # a service without a URL is not offered
