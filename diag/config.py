"""One config per profile: every setting of every step, in one object.

    config = profile_config("paper")                       # the paper's values
    config = apply_overrides(config, ["diag.steps=2", "grid.n_augs=4", "classifier.epochs=1"])

The CLI, the experiment grid, ``diag reproduce`` and the notebooks' ``parameters`` cells all
build their settings here (``build_config``), in this order, each layer over the one before:

1. the section's dataclass: the paper's values;
2. ``DEMO`` below, for the demo profile: what the offline demo changes, and why;
3. the DIAG model's own ``diag_defaults.json`` (its guidance, canvas, steps, mask blur), for the
   DIAG fields neither layer 2 nor the user set; when In&Out uses the same model and the user did
   not set ``inout.guidance``, that guidance is In&Out's too (``with_model_defaults``);
4. the user's ``SECTION.FIELD=VALUE`` overrides (``--set``, the CLI's own options, a notebook's
   ``overrides``), last.

Values are parsed by the field's type and checked at the edge, with a message that names the
field, the rule and the value. The CLI's help shows each profile's resulting default
(``field_help``).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

from diag.classify.train import TrainConfig
from diag.fid.settings import FIDConfig
from diag.errors import ConfigError
from diag.generate.diag import DiagConfig
from diag.generate.inout import InOutConfig
from diag.generate.loading import DEMO_MODEL, MODEL_DEFAULT_KEYS, model_defaults
from diag.generate.memseg import MemSegConfig

PROFILES = ("demo", "paper")


@dataclass
class DataConfig:
    path: str | None = None  # a prepared KSDD2 folder; the paper profile requires it
    replica_scale: str = "full"  # demo only: the replica made when `path` is None (demo | small | full)
    replica_seed: int = 0


@dataclass
class GridConfig:
    n_augs: list[int] = field(default_factory=lambda: [80, 100, 120])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    val_fraction: float = 0.0  # > 0: also pick the threshold on this share of the training data
    # the few-shot scenario (beyond the paper): k real positives, drawn once per k with `positives_seed`
    # and nested (the k = 10 draw holds the k = 5 one), beside N_aug generated ones (``classify.data.draw_positives``)
    real_positives: list[int] = field(default_factory=lambda: [0, 10, 25, 50, 100, 246])
    positives_seed: int = 0
    few_shot_methods: list[str] = field(default_factory=lambda: ["none", "diag", "diag-procedural", "memseg", "inout"])


@dataclass
class Config:
    """Every setting of one profile; ``profile`` names the profile it started from."""

    profile: str
    data: DataConfig
    diag: DiagConfig
    memseg: MemSegConfig
    inout: InOutConfig
    classifier: TrainConfig
    fid: FIDConfig
    grid: GridConfig

    def label(self, replica: bool) -> str:
        """Shown beside every number this config produces on data that is (or is not) the offline replica."""
        if self.profile == "demo":
            data = "offline replica" if replica else "prepared data, not the replica"
            return f"DEMO numbers ({data}, small models)"
        return "paper profile, on a REPLICA (not KSDD2)" if replica else "paper profile (KSDD2)"

    def to_dict(self) -> dict:
        return asdict(self)


SECTIONS = ("data", "diag", "memseg", "inout", "classifier", "fid", "grid")

# What the demo profile changes from the paper's values, and why (see book/differences.md).
DEMO: dict[str, dict[str, Any]] = {
    "data": {"replica_scale": "demo"},
    # the bundled model (its canvas, a crop of the unresized image at its native 64 px, its guidance and
    # mask blur come from its diag_defaults.json: layer 3); batch 4 is 1.3 s instead of 1.9 s per image on
    # 2 CPU cores (benchmarks/generate.py)
    "diag": {"model": DEMO_MODEL, "batch_size": 4},
    # In&Out's recipe at demo scale: the same instance prompt, a smaller LoRA, a larger step,
    # minutes instead of hours; a 2-layer text encoder has no layer to skip; whole 224 x 632
    # images at the demo model's own (1:1) pixel scale, fine-tuned on 224-px windows of it (inout.py)
    "inout": {
        "model": DEMO_MODEL,
        "canvas": "full",
        # held-out replica (seed 11, 30 canvases, DDIM 30; benchmarks/sampler_choice.py): latents cached,
        # 100 steps FID-64 2.13, 50 steps 2.14 (uncached 100 steps: 2.19), at half the fine-tune's time
        "train_steps": 50,
        "rank": 8,
        "alpha": 8,
        "conv_rank": 4,
        "conv_alpha": 4,
        "lr": 1e-3,
        "train_batch_size": 8,
        "batch_size": 4,
        "clip_skip": 1,
        # LoRA windows as wide as the image (224 px at 1:1), not the model's 64 px: on a held-out
        # replica (seed 11, 30 images) whole canvases went from FID-64 3.50 (64-px windows) to
        # 2.65 (128) and 2.19 (224); 200 steps instead of 100 gave 2.27 (model card, "In&Out")
        "resolution": 224,
        # the whole 224 x 632 canvas costs 15 s per image with guidance, 7 s without (2 CPU cores)
        "guidance": 1.0,
        # fewer sampling steps cost realism (same replica, 50-step LoRA): DDIM 30 / 15 / 10 gave FID-64
        # 2.14 / 4.23 / 7.75, DPM-Solver++ 10 / 15 gave 10.2 / 6.5; so the model's own 30 DDIM steps stay,
        # in bf16 instead: 2.01, at 9 s per canvas instead of 21 on one thread (a CPU with bf16 units)
        "mixed_precision": "bf16",
    },
    # no ImageNet ResNet offline: frozen FID-Inception feature maps and a small head that scores
    # every position (diag/classify/features.py); the head is tiny, so a larger step than 1e-4
    "classifier": {"backbone": "fid-inception-maps", "lr": 1e-3},
    # few-shot: two DIAG sets (k = 3, 12) beside the sets the other chapters make; In&Out would need
    # a fine-tune and 100 canvases per k (about 10 minutes each here), so the demo shows it only where
    # it is fine-tuned on every positive (chapter 5's grid, the curve's right end)
    "grid": {
        "n_augs": [100],
        "val_fraction": 0.1,
        "real_positives": [0, 3, 12, 49],
        "few_shot_methods": ["none", "diag", "diag-procedural", "memseg"],
    },
}


def profile_config(profile: str) -> Config:
    """The settings of ``profile`` ("demo" or "paper")."""
    if profile not in PROFILES:
        raise ConfigError(f"profile: must be one of {PROFILES}; got {profile!r}")
    config = Config(
        profile, DataConfig(), DiagConfig(), MemSegConfig(), InOutConfig(), TrainConfig(), FIDConfig(), GridConfig()
    )
    if profile == "demo":
        config = replace(config, **{name: replace(getattr(config, name), **changes) for name, changes in DEMO.items()})
        config = with_model_defaults(config, set())
    return config


def profile_choices(profile: str) -> set[str]:
    """``section.field`` names a profile sets itself (the demo's ``DEMO`` table)."""
    return {f"{s}.{n}" for s, values in DEMO.items() for n in values} if profile == "demo" else set()


def model_default_changes(config: Config, overridden: set[str]) -> dict[str, Any]:
    """The DIAG settings the model's ``diag_defaults.json`` sets and neither the user nor the profile chose."""
    overridden = overridden | profile_choices(config.profile)
    defaults = model_defaults(config.diag.model)
    return {k: v for k, v in defaults.items() if k in MODEL_DEFAULT_KEYS and f"diag.{k}" not in overridden}


def with_model_defaults(config: Config, overridden: set[str]) -> Config:
    """Apply the DIAG model's own ``diag_defaults.json`` (its guidance, canvas, steps, mask blur) unless overridden.

    The demo model's card explains its values; the paper's guidance 20 belongs to SDXL.
    """
    overridden = overridden | profile_choices(config.profile)  # the profile's own choices win too
    changes = model_default_changes(config, overridden)
    if "guidance" in changes and "inout.guidance" not in overridden and config.inout.model == config.diag.model:
        config = replace(config, inout=replace(config.inout, guidance=changes["guidance"]))
    # what this model's file does not set goes back to the generator's default, so a model chosen on
    # top of the demo profile does not inherit the bundled model's defaults (its guidance, its mask blur)
    resets = {
        k: getattr(DiagConfig(), k) for k in MODEL_DEFAULT_KEYS if k not in changes and f"diag.{k}" not in overridden
    }
    return replace(config, diag=replace(config.diag, **changes, **resets))


def section_types(section: str) -> dict[str, Any]:
    """Field name -> type of one section's dataclass."""
    cls = type(getattr(profile_config("paper"), section))
    return typing.get_type_hints(cls)


def parse_value(key: str, text: str, kind: Any) -> Any:
    """``text`` as a value of type ``kind`` (int, float, str, bool, list[int], X | None)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if text.strip().lower() in ("none", "null", ""):
            return None
        kind = next(a for a in args if a is not type(None))
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise ConfigError(f"{key}: expected a comma-separated list of {item.__name__}; got {text!r}")
        return [parse_value(key, p, item) for p in parts]
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise ConfigError(
            f"{key}: expected {'a finite ' if kind is float else 'an '}{kind.__name__}; got {text!r}"
        ) from None
    return text


def split_override(text: str) -> tuple[str, str, str]:
    """``"diag.steps=2"`` -> ("diag", "steps", "2"), with a clear error for anything else."""
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise ConfigError(f"--set {text!r}: expected SECTION.FIELD=VALUE, e.g. diag.steps=2")
    if section not in SECTIONS:
        raise ConfigError(f"--set {text!r}: unknown section {section!r}; sections: {', '.join(SECTIONS)}")
    known = section_types(section)
    name = name.replace("-", "_")
    if name not in known:
        raise ConfigError(f"--set {text!r}: {section} has no field {name!r}; fields: {', '.join(known)}")
    return section, name, value


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """``config`` with each ``SECTION.FIELD=VALUE`` applied, then every section validated."""
    overrides = list(overrides or [])
    changes: dict[str, dict[str, Any]] = {}
    for text in overrides:
        section, name, value = split_override(text)
        changes.setdefault(section, {})[name] = parse_value(f"{section}.{name}", value, section_types(section)[name])
    for section, values in changes.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    config = with_model_defaults(config, {f"{s}.{n}" for s, values in changes.items() for n in values})
    validate(config)
    return config


def validate(config: Config) -> None:
    """Check every section; a section's own ``validate`` says what was expected, in the one form of every
    diag error: ``where: must <rule>; got <value>`` (where: the ``section.field``, option, argument or file)."""
    for name in SECTIONS:
        section = getattr(config, name)
        if hasattr(section, "validate"):
            try:
                section.validate()
            except ConfigError:
                raise
            except ValueError as error:  # a library's check inside a section's validate
                raise ConfigError(f"{name}: {error}") from None
    if config.data.replica_scale not in ("demo", "small", "full"):
        raise ConfigError(f"data.replica_scale: must be demo, small or full; got {config.data.replica_scale!r}")
    for key in ("n_augs", "seeds"):
        values = getattr(config.grid, key)
        if not values or min(values) < (1 if key == "n_augs" else 0):
            raise ConfigError(
                f"grid.{key}: must be a non-empty list of {'positive' if key == 'n_augs' else 'non-negative'} "
                f"integers; got {values!r}"
            )
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"grid.{key}: {', '.join(map(str, twice))} listed more than once; got {values!r}")
    ks = config.grid.real_positives
    if not ks or min(ks) < 0 or len(set(ks)) != len(ks):
        raise ConfigError(f"grid.real_positives: must be distinct non-negative integers; got {ks!r}")
    from diag.methods import METHODS

    unknown = [m for m in config.grid.few_shot_methods if m not in METHODS]
    if not config.grid.few_shot_methods or unknown:
        raise ConfigError(
            f"grid.few_shot_methods: must be among {', '.join(METHODS)}; got {config.grid.few_shot_methods!r}"
        )
    if not 0 <= config.grid.val_fraction < 1:
        raise ConfigError(f"grid.val_fraction: must be in [0, 1); got {config.grid.val_fraction!r}")


def build_config(profile: str, overrides: Iterable[str] = ()) -> Config:
    """The profile's settings with ``overrides`` (``SECTION.FIELD=VALUE`` strings) applied."""
    return apply_overrides(profile_config(profile), overrides)


def field_help(section: str, name: str) -> str:
    """An option's help: the default of each profile."""
    show = lambda v: ",".join(map(str, v)) if isinstance(v, list) else v  # noqa: E731 - as typed on the command line
    paper, demo = (show(getattr(getattr(profile_config(p), section), name)) for p in ("paper", "demo"))
    if paper == demo:
        return f"default: {paper}"
    return f"default: {demo} (demo), {paper} (paper)"


def add_section_options(parser, section: str, skip: Iterable[str] = (), rename: dict[str, str] | None = None) -> None:
    """One ``--field-name`` option per field of ``section``, read back by ``overrides_from_args``.

    Options carry no default of their own: an option left out keeps the profile's value.
    """
    rename = rename or {}
    for name in section_types(section):
        if name in skip:
            continue
        flag = rename.get(name, "--" + name.replace("_", "-"))
        parser.add_argument(
            flag, dest=f"cfg:{section}.{name}", default=None, metavar="VALUE", help=field_help(section, name)
        )


def overrides_from_args(args) -> list[str]:
    """The ``SECTION.FIELD=VALUE`` strings of the options given, then ``--set`` ones (which win)."""
    given = [
        f"{dest[4:]}={value}" for dest, value in vars(args).items() if dest.startswith("cfg:") and value is not None
    ]
    return given + list(getattr(args, "set", None) or [])
