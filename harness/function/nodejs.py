"""Node.js functions on AWS's own runtime interface client, the npm package
`aws-lambda-ric`: find node, install the client once into a cache, and say how
to launch a handler as Lambda's nodejs image does.

The client builds a native addon (aws-lambda-cpp over a bundled libcurl) with
cmake, autotools and node-gyp, so its first install takes a minute or two; every
later trial, sweep worker and CI run reuses ~/.cache/enirace/node/<version>/.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.scenario.model import FunctionConfig

SAMPLE_HANDLERS = paths.REPO_ROOT / "containers" / "nodejs" / "handlers"
PACKAGE = "aws-lambda-ric"
# 4.x declares engines node >= 22; 3.3.0 is the last release that runs on Node 18 and 20.
RIC_FOR_NODE = ((22, "4.0.2"), (0, "3.3.0"))
BUILD_TOOLS = {"npm": "npm", "cmake": "cmake", "autoconf": "autoconf", "automake": "automake",
               "libtoolize": "libtool", "g++": "g++", "make": "make"}
TOOLS_FIX = "apt-get install -y nodejs npm cmake autoconf automake libtool g++ make"
NODE_FIX = "apt-get install -y nodejs npm (Node 18 or newer), or ./setup.sh"
INSTALL_TIMEOUT_S = 900
HANDLER_SUFFIXES = (".js", ".mjs", ".cjs")
_DONE = ".enirace-complete"  # written last: its presence means the install is whole


@dataclass(frozen=True)
class Node:
    path: Path
    version: str  # "20.20.2"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def locate_node() -> Node | None:
    exe = shutil.which("node")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.fullmatch(r"v(\d+\.\d+\.\d+)\s*", out)
    return Node(Path(exe), m.group(1)) if m else None


def ric_version(node: Node) -> str:
    return next(v for major, v in RIC_FOR_NODE if node.major >= major)


def default_cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "enirace" / "node"


def package_dir(version: str, cache_root: Path | None = None) -> Path:
    return (cache_root or default_cache_root()) / version / "node_modules" / PACKAGE


def installed(version: str, cache_root: Path | None = None) -> bool:
    return ((cache_root or default_cache_root()) / version / _DONE).is_file()


def missing_tools() -> list[str]:
    return [pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None]


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One install at a time across sweep workers and parallel runs."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _npm_failure(version: str, output: str, code: int | str, log: Path) -> UserError:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.search(r"error|not found|cannot|failed", ln, re.I)
            and not ln.startswith("npm warn")]
    why = (errs or lines or ["no output"])[0][:160]
    return UserError(f"function.runtime: nodejs: npm install {PACKAGE}@{version} failed ({code}): {why}; "
                     f"full log: {log}; fix: {TOOLS_FIX}, and make the npm registry reachable")


def _build_env() -> dict[str, str]:
    jobs = str(os.cpu_count() or 1)  # curl's make and node-gyp, on every core
    return {"npm_config_update_notifier": "false", "MAKEFLAGS": f"-j{jobs}", "JOBS": jobs}


def _nodedir(node: Node) -> list[str]:
    """node-gyp compiles against this node's own headers when they are installed beside
    it (nodesource, Debian's libnode-dev), instead of downloading them from nodejs.org."""
    prefix = Path(os.path.realpath(node.path)).parent.parent
    return [f"--nodedir={prefix}"] if (prefix / "include" / "node" / "node_api.h").is_file() else []


def ensure_ric(node: Node, cache_root: Path | None = None) -> Path:
    """The installed client's package directory, installing it first if needed."""
    version = ric_version(node)
    root = cache_root or default_cache_root()
    if installed(version, root):
        return package_dir(version, root)
    missing = missing_tools()
    if missing:
        raise UserError(f"function.runtime: nodejs: building {PACKAGE} needs {', '.join(missing)}; "
                        f"fix: {TOOLS_FIX}")
    with _locked(root):
        if installed(version, root):  # another worker finished it while we waited
            return package_dir(version, root)
        for stale in root.glob(f".tmp-{version}-*"):  # installs killed mid-way
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
        log = root / f"install-{version}.log"
        argv = ["npm", "install", "--no-audit", "--no-fund", "--no-save", "--no-package-lock",
                "--prefix", str(work), *_nodedir(node), f"{PACKAGE}@{version}"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                                  cwd=work, env=os.environ | _build_env())
            log.write_text(proc.stdout + proc.stderr)
            built = (work / "node_modules" / PACKAGE / "dist" / "rapid-client.node").is_file()
            if proc.returncode != 0 or not built:
                raise _npm_failure(version, proc.stderr + proc.stdout,
                                   f"exit {proc.returncode}" if proc.returncode else "no native addon", log)
        except subprocess.TimeoutExpired:
            shutil.rmtree(work, ignore_errors=True)
            raise UserError(f"function.runtime: nodejs: npm install {PACKAGE}@{version} took over "
                            f"{INSTALL_TIMEOUT_S} s; check the npm registry and retry") from None
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        # mkdtemp makes 0700: the unprivileged sandbox user must read the client.
        os.chmod(work, 0o755)
        (work / _DONE).write_text(f"{PACKAGE}@{version} for node {node.version}\n")
        final = root / version
        shutil.rmtree(final, ignore_errors=True)  # an incomplete earlier install
        os.rename(work, final)
    return package_dir(version, root)


def describe_ric(node: Node | None = None) -> tuple[bool, str]:
    """(installed, text) for doctor; never installs."""
    node = node or locate_node()
    if node is None:
        return False, "no node on PATH"
    version = ric_version(node)
    if installed(version):
        return True, f"{PACKAGE} {version} in {default_cache_root() / version}"
    missing = missing_tools()
    later = f"build tools missing: {', '.join(missing)}" if missing else "installed at the first nodejs trial"
    return False, f"{PACKAGE} {version} not installed yet ({later})"


def samples(code: Path = SAMPLE_HANDLERS) -> list[str]:
    return sorted({p.stem for p in code.iterdir() if p.suffix in HANDLER_SUFFIXES
                   and not p.stem.startswith("_")}) if code.is_dir() else []


def _handler_file(code: Path, handler: str) -> Path | None:
    """The file Lambda's handler string names: `dir/index.handler` -> dir/index.{js,mjs,cjs}."""
    module = handler.rsplit(".", 1)[0]
    return next((code / f"{module}{s}" for s in HANDLER_SUFFIXES if (code / f"{module}{s}").is_file()), None)


def node_args(memory_mb: int) -> list[str]:
    """The flags the nodejs image's bootstrap gives node: the heap sized from the memory."""
    new_space = memory_mb // 10
    return ["--expose-gc", "--max-http-header-size", "81920",
            f"--max-semi-space-size={new_space // 2}", f"--max-old-space-size={memory_mb - new_space}"]


def launch(fn: FunctionConfig, base_env: dict[str, str]) -> tuple[list[str], dict[str, str], Path, str]:
    """(argv, env, task root, description) for one runtime start."""
    node = locate_node()
    if node is None:
        raise UserError(f"function.runtime: nodejs needs node on PATH; fix: {NODE_FIX}")
    code = Path(fn.code) if fn.code else SAMPLE_HANDLERS
    if not code.is_dir():
        raise UserError(f"function.code: {code} is not a directory; point it at your handler's folder")
    handler = fn.handler if "." in fn.handler else f"{fn.handler}.handler"
    if _handler_file(code, handler) is None:
        names = ", ".join(samples()) if not fn.code else "file.export (index.handler)"
        raise UserError(f"function.handler: no {handler.rsplit('.', 1)[0]}.js/.mjs/.cjs in {code}; "
                        f"use one of: {names}")
    ric = ensure_ric(node)
    major = node.major
    env = base_env | {
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_nodejs{major}.x",
        # The image's NODE_PATH, with the task root where /var/task is.
        "NODE_PATH": f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:{ric.parent}:{code}",
    }
    env.update(fn.env)
    argv = [str(node.path), *node_args(fn.memory_mb), str(ric / "bin" / "index.mjs"), handler]
    return argv, env, code, f"node {PACKAGE} {handler} (node {node.version}, {PACKAGE} {ric_version(node)})"
