"""The `snapstart:` block: how a SnapStart function's snapshot is restored.

Lambda runs a SnapStart function's init once, snapshots the execution environment
and later restores it, maybe days later and on another host. The restore, as
modelled here (docs/snapstart.md):

  mode            freezer: the runtime's process tree stays where it is, frozen by
                  the cgroup freezer from the snapshot to the restore (the default).
                  criu: the runtime is really checkpointed at the snapshot and
                  restored from the image into the changed sandbox (CRIU 4.2+,
                  containers/criu/install.sh; docs/snapstart.md "CRIU mode").
  restore_after   how long the environment stays frozen between the snapshot and
                  the restore: a real wall-clock wait (capped at MAX_RESTORE_AFTER_MS),
                  during which the lab's service and NAT age their idle state as
                  they do in real time. Days are modelled by what they do to the
                  network: new_address and drop_flows below.
  new_address     the restored environment gets a new ENI with a new address (Lambda's
                  restore runs on another host).
  drop_flows      every flow is gone: the NAT forgot them (lab.nat) and the service
                  dropped its keep-alive connections, silently, as a peer that has
                  long since forgotten the host.
  restore_timeout Lambda's limit for the runtime's load plus its after-restore hooks
                  (10 s, SnapStartTimeoutException); lower it only for tests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from harness.scenario.triggers import DurationMs, format_ms

# Restore strategies: freezer (harness/emulator/restore.py) and criu (restore_criu.py;
# whether CRIU works on this machine is the process backend's preflight).
MODES = ("freezer", "criu")
Mode = Literal["freezer", "criu"]
# Lambda's limit on the runtime's restore plus its after-restore hooks.
RESTORE_TIMEOUT_MS = 10_000.0
# The wall-clock wait is real: longer than this is a typo or a trial nobody waits for.
MAX_RESTORE_AFTER_MS = 300_000.0


class SnapStartConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: Mode = "freezer"
    restore_after: DurationMs = 0.0
    new_address: bool = True
    drop_flows: bool = True
    restore_timeout: DurationMs = RESTORE_TIMEOUT_MS

    @field_validator("restore_after")
    @classmethod
    def _bounded_wait(cls, v: float) -> float:
        if v > MAX_RESTORE_AFTER_MS:
            raise ValueError(f"at most {format_ms(MAX_RESTORE_AFTER_MS)} (it is a real wait while frozen); "
                             "model days by new_address and drop_flows")
        return v

    @field_validator("restore_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be longer than 0ms (Lambda's is 10s)")
        return v

    @field_serializer("restore_after", "restore_timeout")
    def _as_text(self, v: float) -> str:
        return format_ms(v)


def check(scenario: Any) -> Any:
    """The scenario-wide rules of SnapStart (a model validator of Scenario)."""
    fn = scenario.function
    if scenario.snapstart is not None and not fn.snapstart:
        raise ValueError("snapstart: this block configures SnapStart's restore; set function.snapstart: true "
                         "or drop the block")
    if not fn.snapstart:
        return scenario
    if fn.runtime == "command":
        raise ValueError("function.snapstart: Lambda offers SnapStart only for Java, Python and .NET managed "
                         "runtimes, not OS-only (custom) runtimes; drop function.snapstart")
    if scenario.backend == "docker":
        raise ValueError("function.snapstart: Lambda does not offer SnapStart for container images; "
                         "use backend: process")
    if scenario.snapstart is None:
        scenario.snapstart = SnapStartConfig()
    return scenario


def dump(data: dict[str, Any], config: SnapStartConfig | None) -> None:
    """scenario.yaml's snapstart block: none for a function without SnapStart."""
    if config is None:
        data.pop("snapstart", None)
