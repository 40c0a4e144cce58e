"""A .NET team's own container image, unchanged: the Dockerfile a team has
(`FROM` the dotnet:8 base, `COPY publish/ /var/task/`, the handler in CMD) built on
the offline base that keeps the official image's entrypoint and bootstrap contract,
run with `--backend docker --image REF` against enirace's emulator."""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.docker import engine as de
from harness.scenario import model as sc
from harness.trial import run_one_trial
from tests.docker.conftest import LATE_ENI
from tests.dotnet_functions import publish

pytestmark = [pytest.mark.root, pytest.mark.docker, pytest.mark.dotnet]

HANDLER = "MyFunction::MyFunction.Function::FunctionHandler"
PING = "workload.payload='\"ping\"'"
LATE = "schedule[0].at.offset=800ms"  # well inside the window on both backends
QUIET = ("lab.eni=present", "schedule=[]", "workload.invocations=2", "workload.interval=100ms")
DOCKERFILE = f"""\
ARG BASE
FROM ${{BASE}}
COPY publish/ ${{LAMBDA_TASK_ROOT}}/
CMD ["{HANDLER}"]
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    return publish(tmp_path_factory.mktemp("published") / "publish")


@pytest.fixture(scope="module")
def team_image(engine: None, published: Path, tmp_path_factory) -> Iterator[str]:
    """The team's image FROM the offline dotnet base, labelled as the project's, removed after."""
    from harness.backends.docker import images as im

    base = im.ensure("lambda-dotnet-offline")
    ctx = tmp_path_factory.mktemp("team-image")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    shutil.copytree(published, ctx / "publish")
    ref = f"enirace-test/myfunction:{secrets.token_hex(4)}"
    de.client().images.build(path=str(ctx), tag=ref, buildargs={"BASE": base}, rm=True, forcerm=True, pull=False,
                             labels={de.OWNER_LABEL: de.OWNER, de.KIND_LABEL: "test-team-image"})
    yield ref
    de.client().images.remove(ref, force=True)


def test_a_teams_image_gives_the_process_backends_verdict(run, tmp_path, published, team_image):
    process = run_one_trial(sc.load(LATE_ENI, ["function.runtime=dotnet", f"function.code={published}",
                                               f"function.handler={HANDLER}", PING, LATE]), run, tmp_path / "p")
    # No handler given: the scenario file's sample name is not passed; the image's CMD is.
    docker = run_one_trial(sc.load(LATE_ENI, ["backend=docker", f"docker.image={team_image}",
                                              "function.runtime=dotnet", PING, LATE]), run, tmp_path / "d")
    pv, dv = process.verdict, docker.verdict
    assert pv.verdict == dv.verdict == "recovered", (pv.reason, dv.reason)
    assert dv.failures[0].text == pv.failures[0].text
    assert dv.failures[0].text.startswith("HttpRequestException: Resource temporarily unavailable")
    assert docker.scenario.function.handler == HANDLER
    start = next(e for e in docker.events if e["kind"] == "init_start")
    assert start["command"].endswith(f"{team_image} {HANDLER}"), start["command"]
    logged = [e["line"] for e in docker.events if e["kind"] == "log" and "\tinfo\tcalling " in e["line"]]
    assert len(logged) == dv.invocations  # context.Logger from the image's own Amazon.Lambda.Core


def test_a_handler_given_replaces_the_images_cmd(run, tmp_path, team_image):
    bad = "MyFunction::MyFunction.Nope::FunctionHandler"
    result = run_one_trial(sc.load(LATE_ENI, ["backend=docker", f"docker.image={team_image}",
                                              "function.runtime=dotnet", f"function.handler={bad}", *QUIET]),
                           run, tmp_path)
    assert result.verdict.verdict == "broken", result.verdict.reason
    assert "Unable to load type 'MyFunction.Nope' from assembly 'MyFunction'." in result.verdict.reason


def test_an_image_its_bootstrap_refuses_is_broken_not_a_finding(run, tmp_path, team_image):
    result = run_one_trial(sc.load(LATE_ENI, ["backend=docker", f"docker.image={team_image}",
                                              "function.runtime=dotnet", "function.handler=Nope", *QUIET]),
                           run, tmp_path)
    v = result.verdict
    assert v.verdict == "broken", v.reason
    assert v.reason.startswith("Error: executable assembly /var/task/Nope.dll or binary /var/task/Nope not found.")
    assert "exit status 104" in v.reason


@pytest.mark.parametrize("handler,task_root,code,line", [
    ("Nope", None, 104, "Error: executable assembly /var/task/Nope.dll or binary /var/task/Nope not found."),
    (HANDLER, "/tmp/empty", 102, "Error: .NET binaries for Lambda function are not correctly installed in the "
                                 "/tmp/empty directory of the image when the image was built. "
                                 "The /tmp/empty directory is missing."),
])
def test_the_bootstrap_keeps_the_official_exit_codes(team_image, handler, task_root, code, line):
    """The offline base's bootstrap fails before any Runtime API call, as the official one."""
    env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"} | ({"LAMBDA_TASK_ROOT": task_root} if task_root else {})
    name = f"enirace-test-bootstrap-{secrets.token_hex(4)}"
    api = de.client().api
    cid = api.create_container(team_image, command=[handler], environment=env, name=name,
                               labels={de.OWNER_LABEL: de.OWNER, de.ROLE_LABEL: "probe"},
                               host_config=api.create_host_config(network_mode="none"))["Id"]
    try:
        if task_root == "/tmp/empty":
            api.put_archive(cid, "/tmp", _empty_dir_tar("empty"))
        api.start(cid)
        status = api.wait(cid, timeout=60)["StatusCode"]
        out = api.logs(cid, stdout=True, stderr=True).decode()
    finally:
        api.remove_container(cid, force=True)
    assert status == code and out.strip() == line, (status, out)


def _empty_dir_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    return buf.getvalue()
