"""ratekit in a FastAPI application: every request is checked before it
reaches a route. Run: python3 -m uvicorn app:app (with ratekit_client.py importable).
"""

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

import ratekit_client

app = FastAPI()


@app.middleware("http")
async def ratekit(request: Request, call_next):
    path = request.url.path + ("?" + request.url.query if request.url.query else "")
    decision = await run_in_threadpool(
        ratekit_client.check_request, request.method, path, request.headers.get("host"),
        request.client.host if request.client else None, request.headers)
    # The slots of concurrency rules the check took are given back once the
    # response is sent or the client has gone (a denied request's at once).
    release = BackgroundTask(ratekit_client.release, decision.leases)
    if not decision.allowed:
        return JSONResponse(decision.body, status_code=decision.status, headers=decision.headers,
                            background=release)
    try:
        response = await call_next(request)
    except Exception:
        await release()
        raise
    response.headers.update(decision.headers)
    response.background = release
    return response


@app.get("/api/items")
async def items():
    return {"items": ["a", "b"]}


@app.post("/api/export")
async def export():  # slow work, the kind a concurrency rule keeps few of at once
    await asyncio.sleep(0.5)
    return {"export": "done"}
