"""Reading one recorded HTTP answer with a given module's ``HTTPResponse``: http11's, or http.client's to compare."""

from __future__ import annotations

import socket
import threading
from typing import Any


def read_answer(module: Any, data: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """(status, reason, fields, body) of ``data``, sent by a peer that then closes (from a thread: it may be big)."""
    ours, theirs = socket.socketpair()
    sender = threading.Thread(target=lambda: (theirs.sendall(data), theirs.shutdown(socket.SHUT_WR)))
    sender.start()
    try:
        response = module.HTTPResponse(ours, method="GET")
        response.begin()
        return response.status, response.reason, list(response.msg.items()), response.read()
    finally:
        sender.join()
        ours.close()
        theirs.close()
