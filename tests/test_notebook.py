"""notebooks/quickstart.ipynb runs end to end in a real Jupyter kernel (tiny config)."""

import json
import os
import sys

import pytest
from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
KERNEL = "gan_jax_test"


def _kernelspec(folder) -> str:
    """A kernelspec that runs this interpreter (the venv), whatever `python3` means here."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "gan_jax test", "language": "python"})
    )
    return str(folder)


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", _kernelspec(tmp_path / "jupyter"))
    monkeypatch.setenv("GAN_JAX_NOTEBOOK_STEPS", "4")
    monkeypatch.setenv("GAN_JAX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("GAN_JAX_NOTEBOOK_WORKDIR", str(tmp_path / "run"))
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # tiny shapes: compile time rules
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}},
    )
    client.execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    gifs = [o for o in outputs if "image/gif" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert len(pngs) >= 4, "sample grids, truncated row, strip and reloaded grid shown inline"
    assert gifs, "the latent walk GIF is shown inline"
    assert "step 4 EMA" in text
    assert "same pixels as before the reload: True" in text
    assert os.path.exists(tmp_path / "run" / "generated" / "walk.gif")
