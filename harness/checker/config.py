"""Configuration mistakes: errors Lambda raises before the handler ever runs,
because the handler string, the module or the bootstrap is wrong. They say
nothing about how the function meets the network, so a trial that hits one is
`broken`: never a finding, and `enirace run` stops on it with one line, exit 2.

Telling one from a network failure: the error type must be one of the runtimes'
configuration types, and an import error must say a module or name is missing
(naive_crash's module-level request fails as ConnectionError, not as these; an
ImportError whose text is a network error is not a configuration mistake).
"""

from __future__ import annotations

import re

from harness.checker.classify import classify, error_text
from harness.history import schema
from harness.history.recorder import Event

# awslambdaric (lambda_runtime_exception.py), aws-lambda-ric (Errors.js) and
# RuntimeSupport's LambdaValidationException (bad handler string, type or method).
CONFIG_TYPES = frozenset({
    "Runtime.HandlerNotFound", "Runtime.UserCodeSyntaxError", "Runtime.MalformedHandlerName",
    "Runtime.BuiltInModuleConflict", "Runtime.ImportModuleError", "LambdaValidationException",
    "Runtime.InvalidEntrypoint",
})
# Only the "it is not there" import errors; anything else an import raised is user code running.
_MISSING = re.compile(r"No module named|cannot import name|Cannot find module|ERR_MODULE_NOT_FOUND"
                      r"|is not a package|does not provide an export", re.I)
_NETWORK = ("dns", "reset", "timeout", "connect")
# The dotnet8 image's /var/runtime/bootstrap (and the offline base's copy of its
# contract) exits with 101-106 before any Runtime API call when the image holds no
# function it can start, after one "Error: ..." line on stderr.
_BOOTSTRAP_EXIT = re.compile(r"exit status 10[1-6]\b")
_BOOTSTRAP_LINE = re.compile(r"^Error: (Environment variable LAMBDA_TASK_ROOT needs|\.NET binaries for Lambda"
                             r"|No Lambda Handler function|executable assembly)")


def is_config_error(error_type: str | None, message: str | None) -> bool:
    if error_type not in CONFIG_TYPES:
        return False
    if error_type != "Runtime.ImportModuleError":
        return True  # never caused by the network: the handler string, the source, the type
    # "Unable to import module 'm': <why>": the module's own name may say "timeout";
    # judge only the why.
    why = (message or "").split("': ", 1)[-1]
    return bool(_MISSING.search(why)) and classify(why) not in _NETWORK


def misconfiguration(events: list[Event]) -> str | None:
    """'ErrorType: message' of the first configuration mistake in the history, or None."""
    said: str | None = None  # the bootstrap's last "Error: ..." line
    for e in events:
        if e["kind"] == schema.LOG and _BOOTSTRAP_LINE.match(e.get("line", "")):
            said = e["line"]
        if (said and e["kind"] == schema.INIT_ERROR and e.get("source") == "exit"
                and (code := _BOOTSTRAP_EXIT.search(e.get("error_message") or ""))):
            return f"{said} (the image's bootstrap stopped with {code.group(0)} before calling the Runtime API)"
        failed = e["kind"] == schema.INIT_ERROR or (e["kind"] == schema.INVOKE_END and e.get("status") != "ok")
        if failed and is_config_error(e.get("error_type"), e.get("error_message")):
            return " ".join(error_text(e).split())
    return None
