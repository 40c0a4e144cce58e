"""`enirace doctor`: what the harness needs, what it found, and how to fix the rest."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

import click
from rich.table import Table

from harness import backends
from harness.backends.base import Check
from harness.cli.common import EXIT_ERROR, EXIT_OK, console
from harness.lab.addressing import DEFAULT_POOL
from harness.privileges import PRIVILEGE_FIX, has_privileges

__all__ = ["PRIVILEGE_FIX", "Check", "has_privileges", "run_checks"]


def check_privileges() -> Check:
    ok = has_privileges()
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    return Check("privileges", ok, f"{who}, CAP_NET_ADMIN+CAP_SYS_ADMIN {'present' if ok else 'missing'}",
                 PRIVILEGE_FIX)


def check_iproute2() -> Check:
    ip = shutil.which("ip")
    if not ip:
        return Check("iproute2", False, "no `ip` command", "apt-get install -y iproute2")
    out = subprocess.run([ip, "-V"], capture_output=True, text=True).stdout.strip()
    return Check("iproute2", True, out or ip)


def fault_tool_checks() -> list[Check]:
    """What some faults need beyond iproute2 (docs/faults.md)."""
    iptables = shutil.which("iptables-restore")
    with open("/proc/filesystems") as fh:
        overlay = any(line.split()[-1:] == ["overlay"] for line in fh)
    return [
        Check("iptables (blackhole, netem)", iptables is not None, iptables or "no iptables-restore",
              "apt-get install -y iptables", required=False),
        # The process backend overlays the sandbox's /etc (lab/sandbox_etc.py).
        Check("overlayfs (sandbox /etc)", overlay,
              "overlay in /proc/filesystems" if overlay else "the kernel has no overlayfs",
              "modprobe overlay"),
        Check("tshark (read capture.pcap)", shutil.which("tshark") is not None,
              shutil.which("tshark") or "not installed", "apt-get install -y tshark", required=False),
    ]


def check_module(module: str, package: str) -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return Check(package, False, f"import {module} failed: {exc}",
                     "pip install -e . (inside the project's venv)")
    version = getattr(mod, "__version__", "") or _dist_version(package)
    return Check(package, True, f"{package} {version}".strip())


def _dist_version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def check_pool() -> Check:
    from harness.errors import PoolError
    from harness.lab.addressing import check_pool, parse_pool

    try:
        check_pool(parse_pool(DEFAULT_POOL))
    except PoolError as exc:
        return Check("address pool", False, str(exc), "set lab.pool to a range no host route uses")
    except Exception as exc:
        return Check("address pool", False, f"cannot read host routes: {exc}", PRIVILEGE_FIX)
    return Check("address pool", True, f"{DEFAULT_POOL} is free on this host")


def check_lab() -> Check:
    """Build and tear down a real lab: the one check that proves the kernel side works."""
    if not has_privileges():
        return Check("lab (netns, veth, bridge)", False, "skipped: no privileges", PRIVILEGE_FIX)
    from harness.lab import addressing
    from harness.lab.topology import Lab
    from harness.ownership import Run

    try:
        with Run.register("doctor") as run:
            lease = addressing.acquire(addressing.parse_pool(DEFAULT_POOL), run)
            lab = Lab(run, lease.subnet)
            try:
                lab.up()
                lab.attach_eni()
                state = lab.sandbox_state()
            finally:
                lab.down()
                lease.release()
        return Check("lab (netns, veth, bridge)", True,
                     f"built and removed a lab; ENI {state['links'][0]['addresses'][0]}")
    except Exception as exc:
        return Check("lab (netns, veth, bridge)", False, f"{type(exc).__name__}: {exc}",
                     "needs a kernel with veth and bridge support (modprobe veth bridge)")


def check_freezer() -> Check:
    """What freezes the runtime between invocations (workload.freeze) here."""
    from harness.errors import UserError
    from harness.function import freezer

    try:
        ok, found, fix = freezer.doctor_row()
    except UserError as exc:
        ok, found, fix = False, str(exc), f"unset {freezer.FORCE_ENV}"
    return Check("freezer (freeze between invocations)", ok, found, fix, required=False)


def dotnet_checks() -> list[Check]:
    """The .NET 8 runtime and the C# compiler (optional: only .NET functions need them)."""
    from harness.function import dotnet as dotnet
    from harness.function import dotnet_doctor

    runtime, compiler = dotnet.locate_runtime(), dotnet.locate_compiler()
    return [
        Check(".NET 8 runtime", runtime is not None,
              dotnet.describe_runtime(runtime) if runtime else "not found",
              dotnet.runtime_fix_hint(), required=False),
        Check("C# compiler", compiler is not None,
              dotnet.describe_compiler(compiler) if compiler else "not found",
              dotnet.compiler_fix_hint(), required=False),
        *(Check(name, ok, found, fix, required=False) for name, ok, found, fix in dotnet_doctor.rows()),
    ]


def nodejs_checks() -> list[Check]:
    """Node and AWS's aws-lambda-ric (optional: only Node.js functions need them)."""
    from harness.function import nodejs

    node = nodejs.locate_node()
    ok, ric = nodejs.describe_ric(node)
    return [
        Check("Node.js", node is not None, f"node {node.version} ({node.path})" if node else "not found",
              nodejs.NODE_FIX, required=False),
        Check("aws-lambda-ric (Node.js runtime client)", ok, ric, nodejs.TOOLS_FIX, required=False),
    ]


def check_moto() -> Check:
    from harness.fleet import moto_server

    why = moto_server.missing()
    found = why or f"moto {_dist_version('moto')}, boto3 {_dist_version('boto3')}"
    return Check("moto server (enirace fleet's sqs source)", why is None, found, moto_server.INSTALL_FIX,
                 required=False)


def check_criu() -> Check:
    from harness.function import checkpoint

    why = checkpoint.unusable()
    argv = checkpoint.locate()
    if why is None and argv is not None:
        found = f"criu {'.'.join(map(str, checkpoint.version(argv) or ()))} at {argv[0]}"
    else:
        found = why or "no usable CRIU"
    return Check("CRIU (snapstart.mode: criu)", why is None, found, checkpoint.FIX, required=False)


def run_checks() -> list[Check]:
    checks = [check_privileges(), check_iproute2()]
    for module, package in (("pyroute2", "pyroute2"), ("dnslib", "dnslib"),
                            ("awslambdaric", "awslambdaric"), ("requests", "requests")):
        checks.append(check_module(module, package))
    checks += [check_pool(), check_lab(), check_freezer(), *fault_tool_checks(), *dotnet_checks(),
               *nodejs_checks(), check_moto(), check_criu()]
    for backend in backends.all_backends():  # what only that backend needs
        checks += backend.doctor_checks()
    return checks


DOCTOR_EPILOG = """\b
Examples:
  sudo enirace doctor
  sudo ENIRACE_FREEZER=sigstop enirace doctor

\b
Exit codes: 0 every required check passed (optional ones may be missing); 2 a required
check failed, as privileges do without root (each row says its fix); 130 interrupted."""


@click.command(epilog=DOCTOR_EPILOG)
def doctor() -> None:
    """List the prerequisites found and missing, with the fix for each."""
    table = Table(show_header=True, header_style="bold")
    for col in ("check", "status", "found", "fix"):
        table.add_column(col, overflow="fold")
    failed = False
    for check in run_checks():
        status = "[green]ok[/]" if check.ok else ("[red]missing[/]" if check.required else "[yellow]optional[/]")
        failed = failed or (check.required and not check.ok)
        table.add_row(check.name, status, check.found, "" if check.ok else check.fix)
    console.print(table)
    sys.exit(EXIT_ERROR if failed else EXIT_OK)
