"""A Starlette app with the routes every web-app test asks of each framework (see tests/web_events.py)."""

import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    yield {"greeting": "hello"}


async def hello(request: Request) -> JSONResponse:
    name = request.query_params.get("name", "world")
    return JSONResponse({"hello": name, "path": request.url.path, "state": request.state.greeting})


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"item": request.path_params["item"]})


async def text(request: Request) -> PlainTextResponse:
    return PlainTextResponse("plain text, with ü")


async def binary(request: Request) -> Response:
    return Response(b"\x89PNG\r\n\x00\xff", media_type="image/png")


async def cookies(request: Request) -> Response:
    response = JSONResponse({"cookies": 2})
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    response.headers.append("x-multi", "a")
    response.headers.append("x-multi", "b")
    return response


async def echo(request: Request) -> Response:
    headers = {
        "x-query": str(request.url.query),
        "x-cookie": request.headers.get("cookie", ""),
        "x-multi-in": ",".join(request.headers.getlist("x-multi-in")),
    }
    body = await request.body()
    return Response(body, status_code=201, media_type=request.headers.get("content-type"), headers=headers)


async def boom(request: Request) -> Response:
    raise RuntimeError("the app failed")


app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/items/{item}", item),
        Route("/text", text),
        Route("/binary", binary),
        Route("/cookies", cookies),
        Route("/echo", echo, methods=["POST", "PUT"]),
        Route("/boom", boom),
    ],
    lifespan=lifespan,
)
