"""The steps the notebooks run, each cached on disk, so a re-run only redoes what changed.

Every chapter opens with ``run = workflow.setup(profile, results_dir, data_dir, compute, overrides)``
and then only calls ``run``'s methods (and plots). Everything is written under the results
folder::

    RESULTS/manifest.json                the data folder, its fingerprint, the profile's settings
    RESULTS/data/                        the replica (demo profile only)
    RESULTS/generated/<method>/augmented_<N>/   generated sets (In&Out's LoRA: generated/inout/lora-seed<S>/)
    RESULTS/feature-cache/               Inception features, per image content
    RESULTS/zero-shot/, RESULTS/full-shot/      grid rows (results.csv) and curves
    RESULTS/fid_<N>.csv                  Table III
    RESULTS/figures/                     chapter 2 and 7's figures, for rendering without a model

With ``compute=False`` (``diag reproduce --from-results``) nothing is computed or written:
what is missing is said on the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from diag import experiments
from diag.classify.data import SCENARIOS
from diag.config import Config, build_config
from diag.data.fingerprint import data_fingerprint, is_replica
from diag.data.ksdd2 import read_manifest, split_by_label
from diag.errors import ConfigError, DataError, MissingResult
from diag.files import write_text_atomic

PAPER_DATA_HINT = (
    "the paper profile runs on real KSDD2 only: `diag data download --out data/raw`, "
    "`diag data prepare --src data/raw/KolektorSDD2 --out data/ksdd2`, then pass --data data/ksdd2"
)


@dataclass
class Run:
    """One book run: its settings, its results folder, its data, and whether it may compute."""

    config: Config
    results: Path
    data: Path
    compute: bool
    overrides: list[str] = field(default_factory=list)

    # --- what the pages print -------------------------------------------------------------
    @property
    def replica(self) -> bool:
        return is_replica(self.data)

    @property
    def label(self) -> str:
        """The label beside every number: a replica is always named."""
        return self.config.label(self.replica)

    @property
    def numbers(self) -> str:
        """The short tag of this run's numbers in tables: DEMO, replica, or ours."""
        return "DEMO" if self.config.profile == "demo" else ("replica" if self.replica else "ours")

    def summary(self) -> str:
        """What every chapter prints first, one fact a line (a single line ran past the text column)."""
        data = "offline replica" if self.replica else "prepared data"
        overrides = ", ".join(self.overrides) or "none"
        return f"{self.label}\ndata: {data} ({data_fingerprint(self.data)})\noverrides: {overrides}"

    # --- the steps ------------------------------------------------------------------------
    def counts(self):
        """Chapter 1's counts per split, KSDD2's published ones beside."""
        from diag.chapters.style import table
        from diag.data.ksdd2 import KSDD2_COUNTS

        rows = []
        for split in ("train", "test"):
            negatives, positives = split_by_label(read_manifest(self.data, split))
            rows.append(
                {
                    "split": split,
                    f"negative ({self.numbers})": len(negatives),
                    f"positive ({self.numbers})": len(positives),
                    "negative (KSDD2)": KSDD2_COUNTS[split]["negative"],
                    "positive (KSDD2)": KSDD2_COUNTS[split]["positive"],
                }
            )
        return table(pd.DataFrame(rows))

    def generated_dir(self, method: str, n_aug: int) -> Path:
        return experiments.generated_dir(self.results / "generated", method, n_aug)

    def generate(self, method: str, n_aug: int, progress: bool = False) -> Path:
        """One generated set (cached: finished images are never redone; other settings are refused)."""
        out = self.generated_dir(method, n_aug)
        if not self.compute:
            if (out / "manifest.csv").is_file() and len(pd.read_csv(out / "manifest.csv")) >= n_aug:
                return out
            raise MissingResult(f"{out}: generated set missing")
        if method in ("diag", experiments.PROCEDURAL):
            from diag.generate.diag import generate_diag

            masks = "procedural" if method == experiments.PROCEDURAL else self.config.diag.masks
            generate_diag(self.data, out, replace(self.config.diag, n_aug=n_aug, masks=masks), progress=progress)
        elif method == "memseg":
            from diag.generate.memseg import generate_memseg

            generate_memseg(self.data, out, replace(self.config.memseg, n_aug=n_aug), progress=progress)
        elif method == "inout":
            from diag.generate.inout import generate_inout

            lora = self.results / "generated" / "inout" / f"lora-seed{self.config.inout.seed}"
            generate_inout(self.data, out, replace(self.config.inout, n_aug=n_aug), progress=progress, lora_dir=lora)
        else:
            raise ConfigError(
                f"The `method` parameter must be one of {experiments.ZERO_SHOT_METHODS}. " f"Got {method!r} instead."
            )
        return out

    def generate_all(self) -> pd.DataFrame:
        """Every method's set at every N_aug; one row each with its image count."""
        rows = []
        for method in experiments.ZERO_SHOT_METHODS:
            for n_aug in self.config.grid.n_augs:
                folder = self.generate(method, n_aug)
                rows.append(
                    {
                        "method": experiments.METHOD_NAMES[method],
                        "n_aug": n_aug,
                        "images": len(list((folder / "imgs").glob("*.png"))),
                    }
                )
        return pd.DataFrame(rows)

    def grid(self, scenario: str) -> pd.DataFrame:
        """The Table I (zero-shot) or II (full-shot) grid; computes its generated sets first."""
        methods = experiments.grid_methods(scenario)
        out = self.results / scenario
        if not self.compute:
            from diag.audit import shown_rows

            rows, _ = shown_rows(self.results, scenario, self.data, self.config)
            if rows.empty:
                raise MissingResult(f"{out / 'results.csv'}: no grid rows made on this data")
            return rows
        for method in methods:
            for n_aug in self.config.grid.n_augs:
                if method != "none":
                    self.generate(method, n_aug)
        return experiments.run_grid(
            self.config,
            scenario=scenario,
            methods=methods,
            data=self.data,
            generated=self.results / "generated",
            out=out,
            feature_cache=self.results / "feature-cache",
            progress=False,
        )

    def sets_for_table(self, n_aug: int | None) -> int:
        """Table III's N_aug (default: 100 where the grid has it, the paper's N); its sets made when computing."""
        n_aug = n_aug or (100 if 100 in self.config.grid.n_augs else self.config.grid.n_augs[0])
        if self.compute:
            for method in experiments.GENERATORS:
                self.generate(method, n_aug)
        return n_aug

    def fid(self, n_aug: int | None = None) -> pd.DataFrame:
        """Table III at ``n_aug`` (default: 100 where the grid has it, the paper's N)."""
        from diag.fid.table import fid_table

        n_aug = self.sets_for_table(n_aug)
        return fid_table(
            self.data,
            self.results,
            n_aug,
            dims=self.config.fid.dims,
            compute=self.compute,
            device=resolve(self.config.fid.device),
            batch_size=self.config.fid.batch_size,
        )

    def realism(self, n_aug: int | None = None) -> pd.DataFrame:
        """How well a linear probe tells each method's defects (and images) from the real positives."""
        from diag.fid.realism import realism_table

        n_aug = self.sets_for_table(n_aug)
        return realism_table(
            self.data,
            self.results,
            n_aug,
            experiments.GENERATORS,
            compute=self.compute,
            device=resolve(self.config.fid.device),
        )

    def examples(self, n_aug: int, per_row: int = 6, seed: int = 0) -> dict[str, list[np.ndarray]]:
        """Figure 2's rows: negatives, real positives, MemSeg, In&Out, DIAG (as uint8 arrays)."""
        from diag.data.ksdd2 import load_image

        rng = np.random.default_rng(seed)
        negatives, positives = split_by_label(read_manifest(self.data, "train"))
        pick = lambda items, n: [
            items[i] for i in sorted(rng.choice(len(items), size=min(n, len(items)), replace=False))
        ]
        rows = {
            "negatives": [load_image(s.image_path) for s in pick(negatives, per_row)],
            "real positives": [load_image(s.image_path) for s in pick(positives, per_row)],
        }
        for method in experiments.GENERATORS:
            images = sorted((self.generated_dir(method, n_aug) / "imgs").glob("*.png"))
            rows[experiments.METHOD_NAMES[method]] = [load_image(p) for p in pick(images, per_row)]
        return rows

    def figure(self, name: str, draw: Callable[[], object]):
        """A figure that needs a model: drawn and stored when computing, shown from storage otherwise.

        ``draw`` returns a matplotlib figure, or (figure, numbers) where numbers are JSON data
        the page's text is computed from; those numbers are returned (stored beside the PNG),
        or None when rendering a results folder that lacks the figure (the page says so).
        """
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        path = self.results / "figures" / f"{name}.png"
        numbers = path.with_suffix(".json")
        if self.compute:
            drawn = draw()
            fig, data = drawn if isinstance(drawn, tuple) else (drawn, None)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110, bbox_inches="tight")
            write_text_atomic(numbers, json.dumps(data) + "\n")
            plt.show()
            return data
        if path.is_file():
            display(Image(filename=str(path)))
            return json.loads(numbers.read_text()) if numbers.is_file() else None
        print(f"(not in this results folder: figures/{path.name}; run without --from-results to draw it)")
        return None

    # --- what the results folder holds, against the profile ------------------------------
    def differences(self, scopes: Sequence[str] | None = None) -> list[str]:
        """What this run's results lack or do otherwise than the profile (the banner's lines)."""
        from diag.audit import SCOPES, audit

        return audit(self.config.profile, self.results, self.data, tuple(scopes or SCOPES), self.config)

    def banner(self, *scopes: str) -> None:
        """A visible warning on the page when its results are partial or made with other settings.

        ``scopes``: what the page shows ("zero-shot", "full-shot", "fid"); the data and the
        generated sets are always checked.
        """
        from IPython.display import HTML, display

        lines = self.differences(("data", "sets", *scopes))
        if lines:
            items = "".join(f"<li>{escape(line)}</li>" for line in lines)
            display(
                HTML(
                    f'<div class="admonition warning"><p class="admonition-title">Partial / non-{self.config.profile} '
                    f"settings: these numbers are not the {self.config.profile} profile's</p><ul>{items}</ul></div>"
                )
            )
        notes = self.left_out(scopes)
        if notes:
            display(HTML(f'<div class="admonition note"><p>{escape(" ".join(notes))}</p></div>'))

    def left_out(self, scenarios: Sequence[str]) -> list[str]:
        """What a grid page leaves out of its results.csv: rows made with other settings (kept, never mixed)."""
        from diag.audit import shown_rows

        notes = []
        for scenario in (s for s in scenarios if s in SCENARIOS):
            _, left = shown_rows(self.results, scenario, self.data, self.config)
            if left["other settings"]:
                notes.append(
                    f"Not shown: {left['other settings']} row(s) of {scenario}/results.csv made with other "
                    "settings (kept in the file, never averaged with these)."
                )
        return notes


def escape(text: str) -> str:
    import html

    return html.escape(text)


def resolve(device: str) -> str:
    from diag.devices import resolve_device

    return str(resolve_device(device))


def replica_dir(results: Path, config: Config, compute: bool) -> Path:
    """The demo profile's replica under ``results/data``, made once (and checked to be the one asked for)."""
    path = results / "data"
    if (path / "train.csv").is_file():
        info = json.loads((path / "replica.json").read_text()) if (path / "replica.json").is_file() else {}
        wanted = {"scale": config.data.replica_scale, "seed": config.data.replica_seed}
        if {k: info.get(k) for k in wanted} != wanted:
            raise DataError(
                f"{path}: a replica made with scale {info.get('scale')!r}, seed {info.get('seed')!r}; this run "
                f"asks for {wanted['scale']!r}, seed {wanted['seed']!r}. Use another results folder."
            )
        return path
    if not compute:
        raise MissingResult(f"{path}: no data; pass data_dir or run with compute=True")
    from diag.data.synthetic import synthesize

    synthesize(path, scale=config.data.replica_scale, seed=config.data.replica_seed, progress=False)
    return path


def check_manifest(results: Path, fingerprint: str) -> None:
    """Refuse a results folder whose results were made on other data."""
    path = results / "manifest.json"
    if path.is_file():
        recorded = json.loads(path.read_text()).get("data_fingerprint")
        if recorded and recorded != fingerprint:
            raise DataError(
                f"{results}: its results were made on other data (fingerprint {recorded}, this data "
                f"{fingerprint}); use another results folder"
            )


def write_manifest(run: Run) -> None:
    """``results/manifest.json``: the data folder, its fingerprint, whether it is a replica, every setting."""
    from importlib.metadata import version

    inside = run.data.resolve().is_relative_to(run.results.resolve())
    manifest = {
        "profile": run.config.profile,
        "data": str(run.data.resolve()),
        "data_fingerprint": data_fingerprint(run.data),
        "replica": run.replica,
        "replica_in_results": inside,
        "overrides": run.overrides,
        "diag_version": version("diag"),
        "config": run.config.to_dict(),
    }
    write_text_atomic(run.results / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def setup(
    profile: str,
    results_dir: Path | str,
    data_dir: Path | str | None = None,
    compute: bool = True,
    overrides: Sequence[str] = (),
) -> Run:
    """The run a chapter works in: its config (profile + overrides), results folder and data.

    The paper profile needs a prepared KSDD2 folder (``data_dir`` or ``data.path``); only the
    demo profile ever makes a replica. Rendering (``compute=False``) takes the data folder and the
    settings the results were made with from ``results/manifest.json``.
    """
    results = Path(results_dir)
    if not compute and (results / "manifest.json").is_file():
        recorded = json.loads((results / "manifest.json").read_text())
        overrides = [*recorded.get("overrides", []), *overrides]
        if data_dir is None and recorded.get("data") and not recorded.get("replica_in_results"):
            data_dir = recorded["data"]
            if not (Path(data_dir) / "train.csv").is_file():
                raise MissingResult(
                    f"{results / 'manifest.json'} names the data folder {data_dir}, which is not here; "
                    "pass the prepared data with --data"
                )
    config = build_config(profile, overrides)
    if data_dir is not None:
        config = replace(config, data=replace(config.data, path=str(data_dir)))
    if config.data.path is not None:
        data = Path(config.data.path)
        read_manifest(data, "train")  # a one-line error when it is not a prepared folder
    elif profile == "paper":
        raise ConfigError(f"no data folder given: {PAPER_DATA_HINT}")
    else:
        data = replica_dir(results, config, compute)
    run = Run(config, results, data, compute, list(overrides))
    if compute:
        check_manifest(results, data_fingerprint(data))
        write_manifest(run)
    return run


def dry_run(
    profile: str, results_dir: Path | str, data_dir: Path | str | None = None, overrides: Sequence[str] = ()
) -> list[str]:
    """Every step ``diag reproduce`` would run, with its image and training counts; runs nothing."""
    config = build_config(profile, overrides)
    results = Path(results_dir)
    if data_dir is not None:
        data = Path(data_dir)
    elif profile == "paper":
        raise ConfigError(f"no data folder given: {PAPER_DATA_HINT}")
    else:
        data = results / "data"
    lines = [f"profile {profile}; results in {results}; data: {data}"]
    if (data / "train.csv").is_file():
        negatives, positives = split_by_label(read_manifest(data, "train"))
        test = read_manifest(data, "test")
        counts = (len(negatives), len(positives), len(test))
    else:
        from diag.data.synthetic import SCALES

        n_pos, n_neg, t_pos, t_neg = SCALES[config.data.replica_scale]
        counts = (n_neg, n_pos, t_pos + t_neg)
        lines.append(
            f"1. make the replica ({config.data.replica_scale}, seed {config.data.replica_seed}): "
            f"{n_pos + n_neg} training + {t_pos + t_neg} test images"
        )
    n_neg, n_pos, n_test = counts
    diag, inout = config.diag, config.inout
    for n_aug in config.grid.n_augs:
        lines.append(
            f"generate diag augmented_{n_aug}: {n_aug} images, {diag.model}, {diag.steps} steps, "
            f"guidance {diag.guidance}, canvas {diag.canvas}, masks {diag.masks}"
        )
        lines.append(f"generate memseg augmented_{n_aug}: {n_aug} images")
        lines.append(
            f"generate {experiments.PROCEDURAL} augmented_{n_aug}: {n_aug} images, as diag with procedural masks"
        )
    lines.append(
        f"fine-tune In&Out once (seed {inout.seed}): {inout.model}, {inout.total_steps(n_pos)} steps of "
        f"{inout.train_batch_size} images over {n_pos} positives, LoRA {inout.rank}/{inout.alpha}"
    )
    for n_aug in config.grid.n_augs:
        lines.append(
            f"generate inout augmented_{n_aug}: {n_aug} images, {inout.steps} steps, merge {inout.merge_ratio}"
        )
    classifier = config.classifier
    for scenario in ("zero-shot", "full-shot"):
        base = n_neg + (n_pos if scenario == "full-shot" else 0)
        cells = len(
            experiments.grid_cells(
                scenario,
                experiments.grid_methods(scenario),
                config.grid.n_augs,
                config.grid.seeds,
            )
        )
        sizes = sorted({base + n for n in config.grid.n_augs} | ({base} if scenario == "full-shot" else set()))
        lines.append(
            f"{scenario} grid: {cells} classifiers ({classifier.backbone}, {classifier.epochs} epochs, "
            f"{'/'.join(map(str, sizes))} training images each), scored on {n_test} test images"
        )
    fid_n = 100 if 100 in config.grid.n_augs else config.grid.n_augs[0]
    lines.append(
        f"FID at N_aug {fid_n}: {len(experiments.GENERATORS)} sets against {n_pos} real positives, "
        f"dims {config.fid.dims}"
    )
    from diag.book import NOTEBOOKS

    lines.append(f"execute {len(NOTEBOOKS)} notebooks ({', '.join(NOTEBOOKS)}), build the book")
    return lines


def render_plan(profile: str, results_dir: Path | str, out: Path | str, overrides: Sequence[str] = ()) -> list[str]:
    """What ``diag reproduce --from-results`` does: nothing is computed, nothing is written in the results."""
    from diag.book import NOTEBOOKS

    results = Path(results_dir)
    build_config(profile, overrides)  # the same one-line errors as the real run
    manifest = results / "manifest.json"
    recorded = json.loads(manifest.read_text()) if manifest.is_file() else {}
    lines = [
        f"profile {profile}; render the results in {results} (nothing is computed or written there)",
        f"data: {recorded.get('data', 'as --data gives')} ({recorded.get('data_fingerprint', 'no manifest.json')})",
    ]
    lines += [f"execute {name} with compute=False (what the results lack is said on its page)" for name in NOTEBOOKS]
    lines.append(f"build the site into {out}")
    return lines
