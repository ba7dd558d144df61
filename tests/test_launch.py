"""`pip install .` into a fresh virtual environment: the `gan` and `gan-studio` commands start, from another folder.

The environment sees this interpreter's packages through a .pth file (torch is not installed again) and the
project is built without network access (no build isolation), from a copy of its tracked files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.servers import free_port, stop, wait_for_health

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # about ten seconds to build and install, more to start streamlit
BIN = "Scripts" if os.name == "nt" else "bin"


def project_files() -> list[str]:
    """Files git tracks or would track (not ignored): copied, so that build output never lands in the repository."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a virtual environment with the project installed (not editable) into it."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files make up the project")
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    for name in project_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / BIN / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    parents = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "parent-environment.pth").write_text("".join(f"{path}\n" for path in sorted(parents)))
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
        cwd=base,
        check=True,
    )
    return venv / BIN


def clean_env(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **changes}


def test_the_installed_gan_command_prints_its_help(installed, tmp_path):
    answer = subprocess.run([installed / "gan", "--help"], cwd=tmp_path, env=clean_env(), capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert "train" in answer.stdout and "sample" in answer.stdout


def test_the_installed_package_reads_its_own_mnist_from_any_folder(installed, tmp_path):
    script = "from gan.data import DEFAULT_DATA_DIR as d, load_mnist; print(d, len(load_mnist(d, 'test')))"
    answer = subprocess.run([installed / "python", "-c", script], cwd=tmp_path, env=clean_env(), capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    folder, count = answer.stdout.split()
    assert Path(folder).is_relative_to(installed.parent) and count == "10000"


def test_the_installed_package_lists_its_shipped_demo_runs(installed, tmp_path):
    script = "from gan.store.listing import list_all_runs; print(*(f'{i.name}:{i.error}' for i in list_all_runs()))"
    env = clean_env(GAN_STUDIO_CHECKPOINTS=str(tmp_path / "checkpoints"))
    answer = subprocess.run([installed / "python", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["demo:None", "mode-collapse:None"]  # both there, and whole


def test_the_installed_gan_studio_command_serves_the_app(installed, tmp_path):
    port = free_port()
    env = clean_env(GAN_STUDIO_CHECKPOINTS=str(tmp_path / "checkpoints"))
    log = tmp_path / "gan-studio.log"
    with open(log, "w") as output:
        server = subprocess.Popen([installed / "gan-studio", "--server.port", str(port)], cwd=tmp_path, env=env,
                                  stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for_health(f"http://localhost:{port}", server, log)
        finally:
            stop(server)
    # the settings beside the installed app.py were read: it serves this machine only, at a localhost address
    assert f"URL: http://localhost:{port}" in log.read_text()
