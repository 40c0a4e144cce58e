"""The handler strings a scenario accepts, per runtime.

Python, Node.js and command functions keep enirace's own rule (module.function
or a sample name). For .NET, the rule is Lambda's: its Handler field takes at
most 128 characters without whitespace (CreateFunction: `[^\\s]+`, max 128),
which covers `Assembly::Namespace.Type::Method`, nested types (`Outer+Inner`)
and generic names. A full method signature, as `MethodInfo.ToString()` prints
it (`System.String FunctionHandler(System.String, Amazon.Lambda.Core.ILambdaContext)`),
has spaces and often passes 128: Lambda takes it only through an image's CMD
(ImageConfig.Command bounds no item's length) and RuntimeSupport resolves it, so
enirace accepts it too, up to its own bound below.
"""

from __future__ import annotations

import re

from harness.scenario.limits import brief

LAMBDA_HANDLER_CHARS = 128
# enirace's bound on a full-signature handler: argv and the history carry it
# whole; a 40-parameter signature of long generic names still fits.
SIGNATURE_HANDLER_BYTES = 4096
_GENERIC = re.compile(r"[A-Za-z_][\w.:]*")
_NO_SPACE = re.compile(r"\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def generic_problem(v: str) -> str | None:
    if len(v.encode()) > LAMBDA_HANDLER_CHARS or not _GENERIC.fullmatch(v):
        return f"{brief(v)} is not a handler name (module.function or a sample name, at most 128 bytes)"
    return None


def dotnet_problem(v: str) -> str | None:
    """Why `v` is not a handler string Lambda's dotnet runtime could be given, or None."""
    rule = ("Assembly::Namespace.Type::Method (at most 128 characters without spaces, as Lambda's "
            "Handler field), an executable assembly's name, or Assembly::Type::<full method signature>")
    if not v or _CONTROL.search(v):
        return f"{brief(v)} is not a .NET handler string: {rule}"
    parts = v.split("::", 2)
    if len(parts) == 3 and "(" in parts[2] and not _NO_SPACE.fullmatch(v):
        # Only the method part may have spaces: the assembly and type are names.
        if not all(_NO_SPACE.fullmatch(p.strip()) for p in parts[:2]):
            return f"{brief(v)} is not a .NET handler string: {rule}"
        if len(v.encode()) > SIGNATURE_HANDLER_BYTES:
            return f"{brief(v)} is over {SIGNATURE_HANDLER_BYTES} bytes, enirace's bound on a full-signature handler"
        return None
    if len(v) > LAMBDA_HANDLER_CHARS or not _NO_SPACE.fullmatch(v):
        return f"{brief(v)} is not a .NET handler string: {rule}"
    if len(parts) == 1 and ("/" in v or v in (".", "..")):
        # An executable assembly is a file name in the task root, never a path.
        return f"{brief(v)} is not a .NET handler string: {rule}"
    return None


def problem(runtime: str | None, v: str) -> str | None:
    return dotnet_problem(v) if runtime == "dotnet" else generic_problem(v)
