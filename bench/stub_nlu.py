"""A stand-in for Rasa that answers at once: `python -m bench.stub_nlu PORT`.

Used for the router ceiling — how many messages one router process can route per second, and its
CPU per message, when the NLU costs nothing. The parse body has the shape and size of a real
Rasa answer (intent, ranking of 10, entities, tokens)."""

from __future__ import annotations

import sys

import orjson
from aiohttp import web

BODY = orjson.dumps({
    "text": "", "intent": {"name": "deposit_not_arrived", "confidence": 0.91},
    "entities": [], "text_tokens": [[i, i + 2] for i in range(0, 24, 2)],
    "intent_ranking": [{"name": "deposit_not_arrived", "confidence": 0.91}]
    + [{"name": f"deposit_other_{i}", "confidence": 0.01} for i in range(9)],
    "response_selector": {"all_retrieval_intents": [], "default": {"response": {}, "ranking": []}},
})
STATUS = orjson.dumps({"model_file": "models/nlu-stub.tar.gz", "model_id": "stub", "num_active_training_jobs": 0})


async def parse(req: web.Request) -> web.Response:
    await req.read()
    return web.Response(body=BODY, content_type="application/json")


async def status(_req: web.Request) -> web.Response:
    return web.Response(body=STATUS, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_post("/model/parse", parse)
    app.router.add_get("/status", status)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
