"""FID: the offline weight mapping, equality with pytorch-fid, the Fréchet forms, bad input."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_fid_given_paths, calculate_frechet_distance

from diag.cli import main
from diag.errors import DataError
from diag.fid import compute_fid, fid_from_features, frechet_distance
from diag.fid.frechet import frechet_distance_gram
from diag.fid.inception import (
    FID_HELPER_SHA1,
    PYTORCH_FID_FILE,
    FIDInception,
    WeightsError,
    fid_helper_weights_path,
    load_fid_helper_state_dict,
    map_fid_helper_tensors,
    pytorch_fid_state_dict,
)
from diag.fid.torchscript_reader import read_torchscript_tensors


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return load_fid_helper_state_dict()


def test_every_source_tensor_is_used_once_with_matching_shapes(state_dict: dict) -> None:
    source = read_torchscript_tensors(fid_helper_weights_path())
    assert len(source) == 94 * 4  # 94 convolutions: weight, beta, mean, var
    used = [v for k, v in state_dict.items() if not k.endswith((".bn.weight", "num_batches_tracked"))]
    assert len(used) == len(source)
    source_ids = {id(t) for t in source.values()}
    mapped = map_fid_helper_tensors(source)
    assert sorted(id(v) for k, v in mapped.items() if id(v) in source_ids) == sorted(source_ids)
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in mapped.items() if k.endswith(".bn.weight"))


def test_mapping_rejects_a_wrong_shape() -> None:
    source = read_torchscript_tensors(fid_helper_weights_path())
    key = next(k for k in source if k.endswith("mixed_2.conv.weight"))
    source[key] = source[key][:, :10]
    with pytest.raises(WeightsError, match="mixed_2.conv -> Mixed_5d.branch1x1.conv.weight: shape"):
        map_fid_helper_tensors(source)


def test_mapped_network_reproduces_the_torchscript(state_dict: dict) -> None:
    net = FIDInception(state_dict, dims=(64, 192, 768, 2048))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(fid_helper_weights_path())).eval()
    images = torch.rand(2, 3, 632, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = net(images)
        x = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        theirs = {}
        for name, layer in scripted.net.layers.named_children():
            x = layer(x)
            if name in ("pool0", "pool1", "mixed_7", "pool2"):
                theirs[x.shape[1]] = x.mean(dim=(2, 3))
    for dim in (64, 192, 768):
        assert torch.equal(ours[dim], theirs[dim])
    assert torch.allclose(ours[2048], theirs[2048], atol=1e-5, rtol=0)


def test_only_the_needed_blocks_are_built(state_dict: dict) -> None:
    small = FIDInception(state_dict, dims=(64,))
    assert list(small.layers) == ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"]
    assert set(FIDInception(state_dict, dims=(192,))(torch.rand(1, 3, 64, 64))) == {192}


def test_sha1_is_verified(tmp_path: Path) -> None:
    altered = tmp_path / "default_1.pt"
    shutil.copy(fid_helper_weights_path(), altered)
    with altered.open("r+b") as handle:
        handle.seek(-100, 2)
        handle.write(b"\0" * 10)
    with pytest.raises(WeightsError, match=f"SHA-1 differs from {FID_HELPER_SHA1}"):
        load_fid_helper_state_dict(altered)


def test_reader_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", pickle.dumps({"x": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global builtins.print"):
        read_torchscript_tensors(path)


def write_folder(folder: Path, n: int, seed: int, size: tuple[int, int]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(20, 90, size=(size[1], size[0], 3))
        base[: rng.integers(5, size[1]), : rng.integers(5, size[0])] += rng.integers(0, 120)
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


@pytest.mark.slow
def test_equal_to_pytorch_fid_end_to_end(tmp_path: Path, state_dict: dict) -> None:
    """pytorch-fid itself, with the mapped weights placed where it looks, gives the same FID-64."""
    real = write_folder(tmp_path / "real", 70, seed=1, size=(56, 158))
    gen = write_folder(tmp_path / "gen", 70, seed=2, size=(56, 158))
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(pytorch_fid_state_dict(state_dict), hub / "checkpoints" / PYTORCH_FID_FILE)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    try:
        theirs = calculate_fid_given_paths([str(real), str(gen)], batch_size=35, device="cpu", dims=64, num_workers=0)
    finally:
        torch.hub.set_dir(previous)
    ours = compute_fid(real, gen, dims=(64,), batch_size=35, model=FIDInception(state_dict, (64,)), progress=False)
    assert ours[64] == pytest.approx(theirs, rel=1e-5)


def gaussian_sets(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d)) @ (0.1 * rng.standard_normal((d, d))) + 0.1
    b = 1.1 * rng.standard_normal((n, d)) + 0.2
    return a, b


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [64, 192])
@pytest.mark.parametrize("n", [50, 100, 1000])
def test_frechet_forms_match_pytorch_fid(d: int, n: int) -> None:
    a, b = gaussian_sets(n, d, seed=d + n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytorch-fid warns about singular products at N < d
        reference = calculate_frechet_distance(*moments(a), *moments(b))
    assert frechet_distance(*moments(a), *moments(b)) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_gram(a, b) == pytest.approx(reference, rel=1e-6)


@pytest.mark.slow
def test_frechet_forms_match_pytorch_fid_at_2048() -> None:
    a, b = gaussian_sets(200, 2048, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = calculate_frechet_distance(*moments(a), *moments(b))
    assert frechet_distance(*moments(a), *moments(b)) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_gram(a, b) == pytest.approx(reference, rel=1e-6)


def test_identical_sets_have_zero_fid() -> None:
    a, _ = gaussian_sets(300, 64, seed=0)
    assert fid_from_features(a, a) == pytest.approx(0, abs=1e-8)


def test_rank_deficient_estimate_warns() -> None:
    a, b = gaussian_sets(30, 64, seed=0)
    with pytest.warns(UserWarning, match="only 30 samples for 64-d features"):
        fid_from_features(a, b)


def test_mismatched_dims_are_rejected() -> None:
    with pytest.raises(ValueError, match="same number of columns; got shapes"):
        fid_from_features(np.zeros((10, 64)), np.zeros((10, 192)))
    with pytest.raises(ValueError, match="matching dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="dims: must be among"):
        compute_fid(".", ".", dims=(100,))


def test_bad_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    good = write_folder(tmp_path / "good", 3, seed=0, size=(32, 32))
    with pytest.raises(DataError, match="empty: no images"):
        compute_fid(empty, good)
    (good / "00001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"00001\.png: unreadable image"):
        compute_fid(good, good, dims=(64,), progress=False)


def test_features_are_cached_by_content(tmp_path: Path, state_dict: dict) -> None:
    real = write_folder(tmp_path / "real", 4, seed=3, size=(40, 100))
    gen = write_folder(tmp_path / "gen", 4, seed=4, size=(40, 100))
    cache = tmp_path / "cache"
    model = FIDInception(state_dict, (64,))
    first = compute_fid(real, gen, dims=(64,), cache_dir=cache, model=model, progress=False)
    assert len(list(cache.rglob("*.npy"))) == 8
    model.forward = None  # a second run must not touch the network
    second = compute_fid(real, gen, dims=(64,), cache_dir=cache, model=model, progress=False)
    assert second == first


def test_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    real = write_folder(tmp_path / "real", 5, seed=5, size=(40, 100))
    gen = write_folder(tmp_path / "gen", 5, seed=6, size=(40, 100))
    out = tmp_path / "fid.json"
    assert main(["fid", str(real), str(gen), "--dims", "64", "--device", "cpu", "--json", str(out), "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert "rank-deficient" in captured.err
    scores = json.loads(out.read_text())
    assert list(scores) == ["64"] and scores["64"] > 0
    assert f"{scores['64']:.6f}" in captured.out
    assert main(["fid", str(tmp_path / "nope"), str(gen)]) == 2
    assert main(["fid", str(real), str(gen), "--dims", "64", "--device", "cpu", "--json", str(out), "--no-cache",
                 "--kid", "--kid-subsets", "5"]) == 0
    kid = json.loads(out.read_text())["kid"]
    assert kid["kid_subsets"] == 5 and kid["kid_subset_size"] == 5 and kid["kid_64_std"] >= 0
    assert f"{kid['kid_64']:.6f}" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_fid_table_runs_with_the_default_device(replica: Path, tmp_path: Path) -> None:
    """`diag fid --table` without --device: "auto" must be resolved before it reaches torch."""
    from diag.data.ksdd2 import read_manifest

    from diag.testing import copied_set

    positives = [s for s in read_manifest(replica, "train") if s.is_positive][:3]
    for method in ("memseg", "inout", "diag"):
        folder = tmp_path / "results" / "generated" / method / "augmented_3"
        copied_set(replica, folder, [s.image_path for s in positives], method, mask_sources=[s.mask_path for s in positives])
    assert main(["fid", "--table", str(tmp_path / "results"), "--n-aug", "3", "--data", str(replica), "--dims", "64"]) == 0
    assert (tmp_path / "results" / "fid_3.csv").is_file() and (tmp_path / "results" / "realism_3.csv").is_file()
