"""Fixtures for the template, SAM and linting proofs: the tools come from `make tools`."""

from __future__ import annotations

import pytest

from local.cfn import load_template
from ops import lint


@pytest.fixture(scope="session")
def template():
    return load_template(lint.TEMPLATE)


@pytest.fixture(scope="session")
def sam():
    """SAM CLI from the tools virtualenv. Fails (never skips): `make test` installs it first."""
    exe = lint.tool("sam")
    if exe is None:
        pytest.fail("SAM CLI is not installed: run `make tools` (make test does)", pytrace=False)
    return exe
