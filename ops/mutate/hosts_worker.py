"""A pytest session that stays up while the host mutants are run (a plugin, `-p ops.mutate.hosts_worker`).

Started by ops/mutate/hosts.py in its scratch copy with the tests of every piece collected. Instead of
running them, it waits for requests, one JSON object a line on the descriptor ROTATOR_MUTATE_REQUESTS,
and answers each on ROTATOR_MUTATE_ANSWERS:

    {"tests": [node ids], "trace": null}    run them in order, stop at the first failure:
                                            {"failed": node id or null}
    {"tests": [...], "trace": "<directory>"} run each with the host scripts traced (see hosts.py,
                                            "The coverage pass"): {"lines": {node id: {piece: [lines]}},
                                            "failed": [node ids]}

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

import pytest

REQUESTS = "ROTATOR_MUTATE_REQUESTS"
ANSWERS = "ROTATOR_MUTATE_ANSWERS"


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
        if report.failed and self.failed is None:
            self.failed = report.nodeid

    def refresh(self, root: str) -> None:
        from local.ssm_runner import load_documents

        if self.documents is not None:
            fresh = load_documents(os.path.join(root, "template.yaml"))
            self.documents.clear()
            self.documents.update(fresh)
        for name in ("secret", "postgres", "mysql"):  # in import order: the engines import secret
            module = sys.modules.get(name)
            if module is not None and os.path.realpath(getattr(module, "__file__", "")).startswith(os.path.realpath(root)):
                importlib.reload(module)

    def run_one(self, item, others) -> bool:
        """Run one test; True when it passed. The next item named to pytest is another one, so the
        test's own fixtures are torn down and the session's (databases, moto) are kept."""
        self.failed = None
        nextitem = next(other for other in others if other is not item)
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
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
            others = tests + list(items.values())[:2]
            if request.get("trace"):
                tracer = hosts.InProcessTracer(root)
                lines: dict[str, dict[str, list[int]]] = {}
                failed: list[str] = []
                for item in tests:
                    hosts.clear_traces(request["trace"])
                    with tracer:
                        passed = self.run_one(item, others)
                    if not passed:
                        failed.append(item.nodeid)
                    lines[item.nodeid] = hosts.read_traces(request["trace"], root, self.documents or {}, tracer.take())
                answer = {"lines": lines, "failed": failed}
            else:
                failed_at = None
                for item in tests:
                    if not self.run_one(item, others):
                        failed_at = item.nodeid
                        break
                answer = {"failed": failed_at}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
        return True


def pytest_configure(config) -> None:
    if REQUESTS in os.environ:
        config.pluginmanager.register(Worker(), "rotator-mutate-worker")
