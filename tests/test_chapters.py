"""The chapters' helpers: rendering without computing, the prompt lab's keep, chapter 2's views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diag import workflow
from diag.chapters import explain
from diag.chapters.prompt_lab import Candidate, PromptLab
from diag.config import profile_config
from diag.errors import MissingResult


def test_rendering_an_empty_results_folder_computes_nothing(replica: Path, tmp_path: Path) -> None:
    run = workflow.setup("demo", tmp_path / "results", replica, compute=False)
    with pytest.raises(MissingResult, match="no grid rows"):
        run.grid("zero-shot")
    with pytest.raises(MissingResult, match="generated set missing"):
        run.generate("diag", 100)
    with pytest.raises(MissingResult, match="FID table missing"):
        run.fid()
    with pytest.raises(MissingResult, match="realism table missing"):
        run.realism()
    assert not (tmp_path / "results").exists()


def test_the_paper_profile_never_makes_a_replica(tmp_path: Path) -> None:
    from diag.errors import ConfigError

    with pytest.raises(ConfigError, match="runs on real KSDD2 only"):
        workflow.setup("paper", tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_keeping_a_candidate_twice_adds_it_once(replica: Path, tmp_path: Path) -> None:
    lab = PromptLab(replica, tmp_path / "curated", profile_config("demo").diag)
    mask = np.zeros((632, 224), bool)
    mask[100:140, 50:90] = True
    candidate = Candidate(np.full((632, 224, 3), 60, np.uint8), mask, "10000", lab.mask_names()[0],
                          "white marks on the wall", "", seed=3)
    first = lab.keep(candidate)
    assert lab.keep(candidate) == first
    other = lab.keep(Candidate(candidate.image, mask, "10000", lab.mask_names()[0], "copper metal scratches", "", 4))
    assert other != first and len(list((tmp_path / "curated" / "imgs").glob("*.png"))) == 2
    assert (tmp_path / "curated" / "prompts.yaml").read_text().count("- ") == 2


def test_the_forward_process_destroys_the_image_step_by_step(replica: Path) -> None:
    pipe = explain.load_demo_pipeline()
    crop = explain.example_crop(replica)
    frames = dict(explain.forward_process(pipe, crop, [0, 500, 999]))
    clean = np.asarray(crop, float)
    errors = [np.abs(frames[t].astype(float) - clean).mean() for t in (0, 500, 999)]
    assert errors[0] < errors[1] < errors[2]


def test_the_strength_sentence_follows_the_measurements() -> None:
    assert "only retouches" in explain.strength_text((0.3, 0.99), [3.0, 40.0])
    assert "does not stay close" in explain.strength_text((0.3, 0.99), [35.0, 40.0])
    assert "not in this results folder" in explain.strength_text((0.3, 0.99), None)


def test_comparison_text_says_when_augmentation_has_no_room_left() -> None:
    import pandas as pd

    from diag.chapters.report import comparison_text

    def rows(aps: dict[str, float]) -> pd.DataFrame:
        return pd.DataFrame(
            [{"method": m, "n_aug": 0 if m == "none" else 100, "seed": s, "ap": ap + 0.001 * s,
              "precision": 0.9, "recall": 0.8} for m, ap in aps.items() for s in range(3)]
        )

    flat = comparison_text(rows({"none": 0.92, "memseg": 0.925, "inout": 0.92, "diag": 0.91}), "full-shot", "DEMO")
    assert "orders the paper's methods by AP as MemSeg > In&Out > DIAG" in flat and "little left to add" in flat
    steep = comparison_text(rows({"none": 0.70, "memseg": 0.90, "inout": 0.80, "diag": 0.75}), "full-shot", "DEMO")
    assert "adds +0.200" in steep and "little left to add" not in steep


def test_comparison_text_says_when_diags_lead_is_favoured_by_the_demo_corpus() -> None:
    import pandas as pd

    from diag.chapters.report import comparison_text

    def rows(aps: dict[str, float]) -> pd.DataFrame:
        return pd.DataFrame([{"method": m, "n_aug": 100, "seed": s, "ap": ap, "precision": 0.9, "recall": 0.8}
                             for m, ap in aps.items() for s in range(3)])

    lead = {"memseg": 0.80, "inout": 0.85, "diag": 0.90}
    assert "replica's own renderers" in comparison_text(rows(lead), "zero-shot", "DEMO")
    assert "replica's own renderers" not in comparison_text(rows(lead), "zero-shot", "PAPER")
    assert "replica's own renderers" not in comparison_text(rows({**lead, "diag": 0.7}), "zero-shot", "DEMO")


def test_a_stored_figure_is_drawn_again_only_when_the_settings_change(replica: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []

    def draw():
        drawn.append(1)
        fig = plt.figure(figsize=(1, 1))
        return fig, {"count": len(drawn)}

    run = workflow.setup("demo", tmp_path / "results", replica, compute=True)
    assert run.stored_figure("example", draw)[1] == {"count": 1}
    assert run.stored_figure("example", draw)[1] == {"count": 1} and len(drawn) == 1  # stored with these settings: shown
    other = workflow.setup("demo", tmp_path / "results", replica, compute=True, overrides=["diag.guidance=2"])
    assert other.stored_figure("example", draw)[1] == {"count": 2}  # another setting: drawn again
    render = workflow.setup("demo", tmp_path / "results", replica, compute=False)
    assert render.stored_figure("example", draw)[1] == {"count": 2} and len(drawn) == 2  # a render never draws
