"""The bundled demo inpainting model: it ships, loads through the DIAG generator, follows
the two prompts, and leaves pixels outside the mask alone. Plus the pretraining command at
a tiny scale."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import diag.demo_model.pretrain as pretrain_module
from diag.data.ksdd2 import load_image, load_mask, read_manifest
from diag.demo_model.check import COPPER, WHITE, prompt_response, region_change
from diag.demo_model import corpus
from diag.demo_model.corpus import CORPUS_TAG, render_sample, vocabulary
from diag.errors import ConfigError
from diag.demo_model.pretrain import PretrainConfig, pretrain
from diag.data.synthetic import REPLICA_TAG
from diag.generate.diag import generate_diag, load_pipeline
from diag.generate.loading import DEMO_MODEL, bundled_model_path
from diag.generate.loading import dtype_keyword
from diag.config import profile_config

MODEL = bundled_model_path()


def test_shipped_model_is_small_safetensors_with_a_card() -> None:
    weights = list(MODEL.rglob("*.safetensors"))
    assert {p.parent.name for p in weights} >= {"unet", "vae", "text_encoder"}
    assert sum(p.stat().st_size for p in weights) <= 60 * 10**6  # the limit: 60 MB
    assert not list(MODEL.rglob("*.bin")) and not list(MODEL.rglob("*.pt"))
    card = (MODEL / "README.md").read_text()
    assert "pretrain-demo-model" in card and "guidance" in card


def test_corpus_is_disjoint_from_the_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every random stream the corpus draws is tagged with its own tag, never the replica's."""
    import diag.data.synthetic as synthetic
    import diag.demo_model.corpus as corpus

    seeds: dict[str, list] = {"corpus": [], "replica": []}
    original = np.random.default_rng
    for name, module in (("corpus", corpus), ("replica", synthetic)):
        monkeypatch.setattr(module.np.random, "default_rng",
                            lambda seed=None, name=name: seeds[name].append(seed) or original(seed))
        if name == "corpus":
            for index in range(20):
                corpus.render_sample(0, index)
        else:
            synthetic.render_sample(0, "train", 3, True)
        monkeypatch.undo()
    first = lambda streams: {s[0] for s in streams if isinstance(s, (list, tuple))}  # noqa: E731
    assert first(seeds["corpus"]) == {CORPUS_TAG} and len(seeds["corpus"]) >= 20
    assert first(seeds["replica"]) == {REPLICA_TAG}
    assert all(isinstance(s, (list, tuple)) for s in seeds["corpus"])  # no untagged stream
    assert {"white", "marks", "copper", "scratches", "wall", "metal"} <= set(vocabulary())
    a, b = render_sample(0, 5), render_sample(0, 5)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption


def test_corpus_carries_full_masks_and_the_speckled_family() -> None:
    """Full masks (text-to-image, for In&Out) at the configured share; speckled samples drawn as the replica is."""
    from diag.demo_model.corpus import SPECKLED_PHRASES, render_speckled

    assert all(render_sample(0, i, full_mask_share=1.0).mask.all() for i in range(6))
    assert not any(render_sample(0, i, full_mask_share=0.0).mask.all() for i in range(6))
    phrases = [p for ps in SPECKLED_PHRASES.values() for p in ps]
    for index in range(8):
        crop = render_speckled(np.random.default_rng([CORPUS_TAG, 99, index]), 64, p_plain=0.0, full=False)
        assert 0 < crop.mask.mean() < 1 and any(p in crop.caption for p in phrases)  # a named replica-kind defect
        window = render_speckled(np.random.default_rng([CORPUS_TAG, 98, index]), 64, p_plain=0.0, full=True)
        assert window.mask.all() and window.image.shape == (64, 64, 3)
        assert 25 < np.median(window.image) < 80  # the replica's dark surface (mean ~45), at its own scale


def test_offset_noise_moves_whole_channels() -> None:
    """What lets the model learn a whole surface's brightness: the noise carries per-channel constants."""
    from diag.generate.objective import offset_noise

    spread = lambda x: float(x.mean(dim=(2, 3)).std())  # noqa: E731  (std of per-sample channel means)
    plain = offset_noise((64, 4, 32, 32), 0.0, torch.Generator().manual_seed(0))
    shifted = offset_noise((64, 4, 32, 32), 0.5, torch.Generator().manual_seed(0))
    assert spread(plain) < 0.1 < 0.3 < spread(shifted)
    assert abs(float(shifted.std()) - (1 + 0.5**2) ** 0.5) < 0.05


def test_region_change_measures_inside_minus_surround(tmp_path: Path) -> None:
    image = np.full((20, 10, 3), 40, np.uint8)
    mask = np.zeros((20, 10), bool)
    mask[5:10, 2:6] = True
    image[mask] = (100, 70, 40)  # brighter by 30 grey levels, warmer by 60 in R - B
    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(image).save(tmp_path / "imgs" / "00000.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "masks" / "00000.png")
    row = region_change(tmp_path).iloc[0]
    assert row["brightness"] == pytest.approx(30) and row["warmth"] == pytest.approx(60)


def test_prompt_means_split_a_set_by_its_manifests_prompts(tmp_path: Path) -> None:
    from diag.demo_model.check import prompt_means

    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((20, 10), bool)
    mask[5:10, 2:6] = True
    for index, colour in enumerate([(100, 100, 100), (100, 70, 40)]):  # white: +60 grey; copper: R - B +60
        image = np.full((20, 10, 3), 40, np.uint8)
        image[mask] = colour
        Image.fromarray(image).save(tmp_path / "imgs" / f"{index:05d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "masks" / f"{index:05d}.png")
    pd.DataFrame({"index": [0, 1], "prompt": [WHITE, COPPER]}).to_csv(tmp_path / "manifest.csv", index=False)
    means = prompt_means(tmp_path)
    assert means["white_bright"] == pytest.approx(60) and means["white_R-B"] == pytest.approx(0)
    assert means["copper_R-B"] == pytest.approx(60)


def test_the_bundled_model_loads_without_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_pipeline(DEMO_MODEL, torch.device("cpu"))
    # e.g. diffusers' torch_dtype deprecation, shown in the book; a ResourceWarning is an earlier test's
    # notebook kernel socket being collected now, not the loader's
    assert [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)] == []


def test_dtype_keyword_follows_the_diffusers_version() -> None:
    assert dtype_keyword("0.30.3") == "torch_dtype" and dtype_keyword("0.42.1") == "dtype"


@pytest.fixture(scope="module")
def demo_pipe():
    return load_pipeline(DEMO_MODEL, torch.device("cpu"))


@pytest.fixture(scope="module")
def prompt_stats(replica: Path, demo_pipe, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """16 unseen replica negatives with gt masks per prompt, the demo profile's settings."""
    config = replace(profile_config("demo").diag, n_aug=16, device="cpu")
    stats = prompt_response(replica, tmp_path_factory.mktemp("prompts"), config, pipe=demo_pipe)
    return {prompt: rows for prompt, rows in stats.groupby("prompt")}


@pytest.mark.slow
def test_white_marks_are_bright_and_near_neutral(prompt_stats: dict) -> None:
    white = prompt_stats[WHITE]
    assert len(white) == 16
    assert white["brightness"].mean() >= 10  # grey levels above the surround
    assert white["warmth"].mean() <= 4  # R - B: not copper


@pytest.mark.slow
def test_copper_shifts_the_hue_toward_copper(prompt_stats: dict) -> None:
    white, copper = prompt_stats[WHITE], prompt_stats[COPPER]
    assert copper["warmth"].mean() >= 8  # R - B above the surround's
    assert copper["warmth"].mean() > white["warmth"].mean() + 5


def test_pixels_outside_the_mask_are_unchanged(replica: Path, demo_pipe, tmp_path: Path) -> None:
    config = replace(profile_config("demo").diag, n_aug=2, device="cpu")
    generate_diag(replica, tmp_path / "g", config, pipe=demo_pipe, progress=False)
    rows = pd.read_csv(tmp_path / "g" / "manifest.csv", dtype={"negative": str})
    negatives = {s.id: s.image_path for s in read_manifest(replica, "train")}
    for _, row in rows.iterrows():
        out = np.asarray(Image.open(tmp_path / "g" / "imgs" / f"{row['index']:05d}.png"))
        mask = load_mask(tmp_path / "g" / "masks" / f"{row['index']:05d}.png")
        original = load_image(negatives[row["negative"]])
        assert np.array_equal(out[~mask], original[~mask])
        assert not np.array_equal(out[mask], original[mask])


def test_corpus_is_the_same_for_any_number_of_workers() -> None:
    one, two = corpus.render_corpus(3, 6, speckled_share=0.5), corpus.render_corpus(3, 6, speckled_share=0.5, workers=2)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1]) and one[2] == two[2]
    speckled = corpus.render_corpus(3, 6, speckled_share=1.0)
    assert not np.array_equal(one[0], speckled[0])


def test_a_kept_corpus_is_reused_only_for_its_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = PretrainConfig(corpus_size=4)
    first = pretrain_module.corpus_for(tmp_path, config, progress=False)
    monkeypatch.setattr(pretrain_module, "render_corpus", lambda *a, **k: pytest.fail("rendered again"))
    again = pretrain_module.corpus_for(tmp_path, config, progress=False)
    assert np.array_equal(first[0], again[0]) and first[2] == again[2]
    with pytest.raises(pytest.fail.Exception, match="rendered again"):
        pretrain_module.corpus_for(tmp_path, replace(config, speckled_share=0.1), progress=False)


@pytest.mark.slow
def test_pretraining_at_a_tiny_scale_resumes_and_loads(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = PretrainConfig(corpus_size=16, vae_steps=2, steps=4, stop_at=None, batch_size=2, vae_batch_size=2, threads=1,
                            checkpoint_every=2)
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
    assert calls == [] and not (out / "checkpoint.pt").exists() and not (out / "corpus.npz").exists()
    pipe = load_pipeline(str(out), torch.device("cpu"))
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    generate_diag(replica, tmp_path / "gen", replace(profile_config("demo").diag, model=str(out), n_aug=1, steps=2, device="cpu"),
                  progress=False)
    assert (tmp_path / "gen" / "imgs" / "00000.png").is_file()


def test_pretraining_stops_where_the_recipe_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stop_at`` ends the run early on a schedule that still spans ``steps`` (the shipped run's recipe)."""
    config = PretrainConfig(corpus_size=8, vae_steps=1, steps=10, stop_at=3, batch_size=2, vae_batch_size=2, threads=1,
                            checkpoint_every=1, warmup_steps=0)
    saved, save = [], pretrain_module.save_checkpoint
    monkeypatch.setattr(pretrain_module, "save_checkpoint",
                        lambda path, step, modules, optimizer, extra: saved.append((step, extra)) or save(path, step, modules, optimizer, extra))
    out = pretrain(tmp_path / "m", config, progress=False)
    step, extra = saved[-1]
    assert step == 3 and [s for s, _ in saved] == [0, 1, 2, 3]
    lr = extra["lr_schedule"]["_last_lr"][0]
    assert lr == pytest.approx(config.lr * 0.5 * (1 + np.cos(np.pi * 3 / 10)))  # cosine over 10 steps, not 3
    assert (out / "unet").is_dir()
    with pytest.raises(ConfigError, match="stop_at"):
        pretrain(tmp_path / "m2", replace(config, stop_at=11), progress=False)


def test_the_cli_keeps_the_shipped_stop_only_for_the_shipped_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diag.cli import main

    runs = []
    monkeypatch.setattr(pretrain_module, "pretrain", lambda out, config, device: runs.append(config) or Path(out))
    for argv in ([], ["--steps", "300"], ["--steps", "300", "--stop-at", "20"]):
        main(["pretrain-demo-model", "--out", str(tmp_path / "m"), *argv])
    assert [(c.steps, c.stop_at) for c in runs] == [(12000, 4700), (300, None), (300, 20)]
