"""The endpoints. They validate, look in the store, and hand inference to the worker pool; the pipeline
(moodmusic.pipeline) does the work. Errors are raised as the project's exceptions and mapped to
statuses in one place (`app.install_error_handlers`).
"""

from __future__ import annotations

import io
import threading
import time
from typing import Annotated, Any, Callable, Optional, TypeVar

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from moodmusic.trajectory import Trajectory
from moodmusic.audio import OUTPUT_FORMATS, load_audio
from moodmusic.loopfiles import encode_clip
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import MOOD_SYNONYMS, NAMED_MOODS, Mood, quadrant, resolve
from moodmusic.server import schemas
from moodmusic.server.security import check_access
from moodmusic.server.services import Services, get_services
from moodmusic.server.store import CLIP_ID, StoredClip, request_key

ServicesDep = Annotated[Services, Depends(get_services)]
# The clip id's form, stated in the OpenAPI contract: 32 lowercase hex characters (server.store.CLIP_ID).
ClipId = Annotated[str, PathParam(pattern=CLIP_ID.pattern, min_length=32, max_length=32, description="a clip id: 32 lowercase hex characters")]
ERRORS = {status: {"model": schemas.Problem} for status in (400, 401, 404, 413, 415, 422, 429, 503, 504)}


async def api_access(request: Request, services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """Every /v1 route: the bearer key when keys are configured, then the rate limit of that key (or address);
    a wrong key counts against its address's limit. Returns who the client is (its key, or its address), for the
    per-client limit on jobs."""
    address = request.client.host if request.client else "unknown"
    key = check_access(authorization, services.settings.api_keys, services.limiter, address)
    return f"key:{key}" if key else f"address:{address}"


v1 = APIRouter(prefix="/v1", dependencies=[Depends(api_access)], responses=ERRORS)
ClientDep = Annotated[str, Depends(api_access)]  # the same call as the router's (FastAPI caches it per request)
ops = APIRouter()
T = TypeVar("T")


# --- conversions: pipeline objects -> response bodies ------------------------------------------
def heard(analysis) -> dict[str, Any]:
    data = analysis.as_dict()
    return {**data["overall"], "quadrant": data["quadrant"], "primary_mood": data["primary_mood"],
            "duration": data["duration"], "loudness_lufs": data.get("loudness_lufs"), "timeline": data["timeline"]}  # fmt: skip


def point(mood: Mood) -> dict[str, Any]:
    return {"valence": mood.valence, "arousal": mood.arousal, "quadrant": mood.quadrant}


def clip_meta(clip, clip_id: str, kind: str, request: dict[str, Any], points: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps for a clip: the response body, less `cached`."""
    return {
        "id": clip_id, "url": f"/v1/clips/{clip_id}", "audio_url": f"/v1/clips/{clip_id}/audio",
        "mel_url": f"/v1/clips/{clip_id}/mel.png", "kind": kind, "event": request.get("event"),
        "asked": point(clip.asked), "trajectory": request.get("trajectory"), "level": clip.level.as_dict() if clip.level is not None else None,
        "heard": heard(clip.analysis) if clip.analysis is not None else None, "distance": clip.distance,
        "narration": clip.narration.as_dict() if clip.narration is not None else None,
        "duration": clip.seconds, "seed": clip.seed, "loop": clip.loop, "format": request["format"],
        "tempo": clip.grid.as_dict(), "bars": round(clip.bars, 4), "audio": points,
        "timings": {k: round(v, 4) for k, v in clip.timings.items()}, "versions": clip.versions, "created": time.time(),
    }  # fmt: skip


async def produce(services: Services, client: str, kind: str, key_parts: dict[str, Any], body, make: Callable[[], Any]) -> schemas.ClipResponse:
    """A clip from the store when an identical request made one before, else from the pool (then stored)."""
    key = request_key(kind=kind, versions=services.pipeline.versions, **key_parts)
    stored = await run_in_threadpool(services.store.find, key)  # the store may be a database on another machine
    if stored is not None and (not body.verify or stored.meta["heard"]) and (not body.narrate or stored.meta["narration"]):
        services.metrics.store_lookup(hit=True)
        return schemas.ClipResponse(**stored.meta, cached=True)
    services.metrics.store_lookup(hit=False)
    submitted = time.perf_counter()
    request = body.model_dump(mode="json")

    def job() -> tuple[dict[str, Any], bool]:
        waited = time.perf_counter() - submitted
        clip = make()
        clip.timings["queue"] = waited
        clip_id = stored.id if stored is not None else services.store.new_id()  # an upgraded clip keeps its id
        data, points = encode_clip(clip.audio, request["format"], request["sample_rate"], clip.grid, clip.loop)
        kept = services.store.put(clip_id, key, data, clip.mel.detach().cpu().numpy(), clip_meta(clip, clip_id, kind, request, points),
                                  replace=stored is not None)  # fmt: skip
        return kept.meta, kept.id != clip_id  # an identical request that raced this one stored first

    meta, cached = await services.pool.run(job, services.settings.deadline_s, kind=kind, units=body.duration, stored=True, client=client)
    return schemas.ClipResponse(**meta, cached=cached)


def grid_parts(body) -> dict[str, Any]:
    """The store key's part for the grid and the file's rate (absent when default, so earlier keys stay valid)."""
    parts = {"bpm": body.bpm, "beats_per_bar": body.beats_per_bar, "sample_rate": body.sample_rate if body.sample_rate != SAMPLE_RATE else None}
    return {k: v for k, v in parts.items() if v is not None}


# --- /v1 -----------------------------------------------------------------------------------------
@v1.post("/clips", response_model=schemas.ClipResponse, summary="compose a clip for a mood or a trajectory")
async def create_clip(body: schemas.ClipRequest, services: ServicesDep, client: ClientDep) -> schemas.ClipResponse:
    trajectory = Trajectory.of(body.target())  # a bad mood is a 422 here, before it takes a worker
    key_parts = {"mood": [trajectory.times, trajectory.valence, trajectory.arousal], "duration": body.duration,
                 "seed": body.seed, "loop": body.loop, "format": body.format, **grid_parts(body)}  # fmt: skip

    def make():
        return services.pipeline.compose(trajectory, body.duration, body.seed, verify=body.verify, narrate=body.narrate, loop=body.loop,
                                         bpm=body.bpm, beats_per_bar=body.beats_per_bar)  # fmt: skip

    return await produce(services, client, "clip", key_parts, body, make)


@v1.post("/stingers", response_model=schemas.ClipResponse, summary="a 1-3 s clip for a game event (rise, fall, hit)")
async def create_stinger(body: schemas.StingerRequest, services: ServicesDep, client: ClientDep) -> schemas.ClipResponse:
    mood = resolve(body.target())
    key_parts = {"mood": mood.as_tuple(), "event": body.event, "duration": body.duration, "seed": body.seed, "format": body.format,
                 **grid_parts(body)}  # fmt: skip

    def make():
        return services.pipeline.stinger(body.event, mood, body.duration, body.seed, verify=body.verify, narrate=body.narrate,
                                         bpm=body.bpm, beats_per_bar=body.beats_per_bar)  # fmt: skip

    return await produce(services, client, "stinger", key_parts, body, make)


def not_found(clip_id: str) -> HTTPException:
    return HTTPException(404, detail=f"no clip with id {clip_id} (never made here, or evicted from the store)")


async def stored_or_404(services: Services, clip_id: str) -> StoredClip:
    # In a thread: the store may be a database on another machine. InvalidClipId (422) for anything but 32 hex characters.
    stored = await run_in_threadpool(services.store.get, clip_id)
    if stored is None:
        raise not_found(clip_id)
    return stored


async def read_or_404(clip_id: str, read: Callable[[str], T]) -> T:
    """One of a clip's parts from the store (`store.audio`, `store.mel`), read in a thread; 404 when the clip was
    evicted since it was looked up."""
    try:
        return await run_in_threadpool(read, clip_id)
    except KeyError:
        raise not_found(clip_id) from None


@v1.get("/clips/{clip_id}", response_model=schemas.ClipResponse, summary="a stored clip's metadata")
async def get_clip(clip_id: ClipId, services: ServicesDep) -> schemas.ClipResponse:
    return schemas.ClipResponse(**(await stored_or_404(services, clip_id)).meta, cached=True)


@v1.get("/clips/{clip_id}/audio", response_class=FileResponse, summary="a stored clip's audio, in the format it was made in or another",
        responses={200: {"content": {f.media_type: {} for f in OUTPUT_FORMATS.values()}}})  # fmt: skip
async def get_clip_audio(clip_id: ClipId, services: ServicesDep, format: Optional[schemas.AudioFormat] = None) -> Response:
    """`?format=flac` converts the stored clip (no second generation), its loop points and bar markers with it. A clip
    made lossy (ogg, mp3) converts from its lossy file; made as wav or flac, it converts without a second lossy pass."""
    stored = await stored_or_404(services, clip_id)
    made_as, name = stored.meta["format"], format or stored.meta["format"]
    headers = {"content-disposition": f'inline; filename="{clip_id}.{name}"'}
    data = await read_or_404(clip_id, services.store.audio)
    if name != made_as:
        data = await run_in_threadpool(convert, stored, data, name)  # not inference: no pool slot, like mel.png
    return Response(data, media_type=OUTPUT_FORMATS[name].media_type, headers=headers)


def convert(stored: StoredClip, data: bytes, name: str) -> bytes:
    """A stored clip's audio (`data`, its file) in another format, at its own sample rate, with its loop points and bar markers."""
    import soundfile

    from moodmusic.loopfiles import encode_at_rate
    from moodmusic.tempo import Grid

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    tempo = stored.meta.get("tempo")
    grid = Grid(tempo["bpm"], tempo["beats_per_bar"]) if tempo else None
    return encode_at_rate(samples, name, rate, grid, stored.meta["loop"])


@v1.get("/clips/{clip_id}/mel.png", response_class=Response, summary="a stored clip's log-mel as an image",
        responses={200: {"content": {"image/png": {}}}})  # fmt: skip
async def get_clip_mel(clip_id: ClipId, services: ServicesDep) -> Response:
    await stored_or_404(services, clip_id)
    png = await run_in_threadpool(services.store.png, clip_id)
    if png is not None:
        return Response(png, media_type="image/png")
    from moodmusic.server.mel_image import mel_png

    mel = await read_or_404(clip_id, services.store.mel)
    png = await run_in_threadpool(mel_png, mel)  # ~0.1 s of matplotlib; not inference, no pool slot
    try:
        await run_in_threadpool(services.store.add_png, clip_id, png)
    except KeyError:
        pass  # evicted meanwhile: still answer with the image
    return Response(png, media_type="image/png")


@v1.post("/analyze", response_model=schemas.AnalyzeResponse, summary="the mood of an uploaded audio file, and its narration")
async def analyze(
    services: ServicesDep,
    client: ClientDep,
    file: Annotated[UploadFile, File(description="WAV, FLAC, OGG or MP3")],
    narrate: Annotated[bool, Form()] = True,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
) -> schemas.AnalyzeResponse:
    data = await file.read()
    limit = services.settings.analyze_max_seconds

    def job() -> schemas.AnalyzeResponse:
        started = time.perf_counter()
        # Decode one second past the limit, so a file longer than the limit is told apart from one exactly that long.
        samples = load_audio(data, max_seconds=limit + 1.0)
        truncated = samples.size > round(limit * SAMPLE_RATE)
        samples = samples[: round(limit * SAMPLE_RATE)]
        decoded = time.perf_counter() - started
        analysis, narration, timings = services.pipeline.analyze(samples, seed=seed, narrate=narrate)
        return schemas.AnalyzeResponse(
            filename=file.filename, analyzed_seconds=samples.size / SAMPLE_RATE, truncated=truncated, heard=heard(analysis),
            narration=narration.as_dict() if narration is not None else None,
            timings={"decode": round(decoded, 4), **{k: round(v, 4) for k, v in timings.items()}}, versions=services.pipeline.versions,
        )  # fmt: skip

    return await services.pool.run(job, services.settings.deadline_s, kind="analyze", units=len(data) / 1e6, client=client)


@v1.get("/moods", response_model=schemas.MoodsResponse, summary="the named moods and their points")
async def moods() -> schemas.MoodsResponse:
    return schemas.MoodsResponse(
        moods=[schemas.NamedMood(name=n, valence=v, arousal=a, quadrant=quadrant(v, a)) for n, (v, a) in NAMED_MOODS.items()],
        synonyms=MOOD_SYNONYMS,
    )


@v1.post("/evaluate", summary="run a small closed-loop grid (generate -> vocode -> classify -> narrate); the report's JSON")
async def evaluate(body: schemas.EvaluateRequest, services: ServicesDep, client: ClientDep) -> dict[str, Any]:
    from moodmusic.evaluation.closed_loop import ClosedLoopConfig, evaluate_grid

    config = ClosedLoopConfig(
        grid=body.grid, seeds=body.seeds, seconds=body.duration, first_seed=body.first_seed,
        corpus="data/corpus" if body.real_references else None, real_clips=16, progress=False,
    )  # fmt: skip
    stop = threading.Event()  # set at the deadline: the grid stops at its next clip instead of running on for nobody
    return await services.pool.run(lambda: evaluate_grid(services.pipeline, config, stop=stop), services.settings.deadline_s, kind="evaluate", stop=stop, client=client)


# --- operations: no key, no rate limit (probes and scrapers) ------------------------------------
@ops.get("/healthz", summary="the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/readyz", summary="models loaded and the pool taking work", responses={503: {"model": schemas.Problem}})
async def readyz(services: ServicesDep) -> dict[str, Any]:
    if not services.pool.accepting:
        raise HTTPException(503, detail="shutting down", headers={"Retry-After": "5"})
    return {"status": "ready", "versions": services.pipeline.versions, "workers": services.pool.workers,
            "running": services.pool.running, "queued": services.pool.queued}  # fmt: skip


@ops.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(services: ServicesDep) -> PlainTextResponse:
    text = await run_in_threadpool(services.metrics.render)  # in a thread: the store's gauges may ask a database
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
