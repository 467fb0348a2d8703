"""The methods a grid row or a generated set can belong to: the paper's three generators, DIAG with
procedural masks, and no augmentation; their names in the tables, and who makes each one's set."""

from __future__ import annotations

from typing import Sequence

GENERATORS = ("memseg", "inout", "diag")  # the paper's three methods, in its tables' order
# DIAG with procedural masks: truly zero-shot (no real positive used anywhere); no paper table has it
PROCEDURAL = "diag-procedural"
ZERO_SHOT_METHODS = (*GENERATORS, PROCEDURAL)
METHODS = (*ZERO_SHOT_METHODS, "none")  # "none": full-shot without augmentation
METHOD_NAMES = {
    "diag": "DIAG",
    "memseg": "MemSeg",
    "inout": "In&Out",
    PROCEDURAL: "DIAG, procedural masks",
    "none": "no augmentation",
}


# who makes each method's set, and whether with procedural masks: a set is used only where it belongs
SET_MAKERS: dict[str, tuple[str, bool | None]] = {
    "diag": ("diag", False),
    PROCEDURAL: ("diag", True),
    "memseg": ("memseg", None),
    "inout": ("inout", None),
}


# what cannot run without a real positive: training on no positive at all, DIAG's real masks, In&Out's fine-tune
NEEDS_POSITIVES = ("none", "diag", "inout")


def grid_methods(scenario: str, few_shot: Sequence[str] = ()) -> list[str]:
    """The rows of a scenario's grid: Table I's methods plus the procedural-mask DIAG; Table II's plus "none";
    the few-shot grid's are ``few_shot`` (``grid.few_shot_methods``)."""
    if scenario == "few-shot":
        return list(few_shot)
    return list(ZERO_SHOT_METHODS) if scenario == "zero-shot" else ["none", *GENERATORS]


def runs_at(method: str, real_positives: int) -> bool:
    """Whether ``method`` has a cell with ``real_positives`` real positives (none, DIAG and In&Out need one)."""
    return real_positives > 0 or method not in NEEDS_POSITIVES


def table_n_aug(n_augs: Sequence[int]) -> int:
    """The N_aug of Table III (FID) and the realism probe: 100 where the grid has it (the paper's N), else the first."""
    return 100 if 100 in n_augs else n_augs[0]
