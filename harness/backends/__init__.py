"""Backends start the function's processes: `process` (a child in the sandbox
namespace) or `docker` (containers joining a sandbox container's namespace).

run_trial asks here for the lab and the runtime API of a scenario, so it does not
need to know which backend it runs. Imports stay lazy: the enirace-rie drop-in
imports this package and must not pull in docker or pyroute2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.history import schema

if TYPE_CHECKING:
    from harness.backends.process import LaunchSpec
    from harness.history.recorder import History
    from harness.lab.addressing import Subnet
    from harness.lab.topology import Lab
    from harness.ownership import Run
    from harness.scenario.model import Scenario


def check(scenario: Scenario) -> None:
    """Fail with a one-line UserError before anything is built (engine, image)."""
    if scenario.backend == "docker":
        from harness.backends.docker import setup as docker_setup

        docker_setup.function_image(scenario)


def make_lab(scenario: Scenario, run: Run, subnet: Subnet, notify: Callable[..., Any]) -> Lab:
    if scenario.backend == "docker":
        from harness.backends.docker import lab as docker_lab
        from harness.backends.docker import setup as docker_setup

        return docker_lab.make(scenario.docker.eni, run=run, subnet=subnet, notify=notify,
                               image=docker_setup.function_image(scenario))
    from harness.lab.topology import Lab

    return Lab(run, subnet, notify=notify)


def make_runtime_api(scenario: Scenario, lab: Lab, history: History, launch: LaunchSpec,
                     output: Callable[[int, str], None], emulator_log: Callable[[str], None]) -> Any:
    """A started-to-be runtime API (start/init/invoke/stop): the harness's emulator
    with the chosen backend, or with `docker.rie: image`, the image's own RIE."""
    fn = scenario.function
    if scenario.backend == "docker":
        from harness.backends.docker import setup as docker_setup

        return docker_setup.runtime_api(scenario, lab, history, launch, output, emulator_log)
    from harness.backends.process import ProcessBackend
    from harness.emulator.api import RuntimeAPI
    from harness.function import contain as contain

    if fn.user == "root":
        contain.warn_root_once()
    backend = ProcessBackend(lab.sandbox, output, etc_prefix=lab.etc.mount_prefix(),
                             contain=contain.Containment(fn.user, fn.memory_mb), run=lab.run,
                             state_dir=lab.etc.root)
    lab.on_down(backend.check_removed)
    history.record(schema.CONTAINMENT, user=fn.user, memory_mb=fn.memory_mb, tmp_mb=contain.TMP_SIZE_MB,
                   cgroup=f"v{backend.cgroup_layout.version}" if backend.cgroup_layout else None)
    return RuntimeAPI(lab.sandbox, history, backend.spawn, launch, timeout_s=fn.timeout / 1000,
                      init_timeout_s=scenario.workload.init_timeout / 1000, function_name=fn.name,
                      log=emulator_log)
