"""Wiring of the docker backend for one trial: which image, which runtime API."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.backends.docker import engine as de
from harness.backends.docker import images as images
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.backends.docker.lab import DockerLab
    from harness.backends.process import LaunchSpec
    from harness.history.recorder import History
    from harness.lab.topology import Lab
    from harness.scenario.model import Scenario

_resolved: dict[str, str] = {}


def _progress(line: str) -> None:
    sys.stderr.write(f"[images] {line}\n")


def function_image(scenario: Scenario) -> str:
    """The image reference for the scenario's function, built when missing.

    docker.image may name an image kind of containers/ (python, dotnet, python-rie)
    or any local image; without it the kind follows function.runtime."""
    de.client()  # DockerUnavailable (a UserError) says how to start the engine
    wanted = scenario.docker.image or ("dotnet" if scenario.function.runtime == "dotnet" else "python")
    if wanted in _resolved:
        return _resolved[wanted]
    if wanted in images.RECIPES:
        # Built already (the usual case): no pull attempt, no build lock.
        ref = images.resolve(wanted) or images.ensure(wanted, _progress)
    else:
        try:
            de.client().images.get(wanted)
        except Exception:
            raise UserError(f"docker.image: no local image {wanted!r}; build or pull it, or use one of "
                            f"{', '.join(images.FUNCTION_KINDS[:3])}") from None
        ref = wanted
    _resolved[wanted] = ref
    return ref


def runtime_api(scenario: Scenario, lab: Lab, history: History, launch: LaunchSpec,
                output: Callable[[int, str], None], emulator_log: Callable[[str], None]) -> Any:
    from harness.backends.docker.containers import DockerBackend
    from harness.backends.docker.lab import DockerLab

    assert isinstance(lab, DockerLab)
    fn = scenario.function
    backend = DockerBackend(lab.image, _sandbox_id(lab), lab.sandbox, lab.labels("function"), fn, output,
                            run=lab.run)
    if scenario.docker.rie == "image":
        from harness.backends.docker.image_rie import ImageRieAPI

        return ImageRieAPI(lab, backend, history, launch, timeout_s=fn.timeout / 1000, output=output,
                           emulator_log=emulator_log)
    from harness.emulator.api import RuntimeAPI

    launch = dataclasses.replace(launch, description=backend.describe(launch))
    return RuntimeAPI(lab.sandbox, history, backend.spawn, launch, timeout_s=fn.timeout / 1000,
                      init_timeout_s=scenario.workload.init_timeout / 1000, function_name=fn.name,
                      log=emulator_log)


def _sandbox_id(lab: DockerLab) -> str:
    assert lab.sandbox_container is not None, "the lab is not up"
    return lab.sandbox_container
