"""The built site in a real browser: a tiny book (every chapter executed on tiny settings by
``diag reproduce``), built strictly, opened in headless Chromium; figures load and tables show.

Needs Debian's ``chromium`` (.ci/run installs it); skipped where it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from diag.book import NOTEBOOKS, reproduce

pytestmark = pytest.mark.slow  # `pytest -m "not slow"`: the fast subset (README)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--virtual-time-budget=5000",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


TINY = ["grid.n_augs=4", "grid.seeds=0", "classifier.epochs=2", "diag.steps=2", "inout.train_steps=2", "inout.steps=2",
        "grid.real_positives=0,2"]


@pytest.fixture(scope="module")
def site(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("book")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the notebook kernels' torch
    monkeypatch.chdir(root)  # relative folders, as `make book` passes them: the kernels run elsewhere
    index = reproduce("demo", Path("results"), out=Path("site"), data=replica, overrides=TINY)
    monkeypatch.undo()
    return (root / index).parent


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
    assert "<table" in dom and "AP (DEMO, 1 seed)" in dom and "AP (paper)" in dom
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
    assert len(chapters) == len(NOTEBOOKS)
    for chapter in chapters:
        cells = json.loads(chapter.read_text())["cells"]
        stderr = [o["text"] for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not [t for t in map("".join, stderr) if "Warning" in t], f"{chapter.name} shows a warning"
        hidden = ("remove-cell", "remove-output")
        widgets = [o for c in cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   and not set(hidden) & set(c["metadata"].get("tags", []))]
        assert not widgets, f"{chapter.name} shows a widget (a progress bar?) that is dead on a static page"


CHAPTERS = NOTEBOOKS

MEASURE = """<script>
window.addEventListener('load', function () {
  var article = document.querySelector('.bd-article');
  var limit = article.getBoundingClientRect().width;
  var wide = [];
  article.querySelectorAll('table, .cell_output pre, img').forEach(function (el) {
    var width = el.getBoundingClientRect().width;
    if (width > limit + 1 || el.scrollWidth > el.clientWidth + 1) {
      wide.push(el.tagName + ' ' + Math.round(width) + ' > ' + Math.round(limit) + ': ' + el.textContent.slice(0, 40));
    }
  });
  document.body.setAttribute('data-too-wide', JSON.stringify(wide));
});
</script>"""


def too_wide(page: Path, tmp_path: Path) -> list[str]:
    """Elements of the page's article wider than its text column in a 1280-px window."""
    probe = page.with_name(page.stem + ".measure.html")
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    try:
        base = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / ('measure-' + page.stem)}", "--window-size=1280,2000"]
        dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    finally:
        probe.unlink()
    found = re.search(r'data-too-wide="([^"]*)"', dom)
    assert found, f"{page.name}: the measurement did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&gt;", ">").replace("&amp;", "&"))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_table_is_wider_than_the_text_column(chapter: str, site: Path, tmp_path: Path) -> None:
    assert too_wide(site / "book" / "chapters" / f"{chapter}.html", tmp_path) == []


def test_no_request_leaves_the_site(site: Path) -> None:
    """Scripts, stylesheets, fonts, images and frames all come from the site itself (it works offline),
    and no Thebe / Binder configuration is left pointing at someone else's repository."""
    remote = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=["']((?:https?:)?//[^"']+)""")
    css_remote = re.compile(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')]+)""")
    found = []
    for page in site.rglob("*.html"):
        text = page.read_text(errors="replace")
        found += [f"{page.relative_to(site)}: {url}" for url in remote.findall(text)]
        for script in re.findall(r"<script\b.*?</script>", text, flags=re.S):  # addresses a script would fetch
            found += [f"{page.relative_to(site)}: {url}" for url in re.findall(r"https?://[^\s\"'<>]+", script)]
        found += [f"{page.relative_to(site)}: {word}" for word in ("x-thebe-config", "binderOptions", "mybinder")
                  if word in text]
    for sheet in site.rglob("*.css"):
        found += [f"{sheet.relative_to(site)}: {url}" for url in css_remote.findall(sheet.read_text(errors="replace"))]
    assert found == []


def test_cross_references_are_links_that_resolve(site: Path) -> None:
    chapters = [site / "book" / "chapters" / f"{c}.html" for c in CHAPTERS]
    for page in [site / "book" / "intro.html", *chapters]:
        html = page.read_text()
        article = html[html.index('<article class="bd-article"'):html.index("</article>")]
        unlinked = re.sub(r"<a\b.*?</a>", "", article, flags=re.S)
        assert "Differences from the paper" not in re.sub(r"<[^>]+>", "", unlinked), f"{page.name}: unlinked cross-reference"
        for target in re.findall(r'<a\b[^>]*href="([^"#:]+)(?:#[^"]*)?"', article):
            assert (page.parent / target).resolve().exists(), f"{page.name}: link {target} leads nowhere"


def test_downloadable_notebooks_hold_no_machine_path(site: Path) -> None:
    root = str(site.parent)
    notebooks = list(site.rglob("*.ipynb"))
    assert len([n for n in notebooks if n.stem in CHAPTERS]) >= len(CHAPTERS)
    for notebook in notebooks:
        text = notebook.read_text()
        assert root not in text and str(Path.home()) + "/" not in text, f"{notebook.name} carries a machine path"
        assert '"widgets"' not in json.dumps(json.loads(text).get("metadata", {})), f"{notebook.name}: widget state"


def test_the_intro_headline_states_tables_one_and_two(site: Path) -> None:
    from diag.chapters.report import HEADLINE_N_AUG
    from diag.experiments import reported_results

    text = re.sub(r"<[^>]+>", "", (site / "book" / "intro.html").read_text()).replace("&amp;", "&")
    assert f"with {HEADLINE_N_AUG} generated images" in text  # the N_aug the numbers belong to
    paper = reported_results()
    for scenario, table in (("zero-shot", "Table I"), ("full-shot", "Table II")):
        rows = paper[(paper["scenario"] == scenario) & (paper["n_aug"] == HEADLINE_N_AUG)]
        sentence = text[text.index("In the paper, "):]
        claim = sentence[: sentence.index(f"({table})")].rsplit("AP ", 1)[1]
        for method, ap in zip(rows["method"], rows["ap"]):
            assert f"{ap:.3f} ({method})" in claim, (table, method, claim)


def test_every_reference_is_cited_and_listed(site: Path) -> None:
    """The strict build (-W) fails on a citation that does not resolve; this checks the other direction:
    every work of book/references.bib is cited somewhere and listed on the bibliography page."""
    from diag.book import ROOT

    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M)
    listed = (site / "book" / "bibliography.html").read_text().count('<div class="citation"')
    assert listed == len(keys) == len(set(keys))
    cited = (site / "book" / "chapters" / "03-generation.html").read_text()
    assert 'href="../bibliography.html#' in cited  # a chapter's citation links to its entry


def test_how_this_book_was_computed_lists_every_chapter_and_every_step(site: Path) -> None:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (site / "book" / "computed.html").read_text()))
    for chapter in CHAPTERS:
        assert re.search(rf"{chapter} executed \d+\.\d", text), chapter
    assert re.search(r"zero-shot grid \(\d+ cells\) computed \d+\.\d", text)
    assert "fingerprint sha1:" in text and "torch 2." in text and "one torch thread each" in text
    for chapter in ("04-zero-shot", "05-full-shot", "06-fid"):  # each results page links to it
        assert 'href="../computed.html"' in (site / "book" / "chapters" / f"{chapter}.html").read_text(), chapter


def test_a_rebuild_with_nothing_changed_reuses_every_chapter(site: Path, replica: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from diag.book import ROOT, notebook_parameters, reused_chapter

    root = site.parent
    monkeypatch.chdir(root)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    reproduce("demo", Path("results"), out=Path("site-again"), data=replica, overrides=TINY)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (root / "site-again" / "book" / "computed.html").read_text()))
    for chapter in CHAPTERS:
        assert re.search(rf"{chapter} reused \(unchanged\) \d+\.\d", text), chapter
    assert (root / "site-again" / "book" / "chapters" / "04-zero-shot.html").is_file()
    # any file of the results folder changed: the chapter is executed again
    parameters = notebook_parameters("demo", Path("results"), True, {"data_dir": str(replica.resolve()),
                                                                     "overrides": TINY})
    target = root / "results" / "book-build" / "book" / ".chapters.probe"
    target.mkdir()
    assert reused_chapter("04-zero-shot", ROOT / "notebooks", target, parameters, root / "results") is not None
    table = root / "results" / "zero-shot" / "results.csv"
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns + 1))
    assert reused_chapter("04-zero-shot", ROOT / "notebooks", target, parameters, root / "results") is None
    changed = {**parameters, "overrides": [*TINY, "classifier.epochs=3"]}
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns - 1))
    assert reused_chapter("04-zero-shot", ROOT / "notebooks", target, parameters, root / "results") is not None
    assert reused_chapter("04-zero-shot", ROOT / "notebooks", target, changed, root / "results") is None


def test_each_chapter_names_its_source_notebook_and_a_local_build_offers_no_launch_link(site: Path) -> None:
    for chapter in CHAPTERS:
        page = (site / "book" / "chapters" / f"{chapter}.html").read_text()
        assert f"Source notebook: <code>notebooks/{chapter}.ipynb</code>" in page
        assert "diag-launch" not in page and "mybinder.org" not in page


def test_built_with_the_repository_url_every_chapter_offers_its_launch_links(site: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same book built again as the Pages workflow builds it (its repository in the environment)."""
    from diag.book import build_book

    monkeypatch.setenv("DIAG_REPOSITORY_URL", "https://github.com/someone/diag")
    monkeypatch.setenv("DIAG_REPOSITORY_BRANCH", "main")
    build_book(site.parent / "results" / "book-build", tmp_path / "published")
    for chapter in CHAPTERS:
        page = (tmp_path / "published" / "book" / "chapters" / f"{chapter}.html").read_text()
        binder = f"https://mybinder.org/v2/gh/someone/diag/main?labpath=notebooks/{chapter}.ipynb"
        colab = f"https://colab.research.google.com/github/someone/diag/blob/main/notebooks/{chapter}.ipynb"
        assert f'href="{binder}"' in page and f'href="{colab}"' in page, chapter
        assert "JupyterHub" not in page  # no hub configured in _config.yml: not offered
