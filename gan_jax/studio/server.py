"""The studio's web app: one self-contained page and a JSON/PNG API over `gan_jax.sampling`.

    app = create_app({"digits": "runs/digits"})          # a Starlette ASGI app
    uvicorn.run(app, host="127.0.0.1", port=8600)

Every model call runs on one worker thread (JAX work is queued, never interleaved), so the
event loop keeps answering the page while a long job (a projection, a GIF) runs; long jobs
report progress at /api/jobs/ID. Requests name runs by the names given at start-up, never by
path, and every count, size and upload is bounded; a bad request gets a 4xx with a message.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import uuid

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gan_jax import errors, sampling
from gan_jax import images as images_lib
from gan_jax.sampling import directions as directions_lib
from gan_jax.sampling import recipe as recipe_lib

log = logging.getLogger("gan_jax.studio")

STATIC = os.path.join(os.path.dirname(__file__), "static")
STATIC_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
TOKEN_HEADER = "x-studio-token"
TOKEN_COOKIE = "studio_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

MAX_BODY = 64 * 1024  # JSON requests
MAX_UPLOAD = 10 * 1024 * 1024  # image uploads
MAX_UPLOAD_PIXELS = 4096 * 4096
MAX_GRID = 64
MAX_FRAMES = 240
MAX_SIDE = 2048  # pixels of any image the studio sends
MAX_DIRECTIONS = 32
MAX_PROJECT_STEPS = 1000
MAX_JOBS = 16


class RequestError(ValueError):
    """A request the studio refuses: becomes a 4xx response with this message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Job:
    """A long request run on the worker: the page polls its progress."""

    kind: str
    total: int
    done: int = 0
    state: str = "queued"  # queued | running | done | failed
    error: str = ""
    result: bytes = b""
    media_type: str = ""
    info: dict = dataclasses.field(default_factory=dict)
    created: float = dataclasses.field(default_factory=time.time)

    def public(self, job_id: str) -> dict:
        return {
            "id": job_id,
            "kind": self.kind,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "info": self.info,
        }


def discover_runs(workdir: str | None = None, runs_dir: str | None = None) -> dict[str, str]:
    """{name: workdir} of one run (`workdir`) or of every run folder inside `runs_dir`.

    Raises:
      SamplingError: a missing folder, or no run (a folder with config.json) in it.
    """
    out = {}
    if workdir:
        if not os.path.isfile(os.path.join(workdir, "config.json")):
            raise errors.SamplingError(f"'{workdir}' is not a training run (no config.json)")
        out[os.path.basename(os.path.normpath(os.path.abspath(workdir)))] = os.path.abspath(workdir)
    if runs_dir:
        if not os.path.isdir(runs_dir):
            raise errors.SamplingError(f"--runs: '{runs_dir}' is not a folder")
        for name in sorted(os.listdir(runs_dir)):
            path = os.path.join(runs_dir, name)
            if os.path.isfile(os.path.join(path, "config.json")):
                out[name] = os.path.abspath(path)
        if not out:
            raise errors.SamplingError(
                f"--runs: no training run (folder with config.json) in '{runs_dir}'"
            )
    if not out:
        raise errors.SamplingError("give --workdir=RUN or --runs=FOLDER_OF_RUNS")
    return out


class Studio:
    """The state behind the app: runs, loaded generators, the worker and its jobs."""

    def __init__(self, runs: dict[str, str], *, max_loaded: int = 3):
        self.runs = dict(runs)
        self.max_loaded = max_loaded
        self._loaded = collections.OrderedDict()  # (run, step, ema) -> (Generator, cache)
        self._jobs = collections.OrderedDict()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="studio-jax")
        self._lock = threading.Lock()

    # -- runs and generators (worker thread only) ------------------------------------------

    def workdir(self, run) -> str:
        if not isinstance(run, str) or run not in self.runs:
            raise RequestError(f"unknown run {run!r}; serving: {', '.join(self.runs)}", 404)
        return self.runs[run]

    def run_info(self, name: str) -> dict:
        from gan_jax import config_lib, models  # noqa: PLC0415

        workdir = self.runs[name]
        info = {"name": name}
        try:
            config = config_lib.load(workdir)
            if not models.has_latent(config):  # image-to-image: the page's translate panel
                return self._translate_info(info, config, workdir)
            info.update(
                model=config.model.name,
                image_size=int(config.data.image_size),
                z_dim=int(config.model.z_dim),
                num_classes=models.num_classes(config),
                style=config.model.name == "stylegan2",
            )
            if info["style"]:
                from gan_jax.models import stylegan2  # noqa: PLC0415

                info["num_ws"] = stylegan2.num_ws(info["image_size"])
        except Exception as e:  # a broken run is listed with its problem, not hidden
            info["error"] = f"cannot read its config: {e}"
            return info
        steps = self._steps(workdir)
        info["steps"] = steps
        info["best"] = os.path.isdir(os.path.join(workdir, sampling.BEST_DIR))
        info["samples"] = os.path.isdir(os.path.join(workdir, "samples"))
        if not steps:
            info["error"] = "no checkpoint yet: train first"
        return info

    def _translate_info(self, info: dict, config, workdir: str) -> dict:
        from gan_jax.input import tasks  # noqa: PLC0415

        spec = config.data.get("task", "")
        task = tasks.parse_task(spec) if spec else None  # None: CycleGAN
        info.update(
            model=config.model.name,
            image_size=int(config.data.image_size),
            channels=int(config.data.channels),
            translate=True,
            task=str(task) if task else "A -> B",
            inpaint=bool(task) and task.kind == "inpaint",
            factor=(task.factor or 1) if task else 1,
        )
        info["steps"] = self._steps(workdir)
        if not info["steps"]:
            info["error"] = "no checkpoint yet: train first"
        return info

    def _steps(self, workdir: str) -> list[int]:
        from gan_jax.training import checkpoint as ckpt_lib  # noqa: PLC0415

        ckpt_dir = ckpt_lib.checkpoint_dir(workdir)
        if not os.path.isdir(ckpt_dir):
            return []
        return sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())

    def _step(self, workdir: str, step, *, best_ok: bool):
        """A request's step: 'latest' becomes the newest step now, not when first loaded
        (a run still training moves on)."""
        if step in (None, "", "latest"):
            steps = self._steps(workdir)
            return steps[-1] if steps else None
        if step == "best" and best_ok:
            return step
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            allowed = (
                "'latest', 'best' or a step number" if best_ok else "'latest' or a step number"
            )
            raise RequestError(f"step must be {allowed}, got {step!r}")
        return step

    def _cached(self, key, load):
        """`load()` once per key, the `max_loaded` most recently used kept."""
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        entry = load()
        with self._lock:
            self._loaded[key] = entry
            while len(self._loaded) > self.max_loaded:
                self._loaded.popitem(last=False)
        return entry

    def generator(self, run, step, ema: bool):
        """(a GAN run's generator handle, its directions cache)."""
        workdir = self.workdir(run)
        step = self._step(workdir, step, best_ok=True)

        def load():
            handle = sampling.load_generator(workdir, step, use_ema=bool(ema))
            return handle, recipe_lib.directions_cache(handle)

        return self._cached((run, step, bool(ema)), load)

    def translator(self, run, step, ema: bool):
        """An image-to-image run's `Translator` (cached beside the generators)."""
        from gan_jax.sampling import translate  # noqa: PLC0415

        workdir = self.workdir(run)
        step = self._step(workdir, step, best_ok=False)
        return self._cached(
            ("translate", run, step, bool(ema)),
            lambda: translate.load(workdir, step, use_ema=bool(ema)),
        )

    # -- the worker ------------------------------------------------------------------------

    async def run(self, fn, *args):
        """Runs `fn(*args)` on the worker thread and awaits it."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def submit(self, job: Job, fn) -> str:
        """Queues a job `fn(job)` on the worker; returns its id."""
        with self._lock:
            if len(self._jobs) >= MAX_JOBS:  # forget the oldest finished job
                ended = [k for k, j in self._jobs.items() if j.state in ("done", "failed")]
                if not ended:
                    raise RequestError("too many jobs in progress: wait for one to finish", 429)
                self._jobs.pop(ended[0])
            job_id = uuid.uuid4().hex[:12]
            self._jobs[job_id] = job

        def body():
            job.state = "running"
            try:
                fn(job)
                job.state = "done"
            except (RequestError, *errors.USER_ERRORS) as e:
                job.state, job.error = "failed", str(e)
            except Exception as e:  # noqa: BLE001 - reported on the page, logged here
                log.exception("job %s failed", job_id)
                job.state, job.error = "failed", f"internal error ({type(e).__name__})"

        self._worker.submit(body)
        return job_id

    def job(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise RequestError(f"no job {job_id!r}", 404)
            return self._jobs[job_id]

    def close(self):
        self._worker.shutdown(wait=False, cancel_futures=True)


# -- request parsing -----------------------------------------------------------------------


async def _json(request: Request) -> dict:
    body = await _body(request, MAX_BODY)
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"the request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object")
    return data


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestError("bad Content-Length")
        if int(length) > limit:
            raise RequestError(f"the request is larger than {limit // 1024} KiB", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request is larger than {limit // 1024} KiB", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _int(data: dict, key: str, default: int, lo: int, hi: int) -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(f"{key} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(f"{key} must lie in [{lo}, {hi}], got {v}")
    return v


def _recipe(data: dict) -> sampling.Recipe:
    return sampling.Recipe.from_dict(data.get("recipe", {}))


def _model(studio: Studio, data: dict):
    return studio.generator(data.get("run"), data.get("step", "latest"), data.get("ema", True))


def _written(name: str, write) -> bytes:
    """The bytes `write(path)` puts in a temporary file called `name` (the writers take paths)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        write(path)
        with open(path, "rb") as f:
            return f.read()


def _scale_for(side: int, scale: int) -> int:
    if side * scale > MAX_SIDE:
        raise RequestError(f"scale {scale} makes images over {MAX_SIDE} px")
    return scale


# -- endpoints -----------------------------------------------------------------------------


async def index(request: Request):
    response = FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")
    token = request.app.state.token
    if token and request.query_params.get("token") == token:
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def favicon(request: Request):
    return Response(status_code=204)


async def static(request: Request):
    name = request.path_params["name"]
    if name not in STATIC_FILES:  # a fixed list: no path from a request reaches the disk
        raise RequestError(f"no file {name!r}", 404)
    return FileResponse(os.path.join(STATIC, name), media_type=STATIC_FILES[name])


async def list_runs(request: Request):
    studio: Studio = request.app.state.studio
    infos = await studio.run(lambda: [studio.run_info(n) for n in studio.runs])
    return JSONResponse({"runs": infos, "limits": {"grid": MAX_GRID, "frames": MAX_FRAMES}})


async def grid(request: Request):
    """A page of seeds as one PNG: cell k is seed start + k (the page overlays clicks)."""
    studio: Studio = request.app.state.studio
    data = await _json(request)
    start = _int(data, "start", 0, 0, 2**31 - 1 - MAX_GRID)
    count = _int(data, "count", 16, 1, MAX_GRID)
    cols = _int(data, "cols", 4, 1, MAX_GRID)
    base = _recipe(data)

    def work():
        handle, directions = _model(studio, data)
        recipes = [
            dataclasses.replace(base, **_plane(sampling.Recipe.from_seed(s)))
            for s in range(start, start + count)
        ]
        images = sampling.render_recipes(handle, recipes, directions)
        return images_lib.png_bytes(sampling.make_grid(images, cols=cols, padding=0))

    return Response(await studio.run(work), media_type="image/png")


def _plane(recipe: sampling.Recipe) -> dict:
    return {"x": recipe.x, "y": recipe.y}


async def image(request: Request):
    """One image of a recipe, as PNG with the recipe in its metadata (the page's Save)."""
    studio: Studio = request.app.state.studio
    data = await _json(request)
    recipe = _recipe(data)
    scale = _int(data, "scale", 1, 1, 16)

    def work():
        handle, directions = _model(studio, data)
        img = sampling.render_recipes(handle, [recipe], directions)[0]
        return sampling.encode_recipe_png(
            img, handle, recipe, scale=_scale_for(img.shape[0], scale)
        )

    return Response(await studio.run(work), media_type="image/png")


async def directions(request: Request):
    studio: Studio = request.app.state.studio
    data = await _json(request)
    method = data.get("method", "sefa")
    if method not in directions_lib.METHODS:
        raise RequestError(f"method must be one of {', '.join(directions_lib.METHODS)}")
    num = _int(data, "num", 8, 1, MAX_DIRECTIONS)
    layers = data.get("layers", "all")
    if not isinstance(layers, str) or len(layers) > 64:
        raise RequestError("layers is a string like '0-3' or 'all'")

    def work():
        handle, find = _model(studio, data)
        d = find(method, layers if handle.is_style_based else None)
        k = min(num, len(d.values))
        return {
            "method": d.method,
            "space": d.space,
            "values": [float(v) for v in d.values[:k]],
            "scales": [float(v) for v in d.scales[:k]],
            "layers": None if d.layers is None else list(d.layers),
        }

    return JSONResponse(await studio.run(work))


async def walk(request: Request):
    """Queues the export of a walk (recipe -> recipe.to) as GIF or MP4; returns the job."""
    studio: Studio = request.app.state.studio
    data = await _json(request)
    recipe = _recipe(data)
    if recipe.to is None:
        raise RequestError("a walk needs recipe.to, its end on the seed plane")
    frames = _int(data, "frames", 48, 2, MAX_FRAMES)
    fmt = data.get("format", "gif")
    if fmt not in ("gif", "mp4"):
        raise RequestError("format must be gif or mp4")
    fps = data.get("fps", 24)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 60:
        raise RequestError("fps must be a number in [1, 60]")
    studio.workdir(data.get("run"))  # an unknown run fails now, not in the job

    def work(job: Job):
        handle, find = _model(studio, data)
        out = []
        for lo in range(0, frames, 16):
            ts = np.linspace(0.0, 1.0, frames)[lo : lo + 16]
            batch = [dataclasses.replace(recipe, t=float(t)) for t in ts]
            out.append(sampling.render_recipes(handle, batch, find))
            job.done = min(frames, lo + 16)
        video = np.concatenate(out)
        video = sampling.upscale(video, sampling.auto_scale(video.shape[1]))
        save = sampling.save_gif if fmt == "gif" else sampling.save_mp4
        job.result = _written(f"walk.{fmt}", lambda path: save(video, path, fps=fps))
        job.media_type = "image/gif" if fmt == "gif" else "video/mp4"
        job.info = {"filename": f"walk.{fmt}"}

    job_id = studio.submit(Job("walk", total=frames), work)
    return JSONResponse({"job": job_id})


async def project(request: Request):
    """Queues the projection of an uploaded image (StyleGAN2): its w, then edit it."""
    studio: Studio = request.app.state.studio
    q = request.query_params
    try:
        steps = int(q.get("steps", "200"))
    except ValueError:
        raise RequestError("steps must be an integer") from None
    if not 1 <= steps <= MAX_PROJECT_STEPS:
        raise RequestError(f"steps must lie in [1, {MAX_PROJECT_STEPS}]")
    spec = {"run": q.get("run"), "step": _step_param(q.get("step")), "ema": q.get("ema") != "0"}
    # Inception features make the projection faithful; pixels alone are fast (a CPU preview).
    feature_weight = 0.0 if q.get("features") == "0" else 1.0
    studio.workdir(spec["run"])
    body = await _body(request, MAX_UPLOAD)
    target_file = _check_upload(body)

    def work(job: Job):
        try:
            handle, _ = _model(studio, spec)
            if not handle.is_style_based:
                raise RequestError("projection needs a StyleGAN2 run")
            target = sampling.load_target(target_file, handle)
        finally:
            os.unlink(target_file)  # the upload never stays on disk

        def progress(i, loss):
            job.done = i

        result = sampling.project(
            handle, target, steps=steps, feature_weight=feature_weight, progress=progress
        )
        job.done = steps
        w = result.ws[0]
        recipe = sampling.Recipe(w=tuple(float(v) for v in w))
        job.result = sampling.encode_recipe_png(result.frames[-1], handle, recipe)
        job.media_type = "image/png"
        job.info = {"recipe": recipe.to_dict(), "psnr": float(result.psnr)}

    try:
        job_id = studio.submit(Job("project", total=steps), work)
    except RequestError:
        os.unlink(target_file)  # the job never ran: nothing else will remove the upload
        raise
    return JSONResponse({"job": job_id})


async def translate_upload(request: Request):
    """An uploaded image through an image-to-image run -> PNG. For inpainting, the upload's
    transparent pixels (alpha < 128) are the hole: the page paints them."""
    studio: Studio = request.app.state.studio
    q = request.query_params
    spec = (q.get("run"), _step_param(q.get("step")), q.get("ema") != "0")
    studio.workdir(spec[0])
    image, hole = _decode_upload(await _body(request, MAX_UPLOAD))

    def work():
        from gan_jax.input import sources  # noqa: PLC0415

        translator = studio.translator(*spec)
        if translator.task is None:  # CycleGAN: images at their own size
            factor, inpaint = 1, False
        else:
            factor = translator.task.factor or 1  # None: the output keeps the input's size
            inpaint = translator.task.kind == "inpaint"
        w, h = image.size
        if max(w, h) * factor > MAX_SIDE:
            raise RequestError(
                f"the output would be {w * factor}x{h * factor} px; the studio sends at most "
                f"{MAX_SIDE} px on a side (translate.py has no such limit)",
                413,
            )
        if inpaint and (hole is None or not hole.any()):
            raise RequestError("paint the hole first: the upload's transparent pixels are the hole")
        pixels = np.asarray(sources.to_channels(image, translator.channels))
        mask = hole.astype(np.uint8) * 255 if inpaint else None
        return images_lib.png_bytes(translator(pixels, mask=mask))

    return Response(await studio.run(work), media_type="image/png")


def _decode_upload(body: bytes):
    """(a decoded PIL image, its hole mask (alpha < 128) or None): sizes checked."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    if not body:
        raise RequestError("upload an image (the request body was empty)")
    try:
        image = Image.open(io.BytesIO(body))
        w, h = image.size
        if w * h > MAX_UPLOAD_PIXELS:
            raise RequestError(f"the image has {w}x{h} pixels; the limit is 4096x4096", 413)
        image.load()
    except RequestError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise RequestError(f"the upload is not an image this studio can read: {e}") from None
    hole = None
    if "A" in image.getbands():
        hole = np.asarray(image.getchannel("A")) < 128
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        hole = np.asarray(image.getchannel("A")) < 128
    return image, hole


def _step_param(value):
    if value in (None, "", "latest", "best"):
        return value or "latest"
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"step must be 'latest', 'best' or a number, got {value!r}") from None


def _check_upload(body: bytes) -> str:
    """Checks an uploaded image (as `_decode_upload` does) and writes it to a temporary file."""
    _decode_upload(body)
    fd, path = tempfile.mkstemp(prefix="studio_upload_")
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    return path


async def job_status(request: Request):
    studio: Studio = request.app.state.studio
    job_id = request.path_params["job_id"]
    return JSONResponse(studio.job(job_id).public(job_id))


async def job_result(request: Request):
    studio: Studio = request.app.state.studio
    job = studio.job(request.path_params["job_id"])
    if job.state != "done":
        raise RequestError(f"the job is {job.state}" + (f": {job.error}" if job.error else ""), 409)
    headers = {}
    if "filename" in job.info:
        headers["content-disposition"] = f'attachment; filename="{job.info["filename"]}"'
    return Response(job.result, media_type=job.media_type, headers=headers)


async def timelapse(request: Request):
    """The run's fixed-noise sample grids over its steps as a GIF."""
    studio: Studio = request.app.state.studio
    workdir = studio.workdir(request.query_params.get("run"))

    def work():
        from gan_jax.sampling import timelapse as timelapse_lib  # noqa: PLC0415

        grid = timelapse_lib.grid_files(workdir)
        scale = 1
        if grid:  # about 512 px wide, labels drawn after upscaling so they stay sharp
            from PIL import Image  # noqa: PLC0415

            try:
                with Image.open(grid[-1][1]) as im:
                    scale = max(1, min(4, 512 // max(im.size)))
            except OSError:
                pass  # timelapse_frames skips and names an unreadable grid
        frames, _ = timelapse_lib.timelapse_frames(workdir, max_frames=100, scale=scale)
        frames = timelapse_lib.hold_last(frames, 2.0, 8)
        return _written("timelapse.gif", lambda path: sampling.save_gif(frames, path, fps=8))

    return Response(await studio.run(work), media_type="image/gif")


async def curves(request: Request):
    """The run's losses, D outputs, FID/KID and ADA's p as one PNG."""
    studio: Studio = request.app.state.studio
    workdir = studio.workdir(request.query_params.get("run"))

    def work():
        from gan_jax.sampling import curves as curves_lib  # noqa: PLC0415

        return _written(
            "curves.png", lambda path: curves_lib.plot_curves(workdir, path, smoothing=0.6)
        )

    return Response(await studio.run(work), media_type="image/png")


# -- the app -------------------------------------------------------------------------------


def _status(error: Exception) -> int:
    if isinstance(error, RequestError):
        return error.status
    if isinstance(error, errors.CheckpointError):
        return 409  # the run exists; this checkpoint cannot be served
    return 400


async def _user_error(request: Request, error: Exception):
    return JSONResponse({"error": str(error)}, status_code=_status(error))


async def _internal_error(request: Request, error: Exception):
    log.error("request %s failed: %r", request.url.path, error)
    body = {"error": f"internal error ({type(error).__name__}); see the studio's log"}
    return JSONResponse(body, status_code=500)


class _Guard:
    """ASGI middleware: the access token (when set) or, on loopback, the Host check."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refuse(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refuse(self, request: Request):
        if self.token is None:
            # Bound to loopback: refuse other Host names (a DNS-rebinding page).
            host = request.headers.get("host", "").rsplit(":", 1)[0]
            if host not in LOOPBACK_HOSTS and host != "testserver":
                return JSONResponse({"error": f"host {host!r} is not served"}, status_code=403)
            return None
        given = (
            request.headers.get(TOKEN_HEADER)
            or request.query_params.get("token")
            or request.cookies.get(TOKEN_COOKIE)
            or ""
        )
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            return JSONResponse(
                {"error": "this studio needs its access token (the URL it printed)"},
                status_code=403,
            )
        return None


def create_app(runs: dict[str, str], *, token: str | None = None, studio: Studio | None = None):
    """The studio as an ASGI app serving `runs` ({name: workdir}).

    Args:
      runs: the training runs to serve, by name (see `discover_runs`).
      token: when set, every request must carry it (header, ?token= or the cookie the page
        gets); use it whenever the server listens beyond 127.0.0.1.
      studio: a `Studio` to use (tests); one is made from `runs` otherwise.
    """
    studio = studio or Studio(runs)
    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/static/{name}", static),
        Route("/api/runs", list_runs),
        Route("/api/grid", grid, methods=["POST"]),
        Route("/api/image", image, methods=["POST"]),
        Route("/api/directions", directions, methods=["POST"]),
        Route("/api/walk", walk, methods=["POST"]),
        Route("/api/project", project, methods=["POST"]),
        Route("/api/translate", translate_upload, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_status),
        Route("/api/jobs/{job_id}/result", job_result),
        Route("/api/timelapse", timelapse),
        Route("/api/curves", curves),
    ]
    handlers = {cls: _user_error for cls in (RequestError, *errors.USER_ERRORS)}
    handlers[Exception] = _internal_error

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        studio.close()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.studio = studio
    app.state.token = token
    return _Guard(app, token)
