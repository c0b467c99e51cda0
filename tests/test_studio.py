"""The studio: recipes, SeFa/GANSpace directions, every API endpoint and its errors.

Two runs serve every test: a tiny DCGAN trained for 300 steps (sample grids and TensorBoard
events included) and a tiny conditional StyleGAN2 saved at initialisation (no training step
to compile; its mapping, styles and synthesis are all there). The browser test is in
test_studio_browser.py.
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from starlette.testclient import TestClient

from gan_jax import sampling
from gan_jax.errors import SamplingError
from gan_jax.sampling import directions as directions_lib
from gan_jax.sampling import recipe as recipe_lib
from gan_jax.sampling import translate
from gan_jax.studio import create_app, discover_runs

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def runs(studio_runs, fast_compile):
    return studio_runs


@pytest.fixture(scope="module")
def dcgan(runs):
    return sampling.load_generator(runs["dcgan"])


@pytest.fixture(scope="module")
def style(runs):
    return sampling.load_generator(runs["style"])


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create_app(runs)) as c:
        yield c


# -- directions ----------------------------------------------------------------------------


def _orthonormal(vectors):
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(len(vectors)), atol=1e-5)


def test_sefa_is_the_eigenbasis_of_the_first_layer(dcgan):
    d = sampling.sefa(dcgan, num=6)
    assert d.space == "z" and d.vectors.shape == (6, dcgan.z_dim)
    _orthonormal(d.vectors)
    assert np.all(np.diff(d.values) <= 1e-6)  # strongest first
    # A^T A v = lambda v, with A read independently from the checkpoint's kernel.
    kernel = np.asarray(dcgan.variables["params"]["conv0"]["kernel"], np.float64)
    a = kernel.transpose(2, 0, 1, 3).reshape(dcgan.z_dim, -1).T
    for v, lam in zip(d.vectors, d.values, strict=True):
        np.testing.assert_allclose(a.T @ a @ v, lam * v, rtol=1e-3, atol=1e-3 * lam)


def test_sefa_directions_move_images_more_than_random_ones(dcgan):
    """The top SeFa directions change the picture more than random unit directions do."""
    z = sampling.latents_for_seeds(dcgan.z_dim, range(8))
    run = jax.jit(lambda z: dcgan.module.apply(dcgan.variables, z, None, train=False))
    base = np.asarray(run(z), np.float64)  # float pixels: a 4-step model moves them little

    def change(direction):
        return np.abs(np.asarray(run(z + 3.0 * direction)) - base).mean()

    d = sampling.sefa(dcgan)  # all 16 directions, strongest first
    top = np.mean([change(v) for v in d.vectors[:3]])
    bottom = np.mean([change(v) for v in d.vectors[-3:]])
    rng = np.random.default_rng(0)
    random = []
    for _ in range(16):
        v = rng.normal(size=dcgan.z_dim)
        random.append(change((v / np.linalg.norm(v)).astype(np.float32)))
    # Trained models show 2-3x (README); this 300-step tiny one about 1.2x.
    assert top > 1.1 * np.mean(random) and top > bottom, (top, np.mean(random), bottom)


def test_style_directions_live_in_w_for_the_chosen_layers(style):
    coarse = sampling.sefa(style, num=4, layers="0-3")
    everything = sampling.sefa(style, num=4)
    assert coarse.space == "w" and coarse.layers == (0, 1, 2, 3)
    assert everything.layers == tuple(range(style.module.num_ws))
    _orthonormal(coarse.vectors)
    assert not np.allclose(np.abs(coarse.vectors), np.abs(everything.vectors), atol=1e-3)
    assert np.all(coarse.scales > 0)
    pca = sampling.ganspace(style, num=5)
    _orthonormal(pca.vectors)
    np.testing.assert_allclose(pca.scales**2, pca.values, rtol=1e-5)
    assert np.all(np.diff(pca.values) <= 1e-6)
    # PCA: the variance of sampled w along direction k is its value.
    w = directions_lib._sample_w(style)
    np.testing.assert_allclose(
        ((w - w.mean(0)) @ pca.vectors.T).var(0, ddof=1), pca.values, rtol=1e-3
    )


def test_direction_errors(dcgan, style):
    with pytest.raises(SamplingError, match="GANSpace needs a StyleGAN2"):
        sampling.ganspace(dcgan)
    with pytest.raises(SamplingError, match="for StyleGAN2"):
        sampling.sefa(dcgan, layers="0-3")
    with pytest.raises(SamplingError, match="layers must lie"):
        sampling.sefa(style, layers="0-99")
    with pytest.raises(SamplingError, match="does not exist"):
        sampling.sefa(dcgan, num=2).offset([(5, 1.0)])


# -- recipes -------------------------------------------------------------------------------


def test_plane_points_are_seeds_and_blends_keep_the_distribution(dcgan):
    z = sampling.latents_for_seeds(dcgan.z_dim, [3, 4, 1003])
    at = lambda **kw: recipe_lib.recipe_latent(dcgan, sampling.Recipe(**kw))  # noqa: E731
    np.testing.assert_array_equal(at(x=3), z[0])
    np.testing.assert_array_equal(
        recipe_lib.recipe_latent(dcgan, sampling.Recipe.from_seed(1003)), z[2]
    )
    np.testing.assert_allclose(at(x=3.5), (z[0] + z[1]) / np.sqrt(2), rtol=1e-5)
    # A walk: t=0 and t=1 are its ends.
    np.testing.assert_allclose(at(x=3, to=(4, 0), t=0.0), z[0], atol=1e-6)
    np.testing.assert_allclose(at(x=3, to=(4, 0), t=1.0), z[1], atol=1e-5)
    images = sampling.render_recipes(dcgan, [sampling.Recipe(x=3), sampling.Recipe.from_seed(3)])
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0], next(sampling.render(dcgan, z[:1]))[0])


def test_edits_mixing_and_truncation_of_a_style_recipe(style):
    r = sampling.Recipe(x=2, label=1)
    plain = recipe_lib.recipe_latent(style, r)
    np.testing.assert_array_equal(plain, sampling.seed_ws(style, [2], labels=1)[0])
    # An edit moves exactly the chosen layers by strength x scale along the direction.
    d = sampling.sefa(style, layers="0-3")
    edited = recipe_lib.recipe_latent(
        style, sampling.Recipe(x=2, label=1, edits=(("sefa", 1, 2.0),), edit_layers="0-3")
    )
    np.testing.assert_allclose(
        edited[:4] - plain[:4], np.tile(2.0 * d.scales[1] * d.vectors[1], (4, 1)), atol=1e-5
    )
    np.testing.assert_array_equal(edited[4:], plain[4:])
    # Mixing all layers from seed 9 is seed 9's image.
    mixed = sampling.render_recipes(
        style, [sampling.Recipe(x=2, label=1, mix_seed=9, mix_layers="0-7")]
    )
    np.testing.assert_array_equal(
        mixed, sampling.render_recipes(style, [sampling.Recipe(x=9, label=1)])
    )
    # psi = 0 collapses every seed onto the tracked average w.
    a, b = (recipe_lib.recipe_latent(style, sampling.Recipe(x=s, truncation=0.0)) for s in (1, 2))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_recipe_checks(dcgan, style):
    bad = [
        ({"x": -1}, "x must lie"),
        ({"x": float("nan")}, "x must be a number"),
        ({"x": True}, "x must be a number"),
        ({"sneaky": 1}, "unknown recipe keys: sneaky"),
        ({"edits": [["sefa", 0]]}, "an edit is"),
        ({"edits": [["magic", 0, 1.0]]}, "edit method"),
        ({"edits": [["sefa", 0, 1.0]] * 40}, "at most 32"),
        ({"noise_mode": "loud"}, "noise_mode"),
        ({"to": [1]}, "to must be"),
        ({"w": "not base64!"}, "base64"),
    ]
    for d, words in bad:
        with pytest.raises(SamplingError, match=words):
            sampling.Recipe.from_dict(d)
    with pytest.raises(SamplingError, match="unconditional"):
        sampling.render_recipes(dcgan, [sampling.Recipe(label=2)])
    with pytest.raises(SamplingError, match="for StyleGAN2"):
        sampling.render_recipes(dcgan, [sampling.Recipe(mix_seed=2)])
    with pytest.raises(SamplingError, match="label 10 is not in"):
        sampling.render_recipes(style, [sampling.Recipe(label=10)])
    with pytest.raises(SamplingError, match="this model's w has"):
        sampling.render_recipes(style, [sampling.Recipe(w=(0.0, 1.0))])


def test_png_metadata_round_trip(style, tmp_path):
    w = tuple(float(v) for v in np.linspace(-1, 1, style.config.model.w_dim))
    r = sampling.Recipe(x=1.25, y=2.5, truncation=0.7, label=3, edits=(("ganspace", 2, -1.5),), w=w)
    image = sampling.render_recipes(style, [r])[0]
    path = str(tmp_path / "a.png")
    sampling.save_recipe_png(image, path, style, r, scale=2)
    meta, back = sampling.read_recipe_png(path)
    assert back == r and meta["step"] == 0 and meta["model"] == "stylegan2" and meta["scale"] == 2
    np.testing.assert_array_equal(np.asarray(Image.open(path))[::2, ::2], image[..., 0])
    Image.fromarray(image[..., 0]).save(tmp_path / "plain.png")
    with pytest.raises(SamplingError, match="carries no gan_jax recipe"):
        sampling.read_recipe_png(str(tmp_path / "plain.png"))
    with pytest.raises(SamplingError, match="does not exist"):
        sampling.read_recipe_png(str(tmp_path / "missing.png"))


# -- the API -------------------------------------------------------------------------------


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _error(response, status, words):
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert words in message, message
    assert "Traceback" not in response.text


def test_page_and_runs(client):
    page = client.get("/")
    assert page.status_code == 200 and "studio.js" in page.text
    for name in ("studio.js", "studio.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # Everything the page loads is served here: no URL points outside.
    assert "http" not in page.text.replace("http-equiv", "")
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert runs["dcgan"]["model"] == "dcgan" and runs["dcgan"]["steps"] == [150, 300]
    assert runs["style"]["style"] and runs["style"]["num_ws"] == 8
    assert runs["style"]["num_classes"] == 10


def test_grid_and_image_endpoints(client, dcgan):
    grid = _png(client.post("/api/grid", json={"run": "dcgan", "start": 5, "count": 6, "cols": 3}))
    side = dcgan.image_shape[0]
    assert grid.shape[:2] == (2 * side, 3 * side)
    cell = grid[side : 2 * side, 2 * side : 3 * side]  # seed 5 + 5 = 10
    expected = sampling.render_recipes(dcgan, [sampling.Recipe.from_seed(10)])[0]
    np.testing.assert_array_equal(cell.reshape(expected.shape), expected)

    body = {"run": "dcgan", "step": 150, "ema": False, "recipe": {"x": 10}, "scale": 3}
    response = client.post("/api/image", json=body)
    image = _png(response)
    assert image.shape[:2] == (3 * side, 3 * side)
    meta, r = sampling.read_recipe_png(response.content)
    assert meta["step"] == 150 and not meta["ema"] and r == sampling.Recipe(x=10)
    raw2 = sampling.load_generator(dcgan.workdir, 150, use_ema=False)
    np.testing.assert_array_equal(
        image[::3, ::3].reshape(expected.shape), sampling.render_recipes(raw2, [r])[0]
    )


def test_directions_endpoint(client, style):
    d = client.post("/api/directions", json={"run": "style", "method": "ganspace", "num": 3})
    assert d.status_code == 200, d.text
    expected = sampling.ganspace(style, num=3)
    np.testing.assert_allclose(d.json()["values"], expected.values, rtol=1e-5)
    _error(
        client.post("/api/directions", json={"run": "dcgan", "method": "ganspace"}), 400, "GANSpace"
    )
    _error(
        client.post("/api/directions", json={"run": "dcgan", "method": "x"}), 400, "method must be"
    )


def _wait(client, job, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get(f"/api/jobs/{job}").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish")


def test_walk_export_is_a_job_with_progress(client, dcgan):
    recipe = {"x": 1, "to": [2, 0]}
    response = client.post("/api/walk", json={"run": "dcgan", "recipe": recipe, "frames": 5})
    job = response.json()["job"]
    status = _wait(client, job)
    assert status["state"] == "done" and status["done"] == status["total"] == 5
    gif = client.get(f"/api/jobs/{job}/result")
    assert gif.headers["content-type"] == "image/gif"
    frames = iio.imread(gif.content, index=None)
    assert len(frames) == 5
    ends = sampling.render_recipes(dcgan, [sampling.Recipe(x=1), sampling.Recipe(x=2)])
    scale = frames.shape[1] // ends.shape[1]
    np.testing.assert_array_equal(frames[0][::scale, ::scale, 0], ends[0][..., 0])
    np.testing.assert_array_equal(frames[-1][::scale, ::scale, 0], ends[1][..., 0])
    _error(client.get("/api/jobs/nope"), 404, "no job")
    _error(client.post("/api/walk", json={"run": "dcgan", "recipe": {"x": 1}}), 400, "recipe.to")
    _error(
        client.post("/api/walk", json={"run": "dcgan", "recipe": recipe, "frames": 10_000}),
        400,
        "frames must lie",
    )


def _uploads():
    return {f for f in os.listdir(tempfile.gettempdir()) if f.startswith("studio_upload_")}


def test_projection_of_an_upload(client, style):
    before = _uploads()
    target = sampling.render_recipes(style, [sampling.Recipe(x=4)])[0]
    buf = io.BytesIO()
    Image.fromarray(target[..., 0]).save(buf, "PNG")
    response = client.post(
        "/api/project?run=style&steps=3&features=0",
        content=buf.getvalue(),
        headers={"content-type": "image/png"},
    )
    status = _wait(client, response.json()["job"])
    assert status["state"] == "done", status
    r = sampling.Recipe.from_dict(status["info"]["recipe"])
    assert r.w is not None and len(r.w) == style.config.model.w_dim
    assert np.isfinite(status["info"]["psnr"])
    # Bad uploads: one message each.
    _error(client.post("/api/project?run=style", content=b"not an image"), 400, "not an image")
    _error(client.post("/api/project?run=style", content=b""), 400, "empty")
    _error(client.post("/api/project?run=style&steps=0", content=buf.getvalue()), 400, "steps")
    _error(client.post("/api/project?run=nope", content=buf.getvalue()), 404, "unknown run")
    big = io.BytesIO()
    Image.new("L", (5000, 4000)).save(big, "PNG")
    _error(client.post("/api/project?run=style", content=big.getvalue()), 413, "4096x4096")
    huge = b"\0" * (11 * 1024 * 1024)
    _error(client.post("/api/project?run=style", content=huge), 413, "larger than")
    # A DCGAN cannot be projected: the job fails with the reason.
    response = client.post("/api/project?run=dcgan&steps=2", content=buf.getvalue())
    status = _wait(client, response.json()["job"])
    assert status["state"] == "failed" and "StyleGAN2" in status["error"]
    assert _uploads() == before  # no upload stays on disk, whatever became of its job


def _png_bytes(array, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def test_translating_an_upload_with_a_painted_hole(client, runs):
    info = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}["inpaint"]
    assert info["translate"] and info["inpaint"] and info["steps"] == [2]
    assert info["task"].startswith("inpaint") and info["factor"] == 1 and info["channels"] == 1
    grey = np.random.default_rng(0).integers(0, 256, (40, 48), np.uint8)  # not the training size
    alpha = np.full_like(grey, 255)
    alpha[10:20, 12:30] = 0  # the painted hole: transparent pixels
    response = client.post(
        "/api/translate?run=inpaint", content=_png_bytes(np.stack([grey, alpha], -1), "LA")
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(response.content)))
    # What gan_jax.translate gives for the same picture and mask; the known pixels kept.
    want = translate.load(runs["inpaint"])(grey, mask=(alpha == 0).astype(np.uint8) * 255)
    np.testing.assert_array_equal(out, want[..., 0])
    np.testing.assert_array_equal(out[alpha == 255], grey[alpha == 255])
    assert not np.array_equal(out[alpha == 0], grey[alpha == 0])
    # Bad requests: one message each.
    opaque = _png_bytes(grey)
    _error(client.post("/api/translate?run=inpaint", content=opaque), 400, "paint the hole")
    _error(client.post("/api/translate?run=inpaint", content=b"GIF89a?"), 400, "not an image")
    _error(client.post("/api/translate?run=inpaint", content=b""), 400, "empty")
    wide = _png_bytes(np.zeros((8, 2100), np.uint8))
    _error(client.post("/api/translate?run=inpaint", content=wide), 413, "2048")
    _error(client.post("/api/translate?run=inpaint&step=best", content=opaque), 400, "step")
    _error(client.post("/api/translate?run=dcgan", content=opaque), 400, "latents")
    # The GAN views refuse the run with the way to use it.
    grid = client.post("/api/grid", json={"run": "inpaint", "count": 4})
    _error(grid, 400, "translate.py")


def test_timelapse_and_curves_of_the_run(client, runs):
    gif = client.get("/api/timelapse?run=dcgan")
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    frames = iio.imread(gif.content, index=None)
    grids = sorted(os.listdir(os.path.join(runs["dcgan"], "samples")))
    assert len(grids) == 4 and len(frames) >= len(grids)
    assert not np.array_equal(frames[0], frames[len(grids) - 1])  # the run changed its images
    curves = _png(client.get("/api/curves?run=dcgan"))
    assert curves.shape[0] > 200 and curves.shape[1] > 300 and curves.std() > 0
    # The StyleGAN2 run was never trained: no grids, no events, and a message saying so.
    _error(client.get("/api/timelapse?run=style"), 400, "no sample grids")
    assert client.get("/api/curves?run=style").status_code == 400


def test_malformed_requests_get_4xx_messages(client):
    cases = [
        (client.post("/api/grid", content=b"{"), 400, "not JSON"),
        (client.post("/api/grid", content=b"[1]"), 400, "JSON object"),
        (client.post("/api/grid", json={"run": "nope"}), 404, "unknown run"),
        (client.post("/api/grid", json={"run": "dcgan", "count": 65}), 400, "count must lie"),
        (client.post("/api/grid", json={"run": "dcgan", "start": -1}), 400, "start must lie"),
        (
            client.post("/api/grid", json={"run": "dcgan", "step": 3}),
            409,
            "no checkpoint for step 3",
        ),
        (client.post("/api/grid", json={"run": "dcgan", "step": "x"}), 400, "step must be"),
        (client.post("/api/image", json={"run": "dcgan", "recipe": {"x": "a"}}), 400, "x must be"),
        (client.post("/api/image", json={"run": "dcgan", "scale": 100}), 400, "scale must lie"),
        (client.post("/api/image", content=b"x" * 70_000), 413, "larger than"),
        (
            client.post("/api/image", json={"run": "dcgan", "recipe": {"label": 1}}),
            400,
            "unconditional",
        ),
    ]
    for response, status, words in cases:
        _error(response, status, words)


def test_no_request_reaches_a_path(client):
    for url in (
        "/static/server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e%2f%2e%2e%2fconfig_lib.py",
        "/static/../../../etc/passwd",
        "/api/runs/../../etc/passwd",
    ):
        response = client.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert "root:" not in response.text
    _error(client.get("/api/timelapse?run=../dcgan"), 404, "unknown run")
    _error(client.post("/api/grid", json={"run": "/etc"}), 404, "unknown run")


def test_a_checkpoint_that_fails_to_load_is_a_message_and_the_server_keeps_serving(runs, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(runs["dcgan"], broken)
    step_dir = os.path.join(broken, "checkpoints", "300")
    for root, _, files in os.walk(step_dir):
        for f in files:
            if f.endswith(".zarray") or "ocdbt" in root or f == "manifest.ocdbt":
                os.unlink(os.path.join(root, f))
    with TestClient(create_app({"broken": broken, "dcgan": runs["dcgan"]})) as c:
        response = c.post("/api/grid", json={"run": "broken", "count": 1})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]
        assert c.post("/api/grid", json={"run": "dcgan", "count": 1}).status_code == 200


def test_latest_follows_a_run_that_is_still_training(runs, tmp_path):
    run = str(tmp_path / "growing")
    shutil.copytree(runs["dcgan"], run)
    later = tmp_path / "300"
    shutil.move(os.path.join(run, "checkpoints", "300"), later)
    with TestClient(create_app({"growing": run})) as c:
        first = c.post("/api/image", json={"run": "growing", "recipe": {"x": 1}})
        assert sampling.read_recipe_png(first.content)[0]["step"] == 150
        shutil.move(later, os.path.join(run, "checkpoints", "300"))  # a new checkpoint lands
        second = c.post("/api/image", json={"run": "growing", "recipe": {"x": 1}})
        assert sampling.read_recipe_png(second.content)[0]["step"] == 300


def test_token_and_host_rules(runs):
    with TestClient(create_app(runs, token="s3cret")) as c:
        _error(c.get("/"), 403, "access token")
        _error(c.get("/api/runs"), 403, "access token")
        _error(c.get("/api/runs", headers={"x-studio-token": "wrong"}), 403, "access token")
        assert c.get("/api/runs", headers={"x-studio-token": "s3cret"}).status_code == 200
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "studio_token" in page.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200  # the cookie the page got
    with TestClient(create_app(runs)) as c:
        _error(c.get("/", headers={"host": "evil.example:8600"}), 403, "not served")
        assert c.get("/", headers={"host": "127.0.0.1:8600"}).status_code == 200


def test_discover_runs(runs, tmp_path):
    root = os.path.dirname(runs["dcgan"])
    assert discover_runs(runs_dir=root) == runs
    assert discover_runs(workdir=runs["style"]) == {"style": runs["style"]}
    with pytest.raises(SamplingError, match="no training run"):
        discover_runs(runs_dir=str(tmp_path))
    with pytest.raises(SamplingError, match="not a training run"):
        discover_runs(workdir=str(tmp_path))
    with pytest.raises(SamplingError, match="not a folder"):
        discover_runs(runs_dir=str(tmp_path / "missing"))


def _sample_py(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    cmd = [sys.executable, os.path.join(ROOT, "sample.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_a_saved_png_is_redrawn_exactly_by_sample_py(client, tmp_path):
    recipe = {
        "x": 3.4,
        "y": 1.7,
        "truncation": 0.8,
        "label": 4,
        "edits": [["ganspace", 1, 2.5], ["ganspace", 3, -1.0]],
        "edit_layers": "0-3",
        "mix_seed": 11,
        "mix_layers": "4-7",
    }
    response = client.post("/api/image", json={"run": "style", "recipe": recipe, "scale": 2})
    saved = tmp_path / "from_studio.png"
    saved.write_bytes(response.content)
    out = tmp_path / "redrawn.png"
    result = _sample_py(f"--from_png={saved}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(out)), _png(response))
    assert sampling.read_recipe_png(str(out))[1] == sampling.Recipe.from_dict(recipe)

    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(plain)
    result = _sample_py(f"--from_png={plain}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "carries no gan_jax recipe" in result.stderr
