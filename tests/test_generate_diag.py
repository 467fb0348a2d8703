"""The DIAG generator on a tiny random SDXL-inpaint pipeline built offline."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from diag.data.ksdd2 import read_manifest
from diag.errors import ConfigError, DataError
from diag.generate.diag import DiagConfig, canvas_size, feathered, generate_diag, inpaint_batch, load_pipeline
from diag.generate.plan import release_plan
from diag.testing import tiny_sdxl_inpaint_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_sdxl_inpaint_pipeline(seed=0)


CONFIG = DiagConfig(model="tiny", n_aug=4, steps=2, device="cpu")


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}


@pytest.fixture(scope="module")
def reference(replica: Path, pipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "diag"
    generate_diag(replica, out, CONFIG, pipe=pipe, progress=False)
    return out


def test_layout_and_manifest(replica: Path, reference: Path) -> None:
    assert sorted(p.name for p in (reference / "imgs").iterdir()) == [f"{i:05d}.png" for i in range(4)]
    for i in range(4):
        assert Image.open(reference / "imgs" / f"{i:05d}.png").size == (224, 632)
        mask = np.asarray(Image.open(reference / "masks" / f"{i:05d}.png"))
        assert mask.shape == (632, 224) and mask.any() and set(np.unique(mask)) <= {0, 255}
    rows = pd.read_csv(reference / "manifest.csv")
    train = read_manifest(replica, "train")
    plan = release_plan([s.id for s in train if not s.is_positive], [s.id for s in train if s.is_positive],
                        ["white marks on the wall", "copper metal scratches"], 4, 0)
    assert rows["negative"].astype(str).tolist() == [p.negative for p in plan]
    assert rows["mask"].astype(str).tolist() == [p.mask for p in plan]
    assert rows["prompt"].tolist() == [p.prompt for p in plan]
    assert (rows["steps"] == 2).all() and (rows["guidance"] == 20).all() and (rows["canvas_px"] == "256x256").all()
    assert rows["negative_prompt"].iloc[0] == "smooth, plain, black, dark, shadow"


def test_pixels_outside_the_mask_are_unchanged(pipe) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(30, 70, (256, 256, 3), dtype=np.uint8))
    mask = np.zeros((256, 256), np.uint8)
    mask[100:140, 60:90] = 255
    out = inpaint_batch(pipe, [image], [Image.fromarray(mask)], ["white marks"], [1], replace(CONFIG), "", (256, 256))[0]
    out, image = np.asarray(out), np.asarray(image)
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])


def test_feathered_paste_fades_inside_the_mask_only(pipe) -> None:
    mask = np.zeros((120, 120), np.uint8)
    mask[20:80, 20:80] = 255  # a 60-px square
    mask[100:103, 10:110] = 255  # a 3-px line, thinner than the feather
    alpha = np.asarray(feathered(Image.fromarray(mask), 4.0)).astype(int)
    assert (alpha[mask == 0] == 0).all()
    assert alpha[50, 50] == 255 and 0 < alpha[20, 50] < alpha[22, 50] < alpha[24, 50] == 255
    assert alpha[101, 60] == 255  # the thin line keeps a full-strength centre: nothing is feathered away
    assert feathered(Image.fromarray(mask), 0.0) is not None and np.array_equal(
        np.asarray(feathered(Image.fromarray(mask), 0.0)), mask
    )
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(30, 70, (256, 256, 3), dtype=np.uint8))
    big = np.zeros((256, 256), np.uint8)
    big[100:140, 60:100] = 255
    hard = inpaint_batch(pipe, [image], [Image.fromarray(big)], ["white"], [1], CONFIG, "", (256, 256))[0]
    soft = inpaint_batch(pipe, [image], [Image.fromarray(big)], ["white"], [1], replace(CONFIG, mask_blur=6), "", (256, 256))[0]
    hard, soft, image = (np.asarray(x, float) for x in (hard, soft, image))
    assert np.array_equal(soft[big == 0], image[big == 0])
    assert np.array_equal(soft[110:130, 70:90], hard[110:130, 70:90])  # deep inside: the fill itself
    edge = np.abs(soft[100, 70:90] - image[100, 70:90]).mean()  # on the mask's edge: the original shows through
    assert edge < 0.5 * np.abs(hard[100, 70:90] - image[100, 70:90]).mean()
    with pytest.raises(ConfigError, match="mask_blur"):
        replace(CONFIG, mask_blur=-1).validate()


def test_our_crop_matches_diffusers_padding_mask_crop(pipe) -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(30, 70, (256, 256, 3), dtype=np.uint8))
    mask = np.zeros((256, 256), np.uint8)
    mask[30:90, 150:200] = 255
    ours = inpaint_batch(pipe, [image], [Image.fromarray(mask)], ["copper"], [5], CONFIG, "dark", (256, 256))[0]
    theirs = pipe(prompt="copper", negative_prompt="dark", image=image, mask_image=Image.fromarray(mask), height=256, width=256,
                  padding_mask_crop=2, num_inference_steps=2, guidance_scale=20.0, strength=0.99, original_size=(256, 256),
                  target_size=(256, 256), generator=torch.Generator().manual_seed(5)).images[0]
    diff = np.abs(np.asarray(ours, float) - np.asarray(theirs, float))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8


def test_batch_of_four_equals_batch_of_one(replica: Path, pipe, reference: Path, tmp_path: Path) -> None:
    generate_diag(replica, tmp_path / "b4", replace(CONFIG, batch_size=4), pipe=pipe, progress=False)
    for i in range(4):
        a = np.asarray(Image.open(reference / "imgs" / f"{i:05d}.png"), float)
        b = np.asarray(Image.open(tmp_path / "b4" / "imgs" / f"{i:05d}.png"), float)
        assert np.abs(a - b).max() <= 2


def test_resume_is_byte_identical(replica: Path, pipe, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(reference, out)
    for i in (2, 3):  # as if the run stopped after two images (index 3 without its row)
        (out / "meta" / f"{i:05d}.json").unlink()
    (out / "imgs" / "00002.png").unlink()
    (out / "manifest.csv").unlink()
    generate_diag(replica, out, CONFIG, pipe=pipe, progress=False)
    assert digest(out) == digest(reference)
    assert (out / "manifest.csv").read_text() == (reference / "manifest.csv").read_text()


def test_a_finished_set_is_kept_and_needs_no_model(replica: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "done"
    shutil.copytree(reference, out)
    with pytest.raises(DataError, match=r"this set \(4 images\) was made with guidance=20.0 \(this run: 1.5\)"):
        generate_diag(replica, out, replace(CONFIG, guidance=1.5), progress=False)
    assert digest(out) == digest(reference)  # nothing lost
    # "tiny" names no loadable model: a finished set returns before any model is loaded
    assert generate_diag(replica, out, CONFIG, progress=False) == out / "manifest.csv"


def test_seeds_reproduce(replica: Path, pipe, reference: Path, tmp_path: Path) -> None:
    generate_diag(replica, tmp_path / "again", CONFIG, pipe=pipe, progress=False)
    assert digest(tmp_path / "again") == digest(reference)
    generate_diag(replica, tmp_path / "seed1", replace(CONFIG, seed=1), pipe=pipe, progress=False)
    assert digest(tmp_path / "seed1")["imgs/00000.png"] != digest(reference)["imgs/00000.png"]


def test_aspect_canvas_and_procedural_masks(replica: Path, pipe, tmp_path: Path) -> None:
    assert canvas_size(pipe, "release") == (256, 256)
    height, width = canvas_size(pipe, "aspect")
    assert height % 8 == width % 8 == 0 and abs(height / width - 632 / 224) < 0.1
    config = replace(CONFIG, n_aug=2, canvas="aspect", masks="procedural")
    generate_diag(replica, tmp_path / "aspect", config, pipe=pipe, progress=False)
    rows = pd.read_csv(tmp_path / "aspect" / "manifest.csv")
    assert (rows["mask"] == "procedural").all() and (rows["canvas_px"] == f"{height}x{width}").all()


def test_bad_input(replica: Path, pipe, tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no \\*.png masks"):
        generate_diag(replica, tmp_path / "o", replace(CONFIG, masks=str(tmp_path / "masks")), pipe=pipe, progress=False)
    Image.fromarray(np.zeros((632, 224), np.uint8)).save(tmp_path / "masks" / "blank.png")
    with pytest.raises(DataError, match="blank.png: mask has no foreground"):
        generate_diag(replica, tmp_path / "o", replace(CONFIG, masks=str(tmp_path / "masks")), pipe=pipe, progress=False)
    with pytest.raises(DataError, match="model folder not found"):
        load_pipeline(str(tmp_path / "no-model"), torch.device("cpu"))
    long_prompts = tmp_path / "long.yaml"
    long_prompts.write_text("prompts:\n  - " + " ".join(["white marks"] * 60) + "\n")
    with pytest.warns(UserWarning, match="CLIP reads 77: this part is cut"):
        generate_diag(replica, tmp_path / "long", replace(CONFIG, n_aug=1, prompts=str(long_prompts)), pipe=pipe, progress=False)
    no_negatives = tmp_path / "noneg"
    no_negatives.mkdir()
    (no_negatives / "train.csv").write_text("path,label\n")
    with pytest.raises(DataError, match="no negative training images"):
        generate_diag(no_negatives, tmp_path / "o2", CONFIG, pipe=pipe, progress=False)


@pytest.mark.slow
def test_accelerate_two_processes_give_the_same_set(replica: Path, pipe, reference: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny-model"
    pipe.save_pretrained(model, safe_serialization=True)
    out = tmp_path / "accel"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "diag", "generate", "diag", "--profile", "paper", "--data", str(replica),
           "--out", str(out), "--n-aug", "4", "--steps", "2", "--model", str(model), "--device", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert digest(out) == digest(reference)


@pytest.mark.parametrize("canvas", ["release", "aspect", "crop"])
def test_the_prompt_lab_makes_what_diag_generate_makes(canvas: str, replica: Path, pipe, tmp_path: Path) -> None:
    from diag.chapters.prompt_lab import PromptLab

    config = replace(CONFIG, n_aug=1, canvas=canvas)
    generate_diag(replica, tmp_path / canvas, config, pipe=pipe, progress=False)
    row = pd.read_csv(tmp_path / canvas / "manifest.csv", dtype={"negative": str, "mask": str}).iloc[0]
    lab = PromptLab(replica, tmp_path / "curated", config, pipe=pipe)
    (candidate,) = lab.inpaint([row["negative"]], row["mask"], row["prompt"], row["negative_prompt"], [int(row["noise_seed"])])
    assert np.array_equal(candidate.image, np.asarray(Image.open(tmp_path / canvas / "imgs" / "00000.png")))
    assert np.array_equal(candidate.mask, np.asarray(Image.open(tmp_path / canvas / "masks" / "00000.png")) > 0)
