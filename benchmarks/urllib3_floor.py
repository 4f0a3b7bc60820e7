"""The least any runtime built on urllib3 can cost: a Runtime API loop and nothing else.

Run by benchmarks/compare.py under the same emulator, with the layer's runtime
directory on sys.path so that it uses the layer's vendored urllib3. No handler,
no context, no JSON, no logging set-up: GET next, POST a constant answer,
through the same urllib3 HTTPConnection calls pylambda makes. Its costs are
the floor that pylambda's own code sits on.
"""

import os
import sys

sys.path.insert(0, sys.argv[1])

from pylambda._vendor.urllib3.connection import HTTPConnection

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
connection = HTTPConnection(host, int(port), timeout=None)
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
    path = f"/2018-06-01/runtime/invocation/{request_id}/response"
    connection.request("POST", path, body=b'{"ok": true}', headers={"Content-Type": "application/json"})
    connection.getresponse().read()
