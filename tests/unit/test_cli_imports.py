"""Every command starts light: what only reports, fleets or captures need is loaded by
them alone. (matplotlib alone doubled the peak memory of an `enirace run` that
refuses its scenario, past the bound tests/unit/test_scenario_limits.py sets.)"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("matplotlib", "numpy", "boto3", "botocore", "moto", "scapy")


def test_the_command_line_loads_no_plotting_cloud_or_packet_library():
    probe = ("import json, sys; import harness.cli.main; "
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []
