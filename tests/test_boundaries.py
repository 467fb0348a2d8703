"""Reliability, round two: results check what they are made of, no file of a user's is touched, no
code runs from a data file, and a mistake is caught at the edge (exit 2, one line naming the bad
thing, every file that was there before byte-identical)."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diag.book import NOTEBOOKS
from diag.cli import main
from diag.data.fingerprint import data_fingerprint
from diag.data.ksdd2 import read_manifest
from diag.testing import copied_set


def snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(args: list[str], message: str, capsys: pytest.CaptureFixture, *watched: Path) -> str:
    """Run the CLI; assert exit 2, one `diag: error:` line holding ``message``, no traceback, and every
    file under ``watched`` byte-identical afterwards. Returns the line."""
    before = snapshot(*watched)
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("diag: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert not any(line.startswith("Traceback") for line in err), err
    after = snapshot(*watched)
    assert {k: v for k, v in after.items() if k in before} == before
    return errors[0]


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made unwritable, for root too: root ignores permission bits but not the immutable flag."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("no way to make a folder read-only for root here (chattr +i failed)")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


class Payload:
    """Unpickling this runs code: it writes the file named by ``sentinel``."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return builtins.exec, (f"open({self.sentinel!r}, 'w').write('ran')",)


@pytest.fixture(scope="module")
def other_data(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The replica with one pixel changed: other data, another fingerprint."""
    other = tmp_path_factory.mktemp("other") / "data"
    shutil.copytree(replica, other)
    first = next((other / "train").glob("*[0-9].png"))
    pixels = np.asarray(Image.open(first)).copy()
    pixels[0, 0] = (pixels[0, 0].astype(int) + 1) % 255
    Image.fromarray(pixels).save(first)
    assert data_fingerprint(other) != data_fingerprint(replica)
    return other


def positives(data: Path, n: int) -> list[Path]:
    found = [s.image_path for s in read_manifest(data, "train") if s.is_positive]
    return [found[i % len(found)] for i in range(n)]


# --- a user's files are never removed or overwritten -------------------------------------------

@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_a_users_folder_beside_out_survives(command: str, replica: Path, tmp_path: Path) -> None:
    backup = tmp_path / ".out_x.my-backup"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    args = (["data", "prepare", "--src", str(replica), "--out", str(tmp_path / "out_x")] if command == "prepare"
            else ["data", "synth", "--scale", "small", "--out", str(tmp_path / "out_x")])
    if command == "prepare":  # prepare reads the official layout: give it the replica's train/ and test/ only
        src = tmp_path / "src"
        for split in ("train", "test"):
            shutil.copytree(replica / split, src / split)
        args[3] = str(src)
    before = snapshot(backup)
    assert main(args) == 0
    assert snapshot(backup) == before


def test_a_users_lora_is_never_overwritten(replica: Path, tmp_path: Path, capsys) -> None:
    lora = tmp_path / "my-lora"
    lora.mkdir()
    (lora / "pytorch_lora_weights.safetensors").write_bytes(b"my own fine-tune")
    refused(["generate", "inout", "--data", str(replica), "--out", str(tmp_path / "set"), "--lora-dir", str(lora),
             "--n-aug", "1"], "not a fine-tune made by diag (no training.json)", capsys, lora)
    assert not (tmp_path / "set").exists()  # refused before the set was started


@pytest.mark.parametrize("held", ["model_index.json", "training.json"])
def test_pretraining_never_writes_into_a_folder_it_did_not_start(held: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / held).write_text('{"mine": true}')
    message = "already holds a finished model" if held == "training.json" else "not a pretraining run made by diag"
    refused(["pretrain-demo-model", "--out", str(out), "--steps", "1", "--vae-steps", "1", "--corpus-size", "4"],
            message, capsys, out)


# --- nothing executes from a file -------------------------------------------------------------

def test_a_planted_checkpoint_is_refused_unexecuted(tmp_path: Path, capsys) -> None:
    import torch

    from diag.files import MARKER

    out, sentinel = tmp_path / "model", tmp_path / "ran"
    out.mkdir()
    (out / MARKER).write_text("")  # a run of ours, stopped: its checkpoint is read on resume
    torch.save({"step": Payload(sentinel)}, out / "checkpoint.pt")
    refused(["pretrain-demo-model", "--out", str(out), "--steps", "1", "--vae-steps", "1", "--corpus-size", "4"],
            "checkpoint.pt: not a resume state diag wrote", capsys, out)
    assert not sentinel.exists()


def test_planted_weights_are_refused_unexecuted(replica: Path, tmp_path: Path, capsys) -> None:
    import torch

    sentinel = tmp_path / "ran"
    torch.save({"conv1.weight": Payload(sentinel)}, tmp_path / "weights.pt")
    refused(["train", "--profile", "paper", "--data", str(replica), "--scenario", "full-shot", "--weights",
             str(tmp_path / "weights.pt"), "--epochs", "1", "--device", "cpu"],
            "weights.pt: not a readable state dict of tensors", capsys, tmp_path)
    assert not sentinel.exists()


def test_planted_cache_files_are_recomputed_unexecuted(replica: Path, tmp_path: Path) -> None:
    from diag.demo_model.pretrain import PretrainConfig, corpus_for
    from diag.fid.features import CACHE_VERSION, compute_fid

    sentinel = tmp_path / "ran"
    real = tmp_path / "real"
    real.mkdir()
    for path in positives(replica, 3):
        shutil.copy(path, real / path.name)
    cache = tmp_path / "cache"
    first = compute_fid(real, real, dims=(64,), cache_dir=cache, progress=False)
    for path in (cache / CACHE_VERSION).rglob("*.npy"):  # an object array: np.load would unpickle it
        with path.open("wb") as handle:
            np.save(handle, np.array([Payload(sentinel)], dtype=object), allow_pickle=True)
    assert compute_fid(real, real, dims=(64,), cache_dir=cache, progress=False) == pytest.approx(first)
    config = PretrainConfig(corpus_size=4, seed=3)
    with (tmp_path / "corpus.npz").open("wb") as handle:
        np.savez(handle, recipe=np.array([Payload(sentinel)], dtype=object))
    images, _, _ = corpus_for(tmp_path, config, progress=False)
    assert len(images) == 4 and not sentinel.exists()


# --- results check what they are made of --------------------------------------------------------

@pytest.fixture
def sets(replica: Path, other_data: Path, tmp_path: Path) -> Path:
    """GEN/<method>/augmented_4 made from the replica, and a DIAG set made from other data."""
    root = tmp_path / "gen"
    copied_set(replica, root / "diag" / "augmented_4", positives(replica, 4), "diag")
    copied_set(replica, root / "memseg-here" / "augmented_4", positives(replica, 4), "memseg")
    copied_set(other_data, root / "other" / "augmented_4", positives(other_data, 4), "diag")
    return root


def experiment(replica: Path, gen: Path, out: Path, methods: str = "diag") -> list[str]:
    return ["experiment", "--scenario", "zero-shot", "--methods", methods, "--data", str(replica), "--generated",
            str(gen), "--out", str(out), "--n-aug", "4", "--seeds", "0", "--epochs", "1"]


def test_a_set_from_other_data_is_refused(replica: Path, sets: Path, tmp_path: Path, capsys) -> None:
    refused(["train", "--data", str(replica), "--scenario", "zero-shot", "--generated", str(sets / "other" / "augmented_4"),
             "--n-aug", "4", "--epochs", "1"], "made from other data", capsys, sets)
    shutil.rmtree(sets / "diag")
    shutil.copytree(sets / "other", sets / "diag")
    refused(experiment(replica, sets, tmp_path / "results"), "made from other data", capsys, sets)
    assert not (tmp_path / "results" / "results.csv").exists()


def test_a_set_where_another_method_belongs_is_refused(replica: Path, sets: Path, tmp_path: Path, capsys) -> None:
    shutil.rmtree(sets / "diag")
    shutil.copytree(sets / "memseg-here", sets / "diag")
    refused(experiment(replica, sets, tmp_path / "results"), "made by 'memseg', but it stands where a 'diag' set",
            capsys, sets)
    shutil.copytree(sets / "diag", sets / "diag-procedural", dirs_exist_ok=True)
    copied_set(replica, sets / "real-masks" / "augmented_4", positives(replica, 4), "diag")
    shutil.rmtree(sets / "diag-procedural")
    shutil.copytree(sets / "real-masks", sets / "diag-procedural")
    refused(experiment(replica, sets, tmp_path / "results", "diag-procedural"),
            "made with masks='gt', but it stands where a set with procedural masks belongs", capsys, sets)


@pytest.mark.parametrize("damage", ["image replaced", "set.json deleted"])
def test_a_changed_set_is_refused(damage: str, replica: Path, sets: Path, tmp_path: Path, capsys) -> None:
    folder = sets / "diag" / "augmented_4"
    if damage == "image replaced":
        (folder / "imgs" / "00002.png").write_bytes((folder / "imgs" / "00000.png").read_bytes())
        message = "1 image(s) differ from what the set recorded (e.g. imgs/00002.png"
    else:
        (folder / "set.json").unlink()
        message = "no set.json"
    refused(experiment(replica, sets, tmp_path / "results"), message, capsys, sets)
    refused(["train", "--data", str(replica), "--scenario", "zero-shot", "--generated", str(folder), "--n-aug", "4"],
            message, capsys, sets)


def test_fid_table_refuses_sets_of_other_data_and_never_mixes_positives(replica: Path, other_data: Path,
                                                                        tmp_path: Path, capsys) -> None:
    from diag.fid.table import real_positives

    results = tmp_path / "results"
    for method in ("memseg", "inout", "diag"):
        copied_set(replica, results / "generated" / method / "augmented_3", positives(replica, 3), method)
    refused(["fid", "--table", str(results), "--n-aug", "3", "--data", str(other_data), "--dims", "64"],
            "made from other data", capsys, results)
    folder = real_positives(replica, results / "real-positives")
    n_replica = len(list(folder.glob("*.png")))
    (other_data / "train" / "extra-not-listed.png").write_bytes(b"")  # not in train.csv: never copied
    real_positives(other_data, folder)  # made anew for the other data, not added to
    listed = {s.image_path.name for s in read_manifest(other_data, "train") if s.is_positive}
    assert {p.name for p in folder.glob("*.png")} == listed and len(listed) == n_replica
    (other_data / "train" / "extra-not-listed.png").unlink()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "photo.png").write_bytes(b"my own")
    with pytest.raises(Exception, match="not a folder of real positives made by diag"):
        real_positives(replica, mine)
    assert (mine / "photo.png").read_bytes() == b"my own"


def test_a_render_shows_only_this_datas_rows(replica: Path, other_data: Path, tmp_path: Path) -> None:
    """Rows of other data in one results.csv (an `experiment --data OTHER` into the folder, or a row edited
    to carry another fingerprint) are never shown nor averaged, and the page says they were left out."""
    from diag import workflow
    from diag.experiments import cell_settings, settings_id

    results = tmp_path / "results"
    run = workflow.setup("demo", results, replica, compute=True, overrides=["grid.n_augs=4", "grid.seeds=0,1"])
    mine = data_fingerprint(replica)
    sid = settings_id(cell_settings(run.config, mine))
    theirs = data_fingerprint(other_data)
    rows = pd.DataFrame([
        {"scenario": "zero-shot", "method": "diag", "n_aug": 4, "seed": 0, "ap": 0.5, "precision": 0.5, "recall": 0.5,
         "settings_id": sid, "generated_sha1": "sha1:a", "data_fingerprint": mine},
        {"scenario": "zero-shot", "method": "diag", "n_aug": 4, "seed": 1, "ap": 0.1, "precision": 0.1, "recall": 0.1,
         "settings_id": sid, "generated_sha1": "sha1:a", "data_fingerprint": theirs},  # edited: same settings id
        {"scenario": "zero-shot", "method": "diag", "n_aug": 4, "seed": 0, "ap": 0.9, "precision": 0.9, "recall": 0.9,
         "settings_id": "other", "generated_sha1": "sha1:b", "data_fingerprint": theirs},  # written last
    ])
    (results / "zero-shot").mkdir(parents=True)
    rows.to_csv(results / "zero-shot" / "results.csv", index=False)
    render = workflow.setup("demo", results, None, compute=False)
    shown = render.grid("zero-shot")
    assert shown["ap"].tolist() == [0.5]
    assert "zero-shot: 2 row(s) of results.csv made on other data left out" in render.differences(("zero-shot",))


def test_the_banner_flags_a_set_without_its_record_or_with_a_changed_image(replica: Path, tmp_path: Path) -> None:
    from diag.audit import audit

    results = tmp_path / "results"
    for method in ("diag", "memseg"):
        copied_set(replica, results / "generated" / method / "augmented_4", positives(replica, 4), method)
    assert not [line for line in audit("demo", results, replica, ("sets",)) if "augmented_4" in line]
    (results / "generated" / "diag" / "augmented_4" / "set.json").unlink()
    images = results / "generated" / "memseg" / "augmented_4" / "imgs"
    (images / "00001.png").write_bytes((images / "00000.png").read_bytes())
    lines = audit("demo", results, replica, ("sets",))
    assert any("generated/diag/augmented_4: no set.json" in line for line in lines), lines
    assert any("generated/memseg/augmented_4: 1 image(s) differ" in line for line in lines), lines


def test_fid_of_a_sets_masks_is_refused(replica: Path, tmp_path: Path, capsys) -> None:
    folder = copied_set(replica, tmp_path / "set", positives(replica, 3), "diag",
                        mask_sources=[s.mask_path for s in read_manifest(replica, "train") if s.is_positive][:3])
    real = tmp_path / "real"
    real.mkdir()
    for path in positives(replica, 3):
        shutil.copy(path, real / path.name)
    refused(["fid", str(real), str(folder / "masks"), "--dims", "64", "--no-cache"], "holds masks, not images",
            capsys, tmp_path)


def sixteen_bit(source: Path, target: Path) -> None:
    """``source`` as a 16-bit greyscale PNG (each 8-bit value v stored as v * 257)."""
    grey = np.asarray(Image.open(source).convert("L")).astype(np.uint16) * 257
    Image.fromarray(grey).save(target)
    assert Image.open(target).mode.startswith("I")


def test_sixteen_bit_pngs_are_read_at_their_values(replica: Path, tmp_path: Path, capsys) -> None:
    from diag.data.ksdd2 import load_image
    from diag.fid.features import decode

    source = positives(replica, 1)[0]
    sixteen_bit(source, tmp_path / "wide.png")
    grey = np.asarray(Image.open(source).convert("L"))
    assert np.array_equal(load_image(tmp_path / "wide.png")[..., 0], grey)  # not all white
    assert np.allclose(decode(tmp_path / "wide.png")[0].numpy() * 255, grey, atol=1e-3)
    src = tmp_path / "raw"  # prepare: a 16-bit image and mask come out as their 8-bit selves
    for split in ("train", "test"):
        (src / split).mkdir(parents=True)
        sample = [s for s in read_manifest(replica, split) if s.is_positive][0]
        sixteen_bit(sample.image_path, src / split / "10000.png")
        mask = np.asarray(Image.open(sample.mask_path).convert("L")).astype(np.uint16) * 257
        Image.fromarray(mask).save(src / split / "10000_GT.png")
    assert main(["data", "prepare", "--src", str(src), "--out", str(tmp_path / "prep")]) == 0
    prepared = np.asarray(Image.open(tmp_path / "prep" / "train" / "10000.png").convert("L"))
    assert abs(int(prepared.mean()) - int(grey.mean())) <= 1
    assert pd.read_csv(tmp_path / "prep" / "train.csv")["label"].tolist() == ["positive"]


@pytest.mark.parametrize("prompts,message", [
    ("prompts: [white marks on the wall, null]\n", "entry 2 of `prompts` is None"),
    ("prompts: [white marks on the wall]\nnegative_prompt: [dark]\n", "`negative_prompt` must be a text"),
])
def test_a_null_prompt_is_refused(prompts: str, message: str, replica: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "p.yaml").write_text(prompts)
    refused(["generate", "diag", "--data", str(replica), "--out", str(tmp_path / "o"), "--prompts",
             str(tmp_path / "p.yaml")], message, capsys, tmp_path)


# --- labels never claim more than ran, and a dry run says what the run would do ----------------------

def test_labels_name_the_data(replica: Path, tmp_path: Path, capsys) -> None:
    from diag import workflow
    from diag.config import build_config

    assert build_config("paper").label(True) == "paper profile, on a REPLICA (not KSDD2)"
    prepared = tmp_path / "prepared"
    shutil.copytree(replica, prepared)
    (prepared / "replica.json").unlink()  # a prepared folder that is not the replica
    run = workflow.setup("demo", tmp_path / "results", prepared, compute=True)
    assert "offline replica" not in run.label and "offline replica" not in run.summary()
    assert "offline replica" in workflow.setup("demo", tmp_path / "r2", replica, compute=True).label
    assert main(["train", "--data", str(prepared), "--scenario", "full-shot", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "[DEMO numbers (prepared data, not the replica, small models)]" in out


def test_a_dry_run_from_results_plans_a_render(tmp_path: Path, capsys) -> None:
    (tmp_path / "results").mkdir()
    assert main(["reproduce", "--dry-run", "--from-results", str(tmp_path / "results")]) == 0
    plan = capsys.readouterr().out
    assert "nothing is computed" in plan and "replica" not in plan and "generate" not in plan
    assert plan.count("compute=False") == len(NOTEBOOKS)


@pytest.mark.parametrize("option,message", [
    (["--n-aug", "100,100"], "grid.n_augs: 100 listed more than once"),
    (["--seeds", ""], "grid.seeds: expected a comma-separated list of int; got ''"),
    (["--seeds", "1,1"], "grid.seeds: 1 listed more than once"),
])
def test_reproduce_lists_are_checked(option: list[str], message: str, tmp_path: Path, capsys) -> None:
    refused(["reproduce", "--dry-run", *option], message, capsys, tmp_path)


# --- a user's mistake is one line, before any work --------------------------------------------------

@pytest.mark.parametrize("command", ["generate", "train", "fid", "experiment", "reproduce"])
def test_cuda_without_a_gpu_is_one_line(command: str, replica: Path, tmp_path: Path, capsys,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = {
        "generate": ["generate", "diag", "--data", str(replica), "--out", str(tmp_path / "o")],
        "train": ["train", "--data", str(replica), "--scenario", "full-shot"],
        "fid": ["fid", str(replica / "train"), str(replica / "test")],
        "experiment": ["experiment", "--scenario", "full-shot", "--methods", "none", "--data", str(replica),
                       "--out", str(tmp_path / "r")],
        "reproduce": ["reproduce", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "site")],
    }[command]
    refused([*args, "--device", "cuda"], "--device cuda: this machine has no CUDA GPU", capsys, tmp_path)
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_a_negative_replica_seed_is_one_line(tmp_path: Path, capsys) -> None:
    refused(["data", "synth", "--scale", "small", "--seed", "-5", "--out", str(tmp_path / "r")],
            "--seed: must be a whole number >= 0", capsys, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("generator,steps,message", [
    ("diag", "1", "steps 1 x strength 0.99"),
    ("diag", "5000", "diag.steps: must be at most 1000"),
    ("inout", "5000", "inout.steps: must be at most 1000"),
])
def test_steps_are_checked_before_work(generator: str, steps: str, message: str, replica: Path, tmp_path: Path,
                                       capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.generate.inout as inout

    monkeypatch.setattr(inout, "finetune_lora", lambda *a, **k: pytest.fail("fine-tuned before checking the steps"))
    refused(["generate", generator, "--data", str(replica), "--out", str(tmp_path / "o"), "--n-aug", "2",
             "--steps", steps, "--device", "cpu"], message, capsys, tmp_path)


def test_a_failed_start_does_not_block_the_corrected_run(replica: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    base = ["generate", "diag", "--data", str(replica), "--out", str(out), "--n-aug", "2", "--device", "cpu"]
    refused([*base, "--steps", "5000"], "at most 1000", capsys)
    assert json.loads((out / "set.json").read_text())["steps"] == 5000  # the failed start's record, 0 images
    assert main([*base, "--steps", "2"]) == 0
    assert json.loads((out / "set.json").read_text())["steps"] == 2
    assert sorted(p.name for p in (out / "imgs").iterdir()) == ["00000.png", "00001.png"]
    refused([*base, "--steps", "3"], "this set (2 images) was made with", capsys, out)  # finished images stay


def test_download_mistakes_are_one_line(tmp_path: Path, capsys) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused(["data", "download", "--out", str(tmp_path / "raw"), "--sha256", "abc"],
            "--sha256: expected 64 hexadecimal digits", capsys, tmp_path)
    assert not (tmp_path / "raw").exists()  # checked before the network or the disk
    line = refused(["data", "download", "--out", str(tmp_path / "raw"), "--url", f"http://127.0.0.1:{port}/x"],
                   "could not download", capsys, tmp_path)
    assert "run the same command again" in line
    with read_only(tmp_path / "locked"):
        refused(["data", "download", "--out", str(tmp_path / "locked" / "raw")], "cannot write here", capsys, tmp_path)


@pytest.mark.parametrize("command", ["prepare", "synth", "fid --json", "fid cache", "train --out",
                                     "experiment --feature-cache"])
def test_read_only_folders_are_one_line(command: str, replica: Path, tmp_path: Path, capsys,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    args = {
        "prepare": ["data", "prepare", "--src", str(replica), "--out", str(locked / "prep")],
        "synth": ["data", "synth", "--scale", "small", "--out", str(locked / "rep")],
        "fid --json": ["fid", str(replica / "train"), str(replica / "test"), "--json", str(locked / "fid.json")],
        "fid cache": ["fid", str(replica / "train"), str(replica / "test")],
        "train --out": ["train", "--data", str(replica), "--scenario", "full-shot", "--out", str(locked / "t")],
        "experiment --feature-cache": ["experiment", "--scenario", "full-shot", "--methods", "none", "--data",
                                       str(replica), "--out", str(tmp_path / "r"), "--feature-cache", str(locked / "c")],
    }[command]
    if command == "fid cache":
        monkeypatch.setenv("XDG_CACHE_HOME", str(locked))
    if command.startswith("fid"):  # a folder of images each: the replica's split folders hold masks
        for split in ("train", "test"):
            (tmp_path / split).mkdir()
            for path in positives(replica, 3):
                shutil.copy(path, tmp_path / split / path.name)
        args[1:3] = [str(tmp_path / "train"), str(tmp_path / "test")]
    with read_only(locked):
        refused(args, "cannot write here", capsys, tmp_path, replica)


@pytest.mark.parametrize("content,message", [
    ("", "not a results table diag wrote"),
    ("just,some\n1,2\n", "not a results table diag wrote (no column scenario"),
    ('a,"b\n', "not a results table diag wrote"),
])
def test_a_damaged_results_table_is_one_line(content: str, message: str, replica: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.csv").write_text(content)
    refused(["experiment", "--scenario", "full-shot", "--methods", "none", "--data", str(replica), "--out",
             str(tmp_path / "r")], message, capsys, tmp_path)


def test_no_method_is_one_line(replica: Path, tmp_path: Path, capsys) -> None:
    refused(["experiment", "--scenario", "full-shot", "--methods", "", "--data", str(replica), "--out",
             str(tmp_path / "r")], "--methods: no method given", capsys, tmp_path)


def test_pickle_is_never_used_to_read(tmp_path: Path) -> None:
    """Every loader in the package reads without unpickling (torch weights_only, numpy allow_pickle=False)."""
    package = Path(__file__).resolve().parent.parent / "diag"
    offending = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            if ("torch.load(" in line and "weights_only=True" not in line) or "allow_pickle=True" in line \
                    or "pickle.load(" in line or "weights_only=False" in line:
                offending.append(f"{path.relative_to(package)}:{number}")
    assert offending == []
