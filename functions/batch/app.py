"""Batch: works through a list of items and stops before the function times out.

Lambda ends an invoke at its deadline no matter what; a handler that watches
context.get_remaining_time_in_millis() can stop cleanly and hand back what is
left, so the caller can send the rest in another invoke.

Event: {"items": [...], "seconds_per_item": 0.2, "safety_margin_ms": 1000}
"""

import time


def handler(event, context):
    items = list(event.get("items", []))
    seconds_per_item = float(event.get("seconds_per_item", 0.1))
    margin_ms = int(event.get("safety_margin_ms", 1000))
    done = []
    while items and context.get_remaining_time_in_millis() > margin_ms + seconds_per_item * 1000:
        item = items.pop(0)
        time.sleep(seconds_per_item)  # stands for the real work on one item
        done.append(item)
    return {
        "processed": done,
        "remaining": items,
        "stopped_early": bool(items),
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
    }
