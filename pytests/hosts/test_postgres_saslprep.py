"""The SCRAM verifier the PostgreSQL host script writes against libpq, for the passwords where
SASLprep (RFC 4013, as libpq's pg_saslprep applies it) does something other than map characters:
a result left empty, a prohibited character, right-to-left text. libpq then hashes the raw UTF-8
bytes, or the prepared string; the host's saslprep (hosts/linux/postgres.py) must choose the same,
or the login it has just set refuses its own password (the set exits 5). Real PostgreSQL, real psql."""

from __future__ import annotations

import pytest

from .support import expect_result

# Each holds a no-break space (U+00A0), which SASLprep maps to a space: the prepared string and the
# raw bytes differ, so a verifier of the wrong one is refused.
PASSWORDS = {
    # every character mapped to nothing (soft hyphens): libpq hashes the raw bytes
    "mapped to nothing": "\u00ad\u00ad",
    # a private-use character is prohibited: the raw bytes
    "prohibited": "pass\u00a0\ue000word-1",
    # right-to-left letters alone: the prepared string
    "right to left": "\u05d0\u05d1\u00a0\u05d2-1\u05d4",
    # right-to-left and left-to-right letters mixed: the raw bytes
    "bidirectional mix": "\u05d0abc\u00a0\u05d1",
    # right-to-left letters, one end not right-to-left: the raw bytes
    "right to left, left end not": "1\u05d0\u00a0\u05d1",
    "right to left, right end not": "\u05d0\u00a0\u05d1-",
}


@pytest.mark.parametrize("password", PASSWORDS.values(), ids=list(PASSWORDS))
def test_set_with_a_password_saslprep_refuses_or_reorders(make_host, password):
    host = make_host("postgres")
    user = host.new_login("Start-Pass-9")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-9"))
    pending = host.put_pending(arn, host.secret_value(user, password))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    assert host.server.can_login(user, password)
    assert not host.server.can_login(user, "Start-Pass-9")
