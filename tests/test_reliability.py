"""A user's mistakes and faults, through the CLI: exit status 2, one line that names the bad
thing, and every file that was there before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diag.cli import main
from tests.conftest import write_pair


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path: Path, replica: Path) -> Path:
    """A scratch folder with a file, a prompt file per fault, a bad mask folder and bad textures."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "latin1.yaml").write_bytes("prompts: [caf\xe9 marks]\n".encode("latin-1"))
    (tmp_path / "weights5.yaml").write_text("prompts: [white marks, copper]\nweights: 5\n")
    (tmp_path / "weightsnan.yaml").write_text("prompts: [white marks, copper]\nweights: [.nan, 1]\n")
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((100, 100), 255, np.uint8)).save(tmp_path / "masks" / "small.png")
    (tmp_path / "textures").mkdir()
    (tmp_path / "textures" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "folder-out").mkdir()
    return tmp_path


# (name, arguments built from (replica, work folder), what the one-line message must say)
CASES: list[tuple[str, Callable[[Path, Path], list[str]], str]] = [
    ("out is a file", lambda r, w: ["generate", "memseg", "--data", str(r), "--out", str(w / "a-file")],
     "a-file: exists and is not a folder"),
    ("negative n_aug", lambda r, w: ["generate", "memseg", "--data", str(r), "--out", str(w / "o"), "--n-aug", "-3"],
     "n_aug"),
    ("zero n_aug for In&Out", lambda r, w: ["generate", "inout", "--data", str(r), "--out", str(w / "o"), "--n-aug", "0"],
     "n_aug"),
    ("huge n_aug", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"), "--n-aug", "1000000000"],
     "at most 100,000"),
    ("empty n_aug", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"), "--n-aug", ""],
     "diag.n_aug: expected an int; got ''"),
    ("negative guidance", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"), "--guidance", "-5"],
     "guidance"),
    ("nan guidance", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"), "--guidance", "nan"],
     "diag.guidance: expected a finite float"),
    ("negative seed", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"), "--seed", "-5"],
     "seed"),
    ("negative padding", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"),
                                       "--padding-mask-crop", "-500"], "padding_mask_crop"),
    ("untrained LoRA", lambda r, w: ["generate", "inout", "--data", str(r), "--out", str(w / "o"), "--train-steps", "-1"],
     "train_steps"),
    ("zero sampling steps", lambda r, w: ["generate", "inout", "--data", str(r), "--out", str(w / "o"), "--steps", "0"],
     "steps"),
    ("zero batch", lambda r, w: ["generate", "inout", "--data", str(r), "--out", str(w / "o"), "--batch-size", "0"],
     "batch_size"),
    ("zero rank", lambda r, w: ["generate", "inout", "--data", str(r), "--out", str(w / "o"), "--rank", "0"], "rank"),
    ("grey level 300", lambda r, w: ["generate", "memseg", "--data", str(r), "--out", str(w / "o"),
                                     "--foreground-threshold", "300"], "foreground_threshold"),
    ("latin-1 prompt file", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"),
                                          "--prompts", str(w / "latin1.yaml")], "latin1.yaml: not UTF-8"),
    ("weights: 5", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"),
                                 "--prompts", str(w / "weights5.yaml")], "weights5.yaml: `weights` must be a list"),
    ("nan weight", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"),
                                 "--prompts", str(w / "weightsnan.yaml")], "weightsnan.yaml: `weights` must be"),
    ("mask of another size", lambda r, w: ["generate", "diag", "--data", str(r), "--out", str(w / "o"),
                                           "--masks", str(w / "masks")], "small.png: mask is 100x100"),
    ("corrupt texture", lambda r, w: ["generate", "memseg", "--data", str(r), "--out", str(w / "o"), "--n-aug", "8",
                                      "--textures", str(w / "textures")], "bad.png: unreadable image"),
    ("generated set without n_aug", lambda r, w: ["train", "--data", str(r), "--scenario", "full-shot",
                                                  "--generated", str(w / "o")], "without --n-aug"),
    ("missing weights file", lambda r, w: ["train", "--data", str(r), "--weights", str(w / "nope.pt")], "nope.pt"),
    ("train out is a file", lambda r, w: ["train", "--data", str(r), "--scenario", "full-shot",
                                          "--out", str(w / "a-file")], "a-file: exists and is not a folder"),
    ("seeds a", lambda r, w: ["experiment", "--scenario", "full-shot", "--methods", "none", "--data", str(r),
                              "--seeds", "a"], "grid.seeds: expected an int; got 'a'"),
    ("val fraction 1.5", lambda r, w: ["experiment", "--scenario", "full-shot", "--methods", "none", "--data", str(r),
                                       "--val-fraction", "1.5"], "grid.val_fraction"),
    ("no generated sets", lambda r, w: ["experiment", "--scenario", "zero-shot", "--data", str(r)], "--generated GEN"),
    ("FID of a data folder", lambda r, w: ["fid", str(r), str(w / "masks")], "a prepared data folder"),
    ("FID of masks", lambda r, w: ["fid", str(w / "masks2"), str(w / "masks")], "holds masks"),
    ("json is a folder", lambda r, w: ["fid", str(w / "textures"), str(w / "masks"), "--json", str(w / "folder-out")],
     "is a folder; --json takes a file name"),
    ("unknown section", lambda r, w: ["reproduce", "--set", "foo.bar=1"], "unknown section 'foo'"),
    ("unknown field", lambda r, w: ["reproduce", "--set", "diag.nope=1"], "diag has no field 'nope'"),
    ("from an empty results folder", lambda r, w: ["reproduce", "--from-results", str(w / "folder-out"),
                                                   "--out", str(w / "site")], "no manifest.json, so no results"),
    ("prepare into a file", lambda r, w: ["data", "prepare", "--src", str(r), "--out", str(w / "a-file")], "a-file"),
    ("replica into a file", lambda r, w: ["data", "synth", "--scale", "small", "--out", str(w / "a-file")], "a-file"),
]


@pytest.mark.parametrize("name,build,message", CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_loses_nothing(name: str, build, message: str, replica: Path, work: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    if name == "FID of masks":
        shutil.copytree(work / "masks", work / "masks2")
        (work / "masks" / "x_GT.png").write_bytes((work / "masks" / "small.png").read_bytes())
    (work / "site").mkdir()
    (work / "site" / "index.html").write_text("the last good book")
    before, data_before = snapshot(work), snapshot(replica)
    code = main(build(replica, work))
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("diag: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert not [line for line in err if line.startswith("Traceback")]
    assert snapshot(replica) == data_before
    after = snapshot(work)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing that was there changed
    if name == "from an empty results folder":
        assert after == before  # a failed render creates nothing either


def test_a_hub_model_while_offline_is_one_line(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    import diffusers

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the hub to load the files, and couldn't find them in the cache.")

    monkeypatch.setattr(diffusers.StableDiffusionXLInpaintPipeline, "from_pretrained", offline)
    args = ["generate", "diag", "--profile", "paper", "--data", str(replica), "--out", str(tmp_path / "o"), "--n-aug", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not load from the Hugging Face hub" in err[0] and "local folder" in err[0]


def memseg(replica: Path, out: Path, *extra: str) -> int:
    return main(["generate", "memseg", "--data", str(replica), "--out", str(out), "--n-aug", "3", *extra])


def test_a_folder_diag_did_not_make_is_never_written_into(replica: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    (out / "imgs").mkdir(parents=True)
    Image.new("RGB", (224, 632)).save(out / "imgs" / "00000.png")
    (out / "manifest.csv").write_text("my own notes\n")
    before = snapshot(out)
    assert memseg(replica, out) == 2
    assert "not a set made by diag" in capsys.readouterr().err and snapshot(out) == before


def test_a_set_refuses_another_generator_and_other_data(replica: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "set"
    assert memseg(replica, out) == 0
    before = snapshot(out)
    assert main(["generate", "diag", "--data", str(replica), "--out", str(out), "--n-aug", "3"]) == 2
    assert "generator='memseg' (this run: 'diag')" in capsys.readouterr().err
    other = tmp_path / "other-data"
    shutil.copytree(replica, other)
    first = next((other / "train").glob("*[0-9].png"))
    pixels = np.asarray(Image.open(first)).copy()
    pixels[0, 0] = (pixels[0, 0] + 1) % 255
    Image.fromarray(pixels).save(first)
    assert memseg(other, out) == 2
    assert "data_fingerprint=" in capsys.readouterr().err and snapshot(out) == before


def test_an_empty_negative_prompt_is_empty(tmp_path: Path) -> None:
    from diag.generate.prompts import load_prompts

    (tmp_path / "p.yaml").write_text("prompts: [white marks on the wall]\nnegative_prompt:\n")
    assert load_prompts(tmp_path / "p.yaml").negative_prompt == ""  # not the text "None"


def test_a_prompt_file_edit_is_a_different_set(replica: Path, tmp_path: Path) -> None:
    from diag.generate.output import OutputWriter

    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("prompts: [white marks on the wall]\n")
    writer = OutputWriter(tmp_path / "set")
    first = writer.prepare("diag", replica, {"prompts": str(prompts), "prompt_set": {"prompts": ["white marks on the wall"]}})
    writer.write(0, Image.new("RGB", (224, 632)), np.zeros((632, 224), bool), first)  # one finished image
    with pytest.raises(Exception, match="prompt_set="):
        writer.prepare("diag", replica, {"prompts": str(prompts), "prompt_set": {"prompts": ["copper metal scratches"]}})
    assert first["generator"] == "diag"


def test_ctrl_c_leaves_a_consistent_set_and_the_rerun_completes_it(replica: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import diag.generate.memseg as memseg_module

    assert memseg(replica, tmp_path / "whole", "--n-aug", "4") == 0
    original, calls = memseg_module.synthesize_one, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(memseg_module, "synthesize_one", interrupted)
    out = tmp_path / "cut"
    assert memseg(replica, out, "--n-aug", "4") == 2
    assert "interrupted with 2 images finished" in capsys.readouterr().err
    assert len(pd.read_csv(out / "manifest.csv")) == 2  # manifest rows = finished files
    (out / "imgs" / ".00002.png.4242.tmp").write_bytes(b"half an image")  # a crash's leftover
    monkeypatch.undo()
    assert memseg(replica, out, "--n-aug", "4") == 0
    whole, cut = snapshot(tmp_path / "whole"), snapshot(out)
    assert {k: v for k, v in cut.items() if k.startswith(("imgs", "masks"))} == \
        {k: v for k, v in whole.items() if k.startswith(("imgs", "masks"))}


def test_prepare_labels_from_the_full_resolution_mask(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Shrinking 232 -> 224 columns drops whole columns: a one-pixel scratch there must not vanish."""
    from PIL import Image as PILImage

    src = tmp_path / "raw"
    for split in ("train", "test"):
        (src / split).mkdir(parents=True)
        write_pair(src / split, "10000" if split == "train" else "20000", (232, 632), defect=True)
        write_pair(src / split, "10001" if split == "train" else "20001", (232, 632), defect=False)
    dropped = [c for c in range(232) if c not in {int((x + 0.5) * 232 / 224) for x in range(224)}]
    mask = np.zeros((632, 232), np.uint8)
    mask[100:200, dropped[0]] = 255
    PILImage.fromarray(mask).save(src / "train" / "10001_GT.png")
    PILImage.fromarray(mask).save(src / "test" / "99999_GT.png")  # an orphan mask
    assert main(["data", "prepare", "--src", str(src), "--out", str(tmp_path / "prep")]) == 0
    assert "warning: ignored 1 mask(s) without an image: test/99999_GT.png" in capsys.readouterr().err
    labels = pd.read_csv(tmp_path / "prep" / "train.csv")["label"].tolist()
    assert labels == ["positive", "positive"]
    assert np.asarray(PILImage.open(tmp_path / "prep" / "train" / "10001_GT.png")).any()
    assert not list(tmp_path.glob(".prep.*"))  # no temporary folder left behind
    (tmp_path / ".again.killed123").mkdir()  # what a SIGKILL during an earlier run leaves: our marker inside
    (tmp_path / ".again.killed123" / ".diag-partial").write_text("")
    assert main(["data", "prepare", "--src", str(src), "--out", str(tmp_path / "again")]) == 0
    assert not list(tmp_path.glob(".again.*"))


def test_a_damaged_fid_cache_file_is_recomputed(replica: Path, tmp_path: Path) -> None:
    from diag.fid.features import compute_fid

    real = sorted((replica / "train").glob("*[0-9].png"))[:3]
    (tmp_path / "a").mkdir()
    for p in real:
        shutil.copy(p, tmp_path / "a" / p.name)
    cache = tmp_path / "cache"
    first = compute_fid(tmp_path / "a", tmp_path / "a", dims=(64,), cache_dir=cache, progress=False)
    for path in cache.rglob("*.npy"):
        path.write_bytes(b"garbage")
    again = compute_fid(tmp_path / "a", tmp_path / "a", dims=(64,), cache_dir=cache, progress=False)
    assert again == pytest.approx(first)
