"""A team's own function image (`--image REF` naming a local image, not one of
enirace's kinds), run unchanged: built FROM public.ecr.aws/lambda/dotnet:8 (or the
offline base that keeps its contract) with the function in /var/task and the
handler in CMD, it carries its own runtime client, so nothing is built or resolved
on the host. The container gets the image's CMD, as Lambda passes it when the
function's ImageConfig does not override it; `function.handler` replaces it only
when set to something other than a name of enirace's samples (the scenario files'
defaults, meaningless to another image)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.backends.docker import engine as de
from harness.backends.docker import images
from harness.errors import UserError
from harness.function import launch as functions

if TYPE_CHECKING:
    from harness.scenario.model import FunctionConfig, Scenario

RUNTIMES = ("python", "dotnet", "nodejs")


def is_own_image(scenario: Scenario) -> bool:
    """A local image of the user's, holding its function itself (no function.code)."""
    fn = scenario.function
    image = scenario.docker.image
    return (scenario.backend == "docker" and image is not None and image not in images.RECIPES
            and fn.code is None and fn.runtime in RUNTIMES)


def image_cmd(ref: str) -> list[str]:
    api = de.client().api  # DockerUnavailable says how to start the engine
    try:
        config = api.inspect_image(ref).get("Config") or {}
    except Exception:
        raise UserError(f"docker.image: no local image {ref!r}; build or pull it, or use one of "
                        f"{', '.join(images.FUNCTION_KINDS[:3])}") from None
    return list(config.get("Cmd") or [])


def _samples(runtime: str) -> list[str]:
    names = {"python": functions.python_samples, "dotnet": functions.dotnet_samples,
             "nodejs": functions.nodejs_samples}[runtime]
    try:
        return names()
    except Exception:  # a sample list needing a toolchain this machine lacks: none match
        return []


def handler_given(fn: FunctionConfig) -> bool:
    return "handler" in fn.model_fields_set and fn.handler not in _samples(fn.runtime)


def adopt(scenario: Scenario) -> Scenario:
    """The scenario with function.handler the one the container will get: the
    image's CMD unless given; an image without CMD needs it given."""
    fn = scenario.function
    if handler_given(fn):
        return scenario
    cmd = image_cmd(scenario.docker.image or "")
    if len(cmd) != 1:
        raise UserError(f"docker.image: {scenario.docker.image}'s CMD is {cmd or 'empty'}, not one handler "
                        f"string; fix: CMD [\"Assembly::Namespace.Type::Method\"] in its Dockerfile, or "
                        f"--set function.handler=...")
    return scenario.model_copy(update={"function": fn.model_copy(update={"handler": cmd[0]})})
