"""A Flask app with the routes every web-app test asks of each framework (see tests/web_events.py)."""

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello() -> Response:
    return jsonify({"hello": request.args.get("name", "world"), "path": request.path})


@app.get("/items/<item>")
def item(item: str) -> Response:
    return jsonify({"item": item})


@app.get("/text")
def text() -> Response:
    return Response("plain text, with ü", mimetype="text/plain")


@app.get("/binary")
def binary() -> Response:
    return Response(b"\x89PNG\r\n\x00\xff", mimetype="image/png")


@app.get("/cookies")
def cookies() -> Response:
    response = jsonify({"cookies": 2})
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    response.headers.add("x-multi", "a")
    response.headers.add("x-multi", "b")
    return response


@app.route("/echo", methods=["POST", "PUT"])
def echo() -> Response:
    response = Response(request.get_data(), status=201, content_type=request.content_type)
    response.headers["x-query"] = request.query_string.decode()
    response.headers["x-cookie"] = request.headers.get("cookie", "")
    response.headers["x-multi-in"] = request.headers.get("x-multi-in", "")
    return response


@app.get("/boom")
def boom() -> Response:
    raise RuntimeError("the app failed")


@app.get("/stream")
def stream() -> Response:
    import time

    def chunks():
        for n in range(3):
            yield f"chunk {n}\n"
            time.sleep(0.2)

    return Response(chunks(), mimetype="text/plain")
