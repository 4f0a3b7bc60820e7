"""The least a Python runtime built on http.client can cost: a Runtime API loop and nothing else.

http.client is what stock urllib3 is built on (the layer's copy is built on
pylambda.http11 instead, which imports neither ssl nor email). Like both
runtimes, this loop imports logging (both set up the root logger for the
function) and json (both decode events); it has no handler, context, error
handling or streaming. Run by benchmarks/compare.py under the same emulator:
what any runtime on http.client would cost at the least.
"""

import http.client
import json
import logging
import os

logging.getLogger().setLevel(logging.WARNING)
host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
connection = http.client.HTTPConnection(host, int(port))
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    event = json.loads(response.read())
    path = f"/2018-06-01/runtime/invocation/{response.headers['Lambda-Runtime-Aws-Request-Id']}/response"
    connection.request("POST", path, body=b'{"ok": true}', headers={"Content-Type": "application/json"})
    connection.getresponse().read()
