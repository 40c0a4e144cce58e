"""The grid: scenarios x axes x repeats, plus control trials, as a deterministic
list of trials, each with an id and a seed.

Control trials (ChAP's control group) run the same parameters with no fault: the
schedule emptied and the ENI present from the start. Axes that only shape the fault
(`schedule...`, `lab.eni`) do not change a control, so cells that differ only there
share one control group of `controls` trials.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError
from harness.scenario import model as sc
from harness.scenario import overrides
from harness.sweep.axes import Axis

EXPERIMENT, CONTROL = "experiment", "control"
SPEC_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """One scenario's part of a sweep: its document (after --set) and its axes."""

    name: str
    source: str
    doc: dict[str, Any]
    axes: tuple[Axis, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "doc": self.doc,
                "axes": [a.to_json() for a in self.axes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(data["name"], data["source"], data["doc"], tuple(Axis.from_json(a) for a in data["axes"]))


@dataclass(frozen=True)
class SweepSpec:
    plans: tuple[Plan, ...]
    repeats: int = 1
    controls: int = 1
    seed: int = 0
    jitter_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"version": SPEC_VERSION, "plans": [p.to_json() for p in self.plans], "repeats": self.repeats,
                "controls": self.controls, "seed": self.seed, "jitter_ms": self.jitter_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepSpec:
        if data.get("version") != SPEC_VERSION:
            raise UserError(f"sweep spec version {data.get('version')} is not {SPEC_VERSION}; rerun the sweep")
        return cls(tuple(Plan.from_json(p) for p in data["plans"]), data["repeats"], data["controls"],
                   data["seed"], data.get("jitter_ms", 0.0))

    def fingerprint(self) -> str:
        """Identifies the grid: equal for the same sweep, whichever shard."""
        blob = json.dumps(self.to_json(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True)
class Cell:
    cell_id: str
    plan: int
    scenario: str
    params: dict[str, str]  # axis name -> value label, in axis order
    assignments: tuple[tuple[str, str], ...]
    group: str  # control group id


@dataclass(frozen=True)
class TrialSpec:
    trial_id: str
    kind: str  # experiment | control
    plan: int
    scenario: str
    cell: str | None  # None for a control (it serves every cell of its group)
    group: str
    repeat: int
    seed: int
    params: dict[str, str]
    assignments: tuple[tuple[str, str], ...] = field(default=())

    def to_task(self) -> dict[str, Any]:
        return {"trial": self.trial_id, "kind": self.kind, "plan": self.plan, "scenario": self.scenario,
                "cell": self.cell, "group": self.group, "repeat": self.repeat, "seed": self.seed,
                "params": self.params, "assignments": [list(a) for a in self.assignments]}


_SLUG_BAD = re.compile(r"[^A-Za-z0-9_.]+")


def slug(values: list[str], limit: int = 60) -> str:
    text = "-".join(_SLUG_BAD.sub("_", v).strip("_") for v in values if v) or "base"
    return text[:limit].rstrip("-_")


def trial_seed(sweep_seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{sweep_seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def cells(spec: SweepSpec) -> Iterator[Cell]:
    """Every cell, in grid order (plans, then the axes' product, first axis outermost)."""
    index = 0
    for p, plan in enumerate(spec.plans):
        for combo in itertools.product(*(axis.points for axis in plan.axes)):
            index += 1
            params = {"scenario": plan.name} if len(spec.plans) > 1 else {}
            assignments: list[tuple[str, str]] = []
            control_labels = [plan.name]
            for axis, point in zip(plan.axes, combo, strict=True):
                params[axis.name] = axis.label(point)
                assignments.extend(zip(axis.keys, point, strict=True))
                if not axis.is_fault_axis:
                    control_labels.append(axis.label(point))
            group = "g-" + hashlib.sha256("\0".join(control_labels).encode()).hexdigest()[:8]
            yield Cell(f"c{index:04d}", p, plan.name, params, tuple(assignments), group)


def trials(spec: SweepSpec) -> Iterator[TrialSpec]:
    """Every trial of the grid, in a stable order: each cell's repeats, then each
    control group's controls, right after the first cell that needs them."""
    seen_groups: set[str] = set()
    many = len(spec.plans) > 1
    for cell in cells(spec):
        values = list(cell.params.values())
        for r in range(1, spec.repeats + 1):
            key = json.dumps([cell.scenario, cell.params, EXPERIMENT, r], sort_keys=True)
            yield TrialSpec(f"{cell.cell_id}-{slug(values)}-r{r}", EXPERIMENT, cell.plan, cell.scenario,
                            cell.cell_id, cell.group, r, trial_seed(spec.seed, key), cell.params,
                            cell.assignments)
        if cell.group in seen_groups or spec.controls <= 0:
            continue
        seen_groups.add(cell.group)
        plan = spec.plans[cell.plan]
        ctl_params = {"scenario": cell.scenario} if many else {}
        ctl_assign: list[tuple[str, str]] = []
        for axis in plan.axes:
            if not axis.is_fault_axis:
                ctl_params[axis.name] = cell.params[axis.name]
                ctl_assign.extend(zip(axis.keys, _point(axis, cell.params[axis.name]), strict=True))
        for r in range(1, spec.controls + 1):
            key = json.dumps([cell.scenario, ctl_params, CONTROL, r], sort_keys=True)
            yield TrialSpec(f"ctl-{cell.group[2:]}-{slug(list(ctl_params.values()))}-r{r}", CONTROL,
                            cell.plan, cell.scenario, None, cell.group, r, trial_seed(spec.seed, key),
                            ctl_params, tuple(ctl_assign))


def _point(axis: Axis, label: str) -> tuple[str, ...]:
    return next(p for p in axis.points if axis.label(p) == label)


def count(spec: SweepSpec) -> int:
    return sum(1 for _ in trials(spec))


# -- shards ------------------------------------------------------------------------

def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`i/N` (1-based) -> (i, N)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text!r}: expected i/N with 1 <= i <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def in_shard(position: int, shard: tuple[int, int] | None) -> bool:
    """Round-robin by position in the grid: every shard gets a similar mix of cells."""
    return shard is None or position % shard[1] == shard[0] - 1


def shard_trials(spec: SweepSpec, shard: tuple[int, int] | None) -> Iterator[TrialSpec]:
    for position, trial in enumerate(trials(spec)):
        if in_shard(position, shard):
            yield trial


# -- one trial's scenario ----------------------------------------------------------

def trial_doc(spec: SweepSpec, task: dict[str, Any]) -> dict[str, Any]:
    """The scenario document a trial runs: its plan's document, its axis values,
    its seed and, for a control, no fault; with jitter, its offsets moved by a
    seeded amount (the exact offsets land in the trial's scenario.yaml)."""
    plan = spec.plans[task["plan"]]
    doc = copy.deepcopy(plan.doc)
    doc.pop("sweep", None)
    if task["kind"] == CONTROL:
        doc["schedule"] = []
        doc.setdefault("lab", {})["eni"] = "present"
    for key, raw in task["assignments"]:
        overrides.assign(doc, key, raw, where="--axis")
    doc["seed"] = task["seed"]
    if spec.jitter_ms and task["kind"] == EXPERIMENT:
        rng = random.Random(task["seed"])
        for entry in doc.get("schedule") or []:
            trigger = sc.parse_trigger(entry["at"])
            offset = max(0.0, trigger.offset_ms + rng.uniform(-spec.jitter_ms, spec.jitter_ms))
            entry["at"] = str(trigger.model_copy(update={"offset_ms": round(offset, 3)}))
    return doc


def trial_scenario(spec: SweepSpec, task: dict[str, Any]) -> sc.Scenario:
    plan = spec.plans[task["plan"]]
    where = f"{plan.source} [{task['trial']}]"
    return sc.validate(trial_doc(spec, task), where)
