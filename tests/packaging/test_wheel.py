"""The built wheel works on its own: installed into a fresh environment, run from a folder outside the checkout.

torch and the other dependencies come from the environment running the tests (so nothing is
downloaded); cifarlab itself must come from the wheel, never from this checkout's `src/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import cifarlab

CHECKOUT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, env: dict, timeout: float = 300) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding only the cifarlab wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # build from a copy: no build/ or egg-info lands in the checkout
    shutil.copytree(CHECKOUT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(work / "dist")],
         cwd=work, env=env)
    wheels = list((work / "dist").glob("cifarlab-*.whl"))
    assert len(wheels) == 1
    env_dir = work / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work, env).strip())
    # The running environment's packages (torch, numpy ...) come after the new venv's own, as a plain
    # path: its .pth files, among them the editable install pointing at this checkout, are not run.
    (site / "running_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheels[0])], cwd=work, env=env)
    return env_dir / "bin"


@pytest.fixture
def outside(tmp_path) -> tuple[Path, dict]:
    """A working folder outside the checkout and the environment to run the wheel's command in."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    return tmp_path, env


@pytest.mark.slow
def test_the_wheel_imports_its_own_copy_with_recipes(installed, outside):
    folder, env = outside
    where = _run([str(installed / "python"), "-c", "import cifarlab; print(cifarlab.__file__)"], folder, env).strip()
    assert Path(where).is_relative_to(installed.parent), where  # not the checkout's editable install
    assert not Path(where).is_relative_to(CHECKOUT)
    assert _run([str(installed / "cifarlab"), "--version"], folder, env).strip() == f"cifarlab {cifarlab.__version__}"
    listing = _run([str(installed / "cifarlab"), "recipes"], folder, env)
    assert "quick" in listing and "fdu/resnet18" in listing
    printed = _run([str(installed / "cifarlab"), "train", "fdu/resnet18", "--print-config"], folder, env)
    assert "name: fdu_resnet18" in printed and "name: plateau" in printed  # `extends: base.yaml` inside the wheel


@pytest.mark.slow
def test_the_wheel_reads_real_data_and_trains_a_shipped_recipe_by_name(installed, outside):
    folder, env = outside
    if not env.get("CIFARLAB_DATA"):
        pytest.skip("set CIFARLAB_DATA to the folder holding cifar10.zip and cifar100.zip")
    cli = str(installed / "cifarlab")
    info = _run([cli, "data", "info", "cifar10"], folder, env)
    assert "train images: 50,000" in info and "classes: 10 (airplane" in info
    assert "wrote" in _run([cli, "data", "grid", "cifar100", "--out", "g.png"], folder, env)
    assert (folder / "g.png").stat().st_size > 10_000
    # 500 training images, one small validation split, no test-time augmentation: a real run in seconds.
    out = _run([cli, "train", "quick", "train.epochs=1", "data.train_limit=1000", "data.val_size=500",
                "eval.batch_size=500", "eval.tta=none", "train.device=cpu"], folder, env)
    assert "test top-1" in out
    assert (folder / "runs" / "quick" / "best.pt").is_file() and (folder / "runs" / "quick" / "report.md").is_file()
