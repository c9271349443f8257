"""Shared by every test suite: the repository root on sys.path, so `import local.…` works from
anywhere pytest is started; and the `chaos` marker, which counts a test as one try of a scenario
of docs/RELIABILITY.md (pytests/e2e/chaos.py) in whichever suite it lives."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytests.e2e import chaos  # noqa: E402 - needs the root on sys.path


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos(scenario): one try of a fault-suite scenario (pytests/e2e/chaos.py)")


_TRY = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("chaos")
    if not marker:
        return
    # One try per test, counted once its teardown has run: what a fixture checks after the test (the
    # login's invariants, the stack's leak sweep) is part of the try. It held when its call passed
    # and no phase failed. A strict xfail is a known open case (docs/THREAT-MODEL.md, "Open"), not
    # a try of a defended scenario.
    phases = item.stash.setdefault(_TRY, {})
    phases[report.when] = report
    if report.when == "teardown" and not any(hasattr(r, "wasxfail") for r in phases.values()):
        held = "call" in phases and phases["call"].passed and not any(r.failed for r in phases.values())
        chaos.record(marker.args[0], 1, int(held), item.name)


# `make test` runs pytest in two processes (pytest-xdist, `--dist loadgroup`). A group is a package:
# its package- and session-scoped stacks and databases then start once, in one process, as in a
# serial run. bench and package share a group because both run `make package`, which writes dist/.
_SHARED_GROUPS = {"bench": "package"}


@pytest.hookimpl(tryfirst=True)   # before xdist's own, which reads the groups when collection ends
def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.path)).relative_to(ROOT).parts
        if len(parts) > 2 and parts[0] == "pytests" and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(parts[1], parts[1])))
