"""moto as the local stack runs it: its settings, its threaded server, and the record of patches of
moto's classes (Patches, undone at close; local/stack.py). moto's signature check re-encodes a
form post (SNS's Query protocol) with botocore's rules; the function encodes exactly so
(Sources/AWS/QueryProtocolClient.swift), so nothing here touches what the check sees."""

from __future__ import annotations

import os
import sys
from typing import Any


def moto_settings():
    # moto 5.2.1 reads INITIAL_NO_AUTH_ACTION_COUNT from the environment once, when moto.settings
    # is first imported (float, default inf), into moto.settings.INITIAL_NO_AUTH_ACTION_COUNT.
    # moto.core.authorization compares its request counter with that *attribute* at every
    # request (and counts only while below it). So: the variable for the import if we come
    # first, and the attribute itself, which the stack sets to inf for the setup calls and to 0
    # (every request checked) once they are done.
    if "moto.settings" not in sys.modules:
        os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "inf")
    from moto import settings
    return settings


def http_exception(code: int, body: str, content_type: str):
    from werkzeug.exceptions import HTTPException

    class _E(HTTPException):
        pass

    e = _E(description=body)
    e.code = code
    e.content_type = content_type
    return e


class Patches:
    """Attributes set on moto's classes, each with what it replaced, to be put back in reverse order
    (the stack's patches, and the SSM emulator's: local/ssm_emulator.py)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any, bool]] = []

    def set(self, owner: Any, name: str, new: Any) -> None:
        existed = name in owner.__dict__
        self._saved.append((owner, name, owner.__dict__.get(name), existed))
        setattr(owner, name, new)

    def undo(self) -> None:
        for owner, name, old, existed in reversed(self._saved):
            if existed:
                setattr(owner, name, old)
            else:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
        self._saved.clear()


class MotoPatches:
    """Part of LocalStack (local/stack.py): patching moto's classes, recorded in `self._patches` (a
    Patches) to be undone at close; resetting moto's backends."""

    def _patch(self, owner: Any, name: str, new: Any) -> None:
        self._patches.set(owner, name, new)

    @staticmethod
    def _reset_moto() -> None:
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()
        ActionAuthenticatorMixin.request_count = 0


def _moto_server_class():
    from moto.server import ThreadedMotoServer

    class MotoServer(ThreadedMotoServer):
        """moto's threaded server, quiet about clients that go away."""

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
            from werkzeug.serving import make_server

            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True)
            default_handle_error = self._server.handle_error

            def handle_error(request: Any, client_address: Any) -> None:
                # A client that goes away (the function killed at shutdown) is not an error.
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    default_handle_error(request, client_address)

            self._server.handle_error = handle_error
            self._server_ready_event.set()
            self._server.serve_forever()

    return MotoServer


def MotoServer(**kw: Any) -> Any:  # noqa: N802 - a class factory (moto imports stay lazy)
    return _moto_server_class()(**kw)
