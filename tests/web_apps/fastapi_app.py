"""A FastAPI app with the routes every web-app test asks of each framework (see tests/web_events.py)."""

import asyncio
import contextlib

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

started: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    started.append("once")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/hello")
async def hello(request: Request, name: str = "world") -> dict:
    return {"hello": name, "path": request.url.path, "method": request.method}


@app.get("/startups")
def startups() -> dict:
    return {"startups": len(started)}


@app.get("/items/{item}")
def item(item: str) -> dict:
    return {"item": item}


@app.get("/text")
def text() -> PlainTextResponse:
    return PlainTextResponse("plain text, with ü")


@app.get("/binary")
def binary() -> Response:
    return Response(b"\x89PNG\r\n\x00\xff", media_type="image/png")


@app.get("/cookies")
def cookies() -> Response:
    response = JSONResponse({"cookies": 2})
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    response.headers.append("x-multi", "a")
    response.headers.append("x-multi", "b")
    return response


@app.api_route("/echo", methods=["POST", "PUT"])
async def echo(request: Request) -> Response:
    body = await request.body()
    headers = {
        "x-query": str(request.url.query),
        "x-cookie": request.headers.get("cookie", ""),
        "x-multi-in": ",".join(request.headers.getlist("x-multi-in")),
    }
    return Response(body, status_code=201, media_type=request.headers.get("content-type"), headers=headers)


@app.get("/boom")
def boom() -> None:
    raise RuntimeError("the app failed")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks():
        for n in range(3):
            yield f"chunk {n}\n"
            await asyncio.sleep(0.2)

    return StreamingResponse(chunks(), media_type="text/plain")
