"""The ``diag`` command line: thin wrappers that parse arguments and call the package.

    diag data download --out DIR          the official KSDD2 archive (needs the internet)
    diag data prepare --src DIR --out DIR official layout -> 224x632 + train.csv/test.csv
    diag data synth --out DIR             the offline replica (demo, notebooks, tests)
    diag generate diag --data DIR --out DIR   DIAG inpainting (SDXL, or the bundled demo model)
    diag fid REAL GEN                     FID at Inception pool layers 64/192/2048
    diag train --data DIR ...             train and score the defect classifier once
    diag experiment --scenario ...        the Table I/II grid, resumable
    diag reproduce --profile demo         run the notebooks and build the book
    diag pretrain-demo-model --out DIR    train the bundled offline inpainting model
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from diag.data.ksdd2 import DataError


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


def add_data_commands(subparsers: argparse._SubParsersAction) -> None:
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
    p.add_argument("--scale", choices=["demo", "small", "full"], default="demo",
                   help="full = KSDD2's counts; demo = one fifth; small = for tests (default: demo)")
    p.add_argument("--seed", type=int, default=0, help="replica seed (default: 0)")
    p.set_defaults(func=cmd_data_synth)


def cmd_fid(args: argparse.Namespace) -> None:
    import json

    from diag.devices import resolve_device
    from diag.fid.features import compute_fid, default_cache_dir

    with warnings_to_stderr():
        scores = compute_fid(
            args.real,
            args.gen,
            dims=tuple(args.dims),
            batch_size=args.batch_size,
            device=resolve_device(args.device),
            cache_dir=None if args.no_cache else default_cache_dir(),
        )
    print(f"FID  {args.real}  vs  {args.gen}")
    print("dims        FID")
    for dim, value in scores.items():
        print(f"{dim:>4}  {value:>12.6f}")
    if args.json:
        Path(args.json).write_text(json.dumps({str(d): v for d, v in scores.items()}, indent=2) + "\n")


def add_fid_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fid", help="FID between two image folders at Inception pool layers")
    p.add_argument("real", type=Path, help="folder of real images (e.g. KSDD2's training positives)")
    p.add_argument("gen", type=Path, help="folder of generated images")
    p.add_argument("--dims", type=int, nargs="+", default=[64, 192], choices=[64, 192, 768, 2048],
                   help="feature dimensions: 64/192 = first/second max-pool (the paper), 2048 = final pool")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--json", type=Path, help='write {"64": fid, ...} here')
    p.add_argument("--no-cache", action="store_true", help="do not read or write the per-image feature cache")
    p.set_defaults(func=cmd_fid)


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def cmd_train(args: argparse.Namespace) -> None:
    import json
    from dataclasses import replace

    from diag.classify import evaluation_set, train_classifier, training_set
    from diag.profiles import get_profile

    profile = get_profile(args.profile)
    overrides = {k: v for k, v in dict(weights=args.weights, epochs=args.epochs, batch_size=args.batch_size,
                                         lr=args.lr, input_size=args.input_size, device=args.device).items() if v is not None}
    config = replace(profile.classifier, seed=args.seed, **overrides)
    train = training_set(args.data, args.scenario, args.generated, args.n_aug)
    result = train_classifier(config, train, evaluation_set(args.data))
    print(f"[{profile.label}] {args.scenario}, {len(train)} training images, final epoch {config.epochs}:")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in result.metrics.items()))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps({"config": result.config, "final": result.metrics, "curve": result.curve}, indent=2) + "\n")


def add_train_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train and score the defect classifier once")
    p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
    p.add_argument("--scenario", choices=["zero-shot", "full-shot"], default="zero-shot")
    p.add_argument("--generated", type=Path, help="a generated set (folder with imgs/)")
    p.add_argument("--n-aug", type=int, default=0, help="how many generated images to add")
    p.add_argument("--profile", choices=["demo", "paper"], default="demo")
    p.add_argument("--weights", help="paper backbone: imagenet | none | PATH to a ResNet-50 state dict")
    p.add_argument("--input-size", choices=["paper", "release"], help="paper 224x632 or release 256x704")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", type=Path, help="folder for metrics.json (final metrics and per-epoch curve)")
    p.set_defaults(func=cmd_train)


def cmd_experiment(args: argparse.Namespace) -> None:
    from diag.experiments import run_grid, summarize
    from diag.profiles import get_profile

    overrides = {k: v for k, v in dict(epochs=args.epochs, device=args.device).items() if v is not None}
    results = run_grid(scenario=args.scenario, methods=args.methods.split(","), n_augs=int_list(args.n_aug),
                       seeds=int_list(args.seeds), profile=args.profile, data=args.data, generated=args.generated,
                       out=args.out, val_fraction=args.val_fraction, overrides=overrides, feature_cache=args.feature_cache)
    table = summarize(results, args.scenario)
    print(f"[{get_profile(args.profile).label}] {args.scenario}: mean ± std over seeds, paper beside")
    print(table.to_string(index=False))
    print(f"rows: {args.out / 'results.csv'}")


def add_experiment_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("experiment", help="the Table I/II grid: scenario x methods x N_aug x seeds")
    p.add_argument("--scenario", choices=["zero-shot", "full-shot"], required=True)
    p.add_argument("--methods", default="diag,memseg,inout", help="comma list of diag,memseg,inout,none")
    p.add_argument("--n-aug", default="80,100,120", help="comma list (default 80,100,120)")
    p.add_argument("--seeds", default="0,1,2", help="comma list (default 0,1,2)")
    p.add_argument("--profile", choices=["demo", "paper"], default="demo")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--generated", type=Path, help="GEN with GEN/<method>/augmented_<N>/imgs/")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--val-fraction", type=float, help="also pick the threshold on this share of training data")
    p.add_argument("--feature-cache", type=Path, help="demo backbone: per-image feature cache to share between runs "
                   "(default OUT/feature-cache)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--device")
    p.set_defaults(func=cmd_experiment)


def cmd_generate_diag(args: argparse.Namespace) -> None:
    from diag.generate.diag import DiagConfig, generate_diag

    config = DiagConfig(model=args.model, prompts=args.prompts, masks=args.masks, n_aug=args.n_aug, seed=args.seed,
                        steps=args.steps, guidance=args.guidance, strength=args.strength, canvas=args.canvas,
                        padding_mask_crop=args.padding_mask_crop, batch_size=args.batch_size, device=args.device)
    with warnings_to_stderr(UserWarning):
        manifest = generate_diag(args.data, args.out, config)
    print(f"DIAG images in {args.out}/imgs, masks in {args.out}/masks; manifest: {manifest}")


def cmd_generate_memseg(args: argparse.Namespace) -> None:
    from diag.generate.memseg import MemSegConfig, generate_memseg

    config = MemSegConfig(n_aug=args.n_aug, seed=args.seed, textures=args.textures,
                          foreground_threshold=args.foreground_threshold)
    manifest = generate_memseg(args.data, args.out, config)
    print(f"MemSeg images in {args.out}/imgs, masks in {args.out}/masks; manifest: {manifest}")


def cmd_generate_inout(args: argparse.Namespace) -> None:
    from diag.generate.inout import InOutConfig, generate_inout

    config = InOutConfig(model=args.model, n_aug=args.n_aug, seed=args.seed, train_steps=args.train_steps, rank=args.rank,
                         alpha=args.alpha, lr=args.lr, prior_preservation=args.prior_preservation,
                         steps=args.steps, guidance=args.guidance, batch_size=args.batch_size, device=args.device)
    manifest = generate_inout(args.data, args.out, config)
    print(f"In&Out images in {args.out}/imgs (LoRA in {args.out}/lora); manifest: {manifest}")


def add_generate_commands(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser("generate", help="generate defective images (DIAG, MemSeg, In&Out)")
    sub = generate.add_subparsers(dest="generator", required=True)

    p = sub.add_parser("diag", help="DIAG: inpaint expert-prompted defects into training negatives")
    p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
    p.add_argument("--out", type=Path, required=True, help="output folder (imgs/, masks/, manifest.csv); re-run to resume")
    p.add_argument("--n-aug", type=int, default=100, help="how many images (default 100)")
    p.add_argument("--model", default="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                   help="hub id, local diffusers folder, or diag-demo-inpaint (the bundled offline model)")
    p.add_argument("--prompts", help="prompt file (YAML/JSON: prompts, negative_prompt, weights); default: the paper's")
    p.add_argument("--masks", default="gt", help="gt (training positives' masks), procedural, or a folder of masks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=20.0)
    p.add_argument("--strength", type=float, default=0.99)
    p.add_argument("--padding-mask-crop", type=int, default=2)
    p.add_argument("--canvas", choices=["release", "aspect", "crop"], default="release",
                   help="release: the model native square (1024x1024 for SDXL); aspect: same pixels at 224:632; crop: no resize (small models)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_generate_diag)

    p = sub.add_parser("memseg", help="MemSeg per-region anomalies (Perlin ROI, texture/structure source)")
    p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
    p.add_argument("--out", type=Path, required=True, help="output folder (imgs/, masks/, manifest.csv); re-run to resume")
    p.add_argument("--n-aug", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--textures", help="folder of texture images (MemSeg uses DTD); default: made from negatives / noise")
    p.add_argument("--foreground-threshold", type=int, help="grey level for the foreground mask (default: whole image)")
    p.set_defaults(func=cmd_generate_memseg)

    p = sub.add_parser("inout", help="In&Out: DreamBooth + LoRA fine-tune on the training positives, then sample")
    p.add_argument("--data", type=Path, required=True, help="prepared KSDD2 (or replica) folder")
    p.add_argument("--out", type=Path, required=True, help="output folder (imgs/, masks/, manifest.csv, lora/); re-run to resume")
    p.add_argument("--n-aug", type=int, default=100)
    p.add_argument("--model", default="stable-diffusion-v1-5/stable-diffusion-v1-5",
                   help="hub id, local diffusers folder, or diag-demo-inpaint")
    p.add_argument("--train-steps", type=int, default=400)
    p.add_argument("--rank", type=int, default=32, help="LoRA rank (In&Out: 32)")
    p.add_argument("--alpha", type=int, default=16, help="LoRA alpha (In&Out: 16)")
    p.add_argument("--lr", type=float, default=1e-5, help="learning rate (In&Out: 1e-5)")
    p.add_argument("--prior-preservation", action="store_true", help="class images from the base model (In&Out: ~200)")
    p.add_argument("--steps", type=int, default=30, help="sampling steps")
    p.add_argument("--batch-size", type=int, default=1, help="images per sampling call")
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_generate_inout)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from diag.book import reproduce

    reproduce(args.profile, args.from_results or args.results_dir, from_results=args.from_results is not None)


def add_reproduce_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="execute the notebooks (papermill) and build the Jupyter Book")
    p.add_argument("--profile", choices=["demo", "paper"], default="demo")
    p.add_argument("--results-dir", type=Path, help="where results are cached (default: results/<profile>)")
    p.add_argument("--from-results", type=Path, help="render a finished results folder without computing anything")
    p.set_defaults(func=cmd_reproduce)


def cmd_pretrain_demo_model(args: argparse.Namespace) -> None:
    from diag.demo_model.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(steps=args.steps, vae_steps=args.vae_steps, corpus_size=args.corpus_size, seed=args.seed,
                            threads=args.threads)
    out = pretrain(args.out, config)
    print(f"demo model saved in {out}")


def add_pretrain_command(subparsers: argparse._SubParsersAction) -> None:
    from diag.demo_model.pretrain import PretrainConfig

    d = PretrainConfig()
    p = subparsers.add_parser("pretrain-demo-model", help="train the small offline inpainting model (resumable)")
    p.add_argument("--out", type=Path, required=True, help="folder for the diffusers pipeline")
    p.add_argument("--steps", type=int, default=d.steps, help=f"UNet + text-encoder steps (default {d.steps})")
    p.add_argument("--vae-steps", type=int, default=d.vae_steps, help=f"autoencoder steps (default {d.vae_steps})")
    p.add_argument("--corpus-size", type=int, default=d.corpus_size, help=f"procedural 64x64 patches (default {d.corpus_size})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.set_defaults(func=cmd_pretrain_demo_model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands, add_generate_commands, add_fid_command, add_train_command, add_experiment_command,
    add_reproduce_command, add_pretrain_command,
]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, FileNotFoundError, ValueError, RuntimeError) as error:  # BuildError too
        print(f"diag: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
