"""The runtime's HTTP/1.1 base reads the emulator's real answers as the standard http.client does.

A bootstrap that speaks the Runtime API over a raw socket records the exact
bytes the emulator answers with: ``next`` (with all its Lambda-Runtime-*
fields), an accepted response, an accepted error, a refused call. Each is then
read by ``pylambda.http11`` and by ``http.client``: the same status, fields and
body, or the test fails. Unit tests cover malformed answers (test_http11.py).
"""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path

from pylambda import http11

from pylambda_build.emulator import Emulator
from tests.http_answers import read_answer

RECORDER = r"""
import os, socket, sys

record = sys.argv[1]
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
sock = socket.create_connection((host, int(port)))
answers = 0


def call(request):
    '''Send one request, keep the raw answer: the head, then as many body bytes as Content-Length says.'''
    global answers
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int({k.lower(): v for k, v in fields.items()}.get(b"content-length", b"0"))
    while len(body) < length:
        body += sock.recv(65536)
    answers += 1
    with open(os.path.join(record, f"{answers}.http"), "wb") as out:
        out.write(head + b"\r\n\r\n" + body)
    return {k.lower(): v for k, v in fields.items()}


def post(path, body, extra=b""):
    head = b"POST %s HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n" % (path, len(body))
    return call(head + extra + b"\r\n" + body)


base = b"/2018-06-01/runtime/invocation/"
for kind in (b"response", b"error", b"refused"):
    request_id = call(b"GET " + base + b"next HTTP/1.1\r\nHost: api\r\n\r\n")[b"lambda-runtime-aws-request-id"]
    if kind == b"error":
        post(base + request_id + b"/error", b'{"errorMessage": "no", "errorType": "Bad"}',
             b"Lambda-Runtime-Function-Error-Type: Bad\r\n")
        continue
    if kind == b"refused":
        post(base + b"not-a-request-id/response", b"{}")
    post(base + request_id + b"/response", b'{"ok": true}')
call(b"GET " + base + b"next HTTP/1.1\r\nHost: api\r\n\r\n")
"""


def test_every_answer_the_emulator_gives_reads_alike_with_http11_and_http_client(tmp_path: Path) -> None:
    record = tmp_path / "answers"
    record.mkdir()
    (tmp_path / "recorder.py").write_text(RECORDER)
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'recorder.py'} {record}\n")
    bootstrap.chmod(0o755)

    with Emulator(bootstrap, tmp_path) as emulator:
        for _ in range(3):
            assert emulator.invoke(json.dumps({"hello": "world"})).status == 200

    answers = sorted(record.glob("*.http"), key=lambda path: int(path.stem))
    assert len(answers) == 7  # three `next`, two accepted responses, one accepted error, one refusal
    statuses = []
    for path in answers:
        data = path.read_bytes()
        ours = read_answer(http11, data)
        assert ours == read_answer(http.client, data), path.name
        statuses.append(ours[0])
    assert statuses == [200, 202, 200, 202, 200, 400, 202]
    next_fields = dict(read_answer(http11, answers[0].read_bytes())[2])
    assert next_fields["Lambda-Runtime-Aws-Request-Id"]
    assert next_fields["Lambda-Runtime-Deadline-Ms"].isdigit()
    assert read_answer(http11, answers[0].read_bytes())[3] == b'{"hello": "world"}'
