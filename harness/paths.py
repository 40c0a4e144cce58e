"""Where enirace's own files are: the checkout that holds scenarios/ and containers/."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTAINERS = REPO_ROOT / "containers"
SCENARIOS = REPO_ROOT / "scenarios"
