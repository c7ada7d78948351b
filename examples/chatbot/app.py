"""A support chatbot for the team's on-prem GPU cluster, as an AstraGo service.

The model is VADER (vaderSentiment on PyPI), a sentiment model whose lexicon ships inside the package:
nothing is downloaded from a model hub at start, so it runs on an air-gapped cluster. Each message is
scored, and the bot answers in kind. Listens on $PORT (AstraGo sets it); `/healthz` is its health check.
"""

from __future__ import annotations

import os
import socket

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

VERSION = os.environ.get("CHATBOT_VERSION", "1")
REPLICA = os.environ.get("ASTRAGO_REPLICA_INDEX", "0")
model = SentimentIntensityAnalyzer()  # loaded once per replica, before the port opens
app = FastAPI(title="AstraGo chatbot example")

PAGE = """<!doctype html><meta charset="utf-8"><title>Chatbot</title>
<form id="f"><input id="m" size="60" autofocus placeholder="Say something"><button>Send</button></form>
<pre id="log"></pre>
<script>
document.getElementById('f').onsubmit = async (event) => {
  event.preventDefault();
  const message = document.getElementById('m').value;
  const answer = await (await fetch('chat', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                             body: JSON.stringify({message})})).json();
  document.getElementById('log').textContent += `you: ${message}\\nbot: ${answer.reply}\\n`;
};
</script>"""


class ChatIn(BaseModel):
    message: str = Field(min_length=1, max_length=4000)


class ChatOut(BaseModel):
    reply: str
    sentiment: float  # VADER's compound score, -1 (negative) .. 1 (positive)
    version: str
    replica: str


def reply_to(message: str) -> ChatOut:
    score = float(model.polarity_scores(message)["compound"])
    if score <= -0.3:
        reply = "Sorry to hear that. Tell me the workload id and I will look at what holds it up."
    elif score >= 0.3:
        reply = "Glad it works! Anything else you would like to run?"
    else:
        reply = "Noted. Ask me about queues, quotas or GPUs."
    return ChatOut(reply=reply, sentiment=score, version=VERSION, replica=REPLICA)


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE  # relative links: it works under the gateway's /proxy/<id>/<port>/ path as it is


@app.post("/chat", response_model=ChatOut)
async def chat(body: ChatIn) -> ChatOut:
    return reply_to(body.message)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "host": socket.gethostname(), "version": VERSION}


if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))
