"""Fixtures for the host-script tests: real databases, a moto server, and the documents.

Each database and the moto server start once per session. Every test works with its own
logins and secrets (unique names), so tests do not depend on one another.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.databases import MariaDBServer, PostgresServer, free_port  # noqa: E402
from local.ssm_runner import load_documents  # noqa: E402

from .support import REGION, Host  # noqa: E402

TEMPLATE = REPO / "template.yaml"

@pytest.fixture(scope="session")
def documents() -> dict[str, dict]:
    return load_documents(TEMPLATE)


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secretsmanager(moto_endpoint):
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def postgres():
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb():
    with MariaDBServer() as server:
        yield server


@pytest.fixture(params=["postgres", "mysql"])
def host(request, documents, secretsmanager, moto_endpoint) -> Host:
    if request.param == "postgres":
        server = request.getfixturevalue("postgres")
        document = documents["PostgresRotationDocument"]
    else:
        server = request.getfixturevalue("mariadb")
        document = documents["MySQLRotationDocument"]
    return Host(request.param, document, server, secretsmanager, moto_endpoint)


@pytest.fixture
def make_host(documents, secretsmanager, moto_endpoint, request):
    """A Host for one engine, for the tests that concern a single engine."""

    def make(engine: str) -> Host:
        if engine == "postgres":
            return Host("postgres", documents["PostgresRotationDocument"], request.getfixturevalue("postgres"),
                        secretsmanager, moto_endpoint)
        return Host("mysql", documents["MySQLRotationDocument"], request.getfixturevalue("mariadb"),
                    secretsmanager, moto_endpoint)

    return make
