"""Stream: sends its response piece by piece, through a Function URL in RESPONSE_STREAM mode.

A handler that yields is streamed by the runtime: the caller starts reading
before the handler has finished. The first item, a dict shaped like a Function
URL response without a body, sets the HTTP status and headers. Try it locally:
./dev invoke stream '{"count": 3}'
"""

import time


def handler(event, context):
    count = int(event.get("count", 5)) if isinstance(event, dict) else 5
    yield {"statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}}
    for remaining in range(count, 0, -1):
        yield f"{remaining}...\n"
        time.sleep(0.2)  # stands for work whose results are worth sending as they come
    yield "lift-off\n"
