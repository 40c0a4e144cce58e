"""From the command line and the scenarios' `sweep:` blocks to a SweepSpec.

Per scenario, the axes are its `sweep.axes` with `--axis` options laid over them
(an option with the same key replaces the block's axis; new keys come after).
`--repeats`, `--controls`, `--seed` and `--jitter` beat the block; the defaults are
1 repeat, as many control trials per control group as repeats, a seed derived
from the grid, and no jitter.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import model as sc
from harness.scenario.overrides import apply as apply_override
from harness.sweep.axes import Axis, make_axis, parse_axis_option
from harness.sweep.grid import Plan, SweepSpec, trial_scenario, trials

# Beyond this the grid is almost certainly a typo (a step of 1ms over a minute).
MAX_TRIALS = 200_000


def _plan(path: Path, overrides: Sequence[str], cli_axes: Sequence[Axis], use_block: bool = True
          ) -> tuple[Plan, sc.SweepConfig | None]:
    doc = sc.load_document(path)
    for assignment in overrides:
        apply_override(doc, assignment)
    scenario = sc.validate(doc, str(path))  # the base must be valid before any axis
    block = scenario.sweep if use_block else None
    axes: dict[str, Axis] = {}
    if block is not None:
        for key, values in block.axes.items():
            axis = make_axis(key, values, where=f"{path}: sweep.axes")
            axes[axis.name] = axis
    for axis in cli_axes:
        # An option replaces every block axis that sets one of its keys.
        for name in [n for n, a in axes.items() if set(a.keys) & set(axis.keys)]:
            del axes[name]
        axes[axis.name] = axis
    base = copy.deepcopy(doc)
    base.pop("sweep", None)
    base["name"] = scenario.name
    return Plan(scenario.name, str(path), base, tuple(axes.values())), block


def build_spec(paths: Sequence[Path], axis_options: Sequence[str] = (), overrides: Sequence[str] = (),
               repeats: int | None = None, controls: int | None = None, seed: int | None = None,
               jitter: str | None = None, per_scenario_axes: Sequence[Sequence[str]] | None = None,
               use_blocks: bool = True) -> SweepSpec:
    """`per_scenario_axes[i]` are more --axis options for paths[i] only; `use_blocks=False`
    ignores the scenarios' own sweep blocks (the demo does both)."""
    cli_axes = [parse_axis_option(text) for text in axis_options]
    plans, blocks = [], []
    for i, path in enumerate(paths):
        own = [parse_axis_option(text) for text in (per_scenario_axes[i] if per_scenario_axes else ())]
        plan, block = _plan(Path(path), overrides, [*cli_axes, *own], use_blocks)
        plans.append(plan)
        blocks.append(block)
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ScenarioError(f"two scenarios share the name {names!r}; give each a distinct `name:`")
    first = next((b for b in blocks if b is not None), None)
    reps = repeats or (first.repeats if first else 1)
    ctl = controls if controls is not None else (first.controls if first and first.controls is not None else reps)
    jitter_ms = sc.parse_duration_ms(jitter) if jitter else ((first.jitter or 0.0) if first else 0.0)
    if seed is None and first is not None and first.seed is not None:
        seed = first.seed
    if seed is None:  # derived from the grid: the same command gives the same seeds
        blob = json.dumps([p.to_json() for p in plans], sort_keys=True, default=str).encode()
        seed = int(hashlib.sha256(blob).hexdigest()[:8], 16) % 1_000_000
    spec = SweepSpec(tuple(plans), reps, ctl, seed, jitter_ms)
    check(spec)
    return spec


def check(spec: SweepSpec) -> int:
    """Validate every distinct trial scenario before any lab exists; returns the trial count."""
    n = 0
    seen: set[str] = set()
    for trial in trials(spec):
        n += 1
        if n > MAX_TRIALS:
            raise ScenarioError(f"the grid has more than {MAX_TRIALS} trials; use fewer values or repeats")
        task: dict[str, Any] = trial.to_task()
        key = json.dumps([task["plan"], task["kind"], task["assignments"]])
        if key in seen:
            continue
        seen.add(key)
        trial_scenario(spec, task)
    return n
