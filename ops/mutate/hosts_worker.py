"""A pytest session that stays up while the host mutants are run (a plugin, `-p ops.mutate.hosts_worker`).

Started by ops/mutate/hosts.py in its scratch copy with the tests of every piece collected. Instead of
running them, it waits for requests, one JSON object a line on the descriptor ROTATOR_MUTATE_REQUESTS,
and answers each on ROTATOR_MUTATE_ANSWERS:

    {"tests": [node ids], "trace": null}    run them in order, stop at the first failure:
                                            {"failed": node id or null, "seconds": {node id: seconds}}
    {"tests": [...], "trace": "<directory>"} run each with the host scripts traced (see hosts.py,
                                            "The coverage pass"): {"lines": {node id: {piece: [lines]}},
                                            "failed": [node ids], "seconds": {...}}

Before each request the documents are read again from the scratch copy's template.yaml, and the helper
modules that tests import in-process (secret, postgres, mysql) are reloaded, so a request sees the
piece as it is on disk now. Why a session that stays up: a quick kill used to cost a whole pytest start
and two database starts (about 10 s) for a 3-8 s test; here the databases and the moto server start once.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

import pytest

REQUESTS = "ROTATOR_MUTATE_REQUESTS"
ANSWERS = "ROTATOR_MUTATE_ANSWERS"


class _SessionOnly:
    """The next item as pytest's teardown reads it (SetupState.teardown_exact: its chain of nodes):
    the session alone, whatever runs next."""

    def __init__(self, session) -> None:
        self.session = session

    def listchain(self) -> list:
        return [self.session]


class Worker:
    def __init__(self) -> None:
        self.documents: dict | None = None  # the session's `documents` fixture value, refreshed in place
        self.failed: str | None = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        outcome = yield
        if fixturedef.argname == "documents" and outcome.excinfo is None:
            self.documents = outcome.get_result()

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            if self.failed is None:
                self.failed = report.nodeid
            # why, for whoever reads the worker's log (the session's own summary comes only at its end)
            print(f"\n---- {report.nodeid} {report.when} failed:\n{report.longreprtext[-4000:]}", file=sys.__stderr__, flush=True)

    def refresh(self, root: str) -> None:
        from local.ssm_runner import load_documents

        if self.documents is not None:
            fresh = load_documents(os.path.join(root, "template.yaml"))
            self.documents.clear()
            self.documents.update(fresh)
        for name in ("secret", "postgres", "mysql"):  # in import order: the engines import secret
            module = sys.modules.get(name)
            if module is not None and os.path.realpath(getattr(module, "__file__", "")).startswith(os.path.realpath(root)):
                try:
                    importlib.reload(module)
                except (Exception, SystemExit) as error:  # noqa: BLE001 - a mutant may break or exit at import
                    # (`__name__ != "__main__"` runs the helper): the tests meet it as it is, not the worker
                    print(f"rotator-mutate: reloading {name} failed: {error!r}", file=sys.__stderr__, flush=True)

    def run_one(self, item) -> bool:
        """Run one test; True when it passed. What pytest is told comes next descends from the session
        only, so everything of the test is torn down but the session's fixtures (databases, moto)."""
        self.failed = None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=_SessionOnly(item.session))
        return self.failed is None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session) -> bool:
        from ops.mutate import hosts

        root = str(session.config.rootpath)
        items = {item.nodeid: item for item in session.items}
        requests = os.fdopen(int(os.environ[REQUESTS]), "r", encoding="utf-8")
        answers = os.fdopen(int(os.environ[ANSWERS]), "w", encoding="utf-8")
        answers.write(json.dumps({"ready": True, "tests": sorted(items)}) + "\n")
        answers.flush()
        for line in requests:
            request = json.loads(line)
            self.refresh(root)
            tests = [items[name] for name in request["tests"]]
            if request.get("trace"):
                tracer = hosts.InProcessTracer(root)
                lines: dict[str, dict[str, list[int]]] = {}
                failed: list[str] = []
                seconds: dict[str, float] = {}
                for item in tests:
                    hosts.clear_traces(request["trace"])
                    started = time.monotonic()
                    with tracer:
                        passed = self.run_one(item)
                    seconds[item.nodeid] = time.monotonic() - started
                    try:
                        lines[item.nodeid] = hosts.read_traces(request["trace"], root, self.documents or {}, tracer.take())
                    except Exception as error:  # noqa: BLE001 - a trace it cannot read: the test counts as failed
                        print(f"rotator-mutate: the traces of {item.nodeid} cannot be read: {error!r}", file=sys.stderr)
                        passed = False
                    if not passed:
                        failed.append(item.nodeid)
                answer = {"lines": lines, "failed": failed, "seconds": seconds}
            else:
                failed_at = None
                seconds = {}
                for item in tests:
                    started = time.monotonic()
                    passed = self.run_one(item)
                    seconds[item.nodeid] = time.monotonic() - started
                    if not passed:
                        failed_at = item.nodeid
                        break
                answer = {"failed": failed_at, "seconds": seconds}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
        return True


def pytest_configure(config) -> None:
    if REQUESTS in os.environ:
        config.pluginmanager.register(Worker(), "rotator-mutate-worker")
