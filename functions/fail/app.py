"""Fail: shows how a handler's exception reaches the caller.

The runtime catches the exception, logs it, and answers the invoke with an
error document ({"errorType": "PaymentDeclined", "errorMessage": ...,
"stackTrace": [...], "requestId": ...}); the process then waits for the next
event as usual. Send {"amount": 10} for a success, anything above 100 or no
amount for the error.
"""


class PaymentDeclined(Exception):
    """A business error: its class name becomes the errorType the caller sees."""


def charge(amount):
    if amount is None or amount > 100:
        raise PaymentDeclined(f"card declined for amount {amount!r}: limit is 100")
    return {"charged": amount}


def handler(event, context):
    return charge(event.get("amount") if isinstance(event, dict) else None)
