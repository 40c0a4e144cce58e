"""`enirace-rie`: the harness's Runtime API emulator as a stand-alone drop-in for
`aws-lambda-rie` (aws-lambda-runtime-interface-emulator): the same flags, environment variables,
ports and log lines, so it can be copied to /usr/local/bin/aws-lambda-rie in an
image that lacks the real one. Stdlib only (python3 is all it needs).

    enirace-rie [--log-level L] [--runtime-api-address H:P]
                [--runtime-interface-emulator-address H:P] [--enable-init-caching]
                [bootstrap [args ...]]

Deviations from the real RIE, on purpose: a concurrent invoke waits for the
running one instead of crashing the emulator; REPORT's Init Duration is the real
init time (the RIE prints ~0, its issue #106). --enable-init-caching mounts
/runtime/restore/next and /runtime/restore/error, as the RIE's flag does (without
it they are 404 page not found); a runtime started with
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start is then snapshotted (frozen) in
restore/next and restored at the first invoke, on an unchanged network. The real
RIE never restores: its runtime waits in restore/next until the invoke times out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from harness.emulator import rie_log as rie_log
from harness.emulator.api import RuntimeAPI
from harness.emulator.restore import Plan
from harness.function.handle import RuntimeProcess
from harness.function.spec import MAX_LINE_BYTES, LaunchSpec
from harness.history import schema
from harness.history.recorder import Event, History

BOOTSTRAP_SEARCH = ("/var/task/bootstrap", "/opt/bootstrap", "/var/runtime/bootstrap")
ENV_DEFAULTS = {
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Functions",
    "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
    "AWS_LAMBDA_FUNCTION_NAME": "test_function",
}
EXTENSIONS_DIR = "/opt/extensions"
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_VALUE_FLAGS = ("--log-level", "--runtime-api-address", "--runtime-interface-emulator-address")


class Options:
    def __init__(self) -> None:
        self.log_level = os.environ.get("LOG_LEVEL", "info").lower()
        self.runtime_api = "127.0.0.1:9001"
        self.emulator = "0.0.0.0:8080"
        self.init_caching = False
        self.freeze = False  # enirace's own flag: the RIE never freezes the runtime
        self.args: list[str] = []  # positional: the bootstrap command, unknown flags kept


def parse_args(argv: list[str]) -> Options:
    """go-flags with IgnoreUnknown: known flags anywhere, everything else positional."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"enirace-rie: expected argument for flag `{name}'")
                i += 1
                value = argv[i]
            if name == "--log-level":
                opts.log_level = value.lower()
            elif name == "--runtime-api-address":
                opts.runtime_api = value
            else:
                opts.emulator = value
        elif arg == "--enable-init-caching":
            opts.init_caching = True
        elif arg == "--freeze":
            opts.freeze = True
        else:
            opts.args.append(arg)
        i += 1
    if opts.log_level not in rie_log.LEVELS:
        raise SystemExit(f"enirace-rie: not a valid logrus Level: {opts.log_level!r}")
    return opts


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def bootstrap(args: list[str]) -> tuple[list[str], Path, str]:
    """(argv, cwd, handler) the way the RIE picks them: the handler is the last of
    several bootstrap arguments, else empty (the runtime's _HANDLER then falls back
    to AWS_LAMBDA_FUNCTION_HANDLER or _HANDLER, see runtime_handler)."""
    if not args:
        for candidate in BOOTSTRAP_SEARCH:
            if os.path.isfile(candidate):
                return [candidate], Path("/var/task"), ""
        raise SystemExit(rie_log.rapid_line("fatal", f"Couldn't find valid bootstrap(s): {list(BOOTSTRAP_SEARCH)}"))
    return list(args), Path.cwd(), args[-1] if len(args) > 1 else ""


def runtime_handler(handler: str) -> str:
    return handler or os.environ.get("AWS_LAMBDA_FUNCTION_HANDLER", os.environ.get("_HANDLER", ""))


def extension_paths(directory: str = EXTENSIONS_DIR) -> list[Path]:
    """The files (not directories) in /opt/extensions, as the RIE lists them to launch."""
    try:
        return sorted(p for p in Path(directory).iterdir() if not p.is_dir())
    except OSError:
        return []


def runtime_env(handler: str, runtime_api: str) -> dict[str, str]:
    env = {**ENV_DEFAULTS, **os.environ}
    for key in CREDENTIALS:
        env.setdefault(key, "")
    env["_HANDLER"] = handler
    env["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    return env


class _Console:
    """Writes the RIE's two streams: rapid lines to stderr, START/END/REPORT and the
    runtime's output to stdout."""

    def __init__(self, level: str, memory_mb: str, timeout_s: float = 300.0) -> None:
        self.level = level
        self.memory_mb = memory_mb
        self.timeout_ms = timeout_s * 1000  # the RIE caps REPORT's durations at the timeout
        self._lock = threading.Lock()
        self._init_start_ms: dict[int, float] = {}
        self._ready = False
        self._pending_invoke: str | None = None
        self._first_init_ms: float | None = None
        self._reported_init = False
        self._ends: dict[str, Event] = {}

    def out(self, line: str) -> None:
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def rapid(self, level: str, message: str, **fields: Any) -> None:
        if rie_log.enabled(self.level, level):
            with self._lock:
                sys.stderr.write(rie_log.rapid_line(level, message, **fields) + "\n")
                sys.stderr.flush()

    def emulator_log(self, line: str) -> None:
        """RuntimeAPI's START/END lines; REPORT follows END, as in the RIE."""
        self.out(line)
        if line.startswith("END RequestId: "):
            end = self._ends.pop(line.split(": ", 1)[1], None)
            if end is not None:
                init_ms = None
                if not self._reported_init and self._first_init_ms is not None:
                    init_ms, self._reported_init = min(self._first_init_ms, self.timeout_ms), True
                self.out(rie_log.report_line(end["request_id"], min(end["duration_ms"], self.timeout_ms),
                                             self.memory_mb, init_ms))

    def access(self, method: str, path: str, headers: Any, role: str) -> None:
        """The RIE's AccessLogMiddleware (runtime-port routers only), at debug."""
        if role == "runtime" and rie_log.enabled(self.level, "debug"):
            pairs = [(k, v) for k, v in headers.items() if k.lower() != "host"]  # Go moves Host out
            self.rapid("debug", rie_log.access_message(method, path, pairs))

    def on_event(self, e: Event) -> None:
        kind = e["kind"]
        if kind == schema.INIT_START:
            gen = e["generation"]
            self._ready = False
            self._init_start_ms[gen] = e["t_ms"]
            self.rapid("info", f"INIT START(type: on-demand, phase: {'init' if gen == 1 else 'invoke'})")
            if not os.path.isdir("/opt/extensions"):
                self.rapid("info", 'The extension\'s directory "/opt/extensions" does not exist, '
                                   "assuming no extensions to be loaded.")
            if not all(os.environ.get(k) for k in CREDENTIALS):
                self.rapid("info", "Starting runtime without AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                                   "AWS_SESSION_TOKEN , Expected?: false")
        elif kind == schema.RUNTIME_READY:
            took = e["t_ms"] - self._init_start_ms.get(e["generation"], e["t_ms"])
            if self._first_init_ms is None:
                self._first_init_ms = took
            self._ready = True
            self.rapid("info", "INIT RTDONE(status: success)")
            self.rapid("info", f"INIT REPORT(durationMs: {took:.6f})")
            if self._pending_invoke:
                self.rapid("info", f"INVOKE START(requestId: {self._pending_invoke})")
                self._pending_invoke = None
        elif kind == schema.INIT_ERROR:
            took = e["t_ms"] - self._init_start_ms.get(e.get("generation", 0), e["t_ms"])
            self.rapid("info", "INIT RTDONE(status: error)")
            self.rapid("info", f"INIT REPORT(durationMs: {took:.6f})")
            self.rapid("error", "Init failed", InvokeID="", error=e.get("error_message") or e.get("error_type")
                       or "Runtime.Unknown")
        elif kind == schema.INVOKE_START:
            if self._ready:
                self.rapid("info", f"INVOKE START(requestId: {e['request_id']})")
            else:
                self._pending_invoke = e["request_id"]
        elif kind == schema.RUNTIME_EXIT:
            # The bare termination text (Go's ProcessState), as the RIE's supervisor logs it.
            bare = str(e["reason"]).removeprefix("Runtime exited with error: ")
            self.rapid("warning", f"Process runtime-{e['generation']} exited: {bare}")
            self._ready = False  # the next invoke re-inits: its INVOKE START follows INIT START
        elif kind == schema.RESET:
            self._ready = False
            self.rapid("warning", f"Reset initiated: {'Timeout' if e['reason'] == 'timeout' else 'ReleaseFail'}")
        elif kind == schema.INVOKE_END:
            self._pending_invoke = None
            status = e["status"]
            if status in ("ok", "error"):
                self.rapid("info", f"INVOKE RTDONE(status: {'success' if status == 'ok' else 'error'}, "
                                   f"produced bytes: {len(e.get('body', '').encode())}, "
                                   f"duration: {e['duration_ms']:.6f}ms)")
            elif status in ("crash", "init_error"):
                self.rapid("error", "Invoke failed", InvokeID=e["request_id"],
                           error=e.get("error_message") or e.get("error_type") or "Runtime.ExitError")
            if status in ("ok", "error", "timeout"):
                self._ends[e["request_id"]] = e


class _Spawner:
    """Starts the bootstrap in its own process group; its stdout and stderr go to ours."""

    def __init__(self, console: _Console) -> None:
        self.console = console

    def __call__(self, spec: LaunchSpec, generation: int) -> RuntimeProcess:
        popen = subprocess.Popen(spec.argv, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        proc = RuntimeProcess(generation, popen)
        proc._pump = threading.Thread(target=self._pump, args=(popen,), daemon=True)
        proc._pump.start()
        return proc

    def _pump(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        while raw := popen.stdout.readline(MAX_LINE_BYTES):
            self.console.out(raw.decode("utf-8", "replace").rstrip("\r\n"))
        popen.stdout.close()


_OPT = "      {:<40}{}"
USAGE = "\n".join([
    "Usage:", "  aws-lambda-rie [OPTIONS]", "", "Application Options:",
    _OPT.format("--log-level=", "The level of AWS Lambda Runtime Interface Emulator logs to display. "
                "Can also be set by the environment variable 'LOG_LEVEL'. Defaults to the value 'info'."),
    _OPT.format("--enable-init-caching", "Enable support for Init Caching"),
    _OPT.format("--freeze", "enirace only: freeze the runtime between invocations, as Lambda does "
                "(the RIE never does); SIGSTOP/SIGCONT of its process group, which it can observe"),
    _OPT.format("--runtime-api-address=", "The address of the AWS Lambda Runtime API to communicate "
                "with the Lambda execution environment."),
    _OPT.format("--runtime-interface-emulator-address=", "The address for the AWS Lambda Runtime "
                "Interface Emulator to accept HTTP request upon. (default: 0.0.0.0:8080)"),
    "", "Help Options:", "  -h, --help                                  Show this help message", ""])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # go-flags' built-in help flag: the usage, exit 0 (before any server starts).
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        sys.exit(0)
    opts = parse_args(args)
    if "AWS_LAMBDA_MAX_CONCURRENCY" in os.environ:
        sys.stderr.write("enirace-rie: AWS_LAMBDA_MAX_CONCURRENCY (managed-instances mode) is not "
                         "supported; running one invoke at a time\n")
    try:
        timeout_s = int(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "300"))
    except ValueError:
        raise SystemExit("enirace-rie: AWS_LAMBDA_FUNCTION_TIMEOUT must be whole seconds") from None
    env_all = {**ENV_DEFAULTS, **os.environ}
    console = _Console(opts.log_level, env_all["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], timeout_s)
    cmd, cwd, handler = bootstrap(opts.args)
    if opts.args:  # the RIE logs the exec line only for a bootstrap given on the command line
        console.rapid("info", f"exec '{cmd[0]}' (cwd={cwd}, handler={handler})")
    env = runtime_env(runtime_handler(handler), opts.runtime_api)
    spec = LaunchSpec(cmd, env, cwd, " ".join(cmd))
    # Relaunched with every runtime generation, as the RIE's supervisor does.
    extensions = [LaunchSpec([str(p)], env, cwd, p.name) for p in extension_paths()]
    history = History()
    history.subscribe(console.on_event, replay=False)
    # Nothing reads the drop-in's history back; keep a long session from growing it.
    history.subscribe(lambda e: history.events.clear() if len(history.events) > 256 else None, replay=False)
    api = RuntimeAPI(None, history, _Spawner(console), spec, timeout_s=timeout_s, init_timeout_s=timeout_s,
                     function_name=env_all["AWS_LAMBDA_FUNCTION_NAME"], log=console.emulator_log,
                     freeze=opts.freeze,
                     runtime_addr=_address(opts.runtime_api), invoke_addr=_address(opts.emulator),
                     extensions=extensions, handler=runtime_handler(handler),
                     snapstart=Plan() if opts.init_caching else None)
    api.access_log = console.access
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        name = {int(signal.SIGTERM): "terminated", int(signal.SIGINT): "interrupt"}.get(signum, str(signum))
        console.rapid("info", "Received signal", signal=name)
        console.rapid("info", "Shutting down...")
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    api.start()
    try:
        done.wait()
    finally:
        api.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
