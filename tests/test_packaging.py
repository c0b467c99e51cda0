"""gan_jax as an installed package: the wheel, its console scripts and its packaged configs.

The wheel is built from a copy of the working tree (what `pip install .` sees; the checkout
itself gets no build/ or egg-info), installed with `pip install --no-deps --target`, and run
from a folder outside the checkout with only that folder on PYTHONPATH: the venv supplies the
dependencies, the wheel everything of gan_jax's (commands, configs, the studio's page).
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT, TINY_FLAGS

from gan_jax import __version__, cli

SCRIPTS = ("train", "sample", "evaluate", "project", "studio", "translate")
CONFIGS = ("biggan", "cyclegan", "dcgan", "pix2pix", "sngan", "stylegan2")


def _copy_tree(dest):
    """The working tree as `pip install .` sees it: tracked and untracked, not ignored files."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: all but the usual
        ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "runs", "build", "*.pyc")
        shutil.copytree(ROOT, dest, symlinks=True, ignore=ignore)
        return
    for name in sorted(set(listed.decode().split("\0")) - {""}):
        source, target = os.path.join(ROOT, name), os.path.join(dest, name)
        parent = os.path.dirname(source)
        if not os.path.lexists(source) or os.path.realpath(parent) != os.path.abspath(parent):
            continue  # deleted in the working tree, or seen through a link (copied as a link)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site folder, environment, a working folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp("packaging")
    source, dist, site = tmp / "src", tmp / "dist", tmp / "site"
    _copy_tree(source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("gan_jax-*.whl")
    install = subprocess.run(
        [*pip, "install", "--no-deps", f"--target={site}", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)
    work = tmp / "elsewhere"
    work.mkdir()
    return wheel, site, env, work


def _run(installed, *cmd, timeout=300):
    _, _, env, work = installed
    return subprocess.run(
        [str(c) for c in cmd], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
    )


def _script(installed, name):
    path = installed[1] / "bin" / f"gan-jax-{name}"
    assert path.is_file(), sorted(p.name for p in path.parent.iterdir())
    return path


def test_the_wheel_holds_the_package_its_data_and_nothing_else(installed):
    wheel = installed[0]
    assert wheel.name == f"gan_jax-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(f"gan_jax-{__version__}.dist-info/entry_points.txt").decode()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gan_jax", f"gan_jax-{__version__}.dist-info"}, tops
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in names)
    for page in ("index.html", "studio.js", "studio.css"):
        assert f"gan_jax/studio/static/{page}" in names
    for config in ("__init__", "common", *CONFIGS):
        assert f"gan_jax/configs/{config}.py" in names
    for name in SCRIPTS:
        assert f"gan_jax/commands/{name}.py" in names
        assert f"gan-jax-{name} = gan_jax.commands.{name}:run" in entry_points


def test_the_installed_copy_is_the_one_imported(installed):
    site = installed[1]
    out = _run(
        installed,
        sys.executable,
        "-c",
        "import importlib.util, gan_jax, gan_jax.configs.dcgan as d; "
        "print(gan_jax.__file__); print(d.__file__); "
        "specs = [importlib.util.find_spec(m) for m in ('configs', 'tests', 'bench')]; "
        "print([s and s.origin for s in specs])",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    package, config, others = out.stdout.splitlines()
    assert package == str(site / "gan_jax" / "__init__.py")
    assert config == str(site / "gan_jax" / "configs" / "dcgan.py")
    assert str(site) not in others  # no top-level configs, tests or bench came with the wheel
    assert not (set(os.listdir(site)) & {"configs", "tests", "bench", "notebooks"})


def test_every_console_script_answers_help(installed):
    _, _, env, work = installed
    procs = {
        name: subprocess.Popen(
            [str(_script(installed, name)), "--help"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in SCRIPTS
    }
    flag = {"train": "--config", "sample": "--mode", "evaluate": "--metrics"}
    flag.update(project="--image", studio="--runs", translate="--mask")
    texts = {}
    for name, proc in procs.items():
        texts[name], _ = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), texts[name][-3000:]  # absl's --help exits with 1
        assert "Traceback" not in texts[name], texts[name][-3000:]
        assert f"{flag[name]}:" in texts[name], texts[name][-3000:]  # the command's own flags
    assert "biggan, cyclegan, dcgan, pix2pix, sngan, stylegan2" in " ".join(texts["train"].split())


def test_train_by_config_name_then_sample_outside_the_checkout(installed, tmp_path):
    workdir = tmp_path / "run"
    tiny = [f for f in TINY_FLAGS if not f.startswith("--config=")]
    out = _run(
        installed,
        _script(installed, "train"),
        "--config=dcgan",
        f"--workdir={workdir}",
        *tiny,
        "--config.num_steps=2",
        "--progress=off",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (workdir / "checkpoints" / "2").is_dir(), sorted(os.listdir(workdir / "checkpoints"))
    assert '"preset": "digits"' in (workdir / "config.json").read_text()

    out = _run(installed, _script(installed, "sample"), f"--workdir={workdir}", "--num=4")
    assert out.returncode == 0, out.stderr[-3000:]
    from PIL import Image  # noqa: PLC0415

    (grid,) = (workdir / "generated").glob("*.png")
    assert Image.open(grid).size == (2 * 34 + 2, 2 * 34 + 2)  # 2x2 images of 32 px


def test_an_unknown_config_name_is_one_error_line_listing_the_names(installed, tmp_path):
    out = _run(
        installed, _script(installed, "train"), "--config=nope:celeba", f"--workdir={tmp_path}/w"
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --config=nope:celeba: "), out.stderr
    assert "packaged configs: " + ", ".join(CONFIGS) in lines[0]
    assert not (tmp_path / "w").exists()


# -- the resolution itself, in this process ------------------------------------------------


def test_packaged_config_names():
    assert cli.packaged_configs() == list(CONFIGS)  # common.py has no get_config


def test_a_name_resolves_to_the_packaged_file_and_keeps_its_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(cli.CONFIGS_DIR, "dcgan.py")
    assert cli.resolve_config("dcgan") == path
    assert cli.resolve_config("dcgan:celeba") == path + ":celeba"
    (tmp_path / "dcgan").write_text("")  # a file of that name wins: it is a path
    assert cli.resolve_config("dcgan:celeba") == "dcgan:celeba"


@pytest.mark.parametrize("spec", ["configs/dcgan.py", "configs/dcgan.py:mnist", "no/such.py"])
def test_paths_are_left_to_the_file_loader(spec, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.resolve_config(spec) == spec


@pytest.mark.parametrize("spec", ["nope", "common", "nope:celeba"])
def test_unknown_names_list_the_packaged_ones(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        cli.ConfigNameError, match="packaged configs: biggan, cyclegan, dcgan, pix2pix"
    ):
        cli.resolve_config(spec)


def test_the_checkout_configs_folder_is_the_packaged_one():
    """One home for each config: configs/ in a checkout is a link to gan_jax/configs/."""
    assert os.path.samefile(os.path.join(ROOT, "configs"), cli.CONFIGS_DIR)
