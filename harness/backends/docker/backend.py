"""The `docker` backend: the sandbox is a container's network namespace, and each
runtime start is a container joining it (containers.py); with `docker.rie: image`
the image's own RIE replaces the harness's emulator (image_rie.py)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from harness.backends.base import Check, Notify, Remover, RuntimeAPILike
from harness.backends.docker import cleanup as docker_cleanup
from harness.backends.docker import doctor as docker_doctor
from harness.backends.docker import engine as de
from harness.backends.docker import images as images
from harness.backends.docker import lab as docker_lab
from harness.backends.docker.containers import ContainerLauncher
from harness.backends.docker.containers import warm as warm_image
from harness.backends.docker.image_rie import ImageRieAPI
from harness.emulator.api import RuntimeAPI
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.function.spec import LaunchSpec, OutputSink
    from harness.history.recorder import History
    from harness.lab.addressing import Subnet
    from harness.lab.topology import Lab
    from harness.ownership import Run
    from harness.scenario.model import Scenario

_resolved: dict[str, str] = {}


def _progress(line: str) -> None:
    sys.stderr.write(f"[images] {line}\n")


def function_image(scenario: Scenario) -> str:
    """The image reference for the scenario's function, built when missing.

    docker.image may name an image kind of containers/ (python, dotnet, python-rie)
    or any local image; without it the kind follows function.runtime."""
    de.client()  # DockerUnavailable (a UserError) says how to start the engine
    runtime = scenario.function.runtime
    wanted = scenario.docker.image or (runtime if runtime in ("dotnet", "nodejs") else "python")
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


class DockerBackend:
    name = "docker"

    def preflight(self, scenario: Scenario) -> None:
        """The engine must answer and the image exist: built here when missing, once
        per process (a sweep's parent builds it, not each worker)."""
        if scenario.function.extensions:
            raise UserError("function.extensions: not supported with backend docker; "
                            "use backend: process, or drop function.extensions")
        function_image(scenario)

    def make_lab(self, scenario: Scenario, run: Run, subnet: Subnet, notify: Notify) -> Lab:
        return docker_lab.make(scenario.docker.eni, run=run, subnet=subnet, notify=notify,
                               image=function_image(scenario), config=scenario.lab)

    def make_runtime_api(self, scenario: Scenario, lab: Lab, history: History, launch: LaunchSpec,
                         output: OutputSink, emulator_log: Callable[[str], None]) -> RuntimeAPILike:
        if not isinstance(lab, docker_lab.DockerLab):
            raise TypeError(f"the docker backend drives a DockerLab, not a {type(lab).__name__}")
        fn = scenario.function
        assert lab.sandbox_container is not None, "the lab is not up"
        launcher = ContainerLauncher(lab.image, lab.sandbox_container, lab.sandbox, lab.labels("function"), fn,
                                     output, run=lab.run, signal_dir=lab.etc.root / "exec")
        if scenario.docker.rie == "image":
            return ImageRieAPI(lab, launcher, history, launch, timeout_s=fn.timeout / 1000, output=output,
                               emulator_log=emulator_log)
        warm_image(launcher, launch, lab.run)
        launch = dataclasses.replace(launch, description=launcher.describe(launch))
        return RuntimeAPI(lab.sandbox, history, launcher.spawn, launch, timeout_s=fn.timeout / 1000,
                          init_timeout_s=scenario.workload.init_timeout / 1000, function_name=fn.name,
                          log=emulator_log, freeze=scenario.workload.freeze)

    def doctor_checks(self) -> list[Check]:
        return docker_doctor.docker_checks()

    def removers(self) -> dict[str, Remover]:
        return {
            "link": docker_cleanup.remove_host_link,  # a docker network's bridge on the host
            "container": partial(docker_cleanup.remove_docker, "container"),
            "network": partial(docker_cleanup.remove_docker, "network"),
        }
