"""The ``diag`` command line: thin wrappers that parse arguments and call the package.

    diag data download --out DIR          the official KSDD2 archive (needs the internet)
    diag data prepare --src DIR --out DIR official layout -> 224x632 + train.csv/test.csv
    diag data synth --out DIR             the offline replica (demo, notebooks, tests)
    diag generate diag --data DIR --out DIR   DIAG inpainting (the demo model; --profile paper: SDXL)
    diag fid REAL GEN                     FID at Inception pool layers 64/192/2048
    diag fid --table RESULTS --n-aug N --data DIR   the book's Table III for a results folder
    diag train --data DIR ...             train and score the defect classifier once
    diag experiment --scenario ...        the Table I/II grid, resumable
    diag reproduce                        run every step, the notebooks, and build the book
    diag pretrain-demo-model --out DIR    train the bundled offline inpainting model

Every command that computes takes --profile demo|paper (default demo), one option per
setting it uses, and --set SECTION.FIELD=VALUE for any setting of the profile's config
(diag.config). A user's mistake ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from diag.data.fingerprint import is_replica
from diag.errors import DiagError
from diag.files import ensure_writable_folder


@contextlib.contextmanager
def warnings_to_stderr(category: type[Warning] = Warning) -> Iterator[None]:
    """Show each warning of ``category`` raised inside the block once, as a `warning:` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)


def cmd_data_download(args: argparse.Namespace) -> None:
    from diag.data.download import KSDD2_SHA256, KSDD2_URL, download

    root = download(args.out, url=args.url or KSDD2_URL, sha256=args.sha256 or KSDD2_SHA256)
    print(f"KSDD2 unpacked at {root}; next: diag data prepare --src {root} --out PREPARED_DIR")


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from diag.data.prepare import prepare

    with warnings_to_stderr():
        report = prepare(args.src, args.out)
    print(f"prepared {args.out}: {report.summary()}")


def cmd_data_synth(args: argparse.Namespace) -> None:
    from diag.data.synthetic import synthesize

    info = synthesize(args.out, scale=args.scale, seed=args.seed)
    counts = "; ".join(f"{s}: {c['positive']} positive + {c['negative']} negative" for s, c in info.counts.items())
    print(f"replica ({info.scale}, seed {info.seed}) at {args.out}: {counts}")
    print(f"contact sheet: {Path(args.out) / 'contact_sheet.png'}")


def positive_int(text: str) -> int:
    """An option's value as an integer >= 1 (argparse prints the message with the option's name)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def add_data_commands(subparsers: argparse._SubParsersAction) -> None:
    from diag.data.synthetic import SCALES

    data = subparsers.add_parser("data", help="get, prepare or synthesise KSDD2")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("download", help="fetch and unpack the official KSDD2 archive (resumable)")
    p.add_argument("--out", type=Path, required=True, help="folder for the archive and its content")
    p.add_argument("--url", default=None, help="archive address (default: the official one)")
    p.add_argument("--sha256", default=None, help="expected SHA-256 of the archive, if you have one")
    p.set_defaults(func=cmd_data_download)

    p = sub.add_parser("prepare", help="official layout -> 224x632 images + train.csv/test.csv")
    p.add_argument("--src", type=Path, required=True, help="folder holding KSDD2's train/ and test/")
    p.add_argument("--out", type=Path, required=True, help="new folder for the prepared data")
    p.set_defaults(func=cmd_data_prepare)

    p = sub.add_parser("synth", help="write the offline KSDD2 replica in the prepared layout")
    p.add_argument("--out", type=Path, required=True, help="new folder for the replica")
    p.add_argument(
        "--scale",
        choices=list(SCALES),
        default="demo",
        help="full = KSDD2's counts; demo = one fifth; small = for tests (default: demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="replica seed (default: 0)")
    p.set_defaults(func=cmd_data_synth)


def add_config_options(
    parser: argparse.ArgumentParser,
    sections: Sequence[str],
    skip: Sequence[str] = (),
    rename: dict[str, str] | None = None,
) -> None:
    """``--profile``, one option per field of each config section, and ``--set SECTION.FIELD=VALUE``."""
    from diag.config import PROFILES, add_section_options

    parser.add_argument("--profile", choices=PROFILES, default="demo", help="whose defaults (default: demo)")
    for section in sections:
        group = parser.add_argument_group(f"{section} settings (any field also as --set {section}.FIELD=VALUE)")
        add_section_options(
            group,
            section,
            skip=[s.split(".", 1)[1] for s in skip if s.startswith(section + ".")],
            rename={k.split(".", 1)[1]: v for k, v in (rename or {}).items() if k.startswith(section + ".")},
        )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any setting, e.g. --set diag.steps=2 (repeatable)",
    )


def config_from_args(args: argparse.Namespace):
    """The profile's config with the options given, every section's device checked before any work."""
    from diag.config import build_config, overrides_from_args

    return check_devices(build_config(args.profile, overrides_from_args(args)))


DEVICE_SECTIONS = ("diag", "inout", "classifier", "fid")  # the config sections that run on a device


def check_devices(config):
    """``config`` once every section's device exists here (``--device cuda`` without a GPU is one line)."""
    from diag.devices import resolve_device

    for section in DEVICE_SECTIONS:
        resolve_device(getattr(config, section).device)
    return config


def cmd_fid(args: argparse.Namespace) -> None:
    import json

    from diag.devices import resolve_device
    from diag.fid.features import default_cache_dir, folder_features, kid_scores
    from diag.fid.frechet import fid_from_features

    config = config_from_args(args).fid
    if args.table:
        cmd_fid_table(args, config)
        return
    if args.real is None or args.gen is None:
        raise DiagError("diag fid: give REAL and GEN folders, or --table RESULTS --n-aug N --data DATA")
    if args.json:
        check_output_file(args.json)
    real, gen = (check_image_folder(Path(p), role) for p, role in ((args.real, "REAL"), (args.gen, "GEN")))
    cache = None if args.no_cache else ensure_writable_folder(default_cache_dir(), "the feature cache (or --no-cache)")
    with warnings_to_stderr():
        feats_real, feats_gen = folder_features(
            real,
            gen,
            dims=tuple(config.dims),
            batch_size=config.batch_size,
            device=resolve_device(config.device),
            cache_dir=cache,
        )
        scores = {d: fid_from_features(feats_real[d], feats_gen[d]) for d in config.dims}
    print(f"FID  {real}  vs  {gen}")
    print("dims        FID")
    for dim, value in scores.items():
        print(f"{dim:>4}  {value:>12.6f}")
    record = {str(d): v for d, v in scores.items()}
    if args.kid:
        kid = kid_scores(feats_real, feats_gen, config.kid_subset_size, config.kid_subsets)
        print(f"KID (whole sets; mean +- std over {config.kid_subsets} subsets of {kid['kid_subset_size']} images)")
        for dim in config.dims:
            spread = f"{kid[f'kid_{dim}_mean']:.6f} +- {kid[f'kid_{dim}_std']:.6f}"
            print(f"{dim:>4}  {kid[f'kid_{dim}']:>12.6f}  ({spread})")
        record["kid"] = kid
    if args.json:
        from diag.files import write_text_atomic

        write_text_atomic(args.json, json.dumps(record, indent=2) + "\n")


def check_image_folder(folder: Path, role: str) -> Path:
    """A folder of images only: a prepared data folder gives its training positives' images."""
    if (folder / "train.csv").is_file():
        raise DiagError(
            f"{folder}: a prepared data folder, not a folder of images (it holds negatives and _GT masks); "
            f"for its training positives use `diag fid --table` or copy them into a folder"
        )
    if folder.is_dir():
        masks = [p.name for p in folder.glob("*_GT.png")]
        if masks:
            raise DiagError(
                f"{folder} ({role}): holds masks such as {masks[0]}; give a folder of images only "
                "(a generated set's imgs/, not the set itself)"
            )
        if (folder / "imgs").is_dir() and not any(folder.glob("*.png")):
            return folder / "imgs"  # a generated set: its images
        looks_like_masks(folder, role)
    return folder


def looks_like_masks(folder: Path, role: str, sample: int = 8) -> None:
    """Refuse a folder whose images are masks: the first few all hold only the values 0 and 255 in
    one channel (a generated set's masks/ is named like its imgs/, so the names cannot tell)."""
    import numpy as np

    from diag.data.ksdd2 import list_images, open_png

    images = list_images(folder)[:sample]
    for path in images:
        array = np.asarray(open_png(path).convert("RGB"))
        grey = (array[..., :1] == array).all()
        if not grey or not np.isin(array[..., 0], (0, 255)).all():
            return
    raise DiagError(
        f"{folder} ({role}): holds masks, not images (one channel of 0 and 255 only, e.g. {images[0].name}); "
        "give a folder of images (a generated set's imgs/, not its masks/)"
    )


def check_output_file(path: Path) -> None:
    """--json's file can be written: checked before anything is computed."""
    if path.is_dir():
        raise DiagError(f"{path}: is a folder; --json takes a file name")
    if not path.parent.is_dir():
        raise DiagError(f"{path.parent}: folder not found (for --json {path})")
    ensure_writable_folder(path.parent)


def cmd_fid_table(args: argparse.Namespace, config) -> None:
    from diag.devices import resolve_device
    from diag.fid.table import fid_table, table_path

    if args.n_aug is None or args.data is None:
        raise DiagError(
            "diag fid --table RESULTS needs --n-aug N and --data DATA (the prepared data the sets came from)"
        )
    device = str(resolve_device(config.device))  # "auto" is ours, not torch's
    with warnings_to_stderr():
        table = fid_table(
            args.data,
            args.table,
            args.n_aug,
            dims=config.dims,
            device=device,
            batch_size=config.batch_size,
            progress=True,
            kid_subset_size=config.kid_subset_size,
            kid_subsets=config.kid_subsets,
        )
    print(table.drop(columns=["generated_sha1", "data_fingerprint"]).to_string(index=False))
    print(f"table: {table_path(args.table, args.n_aug)}")
    from diag.experiments import GENERATORS
    from diag.fid.realism import realism_table

    realism = realism_table(args.data, args.table, args.n_aug, GENERATORS, device=device)
    print(realism[["method", "auroc_crops", "auroc_images", "n_crops"]].to_string(index=False))
    print(f"realism (probe AUROC, 0.5 = indistinguishable): {Path(args.table) / f'realism_{args.n_aug}.csv'}")


def add_fid_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fid", help="FID between two image folders, or Table III of a results folder")
    p.add_argument("real", type=Path, nargs="?", help="folder of real images (e.g. KSDD2's training positives)")
    p.add_argument("gen", type=Path, nargs="?", help="folder of generated images (or a generated set)")
    p.add_argument(
        "--table",
        type=Path,
        metavar="RESULTS",
        help="write RESULTS/fid_N.csv for RESULTS/generated/<method>/augmented_N (the book's Table III)",
    )
    p.add_argument("--n-aug", type=int, help="with --table: which sets")
    p.add_argument("--data", type=Path, help="with --table: the prepared data (its training positives are REAL)")
    p.add_argument("--json", type=Path, help='write {"64": fid, ..., "kid": {...} with --kid} here')
    p.add_argument("--kid", action="store_true", help="KID beside FID: on the whole sets and over random subsets")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the per-image feature cache")
    add_config_options(p, ["fid"])
    p.set_defaults(func=cmd_fid)


def cmd_train(args: argparse.Namespace) -> None:
    import json

    from diag.classify import evaluation_set, train_classifier, training_set

    config = config_from_args(args)
    if args.generated is not None and args.n_aug < 1:
        raise DiagError(f"--generated {args.generated} given without --n-aug N (how many of its images to add)")
    if args.out:
        ensure_writable_folder(args.out)
    train = training_set(args.data, args.scenario, args.generated, args.n_aug, drawn_positives(args, args.scenario))
    result = train_classifier(config.classifier, train, evaluation_set(args.data))
    print(f"[{config.label(is_replica(args.data))}] {args.scenario}, {len(train)} training images, final epoch {config.classifier.epochs}:")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in result.metrics.items()))
    if args.out:
        from diag.files import write_text_atomic

        record = {"config": result.config, "final": result.metrics, "curve": result.curve}
        write_text_atomic(args.out / "metrics.json", json.dumps(record, indent=2) + "\n")


def add_train_command(subparsers: argparse._SubParsersAction) -> None:
    from diag.classify.data import SCENARIOS

    p = subparsers.add_parser("train", help="train and score the defect classifier once")
    p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
    p.add_argument("--scenario", choices=SCENARIOS, default="zero-shot")
    p.add_argument("--generated", type=Path, help="a generated set (folder with imgs/)")
    p.add_argument("--n-aug", type=int, default=0, help="how many generated images to add")
    p.add_argument("--out", type=Path, help="folder for metrics.json (final metrics and per-epoch curve)")
    add_draw_options(p, "few-shot: train on K real positives")
    add_config_options(p, ["classifier"], skip=["classifier.feature_cache"])
    p.set_defaults(func=cmd_train)


def add_draw_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--real-positives K`` and ``--positives-seed S``: a few-shot draw (``classify.data.draw_positives``)."""
    parser.add_argument("--real-positives", type=int, metavar="K", help=f"{what}, drawn with --positives-seed")
    parser.add_argument("--positives-seed", type=int, default=0, metavar="S", help="the draw's seed (default: 0)")


def drawn_positives(args: argparse.Namespace, scenario: str = "few-shot") -> list[str] | None:
    """The ids of the few-shot draw ``--real-positives`` asks for (None without it); checked against the scenario."""
    from diag.classify.data import draw_positives

    if (args.real_positives is None) != (scenario != "few-shot"):
        raise DiagError(
            f"--real-positives: given with --scenario {scenario}" if args.real_positives is not None
            else "--scenario few-shot: give --real-positives K (how many real positives to train on)"
        )
    return None if args.real_positives is None else draw_positives(args.data, args.real_positives, args.positives_seed)


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--jobs`` and the SLURM job's resources (``diag.executors``)."""
    from diag.executors import EXECUTORS, SlurmOptions

    defaults = SlurmOptions()
    group = parser.add_argument_group("where the jobs run (diag.executors; submitit for local and slurm)")
    group.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inline",
        help="inline: this process and its workers (default); local: each job a process of its own on this "
        "machine, one GPU each; slurm: SLURM job arrays",
    )
    group.add_argument(
        "--jobs", type=positive_int, help="with local or slurm: most jobs at once (default: local, one per GPU or "
        "core; slurm, 8)"
    )
    group.add_argument("--slurm-partition", help="the partition the jobs run on (default: the cluster's)")
    group.add_argument(
        "--slurm-time", type=positive_int, default=defaults.time_min, help="minutes per job (default: %(default)s)"
    )
    group.add_argument(
        "--gpus-per-job", type=int, default=defaults.gpus_per_job, help="GPUs per SLURM job (default: %(default)s)"
    )
    group.add_argument(
        "--slurm-cpus-per-job", type=positive_int, default=defaults.cpus_per_job,
        help="CPUs per SLURM job, also its torch threads (default: %(default)s)",
    )
    group.add_argument("--slurm-array-parallelism", type=positive_int, help="tasks of one array at once (default: --jobs)")


def executor_backend(args: argparse.Namespace, folder: Path):
    """The backend ``--executor`` names, with ``--jobs`` and the SLURM options; its logs under ``folder``."""
    from diag.executors import SlurmOptions, make_backend

    if args.executor == "inline":
        raise DiagError("executor_backend: the inline executor has no job folder")
    slurm = SlurmOptions(
        partition=args.slurm_partition,
        time_min=args.slurm_time,
        gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.slurm_cpus_per_job,
        array_parallelism=args.slurm_array_parallelism,
    )
    jobs = jobs_at_once(args)
    print(f"{args.executor} executor: at most {jobs} job(s) at once; job logs under {folder}", flush=True)
    return make_backend(args.executor, jobs, folder, slurm)


def jobs_at_once(args: argparse.Namespace) -> int:
    """``--jobs``, else the default: local, one job per GPU (one per core without one); slurm, 8."""
    from diag.executors import local_gpus
    from diag.jobs import available_cores

    if args.jobs:
        return args.jobs
    return 8 if args.executor == "slurm" else len(local_gpus()) or available_cores()


def check_jobs_option(args: argparse.Namespace) -> None:
    if args.executor == "inline" and args.jobs is not None:
        raise DiagError("--jobs: applies to --executor local or slurm (inline: --workers for diag reproduce)")


def cmd_experiment(args: argparse.Namespace) -> None:
    from diag.experiments import run_grid, summarize

    config = config_from_args(args)
    check_jobs_option(args)
    methods = [m for m in args.methods.split(",") if m]
    needs_sets = [m for m in methods if m != "none"]
    if needs_sets and args.generated is None:
        raise DiagError(f"--generated GEN is needed for {', '.join(needs_sets)} (GEN/<method>/augmented_<N>/imgs/)")
    ensure_writable_folder(args.out)
    from diag.experiments import feature_cache_dir

    ensure_writable_folder(feature_cache_dir(args.out, args.feature_cache), "--feature-cache")
    if args.executor != "inline":
        run_cells_as_jobs(args, config, methods)
    results = run_grid(
        config,
        scenario=args.scenario,
        methods=methods,
        data=args.data,
        generated=args.generated,
        out=args.out,
        feature_cache=args.feature_cache,
    )
    table = summarize(results, args.scenario)
    print(f"[{config.label(is_replica(args.data))}] {args.scenario}: mean ± std over seeds, paper beside")
    print(table.to_string(index=False))
    print(f"rows: {args.out / 'results.csv'}")


def run_cells_as_jobs(args: argparse.Namespace, config, methods: list[str]) -> None:
    """Each missing cell as a job on ``--executor``, into its own row file; ``run_grid`` then merges them."""
    from diag.config import overrides_from_args
    from diag.executors import run_jobs
    from diag.experiments import GridContext, grid_jobs, merge_row_files, run_grid_job

    context = GridContext(
        args.profile,
        tuple(overrides_from_args(args)),
        args.scenario,
        tuple(methods),
        str(args.data.resolve()),
        str(args.generated.resolve()) if args.generated else None,
        str(args.out.resolve()),
        str(args.feature_cache.resolve()) if args.feature_cache else None,
    )
    try:
        run_jobs(grid_jobs(config, args.scenario, methods, args.data), context, executor_backend(args, args.out / "jobs"),
                 runner=run_grid_job)
    finally:  # the cells that finished land in results.csv even when another failed
        merge_row_files(args.out)


def add_experiment_command(subparsers: argparse._SubParsersAction) -> None:
    from diag.classify.data import SCENARIOS

    p = subparsers.add_parser(
        "experiment", help="the Table I/II grid (scenario x methods x N_aug x seeds), or the few-shot grid (x k)"
    )
    p.add_argument("--scenario", choices=SCENARIOS, required=True)
    p.add_argument(
        "--methods", default="diag,memseg,inout", help="comma list of diag,memseg,inout,diag-procedural,none"
    )
    p.add_argument("--data", type=Path, required=True)
    p.add_argument(
        "--generated",
        type=Path,
        help="GEN with GEN/<method>/augmented_<N>/imgs/ (RESULTS/generated); few-shot: DIAG's and In&Out's "
        "sets of each k below all in GEN/<method>/k<K>-draw<S>/augmented_<N>/ (diag generate --real-positives)",
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="folder for results.csv and curves/")
    p.add_argument(
        "--feature-cache",
        type=Path,
        help="demo backbone: per-image feature cache to share between runs " "(default OUT/feature-cache)",
    )
    add_config_options(
        p,
        ["grid", "classifier"],
        skip=["classifier.feature_cache", "classifier.seed"],
        rename={"grid.n_augs": "--n-aug"},
    )
    add_executor_options(p)
    p.set_defaults(func=cmd_experiment)


def cmd_generate(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    section = getattr(config, args.generator)
    from diag.generate.sets import make_set

    positives = drawn_positives(args) if getattr(args, "real_positives", None) is not None else None
    applied = applied_model_defaults(args, config)
    if applied:
        print(f"{section.model}: applying its diag_defaults.json: {applied}", file=sys.stderr)
    with warnings_to_stderr(UserWarning):
        manifest = make_set(config, args.generator, args.data, args.out, positives=positives,
                            lora_dir=getattr(args, "lora_dir", None))
    print(
        f"{args.generator}: {section.n_aug} images in {args.out}/imgs, masks in {args.out}/masks; manifest: {manifest}"
    )


def applied_model_defaults(args: argparse.Namespace, config) -> dict:
    """The DIAG model's own defaults that this run took (the ones neither the user nor the profile set)."""
    if args.generator != "diag":
        return {}
    from diag.config import model_default_changes, overrides_from_args

    return model_default_changes(config, {o.split("=", 1)[0] for o in overrides_from_args(args)})


def add_generate_commands(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser("generate", help="generate defective images (DIAG, MemSeg, In&Out)")
    sub = generate.add_subparsers(dest="generator", required=True)
    helps = {
        "diag": "DIAG: inpaint expert-prompted defects into training negatives",
        "memseg": "MemSeg per-region anomalies (Perlin ROI, texture/structure source)",
        "inout": "In&Out: DreamBooth + LoRA fine-tune on the training positives, then sample",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
        p.add_argument(
            "--out", type=Path, required=True, help="output folder (imgs/, masks/, manifest.csv); re-run to resume"
        )
        if name == "inout":
            p.add_argument(
                "--lora-dir",
                type=Path,
                help="where the fine-tune is saved and reused (default: OUT/../lora-seed<S>, beside the set, as the "
                "book's results lay it out); share one between N_aug sets",
            )
        if name != "memseg":  # the few-shot grid's sets: GEN/<method>/k<K>-draw<S>/augmented_<N>
            source = "masks from" if name == "diag" else "fine-tune on"
            add_draw_options(p, f"few-shot: {source} only K real positives")
        add_config_options(p, [name])
        p.set_defaults(func=cmd_generate)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from diag.book import reproduce
    from diag.config import overrides_from_args

    check_jobs_option(args)
    overrides = reproduce_overrides(args) + overrides_from_args(args)
    results = args.from_results or args.results or Path("results") / args.profile
    if not args.from_results:  # a render computes nothing: where it would have run does not matter
        from diag.config import build_config

        check_devices(build_config(args.profile, overrides))
    if args.dry_run:
        from diag.workflow import dry_run, render_plan

        if args.from_results:
            print("\n".join(render_plan(args.profile, results, args.out, overrides)))
        else:
            from diag.book import default_workers

            workers = args.workers or default_workers(build_config(args.profile, overrides))
            cluster = None
            if args.executor != "inline":
                cluster = (args.executor, jobs_at_once(args))
            print("\n".join(dry_run(args.profile, results, args.data, overrides, workers, cluster)))
        return
    if args.executor != "inline" and args.from_results:
        raise DiagError("--executor: a render (--from-results) computes nothing; run it without --executor")
    reproduce(
        args.profile,
        results,
        out=args.out,
        from_results=args.from_results is not None,
        data=args.data,
        overrides=overrides,
        source=args.source,
        workers=args.workers,
        cluster=executor_backend(args, Path(results) / "jobs") if args.executor != "inline" else None,
    )


def reproduce_overrides(args: argparse.Namespace) -> list[str]:
    """The shortcut options as ``SECTION.FIELD=VALUE`` strings."""
    out = []
    if args.n_aug is not None:
        out.append(f"grid.n_augs={args.n_aug}")
    if args.seeds is not None:
        out.append(f"grid.seeds={args.seeds}")
    if args.diag_model:
        out.append(f"diag.model={args.diag_model}")
    if args.inout_model:
        out.append(f"inout.model={args.inout_model}")
    if args.weights:
        out.append(f"classifier.weights={args.weights}")
    if args.device:
        out += [f"{section}.device={args.device}" for section in DEVICE_SECTIONS]
    return out


def add_reproduce_command(subparsers: argparse._SubParsersAction) -> None:
    from diag.config import PROFILES, field_help

    p = subparsers.add_parser("reproduce", help="run every step, execute the notebooks (papermill), build the book")
    p.add_argument("--profile", choices=PROFILES, default="demo")
    p.add_argument("--data", type=Path, help="prepared KSDD2 (required by the paper profile; demo: a replica is made)")
    p.add_argument("--results", type=Path, help="where results are cached (default: results/<profile>)")
    p.add_argument(
        "--out", type=Path, default=Path("_build/html"), help="folder for the built site (default _build/html)"
    )
    p.add_argument("--n-aug", help=f"comma list of N_aug ({field_help('grid', 'n_augs')})")
    p.add_argument("--seeds", help=f"comma list of classifier seeds ({field_help('grid', 'seeds')})")
    p.add_argument("--diag-model", help="DIAG's inpainting model: hub id or diffusers folder")
    p.add_argument("--inout-model", help="In&Out's base model: hub id or diffusers folder")
    p.add_argument("--weights", help="classifier weights: imagenet | none | PATH to a ResNet-50 state dict")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N, for every step")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override any setting")
    p.add_argument("--from-results", type=Path, metavar="DIR", help="render a finished results folder; compute nothing")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="processes that run the steps and chapters at once, one torch thread each "
        "(default: one per core on a CPU, one on a GPU)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print every step with its image and training counts (with --from-results: what the render does); run nothing"
    )
    p.add_argument("--source", type=Path, help="the project's source tree (default: the one diag is installed from)")
    add_executor_options(p)
    p.set_defaults(func=cmd_reproduce)


def cmd_pretrain_demo_model(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from diag.demo_model.pretrain import PretrainConfig, pretrain
    from diag.devices import resolve_device

    given = {
        k: v
        for k, v in dict(
            steps=args.steps,
            vae_steps=args.vae_steps,
            corpus_size=args.corpus_size,
            stop_at=args.stop_at,
            speckled_share=args.speckled_share,
            batch_size=args.batch_size,
            seed=args.seed,
            threads=args.threads,
            workers=args.workers,
        ).items()
        if v is not None
    }
    if args.steps is not None and args.stop_at is None:
        given["stop_at"] = None  # a schedule of your own length runs to its end (the shipped stop is for its 12000)
    device = resolve_device(args.device or "cpu")
    out = pretrain(args.out, replace(PretrainConfig(), **given), device=device)
    print(f"demo model saved in {out}")


def add_pretrain_command(subparsers: argparse._SubParsersAction) -> None:
    # no defaults spelled here: importing the pretraining module (diffusers) would slow every command's start
    p = subparsers.add_parser("pretrain-demo-model", help="train the small offline inpainting model (resumable)")
    p.add_argument("--out", type=Path, required=True, help="folder for the diffusers pipeline")
    p.add_argument(
        "--steps",
        type=int,
        help="UNet + text-encoder schedule length; the run goes to its end unless --stop-at "
        "(default: the shipped run's 12000, stopped at 4700; see its model card)",
    )
    p.add_argument(
        "--stop-at", type=int, help="stop the UNet phase at this step of its schedule (default: the shipped run's)"
    )
    p.add_argument("--vae-steps", type=int, help="autoencoder steps (default: the shipped run's)")
    p.add_argument("--corpus-size", type=int, help="procedural 64x64 patches (default: the shipped run's)")
    p.add_argument(
        "--speckled-share", type=float, help="share of the corpus drawn like KSDD2 (default: the shipped run's)"
    )
    p.add_argument("--batch-size", type=int, help="UNet batch (default: the shipped run's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--workers", type=int, help="processes rendering the corpus (same corpus for any number)")
    p.add_argument("--device", help="cpu (default), cuda or auto: only the speed changes, not the recipe")
    p.set_defaults(func=cmd_pretrain_demo_model)


def cmd_sweep(args: argparse.Namespace) -> None:
    from diag import progress
    from diag.book import NOTEBOOKS, environment, stderr_to
    from diag.sweep import compare_grids, sweep

    if args.notebook not in NOTEBOOKS:
        raise DiagError(f"{args.notebook}: not a chapter; choose among {', '.join(NOTEBOOKS)}")
    results = args.results or Path("results") / args.profile
    out = args.out or results / "sweeps" / args.field
    out.mkdir(parents=True, exist_ok=True)
    console = out / "console.log"
    console.unlink(missing_ok=True)
    # the kernels' own chatter goes to a log; each run's steps (from inside its kernel too) to the terminal
    with stderr_to(out / "kernels.log") as terminal, progress.follow_console(console, terminal), \
            environment({progress.CONSOLE_ENV: str(console.resolve())}):
        runs = sweep(args.notebook, args.field, args.values, base=results, out=out, profile=args.profile,
                     data_dir=str(args.data.resolve()) if args.data else None, overrides=args.set)
    for run in runs:
        print(f"{args.field}={run.value}: {run.seconds:.0f} s; executed notebook {run.notebook}")
    scenario = {"04-zero-shot": "zero-shot", "05-full-shot": "full-shot"}.get(args.notebook)
    if scenario:
        print(compare_grids(runs, scenario, args.field, args.profile, args.set).to_string(index=False))


def add_sweep_command(subparsers: argparse._SubParsersAction) -> None:
    from diag.config import PROFILES

    p = subparsers.add_parser(
        "sweep", help="re-run one chapter with papermill once per value of a setting, each in its own results folder"
    )
    p.add_argument("notebook", help="the chapter, e.g. 04-zero-shot")
    p.add_argument("--field", required=True, help="the setting to sweep, SECTION.FIELD (e.g. classifier.epochs)")
    p.add_argument("--values", nargs="+", required=True, help="its values (a list field's value as 80,100)")
    p.add_argument("--profile", choices=PROFILES, default="demo")
    p.add_argument("--results", type=Path, help="the results folder each run starts from (default results/<profile>)")
    p.add_argument("--out", type=Path, help="where the runs go (default RESULTS/sweeps/FIELD)")
    p.add_argument("--data", type=Path, help="prepared KSDD2 (the paper profile; demo: the results folder's replica)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="a setting every run shares (repeatable)")
    p.set_defaults(func=cmd_sweep)


def build_parser() -> argparse.ArgumentParser:
    from diag import __version__

    parser = argparse.ArgumentParser(
        prog="diag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"diag {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_generate_commands,
    add_fid_command,
    add_train_command,
    add_experiment_command,
    add_reproduce_command,
    add_sweep_command,
    add_pretrain_command,
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is one line on stderr (exit 2), a bug keeps its traceback."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DiagError as error:
        print(f"diag: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a read-only or full disk, a missing or unreadable path: the user's to fix
        where = f"{error.filename}: " if error.filename else ""
        print(f"diag: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diag: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
