"""One config per profile: defaults written once, --set parsing, CLI options built from fields."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

from diag.cli import build_parser, main
from diag.config import DEMO, SECTIONS, apply_overrides, build_config, profile_config
from diag.errors import ConfigError
from diag.experiments import summarize


def test_the_demo_profile_changes_only_what_demo_says() -> None:
    from diag.generate.loading import DEMO_MODEL, model_defaults

    paper, demo = profile_config("paper"), profile_config("demo")
    from_model = set(model_defaults(DEMO_MODEL))  # the demo model's own diag_defaults.json
    for section in SECTIONS:
        for field in fields(getattr(paper, section)):
            ours, theirs = getattr(getattr(demo, section), field.name), getattr(getattr(paper, section), field.name)
            changed = (field.name in DEMO.get(section, {}) or (section == "diag" and field.name in from_model)
                       or (section == "inout" and field.name == "guidance"))
            assert (ours != theirs) <= changed, f"{section}.{field.name} differs without being a demo change"
    assert paper.diag.guidance == 20.0 and demo.diag.guidance == model_defaults(DEMO_MODEL)["guidance"]


def test_the_demo_profiles_own_choices_win_over_the_models_defaults(tmp_path: Path) -> None:
    """The demo sets In&Out's guidance itself (cost of the whole canvas); the model's default must not undo it."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "diag_defaults.json").write_text('{"guidance": 2.5}')
    demo = build_config("demo", [f"diag.model={model}", f"inout.model={model}"])
    assert demo.diag.guidance == 2.5 and demo.inout.guidance == DEMO["inout"]["guidance"]
    assert apply_overrides(demo, ["diag.steps=5"]).inout.guidance == DEMO["inout"]["guidance"]
    assert apply_overrides(demo, ["inout.guidance=3"]).inout.guidance == 3.0


def test_overrides_are_parsed_by_type_and_validated() -> None:
    config = build_config("paper", ["diag.steps=2", "grid.n_augs=4,8", "inout.min_snr_gamma=none",
                                    "classifier.bn_train_every_epoch=true", "data.path=/x"])
    assert (config.diag.steps, config.grid.n_augs, config.inout.min_snr_gamma) == (2, [4, 8], None)
    assert config.classifier.bn_train_every_epoch is True and config.data.path == "/x"
    for bad, message in (("diag.steps=two", "diag.steps: expected an int; got 'two'"),
                         ("diag.guidance=inf", "expected a finite float"), ("diag.steps", "SECTION.FIELD=VALUE"),
                         ("grid.seeds=", "comma-separated list"), ("inout.optimizer=sgd", "optimizer"),
                         ("diag.canvas=round", "canvas")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(profile_config("paper"), [bad])


def test_a_models_own_defaults_apply_unless_set(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "diag_defaults.json").write_text('{"guidance": 2.5, "canvas": "crop", "steps": 12, "mask_blur": 3}')
    config = build_config("paper", [f"diag.model={model}"])
    assert (config.diag.guidance, config.diag.canvas, config.diag.steps, config.diag.mask_blur) == (2.5, "crop", 12, 3)
    config = build_config("paper", [f"diag.model={model}", "diag.guidance=7"])
    assert (config.diag.guidance, config.diag.steps) == (7.0, 12)
    # on top of the demo profile, another model does not inherit the bundled model's defaults
    (model / "diag_defaults.json").write_text('{"guidance": 2.5}')
    config = build_config("demo", [f"diag.model={model}"])
    # nor its canvas: "crop" is the bundled model's (its diag_defaults.json), written there only
    assert (config.diag.guidance, config.diag.mask_blur, config.diag.canvas) == (2.5, 0.0, "release")
    assert build_config("demo").diag.canvas == "crop"
    config = build_config("demo", ["diag.model=some/hub-model"])
    assert (config.diag.guidance, config.diag.mask_blur) == (20.0, 0.0)
    assert build_config("demo", ["diag.mask_blur=4"]).diag.mask_blur == 4.0


def test_every_field_is_an_option(capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "inout", "--help"])
    text = capsys.readouterr().out
    for field in fields(profile_config("paper").inout):
        assert "--" + field.name.replace("_", "-") in text
    assert "--lr VALUE default: 0.001 (demo), 1e-05 (paper)" in " ".join(text.split())


def test_summarize_puts_the_papers_rows_beside_ours() -> None:
    rows = pd.DataFrame([{"scenario": "zero-shot", "method": "diag", "n_aug": 100, "seed": s, "ap": ap,
                          "precision": 0.9, "recall": 0.6} for s, ap in enumerate([0.70, 0.80])])
    table = summarize(rows, "zero-shot")
    assert table.loc[0, "paper_ap"] == 0.801 and table.loc[0, "ap"] == "0.750 ± 0.071"
    assert table.loc[0, "ap_gap"] == pytest.approx(0.75 - 0.801, abs=1e-3)


@pytest.mark.slow
def test_experiment_through_the_cli(replica: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["experiment", "--scenario", "full-shot", "--methods", "none", "--data", str(replica), "--seeds", "0",
            "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "grid")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no augmentation" in out and "[DEMO numbers" in out
    rows = pd.read_csv(tmp_path / "grid" / "results.csv")
    assert len(rows) == 1 and rows.loc[0, "epochs"] == 2 and rows.loc[0, "backbone"] == "fid-inception-maps"
