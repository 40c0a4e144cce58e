"""The fleet: up to fleet.max_environments execution environments of one function
in one lab, scaled as Lambda scales them. An event that finds every environment
busy starts a new one (a cold start, its network timing drawn from the seed);
at the limit it waits for one to be free. A free environment is frozen by its
emulator (workload.freeze) and retired once idle for fleet.idle_retire.

Fleet.invoke is the Invoke of harness/fleet/invocation.py: thread-safe, blocking,
called by the invoke source's clients or by the SQS event source mapping."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import signals
from harness.fleet.environment import Environment
from harness.fleet.envlab import FleetLab
from harness.fleet.invocation import Invocation
from harness.function.spec import LaunchSpec
from harness.history import schema
from harness.history.recorder import History
from harness.lab import addressing
from harness.ownership import Run
from harness.scenario.fleet_config import FleetConfig, draw_cold_start
from harness.scenario.model import Scenario

RETIRE_POLL_S = 0.1
STOP_WORKERS = 8  # environments torn down at once when the fleet stops


class Fleet:
    def __init__(self, scenario: Scenario, launch: LaunchSpec, run: Run, folder: Path, history: History) -> None:
        assert scenario.fleet is not None
        self.scenario = scenario
        self.config: FleetConfig = scenario.fleet
        self.launch = launch
        self.run = run
        self.folder = folder
        self.history = history
        self.lab: FleetLab | None = None
        self.lease: addressing.Lease | None = None
        self._cv = threading.Condition()
        self._envs: list[Environment] = []  # alive: busy or idle
        self._idle: list[Environment] = []  # most recently used last
        self._starting = 0
        self._cold_starts = 0
        self._stopping = False
        self.retired: list[Environment] = []
        self.started: list[Environment] = []
        self.peak = 0
        self.problems: list[str] = []
        self._retirer = threading.Thread(target=self._retire_loop, daemon=True, name="fleet-retire")

    # -- the lab --------------------------------------------------------------------

    def up(self) -> None:
        with signals.deferred():
            self.lease = addressing.acquire(self.scenario.lab.pool, self.run)
            self.lab = FleetLab(self.run, self.lease.subnet, notify=self.history.record, config=self.scenario.lab)
            self.lab.up()
        self._retirer.start()

    def down(self) -> list[str]:
        """Every environment, then the vpc; what could not be removed."""
        with self._cv:
            self._stopping = True
            envs, self._envs, self._idle = list(self._envs), [], []
            self._cv.notify_all()
        if self._retirer.is_alive():
            self._retirer.join(timeout=5)
        with ThreadPoolExecutor(max_workers=STOP_WORKERS) as pool:
            for problems in pool.map(lambda env: env.stop(), envs):
                self.problems += problems
        if self.lab is not None:
            self.problems += self.lab.down()
        if self.lease is not None:
            self.lease.release()
        return self.problems

    # -- scaling -----------------------------------------------------------------------

    def invoke(self, payload: bytes) -> Invocation:
        env, cold = self._acquire()
        try:
            return env.invoke(payload, cold)
        finally:
            self._release(env)

    def _acquire(self) -> tuple[Environment, bool]:
        """A free environment (the most recently used: Lambda reuses warm ones
        first), else a new one while under the limit, else wait for one."""
        with self._cv:
            while True:
                if self._stopping:
                    raise RuntimeError("the fleet is stopping")
                if self._idle:
                    return self._idle.pop(), False
                if len(self._envs) + self._starting < self.config.max_environments:
                    self._starting += 1
                    self._cold_starts += 1
                    n = self._cold_starts
                    break
                self._cv.wait()
        try:
            env = self._cold_start(n)
        finally:
            with self._cv:
                self._starting -= 1
                self._cv.notify_all()
        return env, True

    def _cold_start(self, n: int) -> Environment:
        assert self.lab is not None
        draw = draw_cold_start(self.config.cold_start, self.scenario.seed or 0, n)
        name = f"env-{n}"
        env = Environment(name, self.lab, self.scenario, self.launch, self.folder / name, draw,
                          on_eni=self.history.record)
        began = time.monotonic()
        try:
            with signals.deferred():  # the sandbox and runtime must be known to down()
                with self._cv:
                    self._envs.append(env)
                    self.started.append(env)
                    self.peak = max(self.peak, len(self._envs))
            init = env.start()
        except BaseException as exc:
            self.history.record(schema.HARNESS_ERROR, error=f"{name}: {type(exc).__name__}: {exc}")
            with self._cv:
                if env in self._envs:
                    self._envs.remove(env)
            self.problems += env.stop()
            raise
        self.history.record(schema.ENVIRONMENT_START, environment=name, n=n, eni_late=draw["eni_late"],
                            init=init, took_ms=round((time.monotonic() - began) * 1000, 3),
                            **({"delay_ms": draw["delay_ms"]} if draw["eni_late"] else {}))
        return env

    def _release(self, env: Environment) -> None:
        with self._cv:
            env.last_used = time.monotonic()
            if env in self._envs:
                self._idle.append(env)
            self._cv.notify_all()

    def _retire_loop(self) -> None:
        limit_s = self.config.idle_retire / 1000
        while True:
            with self._cv:
                if self._stopping:
                    return
                now = time.monotonic()
                old = [e for e in self._idle if now - e.last_used >= limit_s]
                for env in old:
                    self._idle.remove(env)
                    self._envs.remove(env)
                if not old:
                    self._cv.wait(RETIRE_POLL_S)
            for env in old:
                idle_ms = round((time.monotonic() - env.last_used) * 1000, 3)
                self.problems += env.stop()
                self.retired.append(env)
                self.history.record(schema.ENVIRONMENT_RETIRE, environment=env.name, idle_ms=idle_ms,
                                    invocations=env.invocations)
                with self._cv:
                    self._cv.notify_all()

    # -- what it did ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        envs = self.started
        return {"environments": len(envs), "peak": self.peak, "cold_starts": len(envs),
                "retired": len(self.retired),
                "met_race": sum(1 for e in envs if e.draw.get("eni_late")),
                "hurt": sum(1 for e in envs if e.draw.get("eni_late") and e.failures),
                "draws": {e.name: e.draw for e in envs}}
