"""The paper profile end to end, on tiny random stand-ins for SDXL, SD-1.5 and ResNet-50.

A fake raw KSDD2 (official layout, with the archive's ``(copy)`` pair) -> ``diag data prepare``
-> ``diag reproduce --profile paper --data …`` -> a built site whose chapter 1 shows the
prepared data's counts and whose results pages carry the "non-paper settings" banner; then
``--from-results`` rebuilds it without creating or changing a file in the results folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from diag.cli import main
from diag.testing import tiny_sd15_pipeline, tiny_sdxl_inpaint_pipeline
from tests.conftest import write_pair

pytestmark = pytest.mark.slow  # `pytest -m "not slow"`: the fast subset (README)

TRAIN = {"positive": 3, "negative": 7}
TEST = {"positive": 2, "negative": 5}


def fake_ksdd2(root: Path) -> Path:
    """Official layout with distinct counts per split and label, odd sizes, and the duplicate pair."""
    sizes = [(230, 630), (226, 645), (241, 597), (232, 628)]
    for split, first, counts in (("train", 10000, TRAIN), ("test", 20000, TEST)):
        (root / split).mkdir(parents=True)
        labels = [True] * counts["positive"] + [False] * counts["negative"]
        for i, defect in enumerate(labels):
            write_pair(root / split, str(first + i), sizes[i % len(sizes)], defect=defect, seed=i)
    write_pair(root / "train", "10301 (copy)", (230, 630), defect=False)
    (root / "train" / "10301 (copy)_GT.png").rename(root / "train" / "10301_GT (copy).png")
    return root


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("paper")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the notebook kernels' torch
    raw = fake_ksdd2(root / "KolektorSDD2")
    assert main(["data", "prepare", "--src", str(raw), "--out", str(root / "ksdd2")]) == 0
    tiny_sdxl_inpaint_pipeline().save_pretrained(root / "tiny-sdxl", safe_serialization=True)
    tiny_sd15_pipeline().save_pretrained(root / "tiny-sd15", safe_serialization=True)
    args = ["reproduce", "--profile", "paper", "--data", str(root / "ksdd2"), "--results", str(root / "results"),
            "--out", str(root / "site"), "--diag-model", str(root / "tiny-sdxl"), "--inout-model", str(root / "tiny-sd15"),
            "--weights", "none", "--n-aug", "4", "--seeds", "0", "--device", "cpu",
            "--set", "diag.steps=2", "--set", "inout.train_steps=2", "--set", "inout.steps=2",
            "--set", "inout.train_batch_size=2", "--set", "inout.mixed_precision=no",
            "--set", "classifier.epochs=1", "--set", "classifier.batch_size=4",
            "--set", "grid.real_positives=0,1,3",  # few-shot: In&Out fine-tuned on one drawn positive too
            "--executor", "local", "--jobs", "2"]  # every unit a job of its own, as on a cluster
    assert main(args) == 0
    yield {"root": root, "results": root / "results", "site": root / "site"}
    monkeypatch.undo()


def test_the_paper_profile_builds_the_book_from_the_prepared_data(paper_run: dict[str, Path]) -> None:
    site, results = paper_run["site"], paper_run["results"]
    assert (site / "index.html").is_file()
    chapter1 = (site / "book" / "chapters" / "01-data.html").read_text()
    assert "paper profile (KSDD2)\ndata: prepared data" in chapter1 and "data: offline replica" not in chapter1
    for count in (TRAIN["negative"], TEST["negative"]):
        assert "<td" in chapter1 and f">{count}</td>" in chapter1  # the prepared data's counts, not a replica's
    zero_shot = (site / "book" / "chapters" / "04-zero-shot.html").read_text()
    assert "Partial / non-paper settings" in zero_shot and "classifier.epochs: 1 recorded (profile: 50)" in zero_shot
    assert not (results / "data").exists()  # the paper profile never makes a replica
    for method in ("diag", "memseg", "inout", "diag-procedural"):
        assert (results / "generated" / method / "augmented_4" / "set.json").is_file()
    assert (results / "generated" / "inout" / "lora-seed0" / "training.json").is_file()
    assert (results / "fid_4.csv").is_file() and (results / "manifest.json").is_file()
    # the few-shot curve: DIAG's masks and In&Out's fine-tune from the one drawn positive only
    few = pd.read_csv(results / "few-shot" / "results.csv", dtype={"positive_ids": str})
    drawn = few.loc[few["real_positives"] == 1, "positive_ids"].iloc[0].split()
    assert len(drawn) == 1 and set(few["real_positives"]) == {0, 1, 3}
    assert set(few.loc[few["real_positives"] == 0, "method"]) == {"diag-procedural", "memseg"}
    for method in ("diag", "inout"):
        record = json.loads((results / "generated" / method / "k1-draw0" / "augmented_4" / "set.json").read_text())
        assert record["positives"] == drawn
    lora = json.loads((results / "generated" / "inout" / "k1-draw0" / "lora-seed0" / "training.json").read_text())
    assert lora["settings"]["positives"] == drawn
    masks = pd.read_csv(results / "generated" / "diag" / "k1-draw0" / "augmented_4" / "manifest.csv", dtype=str)["mask"]
    assert set(masks) == set(drawn)
    page = (paper_run["site"] / "book" / "chapters" / "09-few-shot.html").read_text()
    assert "How many real defects" in page and any(f"{v} AP" in page for v in ("stops adding", "adds no", "still adds"))


def test_each_unit_ran_as_a_job_of_its_own(paper_run: dict[str, Path]) -> None:
    results = paper_run["results"]
    logs = sorted((results / "jobs").glob("*/*_log.err"))
    started = [log.read_text().split("'")[1] for log in logs if "started on" in log.read_text()]
    assert "In&Out fine-tune" in started and "cell zero-shot inout 4 0 0" in started and "FID table at N_aug 4" in started
    assert "In&Out fine-tune k1-draw0" in started and "cell few-shot inout 4 0 1" in started
    assert not any(name.startswith("chapter") for name in started)  # the chapters execute here, on the results
    # each cell's row file merged into results.csv; few-shot: 2 methods at k = 0, 5 at k = 1 and at k = 3
    for scenario, cells in (("zero-shot", 4), ("full-shot", 4), ("few-shot", 12)):
        assert len(pd.read_csv(results / scenario / "results.csv")) == cells
        assert not list((results / scenario / "rows").glob("*.csv"))


def test_fp16_in_and_out_on_a_cpu_is_refused_before_anything_runs(paper_run: dict[str, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    args = ["reproduce", "--profile", "paper", "--data", str(paper_run["root"] / "ksdd2"), "--device", "cpu",
            "--results", str(tmp_path / "r"), "--out", str(tmp_path / "s")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "fp16 (the paper profile's, as the official run) needs a CUDA GPU" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_from_results_renders_without_touching_the_results(paper_run: dict[str, Path]) -> None:
    results, root = paper_run["results"], paper_run["root"]
    before = snapshot(results)
    args = ["reproduce", "--profile", "paper", "--from-results", str(results), "--out", str(root / "site-again")]
    assert main(args) == 0
    assert snapshot(results) == before
    page = (root / "site-again" / "book" / "chapters" / "05-full-shot.html").read_text()
    assert "Partial / non-paper settings" in page and "full-shot: " in page
    assert "(not in this results folder" not in (root / "site-again" / "book" / "chapters" / "02-inpainting.html").read_text()


def test_the_paper_profile_refuses_to_run_without_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce", "--profile", "paper", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert "paper profile runs on real KSDD2 only" in error and "diag data download" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
