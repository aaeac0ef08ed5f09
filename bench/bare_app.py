"""The baseline: Flask on the same gunicorn, answering /ivr/voice with constant TwiML."""

from __future__ import annotations

from flask import Flask, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello.</Say></Response>'

app = Flask(__name__)


@app.post("/ivr/voice")
def voice() -> Response:
    """What any Flask webhook costs: no signature check, no database, no TwiML building."""
    return Response(TWIML, mimetype="text/xml")
