"""snapstart.mode: criu, the restore Strategy that really checkpoints the runtime.

At the snapshot (the runtime waits in restore/next) CRIU dumps the runtime's
process tree and kills it; at the restore the image is restored into the same
sandbox, after the network changed (new ENI, flows gone), and removed. The
runtime's connection to restore/next survives it: its socket is dumped and
restored established while the emulator's end stays open in the same namespace,
so the restored runtime reads the answer as Lambda's runtime does after a restore.
What the copy has is what the dump wrote: memory, registers, file descriptors,
TCP state. Its pooled connections still carry the old address.

The runtime runs as pid 2 of a pid namespace of its own (harness/function/
checkpoint.py pid_holder); pid 1 is held across the dump so the launcher's
process, its output pipes and its cgroup stay, and the copy is one more pid 2.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from harness.emulator import restore
from harness.function import checkpoint, criu_restore
from harness.function.handle import RuntimeHandle


class CriuStrategy:
    """Dump at the snapshot, restore in place at the restore (one copy per trial)."""

    name = "criu"

    def __init__(self, freezing: Any) -> None:
        self._snap: checkpoint.Snapshot | None = None
        self._pid1: int | None = None
        self._join: list[str] = []
        self._lock = threading.Lock()

    def snapshot(self, proc: RuntimeHandle, extensions: Sequence[RuntimeHandle]) -> tuple[bool, dict[str, Any]]:
        with self._lock:  # an earlier generation's snapshot that was never restored
            stale, self._snap = self._snap, None
        if stale is not None:
            stale.remove()
        run = getattr(proc, "run", None)
        pid1 = checkpoint.find_runtime(proc.pid, nspid=1)
        runtime = checkpoint.find_runtime(proc.pid) if pid1 is not None else None
        if run is None or pid1 is None or runtime is None:
            return False, {"error": "the runtime is not in a pid namespace of its own (launched without "
                                    "checkpoint.pid_holder)"}
        cgroup = getattr(proc, "cgroup", None)
        self._pid1, self._join = pid1, cgroup.join_prefix() if cgroup is not None else []
        try:
            self._snap = checkpoint.dump(run, runtime, keep_holder=True)
        except checkpoint.CheckpointError as exc:
            return False, {"error": str(exc)}
        popen = getattr(proc, "popen", None)
        if popen is not None:
            # A trial that stops before the restore (interrupted, no invocation) still
            # removes the image: when the runtime's process ends, so does the snapshot.
            threading.Thread(target=self._drop_when_gone, args=(popen, self._snap), daemon=True,
                             name="criu-snapshot-watch").start()
        return True, {"dump_ms": round(self._snap.dump_s * 1000, 3), "image_bytes": self._snap.size_bytes}

    def _drop_when_gone(self, popen: Any, snap: checkpoint.Snapshot) -> None:
        popen.wait()
        with self._lock:
            owned = self._snap is snap
            if owned:
                self._snap = None
        if owned:  # else the restore took it, and removes it when it is done with it
            snap.remove()

    def restore(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            snap, pid1 = self._snap, self._pid1
            self._snap = None
        if snap is None or pid1 is None:
            return False, {"error": "no snapshot to restore"}
        t0 = time.monotonic()
        try:
            pid, took = criu_restore.restore_in_place(snap, pid1, self._join)
        except checkpoint.CheckpointError as exc:
            return False, {"error": str(exc)}
        finally:
            snap.remove()
            checkpoint.hold(pid1, False)  # from here pid 1 ends with the copy
        return True, {"restore_ms": round(took * 1000, 3), "pid": pid,
                      "total_ms": round((time.monotonic() - t0) * 1000, 3)}


restore.STRATEGIES.setdefault("criu", CriuStrategy)
