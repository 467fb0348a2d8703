"""The steps the notebooks run, each cached on disk, so a re-run only redoes what changed.

Every chapter opens with ``run = workflow.setup(profile, results_dir, data_dir, compute, overrides)``
and then only calls ``run``'s methods (and plots). Everything is written under the results
folder::

    RESULTS/manifest.json                the data folder, its fingerprint, the profile's settings
    RESULTS/data/                        the replica (demo profile only)
    RESULTS/generated/<method>/augmented_<N>/   generated sets (In&Out's LoRA: generated/inout/lora-seed<S>/)
    RESULTS/generated/<method>/k<k>-draw<S>/    DIAG's (and In&Out's) few-shot sets, from k drawn positives
    RESULTS/feature-cache/               Inception features, per image content
    RESULTS/zero-shot/, RESULTS/full-shot/, RESULTS/few-shot/   grid rows (results.csv) and curves
    RESULTS/fid_<N>.csv                  Table III
    RESULTS/figures/                     chapter 2 and 7's figures, for rendering without a model

With ``compute=False`` (``diag reproduce --from-results``) nothing is computed or written:
what is missing is said on the page.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from diag import experiments, layout
from diag.classify.data import SCENARIOS
from diag.config import Config, build_config
from diag.data.fingerprint import data_fingerprint, is_replica
from diag.data.ksdd2 import read_manifest, split_by_label
from diag.errors import ConfigError, DataError, MissingResult
from diag.files import write_atomic, write_text_atomic
from diag.progress import redirected, step

PAPER_DATA_HINT = (
    "the paper profile runs on real KSDD2 only: `diag data download --out data/raw`, "
    "`diag data prepare --src data/raw/KolektorSDD2 --out data/ksdd2`, then pass --data data/ksdd2"
)


SWEEP = ("04-zero-shot", "zero-shot", "classifier.epochs")  # chapter 8's sweep: notebook, its grid, the field


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

    def draw(self, method: str, k: int | None) -> str | None:
        """The few-shot draw folder of ``method``'s set at ``k`` real positives (None: the standard set)."""
        if k is None:
            return None
        from diag.classify.data import count_positives

        return layout.few_shot_draw(method, k, count_positives(self.data), self.config.grid.positives_seed)

    def drawn_positives(self, k: int) -> list[str]:
        from diag.classify.data import draw_positives

        return draw_positives(self.data, k, self.config.grid.positives_seed)

    def generated_dir(self, method: str, n_aug: int, k: int | None = None) -> Path:
        """Where ``method``'s set at ``n_aug`` lives; ``k``: the few-shot one made from k drawn positives."""
        return layout.generated_dir(self.results / "generated", method, n_aug, self.draw(method, k))

    def generate(
        self, method: str, n_aug: int, part: tuple[int, int] | None = None, k: int | None = None
    ) -> Path:
        """One generated set (cached: finished images are never redone; other settings are refused).

        ``part=(k, K)``: only the k-th of K shares of its missing images (``diag.jobs`` runs the K
        parts at once, then the whole set, which finds every image made and writes the manifest).
        ``k``: the few-shot grid's set at k real positives (DIAG's and In&Out's are made from them).
        """
        out = self.generated_dir(method, n_aug, k)
        finished = (out / "manifest.csv").is_file() and len(pd.read_csv(out / "manifest.csv")) >= n_aug
        if not self.compute:
            if finished:
                return out
            raise MissingResult(f"{out}: generated set missing")
        share = f" (part {part[0] + 1}/{part[1]})" if part else ""
        draw = self.draw(method, k)
        with step(f"generate {method} {draw + '/' if draw else ''}augmented_{n_aug}{share}", cached=finished):
            self.make_set(method, n_aug, out, part, self.drawn_positives(k) if draw else None)
        return out

    def inout_lora_dir(self, draw: str | None = None) -> Path:
        """Where In&Out's fine-tune for this run's seed lives: one serves every N_aug (and one per few-shot draw)."""
        from diag.generate.sets import lora_folder

        return lora_folder(layout.generated_dir(self.results / "generated", "inout", 0, draw), self.config.inout.seed)

    def inout_lora(self, k: int | None = None) -> Path:
        """In&Out's fine-tune alone (made once; the parts of its sets load it); ``k``: on a few-shot draw."""
        from diag.generate.inout import finetune_inout

        draw = self.draw("inout", k)
        positives = self.drawn_positives(k) if draw else None
        return finetune_inout(
            self.data, self.config.inout, self.inout_lora_dir(draw), progress=redirected(), positives=positives
        )

    def generate_with_maps(self, method: str, n_aug: int, k: int | None = None) -> Path:
        """A generated set and its images' classifier feature maps (so the grids need not make them)."""
        out = self.generate(method, n_aug, k=k)
        self.cache_maps(sorted((out / "imgs").glob("*.png")), f"{method} {out.relative_to(self.results / 'generated')}")
        return out

    def real_maps(self) -> None:
        """The classifier feature maps of every real image, training and test (the grids share them)."""
        paths = [s.image_path for split in ("train", "test") for s in read_manifest(self.data, split)]
        self.cache_maps(paths, "the real images")

    def cache_maps(self, paths: Sequence[Path], what: str) -> None:
        """The demo backbone's feature maps of ``paths`` into the grids' cache (the paper's ResNet has none)."""
        if not self.compute or self.config.classifier.backbone != "fid-inception-maps":
            return
        from diag.classify.features import feature_maps

        with step(f"feature maps of {what} ({len(paths)} images)"):
            feature_maps(
                paths,
                cache_dir=self.results / "feature-cache",
                progress=redirected(),
                device=resolve(self.config.classifier.device),
            )

    def make_set(
        self,
        method: str,
        n_aug: int,
        out: Path,
        part: tuple[int, int] | None = None,
        positives: list[str] | None = None,
    ) -> None:
        """The method's generator (``generate.sets.make_set``; a finished set returns at once); bars go to the
        terminal. ``positives``: a few-shot draw's real positives, the only ones DIAG's masks and In&Out's
        fine-tune see."""
        from diag.generate.sets import make_set

        make_set(self.config, method, self.data, out, n_aug, positives=positives, part=part, progress=redirected())

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

    def grid(self, scenario: str, only: tuple | None = None) -> pd.DataFrame:
        """The Table I (zero-shot) or II (full-shot) grid, or the few-shot curve's; computes its generated
        sets first.

        ``only``: one cell (scenario, method, n_aug, seed, k), computed into its own row file (a
        cluster job's unit, ``experiments.run_grid``); the whole grid's call merges them. The few-shot
        grid copies its k = 0 and k = all rows from the other two grids where they were made the same way."""
        from diag.classify.data import count_positives

        methods = experiments.grid_methods(scenario, self.config.grid.few_shot_methods)
        out = self.results / scenario
        if not self.compute:
            from diag.audit import shown_rows

            rows, _ = shown_rows(self.results, scenario, self.data, self.config)
            if rows.empty:
                raise MissingResult(f"{out / 'results.csv'}: no grid rows made on this data")
            return rows
        cells = experiments.scenario_cells(self.config, scenario, methods, count_positives(self.data))
        for _, method, n_aug, _, k in dict.fromkeys((c[0], c[1], c[2], 0, c[4]) for c in cells):
            if method != "none" and (only is None or (method, n_aug, k) == (only[1], only[2], only[4])):
                self.generate(method, n_aug, k=k if scenario == "few-shot" else None)
        reuse = {s: self.results / s for s in ("zero-shot", "full-shot")} if scenario == "few-shot" else None
        with step(f"cell {' '.join(map(str, only))}" if only else f"{scenario} grid ({len(cells)} cells)"):
            return experiments.run_grid(
                self.config,
                scenario=scenario,
                methods=methods,
                data=self.data,
                generated=self.results / "generated",
                out=out,
                feature_cache=self.results / "feature-cache",
                progress=redirected(),
                only=only,
                reuse=reuse,
            )

    def sets_for_table(self, n_aug: int | None) -> int:
        """Table III's N_aug (default: ``experiments.table_n_aug``); its sets made when computing."""
        n_aug = n_aug or experiments.table_n_aug(self.config.grid.n_augs)
        if self.compute:
            for method in experiments.GENERATORS:
                self.generate(method, n_aug)
        return n_aug

    def fid(self, n_aug: int | None = None) -> pd.DataFrame:
        """Table III at ``n_aug`` (default: 100 where the grid has it, the paper's N)."""
        from diag.fid.table import fid_table

        n_aug = self.sets_for_table(n_aug)
        with step(f"FID table at N_aug {n_aug}") if self.compute else contextlib.nullcontext():
            return fid_table(
                self.data,
                self.results,
                n_aug,
                dims=self.config.fid.dims,
                compute=self.compute,
                device=resolve(self.config.fid.device),
                batch_size=self.config.fid.batch_size,
                kid_subset_size=self.config.fid.kid_subset_size,
                kid_subsets=self.config.fid.kid_subsets,
            )

    def realism(self, n_aug: int | None = None) -> pd.DataFrame:
        """How well a linear probe tells each method's defects (and images) from the real positives."""
        from diag.fid.realism import realism_table

        n_aug = self.sets_for_table(n_aug)
        with step(f"realism probe at N_aug {n_aug}") if self.compute else contextlib.nullcontext():
            return realism_table(
                self.data,
                self.results,
                n_aug,
                experiments.GENERATORS,
                compute=self.compute,
                device=resolve(self.config.fid.device),
            )

    def epochs_sweep(self) -> tuple[list, pd.DataFrame]:
        """Chapter 8's worked papermill sweep: chapter 4 re-run with a tenth, three tenths and all of the
        profile's classifier epochs, each run in its own results folder (``diag.sweep``); the runs and
        the table comparing them. Redone only when what it starts from changes (the grid's sets and
        settings, the data, the overrides)."""
        import shutil

        from diag import sweep

        notebook, scenario, field = SWEEP
        epochs = self.config.classifier.epochs
        values = [str(v) for v in sorted({max(1, round(epochs / 10)), max(1, round(3 * epochs / 10)), epochs})]
        out = self.results / "sweeps" / field
        rows = self.grid(scenario)  # what every run starts from: this run's own grid
        made_from = {
            "values": values,
            "overrides": self.overrides,
            "sets": sorted(set(rows["generated_sha1"])),
            "settings": sorted(set(rows["settings_id"])),
            "data": data_fingerprint(self.data),
        }
        key = experiments.settings_id(made_from)
        runs = sweep.read_runs(out)
        fresh = (out / "key").is_file() and (out / "key").read_text() == key and [r.value for r in runs] == values
        if self.compute and not fresh:
            shutil.rmtree(out, ignore_errors=True)
            inside = self.data.resolve().is_relative_to(self.results.resolve())  # the replica travels with the copy
            with step(f"papermill sweep: {notebook} with {field} = {', '.join(values)}"):
                runs = sweep.sweep(notebook, field, values, base=self.results, out=out, profile=self.config.profile,
                                   data_dir=None if inside else str(self.data), overrides=self.overrides)
            write_text_atomic(out / "key", key)
        if not runs:
            raise MissingResult(f"{out}: the sweep has not run here")
        return runs, sweep.compare_grids(runs, scenario, field, self.config.profile, self.overrides)

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

    def stored_figure(self, name: str, draw: Callable[[], object]) -> tuple[Path | None, object]:
        """A figure that needs a model: drawn and stored when computing, read from storage otherwise.

        ``draw`` returns a matplotlib figure, or (figure, numbers) where numbers are JSON data the
        page's text is computed from. Returns the stored PNG and those numbers, or (None, None) when
        rendering a results folder that lacks the figure. A figure stored with this run's data and
        settings is not drawn again (``figure_key``). ``diag.chapters.show.figure`` shows it.
        """
        import matplotlib.pyplot as plt

        path = self.results / "figures" / f"{name}.png"
        numbers, key = path.with_suffix(".json"), path.with_suffix(".key")
        drawn_here = path.is_file() and numbers.is_file() and key.is_file() and key.read_text() == self.figure_key()
        if self.compute and not drawn_here:
            with step(f"figure {name}"):
                drawn = draw()
            fig, data = drawn if isinstance(drawn, tuple) else (drawn, None)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
            write_text_atomic(numbers, json.dumps(data) + "\n")
            write_text_atomic(key, self.figure_key())  # last: marks the figure as finished
            plt.close(fig)
        if not path.is_file():
            return None, None
        return path, json.loads(numbers.read_text()) if numbers.is_file() else None

    def figure_key(self) -> str:
        """What a stored figure was drawn from: this data and every setting (a change draws it again)."""
        import hashlib

        made = {"data": data_fingerprint(self.data), "config": self.config.to_dict()}
        return hashlib.sha1(json.dumps(made, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # --- what the results folder holds, against the profile ------------------------------
    def differences(self, scopes: Sequence[str] | None = None) -> list[str]:
        """What this run's results lack or do otherwise than the profile (the banner's lines)."""
        from diag.audit import SCOPES, audit

        return audit(self.config.profile, self.results, self.data, tuple(scopes or SCOPES), self.config)

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

    with step(f"make the replica ({config.data.replica_scale}, seed {config.data.replica_seed})"):
        synthesize(path, scale=config.data.replica_scale, seed=config.data.replica_seed, progress=redirected())
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
    from diag import __version__

    inside = run.data.resolve().is_relative_to(run.results.resolve())
    manifest = {
        "profile": run.config.profile,
        "data": str(run.data.resolve()),
        "data_fingerprint": data_fingerprint(run.data),
        "replica": run.replica,
        "replica_in_results": inside,
        "overrides": run.overrides,
        "diag_version": __version__,
        "config": run.config.to_dict(),
    }
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    path = run.results / "manifest.json"
    if not path.is_file() or path.read_text() != text:  # unchanged: left as it is (a chapter's page is reused)
        write_text_atomic(path, text)


def checked_inputs(
    profile: str, data_dir: Path | str | None, overrides: Sequence[str] = ()
) -> tuple[Config, Path | None]:
    """The profile's settings and its data folder (None: the demo's replica, made by ``setup``),
    checked before anything is written; the paper profile refuses to run without data."""
    config = build_config(profile, overrides)
    if data_dir is not None:
        config = replace(config, data=replace(config.data, path=str(Path(data_dir).resolve())))  # one record, however named
    if config.data.path is not None:
        data = Path(config.data.path)
        read_manifest(data, "train")  # a one-line error when it is not a prepared folder
        return config, data
    if profile == "paper":
        raise ConfigError(f"no data folder given: {PAPER_DATA_HINT}")
    return config, None


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
    config, data = checked_inputs(profile, data_dir, overrides)
    data = data or replica_dir(results, config, compute)
    run = Run(config, results, data, compute, list(overrides))
    if compute:
        check_manifest(results, data_fingerprint(data))
        write_manifest(run)
    return run


def dry_run(
    profile: str,
    results_dir: Path | str,
    data_dir: Path | str | None = None,
    overrides: Sequence[str] = (),
    workers: int = 1,
    cluster: tuple[str, int] | None = None,
) -> list[str]:
    """Every job ``diag reproduce`` would run (``diag.jobs.book_jobs``, the list it runs), with its
    image and training counts; runs nothing. ``cluster``: (executor, jobs) of ``--executor local|slurm``,
    whose units are each grid cell too; the chapters then run here."""
    from diag.book import NOTEBOOKS
    from diag.jobs import book_jobs, chapter_jobs

    config, data = checked_inputs(profile, data_dir, overrides)
    results = Path(results_dir)
    data = data or results / "data"
    lines = [f"profile {profile}; results in {results}; data: {data}; {workers} worker(s)"]
    if (data / "train.csv").is_file():
        negatives, positives = split_by_label(read_manifest(data, "train"))
        counts = {"negatives": len(negatives), "positives": len(positives), "test": len(read_manifest(data, "test"))}
    else:
        from diag.data.synthetic import SCALES

        n_pos, n_neg, t_pos, t_neg = SCALES[config.data.replica_scale]
        counts = {"negatives": n_neg, "positives": n_pos, "test": t_pos + t_neg}
        lines.append(
            f"make the replica ({config.data.replica_scale}, seed {config.data.replica_seed}): "
            f"{n_pos + n_neg} training + {t_pos + t_neg} test images"
        )
    if cluster:
        executor, jobs = cluster
        lines.append(f"on the {executor} executor, at most {jobs} job(s) at once:")
        plan = [*book_jobs(config, [], counts["positives"], parts=jobs, cells=True), *chapter_jobs(NOTEBOOKS)]
    else:
        plan = book_jobs(config, NOTEBOOKS, counts["positives"], parts=workers)
    for job in plan:
        lines.append(describe_job(job, config, counts))
    lines.append("build the book (Jupyter Book)")
    return lines


def describe_job(job, config: Config, counts: dict[str, int]) -> str:
    """One line of the dry run: the job's name, what it makes and from what."""
    diag, inout, classifier = config.diag, config.inout, config.classifier
    if job.action == "finetune":
        positives = job.args[0] if job.args else counts["positives"]
        return (
            f"{job.name} (seed {inout.seed}, once for every N_aug): {inout.model}, "
            f"{inout.total_steps(positives)} steps of {inout.train_batch_size} images over "
            f"{positives} positives, LoRA {inout.rank}/{inout.alpha}"
        )
    if job.action in ("generate", "few-shot set"):
        method, n_aug, *part = job.args
        k = part.pop(0) if job.action == "few-shot set" else None
        if part:
            return f"{job.name}: {len(range(part[0], n_aug, part[1]))} of its images"
        if k is not None:
            source = "masks of" if method == "diag" else "a fine-tune on"
            return f"{job.name}: {n_aug} images, {source} only {k} drawn real positives (seed {config.grid.positives_seed})"
        if method in ("diag", experiments.PROCEDURAL):
            masks = "procedural" if method == experiments.PROCEDURAL else diag.masks
            how = (
                f"{diag.model}, {diag.steps} steps ({diag.sampler}), guidance {diag.guidance}, "
                f"canvas {diag.canvas}, masks {masks}"
            )
        elif method == "inout":
            how = f"{inout.steps} steps ({inout.sampler}), merge {inout.merge_ratio}, from the fine-tune"
        else:
            how = "MemSeg's procedural anomalies"
        return f"{job.name}: {n_aug} images, {how}"
    if job.action == "real maps":
        n = counts["negatives"] + counts["positives"] + counts["test"]
        used = classifier.backbone == "fid-inception-maps"
        return f"{job.name}: {n} images" if used else f"{job.name}: none needed ({classifier.backbone})"
    if job.action == "cell":
        scenario, method, n_aug, seed, k = job.args
        base = counts["negatives"] + k
        return (
            f"{job.name}: one classifier ({classifier.backbone}, {classifier.epochs} epochs, seed {seed}) on "
            f"{base + n_aug} training images, into its own row file"
        )
    if job.action == "grid":
        (scenario,) = job.args
        methods = experiments.grid_methods(scenario, config.grid.few_shot_methods)
        cells = experiments.scenario_cells(config, scenario, methods, counts["positives"])
        sizes = sorted({counts["negatives"] + k + n for _, _, n, _, k in cells})
        if scenario == "few-shot":
            ks = experiments.scenario_positives(config, scenario, counts["positives"])
            return (
                f"{job.name}: {len(cells)} classifiers at k = {', '.join(map(str, ks))} real positives (its k = 0 "
                f"and k = all rows copied from the other grids where made the same way), N_aug "
                f"{experiments.scenario_n_augs(config, scenario)[0]}"
            )
        return (
            f"{job.name}: {len(cells)} classifiers ({classifier.backbone}, {classifier.epochs} epochs, "
            f"{'/'.join(map(str, sizes))} training images each), scored on {counts['test']} test images"
        )
    if job.action == "fid":
        return (
            f"{job.name}: {len(experiments.GENERATORS)} sets against {counts['positives']} real positives, "
            f"dims {config.fid.dims}"
        )
    if job.action == "sweep":
        notebook, scenario, field_name = SWEEP
        return f"{job.name}: {notebook} executed again per {field_name} value, each in its own results folder"
    if job.action == "realism":
        return f"{job.name}: a linear probe per set, real positives against generated images and defect crops"
    return f"{job.name}: execute the notebook" + (f" (after {', '.join(job.after)})" if job.after else "")


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
