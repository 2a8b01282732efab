"""The FastAPI application: `create_app(settings, pipeline=None)`.

    from moodmusic.server.app import create_app
    from moodmusic.server.settings import Settings
    app = create_app(Settings.from_env())          # uvicorn server.app:app works too (settings from the environment)

The app composes the stages through moodmusic.pipeline and holds no model logic. Request flow:
metrics -> CORS (only when configured) -> body-size limit -> routes (API key, rate limit, validation)
-> store or worker pool. Every exception a client can provoke maps to a 4xx (or 503/504) here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moodmusic.audio import AudioDecodeError
from moodmusic.mood import MoodError, named
from moodmusic.server import routes, services, stream
from moodmusic.server.metrics import Metrics, MetricsMiddleware
from moodmusic.server.security import install_log_redaction
from moodmusic.server.settings import MB, Settings
from moodmusic.server.store import StoreUnavailable
from moodmusic.server.workers import PoolError

STATIC_DIR = Path(__file__).parent / "static"
UPLOAD_ROUTES = ("/v1/analyze",)


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def mood_name_error(value) -> str:
    try:
        named(str(value))
    except MoodError as error:
        return str(error)
    return "not a mood name"


def describe_validation(error: RequestValidationError) -> str:
    """Pydantic's errors as one sentence per problem: where, what is wrong, and the value sent."""
    parts = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'decode error')} at character {item['loc'][-1]})")
            continue
        where = ".".join(str(x) for x in item.get("loc", ()) if x != "body") or "body"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        value = item.get("input")
        field = str(item.get("loc", ("",))[-1])
        if field == "mood" and item.get("type") == "string_pattern_mismatch":  # the contract's pattern of the names: say them
            message = mood_name_error(value)
        elif field in ("valence", "arousal") and item.get("type") in ("greater_than_equal", "less_than_equal"):
            message = f"{field} must be in [-1, 1]"
        shown = f" (got {repr(value)[:80]})" if item.get("type") not in ("missing", "value_error") and not isinstance(value, (dict, list)) else ""
        parts.append(f"{where}: {message}{shown}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, error: RequestValidationError):
        return problem(422, describe_validation(error))

    @app.exception_handler(AudioDecodeError)
    async def undecodable(_: Request, error: AudioDecodeError):
        return problem(415, str(error).replace("<bytes>: ", "the upload: "))

    @app.exception_handler(MoodError)
    async def bad_mood(_: Request, error: MoodError):
        return problem(422, str(error))

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, error: ValueError):
        # The stages raise ValueError for inputs out of their range (durations, stinger events, clip ids).
        return problem(422, str(error))

    @app.exception_handler(PoolError)
    async def pool_refused(_: Request, error: PoolError):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return problem(error.status_code, str(error), headers)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_: Request, error: StoreUnavailable):
        return problem(503, str(error), {"Retry-After": "5"})


class BodyLimitMiddleware:
    """413 for bodies over the limit: the upload limit on upload routes, a small one elsewhere.

    A declared Content-Length over the limit is refused before any byte is read; a body without one
    is counted as it streams in. (Pure ASGI, so the refusal carries our own message.)
    """

    def __init__(self, app: ASGIApp, upload_limit: int, default_limit: int):
        self.app, self.upload_limit, self.default_limit = app, upload_limit, default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].rstrip("/") in UPLOAD_ROUTES else self.default_limit
        size = f"{limit / MB:.4g} MB" if limit >= MB else f"{limit / 1024:.4g} KB"
        detail = f"the request body is larger than this route's limit of {size}"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem(413, detail)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, detail=detail)  # FastAPI re-raises HTTPExceptions from body reading as they are
            return message

        await self.app(scope, counted, send)


def limits_text(settings: Settings) -> str:
    """This server's limits, as /docs shows them (the values it runs with, not the defaults)."""
    return (
        f"**Limits.** Uploads up to {settings.upload_limit_bytes / 1024 / 1024:g} MB (413 over it), of which the first "
        f"{settings.analyze_max_seconds:g} s are analysed; sample rates 4-384 kHz (415), at least 1,024 samples (422). "
        f"{settings.deadline_s:g} s per request, queue included (504). {settings.workers} workers and {settings.queue_size} queued "
        f"requests (503 with Retry-After over it), at most {settings.jobs_per_client} of them per API key or address (429). "
        f"{settings.max_streams} streams at once (1013); a stream paused over {settings.stream_pause_timeout_s:g} s is closed."
        + (f" {settings.rate_limit_per_minute:g} requests per minute per key or address (429)." if settings.rate_limit_per_minute else "")
    )


def create_app(settings: Settings | None = None, pipeline=None) -> FastAPI:
    """The application; models load (unless `pipeline` is given) before the server takes requests."""
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        install_log_redaction()  # after uvicorn has configured its loggers: no ?token= reaches a log
        app.state.services = await run_in_threadpool(services.start, settings, metrics, pipeline)
        try:
            yield
        finally:
            # uvicorn has already waited for the requests in flight; their jobs are done or finishing here.
            await run_in_threadpool(app.state.services.close)

    app = FastAPI(
        title="moodmusic", version="0.1.0", lifespan=lifespan,
        description="Music clips for a mood, what the classifier hears in them, and what the narrator says. "
        "Errors answer `{\"detail\": ...}` saying what to fix.\n\n" + limits_text(settings),
    )  # fmt: skip
    install_error_handlers(app)
    app.include_router(routes.v1)
    app.include_router(routes.ops)
    app.include_router(stream.router)  # WS /v1/stream: the live game soundtrack (server/stream.py)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    # Middleware: the last added runs first. Outermost to innermost: metrics (sees every answer), CORS
    # (when configured; so browsers can read errors too), the body limit (refuses an oversize upload
    # before anything reads it).
    app.add_middleware(BodyLimitMiddleware, upload_limit=settings.upload_limit_bytes, default_limit=settings.json_limit_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"],
        )  # fmt: skip
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def __getattr__(name: str):
    # `uvicorn server.app:app`: build the app from the environment only when someone asks for it.
    if name == "app":
        return create_app()
    raise AttributeError(name)
