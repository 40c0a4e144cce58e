"""Trial folder names: a handler string is made a safe slug."""

from __future__ import annotations

import re

import pytest

from harness.trial import handler_slug


@pytest.mark.parametrize("handler,slug", [
    ("MyFunction::MyFunction.Function::FunctionHandler", "MyFunction_MyFunction.Function_FunctionHandler"),
    ("naive_cached", "naive_cached"), ("naive_cached.handler", "naive_cached.handler"),
    ("./bin/boot strap", "bin_boot_strap"), ("::", "handler")])
def test_a_handler_becomes_a_folder_safe_slug(handler, slug):
    assert handler_slug(handler) == slug
    assert re.fullmatch(r"[A-Za-z0-9._-]+", handler_slug(handler))
