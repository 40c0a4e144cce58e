"""Node.js functions without running them: the client release per Node, handler
strings, Lambda's node flags, SnapStart refused, Node's error codes classified."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checker.classify import classify
from harness.errors import ScenarioError, UserError
from harness.function import nodejs
from harness.scenario import model as sc

LATE_ENI = Path(__file__).resolve().parents[2] / "scenarios" / "late-eni-attach.yaml"


@pytest.mark.parametrize("version,ric", [("18.19.0", "3.3.0"), ("20.20.2", "3.3.0"), ("22.1.0", "4.0.2"),
                                         ("24.0.0", "4.0.2")])
def test_the_client_release_follows_nodes_major(version, ric):
    # 4.x declares engines node >= 22; an older node gets the last 3.x.
    assert nodejs.ric_version(nodejs.Node(Path("/usr/bin/node"), version)) == ric


def test_samples_are_the_handler_files():
    assert nodejs.samples() == ["cached_lookup", "fleet_batch", "fleet_naive", "fleet_retry", "fleet_wait",
                                "init_throws", "keepalive_agent", "resilient"]


def test_handler_file_is_found_by_any_node_suffix(tmp_path):
    (tmp_path / "index.js").write_text("")
    (tmp_path / "app.mjs").write_text("")
    (tmp_path / "lib.cjs").write_text("")
    assert nodejs._handler_file(tmp_path, "index.handler") == tmp_path / "index.js"
    assert nodejs._handler_file(tmp_path, "app.main") == tmp_path / "app.mjs"
    assert nodejs._handler_file(tmp_path, "lib.go") == tmp_path / "lib.cjs"
    assert nodejs._handler_file(tmp_path, "other.handler") is None


def test_a_missing_handler_file_is_one_line_naming_the_field(tmp_path):
    if nodejs.locate_node() is None:
        pytest.skip("no node on PATH")
    fn = sc.load(LATE_ENI, ["function.runtime=nodejs", f"function.code={tmp_path}",
                            "function.handler=index.handler"]).function
    with pytest.raises(UserError, match=r"^function.handler: no index.js/.mjs/.cjs in .*; use one of: "
                                        r"file.export"):
        nodejs.launch(fn, {})
    sample = sc.load(LATE_ENI, ["function.runtime=nodejs", "function.handler=nope"]).function
    with pytest.raises(UserError, match=r"use one of: cached_lookup, fleet_batch, fleet_naive, fleet_retry, "
                                        r"fleet_wait, init_throws, keepalive_agent, resilient"):
        nodejs.launch(sample, {})


def test_node_gets_the_heap_flags_of_lambdas_bootstrap():
    assert nodejs.node_args(128) == ["--expose-gc", "--max-http-header-size", "81920",
                                     "--max-semi-space-size=6", "--max-old-space-size=116"]


def test_missing_build_tools_are_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(nodejs.shutil, "which", lambda tool: None if tool == "autoconf" else "/usr/bin/x")
    with pytest.raises(UserError, match=r"needs autoconf; fix: apt-get install -y nodejs npm cmake autoconf"):
        nodejs.ensure_ric(nodejs.Node(Path("/usr/bin/node"), "20.1.0"), cache_root=tmp_path)


def test_snapstart_is_refused_for_nodejs_only():
    with pytest.raises(ScenarioError, match=r"function: snapstart: Lambda does not offer SnapStart for Node"):
        sc.load(LATE_ENI, ["function.runtime=nodejs", "function.snapstart=true"])
    assert sc.load(LATE_ENI, ["function.runtime=python", "function.snapstart=true"]).function.snapstart


@pytest.mark.parametrize("text,layer", [
    ("Error: getaddrinfo EAI_AGAIN svc.internal", "dns"),
    ("Error: getaddrinfo ENOTFOUND svc.internal", "dns"),
    ("Error: connect ECONNREFUSED 198.18.0.10:8080", "connect"),
    ("Error: connect ENETUNREACH 198.18.0.10:8080 - Local (0.0.0.0:0)", "connect"),
    ("Error: connect EHOSTUNREACH 198.18.0.10:8080", "connect"),
    ("Error: read ECONNRESET", "reset"),
    ("Error: socket hang up", "reset"),
    ("Error: connect ETIMEDOUT 198.18.0.10:8080", "timeout"),
    ("ConnectTimeoutError: Connect Timeout Error (UND_ERR_CONNECT_TIMEOUT)", "timeout"),
])
def test_nodes_error_codes_are_classified_by_layer(text, layer):
    assert classify(text) == layer
