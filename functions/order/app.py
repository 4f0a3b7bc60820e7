"""Order: validates the event with pydantic, whose core is compiled (pydantic-core, a Rust extension).

pydantic comes from a dependency layer built by `python build.py deps
functions/order/requirements.txt`, for the Python and architecture the
runtime layer bundles; the function's zip holds only this file. A valid order
gets its total back; an invalid one fails the invoke with pydantic's
ValidationError, which names each field that is wrong.
"""

import sys
from decimal import Decimal

import pydantic
import pydantic_core
from pydantic import BaseModel, Field


class Item(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class Order(BaseModel):
    order_id: str
    items: list[Item] = Field(min_length=1)


def handler(event, context):
    order = Order.model_validate(event)
    total = sum((item.unit_price * item.quantity for item in order.items), Decimal(0))
    return {
        "order_id": order.order_id,
        "items": len(order.items),
        "total": str(total),
        "python": sys.version.split()[0],
        "pydantic": pydantic.VERSION,
        "pydantic_core": pydantic_core.__version__,
        "compiled_core": pydantic_core._pydantic_core.__file__,
    }
