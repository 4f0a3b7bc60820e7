"""A Flask app served as the function itself: _HANDLER=app.app, no adapter (behind an HTTP API).

The Lambda event and context are in the WSGI environ too, as environ["aws.event"] and environ["aws.context"].
"""

from flask import Flask, jsonify, request

app = Flask(__name__)
NOTES: list[str] = []


@app.get("/notes")
def list_notes():
    return jsonify(notes=NOTES)


@app.post("/notes")
def add_note():
    note = (request.get_json(silent=True) or {}).get("text")
    if not note:
        return jsonify(error='send {"text": ...}'), 400
    NOTES.append(note)
    response = jsonify(added=note, count=len(NOTES))
    response.set_cookie("last-note", str(len(NOTES)))
    return response, 201
