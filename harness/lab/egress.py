"""Nothing leaves a frozen environment.

Lambda pauses the whole microVM, its kernel included: while a function is frozen
its TCP keep-alive probes, delayed ACKs and retransmissions are not sent either.
Here only the function's processes stop, and the sandbox's kernel would go on
sending them; Node's keep-alive agent, for one, probes every second, so a NAT's
flow would never be idle and a freeze could not age it.

One iptables rule, put in the sandbox once, drops every packet leaving it on an
interface other than lo (the Runtime API is on lo) while an xt_recent list holds
its one entry. Holding and releasing is a write to that list's /proc file, opened
inside the sandbox: microseconds, and no process started on the freeze path.
Packets arriving while frozen are still taken in by the sandbox's kernel (a
paused microVM would see them later, as retransmissions): a difference, documented.
"""

from __future__ import annotations

import os
import subprocess

from harness.lab import netns

LIST = "enr_frozen"
# --mask 0.0.0.0: every source address counts as 0.0.0.0, so one entry matches all.
RULE = ["OUTPUT", "!", "-o", "lo", "-m", "recent", "--name", LIST, "--rsource", "--mask", "0.0.0.0",
        "--rcheck", "-j", "DROP"]


class EgressGate:
    """The sandbox's egress, held while the environment is frozen."""

    def __init__(self, sandbox: str) -> None:
        self.sandbox = sandbox
        self._fd: int | None = None
        self.problem: str | None = None  # why it could not be installed; then it does nothing

    def _install(self) -> bool:
        if self._fd is not None or self.problem is not None:
            return self._fd is not None
        done = subprocess.run([*netns.exec_prefix(self.sandbox), "iptables", "-w", "-I", *RULE[:1], "1",
                               *RULE[1:]], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            self.problem = (done.stderr.strip() or f"iptables exited with {done.returncode}").splitlines()[-1]
            return False
        with netns.entered(self.sandbox):  # the list's /proc file belongs to the namespace it is opened in
            self._fd = os.open(f"/proc/thread-self/net/xt_recent/{LIST}", os.O_WRONLY | os.O_CLOEXEC)
        return True

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        os.lseek(self._fd, 0, os.SEEK_SET)  # the list refuses a write at any other offset
        os.write(self._fd, line)

    def hold(self) -> bool:
        """Drop what leaves the sandbox from now on; False when the gate is not there."""
        if not self._install():
            return False
        self._write(b"+0.0.0.0\n")
        return True

    def release(self) -> None:
        if self._fd is not None:
            self._write(b"/\n")  # clears the list

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
