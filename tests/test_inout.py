"""In&Out: DreamBooth + LoRA on a tiny random SD-1.5 pipeline built offline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from diag.data.ksdd2 import load_image, read_manifest
from diag.generate.inout import InOutConfig, LORA_FILE, finetune_lora, generate_inout, sample, save_lora
from diag.generate.tiny import tiny_sd15_pipeline

CONFIG = InOutConfig(model="tiny", n_aug=3, train_steps=3, rank=4, alpha=4, lr=1e-2, steps=2, device="cpu")


def positives(replica: Path) -> list[np.ndarray]:
    return [load_image(s.image_path) for s in read_manifest(replica, "train") if s.is_positive]


def test_lora_steps_change_the_lora_tensors_and_only_them(replica: Path) -> None:
    pipe = tiny_sd15_pipeline()
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    text_before = {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()}
    losses = finetune_lora(pipe, positives(replica), CONFIG, progress=False)
    assert len(losses) == 3 and all(np.isfinite(losses))
    after = pipe.unet.state_dict()
    lora = [k for k in after if "lora_" in k]
    assert lora and all(k in after for k in lora)
    assert any("lora_B" in k and not torch.equal(after[k], torch.zeros_like(after[k])) for k in lora)
    base = {k.replace(".base_layer", ""): v for k, v in after.items() if "lora_" not in k}
    assert set(base) == set(before)
    assert all(torch.equal(before[k], base[k]) for k in before)
    assert all(torch.equal(v, pipe.text_encoder.state_dict()[k]) for k, v in text_before.items())


def test_save_and_reload_give_identical_outputs(replica: Path, tmp_path: Path) -> None:
    pipe = tiny_sd15_pipeline()
    finetune_lora(pipe, positives(replica), CONFIG, progress=False)
    path = save_lora(pipe, tmp_path / "lora")
    assert path.name == LORA_FILE and path.stat().st_size > 0
    tuned = sample(pipe, [CONFIG.instance_prompt], [7], CONFIG, 64)[0]
    fresh = tiny_sd15_pipeline()
    base = sample(fresh, [CONFIG.instance_prompt], [7], CONFIG, 64)[0]
    fresh.load_lora_weights(tmp_path / "lora", weight_name=LORA_FILE)
    reloaded = sample(fresh, [CONFIG.instance_prompt], [7], CONFIG, 64)[0]
    assert np.array_equal(np.asarray(tuned), np.asarray(reloaded))
    assert not np.array_equal(np.asarray(tuned), np.asarray(base))


def test_generation_writes_the_layout_and_resumes(replica: Path, tmp_path: Path) -> None:
    out = tmp_path / "inout"
    generate_inout(replica, out, CONFIG, pipe=tiny_sd15_pipeline(), progress=False)
    rows = pd.read_csv(out / "manifest.csv")
    assert rows["index"].tolist() == [0, 1, 2] and rows["mask"].str.startswith("none").all()
    for i in range(3):
        assert Image.open(out / "imgs" / f"{i:05d}.png").size == (224, 632)
        assert not np.asarray(Image.open(out / "masks" / f"{i:05d}.png")).any()
    assert (out / "lora" / LORA_FILE).is_file()
    first = (out / "imgs" / "00001.png").read_bytes()
    (out / "imgs" / "00001.png").unlink()
    generate_inout(replica, out, CONFIG, pipe=tiny_sd15_pipeline(), progress=False)  # reuses the saved LoRA
    assert (out / "imgs" / "00001.png").read_bytes() == first


def test_prior_preservation_uses_class_images(replica: Path, tmp_path: Path) -> None:
    config = replace(CONFIG, prior_preservation=True, num_class_images=2, n_aug=1)
    generate_inout(replica, tmp_path / "pp", config, pipe=tiny_sd15_pipeline(), progress=False)
    assert (tmp_path / "pp" / "imgs" / "00000.png").is_file()


def test_local_folders_load_through_the_shared_loader(tmp_path: Path) -> None:
    from diag.data.ksdd2 import DataError
    from diag.generate.diag import load_pipeline
    from diag.generate.inout import load_base

    folder = tmp_path / "sd15"
    tiny_sd15_pipeline().save_pretrained(folder, safe_serialization=True)
    assert type(load_base(str(folder), torch.device("cpu"))).__name__ == "StableDiffusionPipeline"
    with pytest.raises(DataError, match="StableDiffusionPipeline is not a diffusers inpainting pipeline"):
        load_pipeline(str(folder), torch.device("cpu"))  # DIAG needs an inpainting model


def test_batched_sampling_matches_one_by_one(replica: Path, tmp_path: Path) -> None:
    single, batched = tmp_path / "single", tmp_path / "batched"
    generate_inout(replica, single, CONFIG, pipe=tiny_sd15_pipeline(), progress=False)
    generate_inout(replica, batched, replace(CONFIG, batch_size=2), pipe=tiny_sd15_pipeline(), progress=False)
    assert pd.read_csv(batched / "manifest.csv")["index"].tolist() == [0, 1, 2]  # a last, partial batch too
    for i in range(3):
        a, b = (np.asarray(Image.open(folder / "imgs" / f"{i:05d}.png"), float) for folder in (single, batched))
        assert np.abs(a - b).mean() < 1.0  # same seeds per image; batching changes only float rounding
