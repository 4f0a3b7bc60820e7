"""A FastAPI app served as the function itself: _HANDLER=app.app, no adapter.

Behind a function URL with InvokeMode RESPONSE_STREAM (and PYLAMBDA_INVOKE_MODE
set to the same), /countdown reaches the client a line at a time as it is
produced; the other routes answer as they would under any ASGI server.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
    # Runs once per execution environment, during the init: open clients and pools here.
    yield {"greeting": "Hello"}


app = FastAPI(title="pylambda web API", lifespan=lifespan)


class Order(BaseModel):
    sku: str
    quantity: int = 1


@app.get("/hello/{name}")
async def hello(name: str, request: Request) -> dict:
    return {"message": f"{request.state.greeting}, {name}!", "request_id": request.scope["aws.context"].aws_request_id}


@app.post("/orders", status_code=201)
async def create_order(order: Order) -> dict:
    return {"accepted": order.model_dump()}


@app.get("/countdown")
async def countdown(start: int = 3, pause: float = 0.2) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        for n in range(start, 0, -1):
            yield f"{n}\n"
            await asyncio.sleep(pause)
        yield "liftoff\n"

    return StreamingResponse(lines(), media_type="text/plain")
