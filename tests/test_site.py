"""The built site in a real browser: a tiny book (every chapter executed on tiny settings by
``diag reproduce``), built strictly, opened in headless Chromium; figures load and tables show.

Needs Debian's ``chromium`` (.ci/run installs it); skipped where it is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from diag.book import reproduce

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--virtual-time-budget=5000",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


TINY = ["grid.n_augs=4", "grid.seeds=0", "classifier.epochs=2", "diag.steps=2", "inout.train_steps=2", "inout.steps=2"]


@pytest.fixture(scope="module")
def site(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("book")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the notebook kernels' torch
    index = reproduce("demo", root / "results", out=root / "site", data=replica, overrides=TINY)
    monkeypatch.undo()
    return index.parent


def browse(page: Path, tmp_path: Path, what: str) -> str:
    profile = tmp_path / f"chromium-{what}"
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*base, f"--screenshot={tmp_path / (what + '.png')}", "--window-size=1280,2000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_index_and_a_results_page_render(site: Path, tmp_path: Path) -> None:
    index = browse(site / "index.html", tmp_path, "index")
    assert "DIAG, reproduced" in index and "pipeline.svg" in index
    page = site / "book" / "chapters" / "04-zero-shot.html"
    dom = browse(page, tmp_path, "zero-shot")
    assert "<table" in dom and "AP (DEMO)" in dom and "AP (paper)" in dom
    assert "Partial / non-demo settings" in dom  # n_aug 4, one seed, two epochs: never passed off as the demo's
    assert str(site.parent / "results") not in dom  # the injected parameters (this machine's paths) are hidden
    images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
    assert images, "the results page shows no figure"
    for src in images:
        assert (page.parent / src).resolve().is_file(), f"figure {src} does not load"
    assert (tmp_path / "zero-shot.png").stat().st_size > 20_000
    shutil.copy(tmp_path / "zero-shot.png", site / "screenshot-zero-shot.png")
    assert "mathjax/tex-svg.js" in browse(site / "book" / "chapters" / "02-inpainting.html", tmp_path, "inpainting")


def test_chapters_show_no_library_warnings_nor_progress_bars(site: Path) -> None:
    """A library warning prints its file path (this machine's site-packages) into the published page."""
    chapters = sorted((site.parent / "results" / "book-build" / "book" / "chapters").glob("*.ipynb"))
    assert len(chapters) == 7
    for chapter in chapters:
        cells = json.loads(chapter.read_text())["cells"]
        stderr = [o["text"] for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not [t for t in map("".join, stderr) if "Warning" in t], f"{chapter.name} shows a warning"
        widgets = [o for c in cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   and "remove-cell" not in c["metadata"].get("tags", [])]
        assert not widgets, f"{chapter.name} shows a widget (a progress bar?) that is dead on a static page"
