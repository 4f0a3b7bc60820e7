"""Echo: returns the event with what the context says about this invoke.

Shows the basics of the contract: the event arrives as parsed JSON, the
context carries the request and function details, and both print() and the
logging module end up in the function's logs tagged with the request id.
Module-level code runs once per process, so the invoke counter shows when
Lambda reuses a warm environment.
"""

import logging

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
invokes_in_this_process = 0


def handler(event, context):
    global invokes_in_this_process
    invokes_in_this_process += 1
    logger.info("echoing an event with %d top-level keys", len(event) if isinstance(event, dict) else 0)
    print(f"request {context.aws_request_id} for {context.function_name}")
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
        "invokes_in_this_process": invokes_in_this_process,
    }
