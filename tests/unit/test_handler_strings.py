"""function.handler: enirace's rule for Python, Node.js and commands; Lambda's
Handler-field rule for .NET, plus the full method signatures RuntimeSupport
resolves (an image's CMD carries them)."""

from __future__ import annotations

import pytest

from harness.errors import ScenarioError
from harness.scenario import handlers
from harness.scenario import model as sc

SIGNATURE = ("MyFunction::MyFunction.Function::System.Threading.Tasks.Task`1[System.String] "
             "FunctionHandler(System.Collections.Generic.Dictionary`2[System.String,System.String], "
             "Amazon.Lambda.Core.ILambdaContext)")


def _function(runtime: str, handler: str) -> sc.FunctionConfig:
    return sc.FunctionConfig(runtime=runtime, handler=handler)


@pytest.mark.parametrize("handler", [
    "MyFunction::MyFunction.Function::FunctionHandler",
    "MyFunction::MyFunction.Outer+Inner::Handle",  # a nested type, as reflection names it
    "MyFunction::MyFunction.Generic`1::Handle",
    "MyFunction::MyFunction.Function::System.String FunctionHandler(System.String, Amazon.Lambda.Core.ILambdaContext)",
    SIGNATURE,
    "Bootstrap",  # an executable assembly
    "static_httpclient",  # a sample
])
def test_dotnet_takes_what_lambda_and_runtimesupport_take(handler: str) -> None:
    assert _function("dotnet", handler).handler == handler


def test_a_full_signature_may_pass_lambdas_128_characters() -> None:
    assert len(SIGNATURE) > handlers.LAMBDA_HANDLER_CHARS
    assert _function("dotnet", SIGNATURE).handler == SIGNATURE


@pytest.mark.parametrize("handler", [
    "MyFunction::MyFunction.Function::" + "H" * 120,  # over 128 characters, no signature
    "MyFunction::MyFunction.Function::Function Handler",  # a space without a signature
    "My Function::MyFunction.Function::System.String F(System.String)",  # a space in the assembly
    "MyFunction::MyFunction.Function::F\n",
    "../Bootstrap",
    "",
    SIGNATURE[:40] + "(" + "x, " * 2000 + ")",
])
def test_dotnet_refuses_the_rest(handler: str) -> None:
    with pytest.raises(ValueError, match="handler"):
        _function("dotnet", handler)


def test_other_runtimes_keep_their_rule() -> None:
    with pytest.raises(ValueError, match="module.function"):
        _function("python", "MyFunction::MyFunction.Outer+Inner::Handle")
    assert _function("python", "app.handler").handler == "app.handler"


def test_a_full_signature_from_set_is_one_line_naming_the_field(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nfunction: {runtime: dotnet}\n")
    s = sc.load(path, [f"function.handler={SIGNATURE}"])
    assert s.function.handler == SIGNATURE
    with pytest.raises(ScenarioError) as err:
        sc.load(path, ["function.handler=A::B::C D"])
    assert "function.handler" in str(err.value) and "\n" not in str(err.value)
