"""A starter function: greets whoever the event names, and logs in JSON with Powertools."""

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()  # service name: $POWERTOOLS_SERVICE_NAME


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    name = event.get("name", "world")
    logger.info("greeting", extra={"who": name})
    return {"message": f"Hello, {name}!"}
