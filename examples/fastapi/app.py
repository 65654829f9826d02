"""ratekit in a FastAPI application: every request is checked before it
reaches a route. Run: python3 -m uvicorn app:app (with ratekit_client.py importable).
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import ratekit_client

app = FastAPI()


@app.middleware("http")
async def ratekit(request: Request, call_next):
    path = request.url.path + ("?" + request.url.query if request.url.query else "")
    decision = await run_in_threadpool(
        ratekit_client.check_request, request.method, path, request.headers.get("host"),
        request.client.host if request.client else None, request.headers)
    if not decision.allowed:
        return JSONResponse(decision.body, status_code=decision.status, headers=decision.headers)
    response = await call_next(request)
    response.headers.update(decision.headers)
    return response


@app.get("/api/items")
async def items():
    return {"items": ["a", "b"]}
