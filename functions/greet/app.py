"""Greet: an HTTP endpoint behind API Gateway (HTTP API, payload format 2.0).

The event carries the HTTP request; the result is the HTTP response, as
statusCode, headers and a body string. `sam local start-api` serves it at
GET /greet/{name}.
"""

import json


def handler(event, context):
    name = (event.get("pathParameters") or {}).get("name", "world")
    greeting = (event.get("queryStringParameters") or {}).get("greeting", "Hello")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-request-id": context.aws_request_id},
        "body": json.dumps({"message": f"{greeting}, {name}!"}),
    }
