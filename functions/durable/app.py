"""Durable: an order workflow that outlives its invocations, with aws-durable-execution-sdk-python.

Each step's result is checkpointed through the Lambda API. The wait ends the
invocation; when it is over Lambda invokes the function again, and the handler
runs from the top: the SDK replays the checkpointed step (its code does not run
again) and goes on with the next one. Durable functions take the managed Python
runtimes and container images; see docs/images-snapstart-durable.md.
"""

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


@durable_execution
def handler(event, context: DurableContext):
    order_id = event["order_id"]
    print(f"workflow for {order_id}: handler running")

    def reserve(step: StepContext) -> dict:
        print(f"workflow for {order_id}: reserving stock")  # once, however many times the handler runs
        return {"reserved": order_id}

    reservation = context.step(reserve, name="reserve")
    context.wait(Duration.from_seconds(2), name="cool-off")
    shipment = context.step(lambda step: {"shipped": order_id}, name="ship")
    return {**reservation, **shipment}
