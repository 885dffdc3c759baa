"""B1's floor: the barest Flask JSON answer, served by the same gunicorn config."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/hello")
def hello():  # noqa: ANN201 - as bare as Flask gets
    """{"hello": "world"}, through jsonify like Groundwork's answers."""
    return jsonify(hello="world")
