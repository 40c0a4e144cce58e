"""containers/criu/install.sh fetches CRIU with apt into a private state; the system's
apt hooks (an update's Post-Invoke-Success runs appstreamcli refresh, PackageKit's
signal, command-not-found's index) must not run on it, or the fetch changes the
system's caches. The apt it calls is replaced by one that records the configuration
apt would run with, then stops the script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

INSTALL = Path(__file__).resolve().parents[2] / "containers" / "criu" / "install.sh"
HOOKS = ("APT::Update::Pre-Invoke", "APT::Update::Post-Invoke", "DPkg::Pre-Invoke", "DPkg::Post-Invoke")


def _apt_config(env: dict[str, str]) -> list[str]:
    done = subprocess.run(["apt-config", "dump"], env=env, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _hook_commands(lines: list[str]) -> list[str]:
    # A hook is a list: its commands are the children ("APT::Update::Post-Invoke-Success:: ...").
    return [line for line in lines if line.startswith(HOOKS) and ":: " in line]


def test_the_private_apt_runs_no_system_hook_and_keeps_the_systems_other_settings(tmp_path: Path) -> None:
    shims, dump = tmp_path / "bin", tmp_path / "dump"
    shims.mkdir()
    # An old criu on PATH, so the script goes on to fetch; apt-get records and stops it.
    (shims / "criu").write_text("#!/bin/sh\necho 'Version: 3.0'\n")
    (shims / "apt-get").write_text(f"#!/bin/sh\napt-config dump > {dump}\nexit 3\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    # A hook of the kind Debian ships in apt.conf.d, given to apt through APT_CONFIG (the
    # system's own files are not the test's to change); the script keeps the caller's file.
    system_conf = tmp_path / "system.conf"
    system_conf.write_text('APT::Update::Post-Invoke-Success { "touch /nonexistent/hooked"; };\n'
                           'Acquire::Retries "7";\n')
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "APT_CONFIG": str(system_conf)}
    assert _hook_commands(_apt_config(env))  # the stand-in system configuration has its hook
    done = subprocess.run(["bash", str(INSTALL), str(tmp_path / "criu")], env=env, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    seen = dump.read_text().splitlines()
    assert _hook_commands(seen) == []
    assert 'Acquire::Retries "7";' in seen  # the caller's other settings still apply
    system = [line for line in _apt_config({**os.environ, "APT_CONFIG": ""}) if line.startswith("Acquire::")]
    assert set(system) <= set(seen)  # and so do the system's (proxies, the archive's date checks)
