""".NET 8 handlers (CoreCLR 8 running our C# Runtime API loop) under late-eni-attach."""

import pytest

from harness.checker import exercise
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root, pytest.mark.dotnet]


def dotnet(trial, handler, *extra):
    return trial(LATE_ENI, "function.runtime=dotnet", f"function.handler={handler}", *extra)


def test_static_httpclient_fails_with_resource_temporarily_unavailable_then_recovers(trial):
    result = dotnet(trial, "static_httpclient")
    v = result.verdict
    first = v.failures[0]
    assert first.error_class == "dns"
    assert "HttpRequestException" in first.text
    assert "Resource temporarily unavailable" in first.text
    # A plain static HttpClient resolves on every new connection: once the ENI is
    # there the next request works. Nothing in .NET caches the DNS failure.
    assert v.verdict == "recovered", v.reason
    assert not v.reinit_needed
    # The kernel probe saw .NET's own lookup while there was no ENI (not only the
    # error text says it met the fault).
    seen = exercise.attempts_in(result.events, exercise.exposure_spans(result.events))
    assert any(a["dst"].endswith(":53") for a in seen), seen


@pytest.mark.parametrize("handler,cached", [("static_init", "TypeInitializationException"),
                                            ("lazy_cached", "Resource temporarily unavailable")])
def test_cached_faults_are_stuck(trial, handler, cached):
    v = dotnet(trial, handler).verdict
    assert v.verdict == "stuck", v.reason
    assert v.failed_invocations == v.invocations
    assert all(f.error_class == "dns" for f in v.failures)
    assert cached in v.failures[-1].text


def test_ctor_throws_recovers_through_a_reinit(trial):
    result = dotnet(trial, "ctor_throws")
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.reinit_needed and v.init_errors >= 1
    assert any(e["kind"] == "init_error" and e["source"] == "init/error" for e in result.events)


def test_resilient_recovers(trial):
    v = dotnet(trial, "resilient").verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 0


def test_a_compile_error_names_file_and_line(trial, tmp_path):
    from harness.errors import UserError

    src = tmp_path / "broken"
    src.mkdir()
    (src / "Handler.cs").write_text("namespace X {\n  public class Y {\n    int z = ;\n  }\n}\n")
    with pytest.raises(UserError, match=r"Handler.cs:3"):
        dotnet(trial, "Y", f"function.code={src}")


ENI_SWAP = LATE_ENI.parent / "eni-swap.yaml"


def test_eni_swap_static_httpclient_hits_the_function_timeout_and_is_reinitialised(trial):
    result = trial(ENI_SWAP, "function.runtime=dotnet", "function.handler=static_httpclient")
    ends = [e for e in result.events if e["kind"] == "invoke_end"]
    # The pooled keep-alive connection died silently with ENI A; HttpClient's default
    # 100 s timeout outlasts the 3 s function timeout, so the emulator kills and resets.
    assert ends[0]["status"] == "ok"
    assert ends[1]["status"] == "timeout"
    assert "timeout" in [e["reason"] for e in result.events if e["kind"] == "reset"]
    assert ends[2]["reinit"] and ends[2]["status"] == "ok"
    assert result.verdict.verdict == "recovered" and result.verdict.reinit_needed


def test_eni_swap_resilient_recovers_within_the_same_or_next_invocation(trial):
    result = trial(ENI_SWAP, "function.runtime=dotnet", "function.handler=resilient")
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations <= 1
    assert not v.reinit_needed
