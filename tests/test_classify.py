"""The classifier: training sets, uint8 memory, ResNet-50 weights loading, determinism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from diag.classify.data import load_uint8, evaluation_set, training_set
from diag.classify.model import build_resnet50
from diag.classify.train import TrainConfig, train_classifier
from diag.cli import main
from diag.data.ksdd2 import load_image, read_manifest, split_by_label
from diag.config import profile_config


def make_generated(replica: Path, out: Path, n: int, generator: str | None = None, **settings) -> Path:
    """A generated set in our output layout, made of the replica's test positives (generator: the folder's method)."""
    from diag.testing import copied_set

    positives = [s.image_path for s in read_manifest(replica, "test") if s.is_positive]
    method = generator or out.parent.name
    return copied_set(replica, out, [positives[i % len(positives)] for i in range(n)],
                      "diag" if method == "diag-procedural" else method,
                      masks="procedural" if method == "diag-procedural" else "gt", **settings)


@pytest.fixture(scope="module")
def generated(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generated(replica, tmp_path_factory.mktemp("gen") / "diag" / "augmented_4", 6)


def test_training_sets(replica: Path, generated: Path) -> None:
    negatives, positives = split_by_label(read_manifest(replica, "train"))
    zero = training_set(replica, "zero-shot", generated, 4)
    assert len(zero) == len(negatives) + 4 and zero.labels.sum() == 4
    full = training_set(replica, "full-shot", generated, 4)
    assert full.labels.sum() == len(positives) + 4
    reference = training_set(replica, "full-shot")
    assert reference.labels.sum() == len(positives) and len(reference) == len(negatives) + len(positives)
    with pytest.raises(ValueError, match="zero-shot training without a positive: pass `generated`"):
        training_set(replica, "zero-shot")
    with pytest.raises(Exception, match="6 finished images, fewer than the 50 asked for"):
        training_set(replica, "zero-shot", generated, 50)


def test_images_are_held_as_uint8(replica: Path) -> None:
    paths = [s.image_path for s in read_manifest(replica, "train")]
    images = load_uint8(paths)
    assert images.dtype == torch.uint8 and images.shape == (len(paths), 632, 224, 3)
    assert torch.equal(images[3], torch.from_numpy(load_image(paths[3])))  # the file's pixels, unscaled
    release = load_uint8(paths[:2], (704, 256))
    assert release.shape == (2, 704, 256, 3)
    expected = np.asarray(Image.open(paths[1]).convert("RGB").resize((256, 704), Image.Resampling.BILINEAR))
    assert torch.equal(release[1], torch.from_numpy(expected))


def test_resnet50_loads_a_local_state_dict(tmp_path: Path) -> None:
    reference = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)  # stands in for IMAGENET1K_V1, which needs the internet
    model = build_resnet50(path)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    assert model.fc.out_features == 1
    with pytest.raises(ValueError, match="does not exist"):
        build_resnet50(tmp_path / "missing.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a ResNet-50 state dict"):
        build_resnet50(tmp_path / "bad.pth")


@pytest.mark.slow
def test_resnet50_trains_end_to_end(replica: Path, generated: Path) -> None:
    config = TrainConfig(backbone="resnet50", weights="none", epochs=1, batch_size=8, device="cpu")
    result = train_classifier(config, training_set(replica, "zero-shot", generated, 4), evaluation_set(replica), progress=False)
    assert set(result.metrics) == {"ap", "precision", "recall", "auroc", "accuracy", "threshold"}
    assert len(result.curve) == 1 and np.isfinite(result.curve[0]["loss"])


@pytest.mark.slow
def test_bf16_trains_the_resnet_channels_last_and_is_recorded(replica: Path, generated: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.classify.train as train_module

    seen = []
    real_fit_model = train_module.build_model
    monkeypatch.setattr(train_module, "build_model", lambda c, x: seen.append(real_fit_model(c, x)) or seen[-1])
    config = TrainConfig(backbone="resnet50", weights="none", epochs=1, batch_size=8, device="cpu", mixed_precision="bf16")
    result = train_classifier(config, training_set(replica, "zero-shot", generated, 4), evaluation_set(replica), progress=False)
    assert np.isfinite(result.curve[0]["loss"]) and np.isfinite(result.test_scores).all()
    conv = seen[0].network.conv1.weight
    assert conv.dtype == torch.float32 and conv.is_contiguous(memory_format=torch.channels_last)
    assert config.recorded()["mixed_precision"] == "bf16"  # rows made in bf16 are never averaged with float32 ones
    assert "mixed_precision" not in TrainConfig().recorded()  # float32: the rows made before the setting stay valid
    with pytest.raises(ValueError, match="classifier.mixed_precision: must be one of"):
        TrainConfig(mixed_precision="fp16").validate()


def demo_config(**changes: object) -> TrainConfig:
    return replace(profile_config("demo").classifier, **({"epochs": 5, "device": "cpu"} | changes))


def test_demo_classifier_is_deterministic_and_reports_the_final_epoch(replica: Path, generated: Path, tmp_path: Path) -> None:
    train, test = training_set(replica, "zero-shot", generated, 4), evaluation_set(replica)
    cache = str(tmp_path / "cache")
    a = train_classifier(demo_config(feature_cache=cache), train, test, progress=False)
    b = train_classifier(demo_config(feature_cache=cache), train, test, progress=False)
    assert np.array_equal(a.test_scores, b.test_scores) and a.curve == b.curve
    assert {k: a.curve[-1][k] for k in a.metrics} == a.metrics  # final epoch, not the best one
    c = train_classifier(demo_config(feature_cache=cache, seed=1), train, test, progress=False)
    assert not np.array_equal(a.test_scores, c.test_scores)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="classifier.backbone: must be one of"):
        TrainConfig(backbone="vgg").validate()
    with pytest.raises(ValueError, match="classifier.epochs: must be >= 1"):
        TrainConfig(epochs=0).validate()


def test_cli_train_writes_metrics(replica: Path, generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["train", "--data", str(replica), "--scenario", "full-shot", "--generated", str(generated),
            "--n-aug", "4", "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert "[DEMO numbers (offline replica" in capsys.readouterr().out
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_batchnorm_is_frozen_after_the_first_epoch_as_in_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release's loop leaves the network in eval mode after epoch 1; the switch restores train mode."""
    import torchvision

    from diag.classify.model import ResNetClassifier
    from diag.classify.train import TrainConfig, fit

    modes = []
    original = ResNetClassifier.forward
    monkeypatch.setattr(ResNetClassifier, "forward", lambda self, x: modes.append(self.training) or original(self, x))
    monkeypatch.setattr("diag.classify.model.torchvision.models.resnet50",
                        lambda weights=None: torchvision.models.resnet18(weights=None))  # small and fast
    x = torch.randint(0, 255, (4, 64, 32, 3), dtype=torch.uint8)
    y = np.array([0, 1, 0, 1])
    for every_epoch, expected in ((False, [True, False, False]), (True, [True, True, True])):
        modes.clear()
        fit(TrainConfig(weights="none", epochs=3, batch_size=4, device="cpu", bn_train_every_epoch=every_epoch), x, y,
            progress=False)
        assert modes == expected


def corner_images(folder: Path, n: int, defect: bool, start: int) -> list[Path]:
    """Replica surfaces; with ``defect``, a bright spot somewhere in the top-left corner."""
    from diag.data.synthetic import render_surface, to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        rng = np.random.default_rng(i)
        image = render_surface(rng)
        if defect:
            y, x = rng.integers(20, 80), rng.integers(20, 80)
            yy, xx = np.ogrid[: image.shape[0], : image.shape[1]]
            image += 80 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 4.0**2))[..., None]
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(to_uint8(image)).save(paths[-1])
    return paths


@pytest.mark.slow
def test_demo_classifier_finds_a_small_bright_defect_in_a_corner(tmp_path: Path) -> None:
    """A faint spot (~0.05 % of the image): with top-k = every position (plain average pooling) this test
    fails, as the old whole-image head did; the map head must find it."""
    from diag.classify.features import feature_maps, load_map_backbone
    from diag.classify.train import build_model, fit, predict

    config = demo_config(epochs=50, feature_cache=str(tmp_path / "cache"))
    train = corner_images(tmp_path / "neg", 8, False, 0) + corner_images(tmp_path / "pos", 8, True, 100)
    held_out = corner_images(tmp_path / "test-pos", 3, True, 200) + corner_images(tmp_path / "test-neg", 3, False, 300)
    backbone = load_map_backbone()
    x_train = feature_maps(train, backbone, cache_dir=tmp_path / "cache")
    model, _ = fit(config, x_train, np.array([0] * 8 + [1] * 8), progress=False)
    x_held_out = feature_maps(held_out, backbone)
    scores = predict(model, x_held_out, 8, torch.device("cpu"))
    assert scores[:3].min() > scores[3:].max()
    # and it points at the corner: the highest-scoring position of a held-out positive is there
    with torch.no_grad():
        position = model.scores(x_held_out[:1]).argmax().item()
    cols = 8  # 224 px -> 25 Mixed_5d columns -> 8 after the 3 x 3 max-pool; 24 px per position
    assert position // cols <= 5 and position % cols <= 3, position
    # cached maps are what a fresh pass computes
    assert torch.equal(feature_maps(train[:2], backbone, cache_dir=tmp_path / "cache"), x_train[:2])
    assert isinstance(build_model(config, x_train), torch.nn.Module)


def test_rows_record_the_feature_maps_they_were_trained_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other maps (layer, gain, pooling) are another classifier: its rows get another settings id."""
    import diag.classify.features as features
    from diag.experiments import cell_settings, settings_id

    config = profile_config("demo")
    assert config.classifier.recorded()["feature_maps"] == features.map_version()
    assert "feature_maps" not in profile_config("paper").classifier.recorded()
    before = settings_id(cell_settings(config, "sha1:data"))
    other = features.map_version(3.0, 2)
    monkeypatch.setattr(features, "map_version", lambda: other)
    assert settings_id(cell_settings(config, "sha1:data")) != before
