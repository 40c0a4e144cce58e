"""Errors the CLI turns into one line and an exit code, instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad scenario, bad flag, missing privilege).

    The message is a single line that names the file, the field and the fix.
    """

    exit_code = 2


class ScenarioError(UserError):
    """A scenario file or a --set override failed validation."""


class PrivilegeError(UserError):
    """The harness lacks root or CAP_NET_ADMIN; it stops before touching anything."""


class PoolError(UserError):
    """The address pool is malformed, exhausted, or overlaps a host route."""


class HarnessError(Exception):
    """Something inside the harness failed; the trial verdict becomes harness_error."""
