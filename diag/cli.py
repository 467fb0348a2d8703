"""The ``diag`` command line: thin wrappers that parse arguments and call the package.

    diag data download --out DIR          the official KSDD2 archive (needs the internet)
    diag data prepare --src DIR --out DIR official layout -> 224x632 + train.csv/test.csv
    diag data synth --out DIR             the offline replica (demo, notebooks, tests)
    diag fid REAL GEN                     FID at Inception pool layers 64/192/2048
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

from diag.data.ksdd2 import DataError


def cmd_data_download(args: argparse.Namespace) -> None:
    from diag.data.download import KSDD2_SHA256, KSDD2_URL, download

    root = download(args.out, url=args.url or KSDD2_URL, sha256=args.sha256 or KSDD2_SHA256)
    print(f"KSDD2 unpacked at {root}; next: diag data prepare --src {root} --out PREPARED_DIR")


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from diag.data.prepare import prepare

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = prepare(args.src, args.out)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_data_commands]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, FileNotFoundError) as error:
        print(f"diag: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
