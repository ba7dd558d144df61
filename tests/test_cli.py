import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TINY = ["--width", "4", "--batch-size", "16", "--steps-per-epoch", "3", "--latent-dim", "8", "--no-eval"]


def gan(*args: str, root: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gan", "--root", str(root), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_train_sample_and_list(tmp_path):
    trained = gan("train", "--preset", "cdcgan", "--epochs", "2", "--run", "demo", *TINY, root=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "parameters" in trained.stdout and "finished: epoch 2/2" in trained.stdout
    png = gan("sample", "--run", "demo", "--digit", "7", "--n", "16", "--out", str(tmp_path / "s.png"), root=tmp_path)
    assert png.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    npy = gan("sample", "--run", "demo", "--n", "30", "--out", str(tmp_path / "s.npy"), root=tmp_path)
    assert npy.returncode == 0
    array = np.load(tmp_path / "s.npy")
    assert array.shape == (30, 28, 28) and array.min() >= 0 and array.max() <= 1
    listing = gan("runs", root=tmp_path)
    assert "demo" in listing.stdout and "cdcgan" in listing.stdout


def test_resume_with_more_epochs(tmp_path):
    assert gan("train", "--epochs", "1", "--run", "grow", *TINY, root=tmp_path).returncode == 0
    resumed = gan("train", "--resume", "--run", "grow", "--epochs", "2", root=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished: epoch 2/2" in resumed.stdout
    assert sorted(p.name for p in (tmp_path / "grow").glob("epoch-*.safetensors")) == [
        "epoch-0001.safetensors",
        "epoch-0002.safetensors",
    ]


def test_errors_are_one_line_without_traceback(tmp_path):
    bad_lr = gan("train", "--lr-g", "5", "--run", "x", root=tmp_path)
    assert bad_lr.returncode == 1
    assert bad_lr.stderr.strip() == "error: lr_g=5.0 is not allowed: a number in (0.0, 1.0]"
    escape = gan("train", "--run", "../x", root=tmp_path)
    assert escape.returncode == 1 and "not allowed" in escape.stderr and "Traceback" not in escape.stderr
    missing = gan("sample", "--run", "nothing", "--out", str(tmp_path / "a.png"), root=tmp_path)
    assert missing.returncode == 1 and "no saved epochs" in missing.stderr
    assert not (tmp_path / "x").exists()
