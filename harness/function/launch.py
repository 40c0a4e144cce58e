"""What runs in the sandbox: turn a scenario's `function:` block into a LaunchSpec.

Runtimes: `python` (the real awslambdaric, `python -m awslambdaric module.fn`),
`dotnet` (the C# runtime loop on CoreCLR 8), `nodejs` (the real aws-lambda-ric
npm package, harness/function/nodejs.py) and `command` (any bootstrap).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths
from harness.errors import UserError
from harness.function import python_code
from harness.function.extensions import check_interpreter
from harness.function.spec import RUNTIME_ADDR, LaunchSpec
from harness.lab.services import SERVICE_NAME, SERVICE_PORT

if TYPE_CHECKING:
    from harness.scenario.model import FunctionConfig

REPO_ROOT = paths.REPO_ROOT
PYTHON_SAMPLES = REPO_ROOT / "containers" / "python" / "handlers"
TARGET_URL = f"http://{SERVICE_NAME}:{SERVICE_PORT}/"


def python_samples() -> list[str]:
    return sorted(p.stem for p in PYTHON_SAMPLES.glob("*.py") if not p.stem.startswith("_"))


def lambda_env(fn: FunctionConfig, handler: str, task_root: Path) -> dict[str, str]:
    """The environment the RIE gives a bootstrap (the AWS_LAMBDA_* defaults, empty
    credentials, _HANDLER, LAMBDA_TASK_ROOT, AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001),
    plus TARGET_URL."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",  # the runtime's private tmpfs (harness/function/contain.py)
        "AWS_LAMBDA_RUNTIME_API": f"{RUNTIME_ADDR[0]}:{RUNTIME_ADDR[1]}",
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "TARGET_URL": TARGET_URL,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if fn.snapstart:
        # The runtime then snapshots after init: restore/next (harness/emulator/restore.py).
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    env.update(fn.env)
    return env


def python_launch(fn: FunctionConfig) -> LaunchSpec:
    code = Path(fn.code) if fn.code else PYTHON_SAMPLES
    handler = fn.handler if "." in fn.handler else f"{fn.handler}.handler"
    module = handler.rsplit(".", 1)[0]
    if not code.is_dir():
        raise UserError(f"function.code: {code} is not a directory; point it at your handler's folder")
    module_file = code / (module.replace(".", "/") + ".py")
    package = code / module.replace(".", "/")
    if not module_file.exists() and not package.is_dir():
        offered = python_samples() if not fn.code else python_code.candidates(code)
        hint = f"use one of: {', '.join(offered)}" if offered else "it has no module with a top-level function"
        raise UserError(f"function.handler: no module {module!r} in {code}; {hint}")
    if not module_file.exists():
        module_file = package / "__init__.py"
    if module_file.is_file():
        python_code.check_handler(module_file, module, handler.rsplit(".", 1)[1])
    env = lambda_env(fn, handler, code)
    env["PYTHONPATH"] = str(code)
    argv = [sys.executable, "-m", "awslambdaric", handler]
    return LaunchSpec(argv, env, code, f"python -m awslambdaric {handler}")


def command_launch(fn: FunctionConfig) -> LaunchSpec:
    if not fn.command:
        raise UserError("function.command: required when function.runtime is 'command' "
                        "(e.g. command: [./bootstrap])")
    code = Path(fn.code) if fn.code else Path.cwd()
    exe = fn.command[0]
    if not (code / exe).exists() and shutil.which(exe) is None and not Path(exe).exists():
        raise UserError(f"function.command: {exe} not found (relative to {code} or on PATH)")
    check_bootstrap(code / exe if (code / exe).exists() else Path(shutil.which(exe) or exe))
    env = lambda_env(fn, fn.handler, code)
    return LaunchSpec(list(fn.command), env, code, " ".join(fn.command))


def check_bootstrap(path: Path) -> None:
    """The bootstrap can be executed: Lambda fails a function whose bootstrap cannot
    be (Runtime.InvalidEntrypoint, "fork/exec ...: permission denied")."""
    if path.is_dir() or not os.access(path, os.X_OK):
        raise UserError(f"function.command: {path} is not an executable file (Lambda reports "
                        f"Runtime.InvalidEntrypoint); chmod +x it")
    check_interpreter("function.command", path)


def dotnet_samples() -> list[str]:
    from harness.function import dotnet as dotnet

    return dotnet.handler_names()


def dotnet_launch(fn: FunctionConfig) -> LaunchSpec:
    """Build (or reuse the cached build of) the C# runtime loop plus the handler
    sources, then run it on CoreCLR 8."""
    from harness.function import dotnet as dotnet
    from harness.function import dotnet_code

    runtime = dotnet.locate_runtime()
    if runtime is None:
        raise UserError(f"function.runtime: dotnet needs a .NET 8 runtime; {dotnet.runtime_fix_hint()}")
    code = Path(fn.code) if fn.code else dotnet.SAMPLE_HANDLERS
    if fn.code and dotnet_code.kind(code) != "sources":
        return published_launch(fn, runtime, dotnet_code.published_folder(code))
    if not code.is_dir():
        raise UserError(f"function.code: {code} is not a directory of C# sources, a publish folder or its .zip")
    build = dotnet.build(code)
    if not fn.code and fn.handler not in dotnet.handler_names():
        raise UserError(f"function.handler: no .NET sample {fn.handler!r}; use one of: "
                        f"{', '.join(dotnet.handler_names())}")
    env = lambda_env(fn, fn.handler, code) | runtime.env()
    env["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1"
    return LaunchSpec(build.argv(fn.handler, runtime), env, code,
                      f"dotnet exec function.dll {fn.handler} (.NET {runtime.version})", program=build.dll)


def nodejs_samples() -> list[str]:
    from harness.function import nodejs

    return nodejs.samples()


def nodejs_launch(fn: FunctionConfig) -> LaunchSpec:
    from harness.function import nodejs

    code = Path(fn.code) if fn.code else nodejs.SAMPLE_HANDLERS
    argv, env, cwd, description = nodejs.launch(fn, lambda_env(fn, fn.handler, code))
    return LaunchSpec(argv, env, cwd, description)


def published_launch(fn: FunctionConfig, runtime, folder: Path) -> LaunchSpec:
    """A `dotnet publish` folder: the handler string resolved before the lab is
    built, then started as Lambda's dotnet8 bootstrap starts it."""
    from harness.function import dotnet_code

    argv, program = dotnet_code.argv(runtime, folder, fn.handler)
    dotnet_code.check_handler(argv, folder)
    env = lambda_env(fn, fn.handler, folder) | runtime.env()
    env["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1"
    return LaunchSpec(argv, env, folder, f"dotnet exec {program.name} {fn.handler} (.NET {runtime.version})",
                      program=program)


IMAGE_TASK_ROOT = Path("/var/task")


def image_launch(fn: FunctionConfig) -> LaunchSpec:
    """A team's own container image: the function and its runtime client are in the
    image, so nothing is built or resolved here; its entrypoint gets the handler."""
    env = lambda_env(fn, fn.handler, IMAGE_TASK_ROOT)
    return LaunchSpec([], env, IMAGE_TASK_ROOT, f"the image's entrypoint and bootstrap, handler {fn.handler}")


def launch_spec(fn: FunctionConfig) -> LaunchSpec:
    if fn.runtime == "python":
        return python_launch(fn)
    if fn.runtime == "command":
        return command_launch(fn)
    if fn.runtime == "dotnet":
        return dotnet_launch(fn)
    if fn.runtime == "nodejs":
        return nodejs_launch(fn)
    raise UserError(f"function.runtime: unknown runtime {fn.runtime!r}; use python, dotnet, nodejs or command")
