"""In&Out: DreamBooth + LoRA on a tiny random SD-1.5 pipeline built offline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from diag.data.ksdd2 import load_image, read_manifest
from diag.errors import ConfigError, DataError
from diag.generate.inout import (
    LORA_FILE,
    TEXT_LORA_FILE,
    InOutConfig,
    finetune_lora,
    generate_inout,
    load_lora,
    merge_lora,
    sample,
    save_lora,
)
from diag.testing import tiny_sd15_pipeline

CONFIG = InOutConfig(model="tiny", mixed_precision="no", n_aug=3, train_steps=3, rank=4, alpha=4, conv_rank=2, conv_alpha=1, lr=1e-2, steps=2,
                     train_batch_size=2, clip_skip=2, device="cpu")


def positives(replica: Path) -> list[np.ndarray]:
    return [load_image(s.image_path) for s in read_manifest(replica, "train") if s.is_positive]


def test_lora_steps_change_the_lora_tensors_and_only_them(replica: Path) -> None:
    pipe = tiny_sd15_pipeline()
    before = {name: {k: v.clone() for k, v in getattr(pipe, name).state_dict().items()} for name in ("unet", "text_encoder")}
    report = finetune_lora(pipe, positives(replica), CONFIG, progress=False)
    assert report["steps"] == 3 and report["optimizer"] == "adamw" and all(np.isfinite(report["losses_last_20"]))
    for name in ("unet", "text_encoder"):  # the official run trains LoRA on both
        after = getattr(pipe, name).state_dict()
        lora = [k for k in after if "lora_" in k]
        assert lora and any("lora_B" in k and after[k].abs().sum() > 0 for k in lora)
        base = {k.replace(".base_layer", ""): v for k, v in after.items() if "lora_" not in k}
        assert set(base) == set(before[name]) and all(torch.equal(before[name][k], base[k]) for k in base)
    convs = [k for k in pipe.unet.state_dict() if "resnets" in k and ".conv1.lora_A" in k]
    assert convs and pipe.unet.state_dict()[convs[0]].shape[0] == CONFIG.conv_rank  # conv LoRA at its own rank


def test_the_step_count_follows_epochs_and_repeats() -> None:
    official = InOutConfig()
    assert official.total_steps(246) == 10_250  # 50 epochs x 10 repeats x 246 positives / batch 12
    assert (official.rank, official.alpha, official.conv_rank, official.conv_alpha) == (32, 16, 4, 1)
    assert (official.clip_skip, official.min_snr_gamma, official.merge_ratio) == (2, 5.0, 0.65)
    assert InOutConfig(train_steps=7).total_steps(246) == 7


def test_merging_at_a_lower_ratio_moves_the_output_less(replica: Path) -> None:
    base = np.asarray(sample(tiny_sd15_pipeline(), [CONFIG.instance_prompt], [3], CONFIG, 64)[0], float)
    moved = {}
    for ratio in (0.3, 1.0):
        pipe = tiny_sd15_pipeline()
        finetune_lora(pipe, positives(replica), CONFIG, progress=False)
        merge_lora(pipe, ratio)
        moved[ratio] = np.abs(np.asarray(sample(pipe, [CONFIG.instance_prompt], [3], CONFIG, 64)[0], float) - base).mean()
    assert 0 < moved[0.3] < moved[1.0]


def test_save_and_reload_give_identical_outputs(replica: Path, tmp_path: Path) -> None:
    pipe = tiny_sd15_pipeline()
    finetune_lora(pipe, positives(replica), CONFIG, progress=False)
    path = save_lora(pipe, tmp_path / "lora")
    assert path.name == LORA_FILE and path.stat().st_size > 0 and (tmp_path / "lora" / TEXT_LORA_FILE).is_file()
    tuned = sample(pipe, [CONFIG.instance_prompt], [7], CONFIG, 64)[0]
    fresh = tiny_sd15_pipeline()
    base = sample(fresh, [CONFIG.instance_prompt], [7], CONFIG, 64)[0]
    load_lora(fresh, tmp_path / "lora", CONFIG)
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


def test_prior_preservation_samples_class_images_and_changes_the_fine_tune(replica: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.generate.inout as inout

    calls = []
    original = inout.sample
    monkeypatch.setattr(inout, "sample", lambda pipe, prompts, *a: calls.append(list(prompts)) or original(pipe, prompts, *a))
    config = replace(CONFIG, prior_preservation=True, num_class_images=2, n_aug=1)
    generate_inout(replica, tmp_path / "pp", config, pipe=tiny_sd15_pipeline(), progress=False)
    assert calls[:2] == [[CONFIG.class_prompt]] * 2  # two class images from the base model, before the fine-tune
    log = json.loads((tmp_path / "pp" / "lora" / "training.json").read_text())
    assert log["n_class_images"] == 2
    generate_inout(replica, tmp_path / "plain", replace(config, prior_preservation=False), pipe=tiny_sd15_pipeline(),
                   progress=False)
    with_prior, without = (np.asarray(Image.open(tmp_path / f / "imgs" / "00000.png")) for f in ("pp", "plain"))
    assert not np.array_equal(with_prior, without)


def test_one_fine_tune_serves_every_n_aug(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.generate.inout as inout

    lora = tmp_path / "lora-seed0"
    generate_inout(replica, tmp_path / "a3", CONFIG, pipe=tiny_sd15_pipeline(), progress=False, lora_dir=lora)
    monkeypatch.setattr(inout, "finetune_lora", lambda *a, **k: pytest.fail("fine-tuned twice"))
    generate_inout(replica, tmp_path / "a5", replace(CONFIG, n_aug=5), pipe=tiny_sd15_pipeline(), progress=False,
                   lora_dir=lora)
    for i in range(3):  # the first images of both sets are the same draws of one model
        assert (tmp_path / "a3" / "imgs" / f"{i:05d}.png").read_bytes() == (tmp_path / "a5" / "imgs" / f"{i:05d}.png").read_bytes()
    with pytest.raises(DataError, match="its fine-tune was made with rank=4"):
        generate_inout(replica, tmp_path / "b", replace(CONFIG, rank=8), pipe=tiny_sd15_pipeline(), progress=False,
                       lora_dir=lora)


def test_local_folders_load_through_the_shared_loader(tmp_path: Path) -> None:
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


def test_the_fine_tune_does_not_depend_on_what_ran_before(replica: Path) -> None:
    """peft draws the LoRA's start from torch's global generator; another state before must not change the result."""
    tuned = []
    for earlier in (1, 2):
        torch.manual_seed(earlier)  # stands in for whatever the process ran before (another generator, a grid)
        pipe = tiny_sd15_pipeline()
        torch.manual_seed(earlier)
        report = finetune_lora(pipe, positives(replica), CONFIG, progress=False)
        tuned.append((report["losses_last_20"], {k: v.clone() for k, v in pipe.unet.state_dict().items() if "lora_" in k}))
    assert tuned[0][0] == tuned[1][0]
    assert all(torch.equal(tuned[0][1][k], tuned[1][1][k]) for k in tuned[0][1])


def test_full_canvas_trains_on_windows_at_their_own_scale() -> None:
    from diag.generate.inout import random_windows

    images = [np.random.default_rng(i).integers(0, 256, (632, 224, 3), dtype=np.uint8) for i in range(3)]
    windows = random_windows(images, 32, torch.Generator().manual_seed(0))
    assert windows.shape == (3, 3, 32, 32)
    for image, window in zip(images, windows):
        pixels = np.rint((window.permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        hits = [(y, x) for y in range(632 - 31) for x in range(224 - 31)
                if image[y, x, 0] == pixels[0, 0, 0] and np.array_equal(image[y:y + 32, x:x + 32], pixels)]
        assert len(hits) == 1  # an unresized cut of the image, not a resized copy


def test_full_canvas_windows_must_fit_the_image() -> None:
    with pytest.raises(ConfigError, match="resolution.*at most 224"):
        replace(CONFIG, canvas="full", resolution=232).validate()
    replace(CONFIG, canvas="square", resolution=232).validate()  # a square canvas resizes: any size goes
    replace(CONFIG, canvas="full", resolution=224).validate()
    pipe = tiny_sd15_pipeline()  # native size 32 fits; pretend it is 512 like SD-1.5
    pipe.unet.register_to_config(sample_size=512 // pipe.vae_scale_factor)
    positives = [np.zeros((632, 224, 3), np.uint8)] * 2
    with pytest.raises(ConfigError, match="at most 224"):
        finetune_lora(pipe, positives, replace(CONFIG, canvas="full"), progress=False)


def test_full_canvas_samples_the_whole_image_at_once(replica: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = tiny_sd15_pipeline()
    sizes = []
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, **kw: sizes.append((kw["height"], kw["width"])) or original(self, **kw))
    generate_inout(replica, tmp_path / "full", replace(CONFIG, canvas="full", n_aug=1), pipe=pipe, progress=False)
    assert sizes == [(632, 224)]  # KSDD2's own size, no stretch afterwards
    assert Image.open(tmp_path / "full" / "imgs" / "00000.png").size == (224, 632)
    with pytest.raises(Exception, match="canvas"):
        replace(CONFIG, canvas="tiles").validate()


def test_a_changed_model_folder_is_not_mixed_with_its_earlier_sets(replica: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sd15"
    tiny_sd15_pipeline().save_pretrained(folder, safe_serialization=True)
    config = replace(CONFIG, model=str(folder), n_aug=1)
    generate_inout(replica, tmp_path / "set", config, pipe=tiny_sd15_pipeline(), progress=False)
    scheduler = folder / "scheduler" / "scheduler_config.json"
    scheduler.write_text(scheduler.read_text().replace("}", ', "note": "retrained"}', 1))  # as a new release would
    with pytest.raises(DataError, match="model_fingerprint"):
        generate_inout(replica, tmp_path / "set", config, pipe=tiny_sd15_pipeline(), progress=False)
    assert (tmp_path / "set" / "imgs" / "00000.png").is_file()  # nothing already made is lost


def test_a_set_made_in_parts_equals_the_set_made_at_once(replica: Path, tmp_path: Path) -> None:
    from diag.generate.inout import finetune_inout

    config = replace(CONFIG, n_aug=5)
    whole = tmp_path / "whole"
    generate_inout(replica, whole, config, pipe=tiny_sd15_pipeline(), progress=False, lora_dir=tmp_path / "lora")
    parted = tmp_path / "parted"
    with pytest.raises(DataError, match="no finished fine-tune"):
        generate_inout(replica, parted, config, pipe=tiny_sd15_pipeline(), progress=False,
                       lora_dir=tmp_path / "other-lora", part=(0, 2))
    assert finetune_inout(replica, config, tmp_path / "lora") == tmp_path / "lora"  # made already: nothing to do
    for k in (1, 0):
        generate_inout(replica, parted, config, pipe=tiny_sd15_pipeline(), progress=False,
                       lora_dir=tmp_path / "lora", part=(k, 2))
        assert not (parted / "manifest.csv").exists()  # a part never writes the manifest
    assert len(list((parted / "imgs").glob("*.png"))) == 5
    generate_inout(replica, parted, config, progress=False, lora_dir=tmp_path / "lora")  # loads no model: all made
    for i in range(5):
        assert (whole / "imgs" / f"{i:05d}.png").read_bytes() == (parted / "imgs" / f"{i:05d}.png").read_bytes()
    assert len(pd.read_csv(parted / "manifest.csv")) == 5


def test_the_multistep_sampler_shares_the_weights_and_leaves_the_callers_pipeline(replica: Path, tmp_path: Path) -> None:
    from diag.generate.loading import with_sampler

    pipe = tiny_sd15_pipeline()
    fast = with_sampler(pipe, "dpm-solver++")
    assert type(fast.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert type(pipe.scheduler).__name__ != "DPMSolverMultistepScheduler" and fast.unet is pipe.unet
    assert fast.scheduler.config.prediction_type == pipe.scheduler.config.prediction_type
    assert with_sampler(pipe, "model") is pipe
    with pytest.raises(ConfigError, match="sampler"):
        with_sampler(pipe, "euler")
    generate_inout(replica, tmp_path / "dpm", replace(CONFIG, n_aug=1, sampler="dpm-solver++"),
                   pipe=tiny_sd15_pipeline(), progress=False)
    rows = pd.read_csv(tmp_path / "dpm" / "manifest.csv")
    assert rows["sampler"].tolist() == ["dpm-solver++"]  # recorded: never mixed with a set sampled otherwise


def test_bf16_autocast_trains_float32_adapters_and_is_recorded(replica: Path, tmp_path: Path) -> None:
    config = replace(CONFIG, n_aug=1, mixed_precision="bf16")
    pipe = tiny_sd15_pipeline()
    report = finetune_lora(pipe, positives(replica), config, progress=False)
    assert all(np.isfinite(report["losses_last_20"]))
    lora = [p for n, p in pipe.unet.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 for p in lora)  # autocast computes in bf16; the weights stay float32
    generate_inout(replica, tmp_path / "bf16", config, pipe=tiny_sd15_pipeline(), progress=False)
    assert pd.read_csv(tmp_path / "bf16" / "manifest.csv")["mixed_precision"].tolist() == ["bf16"]
    log = json.loads((tmp_path / "bf16" / "lora" / "training.json").read_text())
    assert log["settings"]["mixed_precision"] == "bf16"  # a float32 fine-tune is never reused for it
    with pytest.raises(ConfigError, match=r"fp16 \(the paper profile's, as the official run\) needs a CUDA GPU"):
        finetune_lora(tiny_sd15_pipeline(), positives(replica), replace(CONFIG, mixed_precision="fp16"), progress=False)
    with pytest.raises(ConfigError, match="mixed_precision"):
        replace(CONFIG, mixed_precision="fp8").validate()


def test_gradient_checkpointing_trains_the_same_adapters_and_the_run_is_recorded(replica: Path) -> None:
    plain, checkpointed = tiny_sd15_pipeline(), tiny_sd15_pipeline()
    report = finetune_lora(plain, positives(replica), CONFIG, progress=False)
    again = finetune_lora(checkpointed, positives(replica), replace(CONFIG, gradient_checkpointing=True), progress=False)
    assert checkpointed.unet.is_gradient_checkpointing and not plain.unet.is_gradient_checkpointing
    # recomputing the activations changes memory, not the arithmetic: the same losses
    np.testing.assert_allclose(again["losses_last_20"], report["losses_last_20"], rtol=1e-4)
    assert report["attention"] == ["AttnProcessor2_0"]  # PyTorch's scaled-dot-product attention
    assert report["device"] == "cpu" and report["gradient_scaler"] is False
    assert InOutConfig().mixed_precision == "fp16"  # the paper profile's, as the official run
