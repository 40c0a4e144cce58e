"""A .NET team's own function, unchanged: a `dotnet publish` folder (or its zip)
compiled in the usual Lambda style against stand-ins of Amazon.Lambda.Core and
its JSON serializer, run by enirace's host with the handler string
Assembly::Namespace.Type::Method, as Lambda's managed dotnet8 runtime runs it."""

from __future__ import annotations

import pytest

from harness.errors import UserError
from tests.dotnet_functions import publish, zip_folder
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root, pytest.mark.dotnet]

ENI_SWAP = LATE_ENI.parent / "eni-swap.yaml"
HANDLER = "MyFunction::MyFunction.Function::FunctionHandler"
PING = "workload.payload='\"ping\"'"
QUIET = ("lab.eni=present", "schedule=[]", "workload.invocations=2", "workload.interval=100ms")


@pytest.fixture(scope="module")
def functions(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    return {"MyFunction": publish(root / "MyFunction"),
            "Signatures": publish(root / "Signatures", "Signatures"),
            "NoSerializer": publish(root / "NoSerializer", "NoSerializer", serializer=False),
            "zip": zip_folder(publish(root / "zipped"), root / "MyFunction.zip")}


def dotnet(trial, code, handler, *extra, scenario=LATE_ENI):
    return trial(scenario, "function.runtime=dotnet", f"function.code={code}", f"function.handler={handler}", *extra)


def test_the_usual_function_fails_like_the_static_httpclient_sample_and_recovers(trial, functions):
    # +800ms: well inside the window on both, so both fail before the ENI is there.
    late = "schedule[0].at.offset=800ms"
    result = dotnet(trial, functions["MyFunction"], HANDLER, PING, late)
    v = result.verdict
    sample = trial(LATE_ENI, "function.runtime=dotnet", "function.handler=static_httpclient", late).verdict
    assert v.verdict == sample.verdict == "recovered", v.reason
    assert v.failures[0].text == sample.failures[0].text
    assert v.failures[0].text.startswith("HttpRequestException: Resource temporarily unavailable (svc.internal:8080)")
    logged = [e["line"] for e in result.events if e["kind"] == "log" and "\tinfo\tcalling " in e["line"]]
    assert len(logged) == v.invocations  # context.Logger.LogLine, one per invocation, with the request id
    assert all(line.split("\t")[1] for line in logged)


def test_the_zip_runs_under_eni_swap(trial, functions):
    v = dotnet(trial, functions["zip"], HANDLER, PING, scenario=ENI_SWAP).verdict
    assert v.verdict == "recovered", v.reason


def bodies(result):
    return [e["body"] for e in result.events if e["kind"] == "invoke_end" and e["status"] == "ok"]


@pytest.mark.parametrize("handler,payload,expected", [
    ("Signatures.NoArgs::Handle", "{}", ""),
    ("Signatures.OnlyContext::Handle", "{}", ""),
    ("Signatures.Streams::Echo", "{a: 1}", 'echo:{"a": 1}'),
    ("Signatures.Pocos::Handle", "{Id: 41, Name: abc}", '{"Id":42,"Name":"ABC"}'),
    # An overload picked by its full signature, as MethodInfo.ToString() prints it.
    ("Signatures.Overloaded::Void Handle(System.IO.Stream)", "{}", ""),
])
def test_each_signature_family(trial, functions, handler, payload, expected):
    result = dotnet(trial, functions["Signatures"], f"Signatures::{handler}", f"workload.payload={payload}", *QUIET)
    assert result.verdict.verdict == "healthy", result.verdict.reason
    assert bodies(result) == [expected, expected]


def test_the_static_constructor_runs_in_init_and_the_static_logger_and_context_reach_the_log(trial, functions):
    result = dotnet(trial, functions["Signatures"], "Signatures::Signatures.NoArgs::Handle", *QUIET)
    lines = [e["line"] for e in result.events if e["kind"] == "log"]
    init = next(i for i, e in enumerate(result.events) if e["kind"] == "runtime_ready")
    ctor = next(i for i, e in enumerate(result.events) if e["kind"] == "log" and "static constructor ran" in e["line"])
    assert ctor < init
    assert sum("\tinfo\tstatic logger call" in ln for ln in lines) == 2
    ctx = dotnet(trial, functions["Signatures"], "Signatures::Signatures.OnlyContext::Handle", *QUIET)
    assert any("\tinfo\tfunction test_function 128 MB " in e["line"] for e in ctx.events if e["kind"] == "log")


def test_remaining_time_counts_down(trial, functions):
    result = dotnet(trial, functions["Signatures"], "Signatures::Signatures.Timing::Remaining", PING, *QUIET)
    for body in bodies(result):
        first, second = map(int, body.strip('"').split())
        assert 0 < second <= first - 250 and first <= 3000


def test_a_throwing_constructor_is_an_init_error(trial, functions):
    result = dotnet(trial, functions["Signatures"], "Signatures::Signatures.Throws::Handle", *QUIET)
    errors = [e for e in result.events if e["kind"] == "init_error"]
    assert errors and "TargetInvocationException" in str(errors[0])
    assert result.verdict.verdict != "healthy"


@pytest.mark.parametrize("code,handler,message", [
    ("MyFunction", "Nope::MyFunction.Function::FunctionHandler",
     "Could not find the specified handler assembly with the file name 'Nope, Culture=neutral, PublicKeyToken=null'"),
    ("MyFunction", "MyFunction::MyFunction.Nope::FunctionHandler",
     "Unable to load type 'MyFunction.Nope' from assembly 'MyFunction'."),
    ("MyFunction", "MyFunction::MyFunction.Function::Nope",
     "Unable to find method 'Nope' in type 'MyFunction.Function' from assembly 'MyFunction'"),
    ("MyFunction", "MyFunction::MyFunction.Function",
     "Invalid lambda function handler: 'MyFunction::MyFunction.Function'. "
     "The valid format is 'ASSEMBLY::TYPE::METHOD'."),
    ("MyFunction", "MyFunction::::FunctionHandler", "the type is missing"),
    ("Signatures", "Signatures::Signatures.Overloaded::Handle", "appears to have a number of overloads"),
    ("NoSerializer", "NoSerializer::NoSerializer.Function::FunctionHandler",
     "Could not find the LambdaSerializerAttribute on the assembly 'NoSerializer' or method 'FunctionHandler'"),
])
def test_a_handler_that_does_not_resolve_is_one_line_before_any_lab(trial, functions, code, handler, message):
    with pytest.raises(UserError) as caught:
        dotnet(trial, functions[code], handler)
    text = str(caught.value)
    assert "\n" not in text and message in text
    assert text.startswith("function.handler: LambdaValidationException: ")
