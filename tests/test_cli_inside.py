"""`gan probe` and `gan invert`: the same functions as the Your digit page, and one-line errors for bad inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gan.__main__ import main
from gan.data import load_mnist, to_unit_range
from gan.jobs.runner import prepare_trainer, train_run
from gan.store.run import Run
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    run = Run(folder / "tiny")
    train_run(run, prepare_trainer(run, tiny_config("cdcgan", epochs=2)))
    return folder


def write_png(path, array: np.ndarray):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    image = load_mnist(split="test").images[0, 0]  # a 7
    return write_png(tmp_path_factory.mktemp("png") / "seven.png", ((image.numpy() + 1) * 127.5).astype(np.uint8))


def gan(root, *args: str) -> int:
    return main(["--root", str(root), *args])


def test_probe_prints_the_judges_reading_and_a_verdict_per_epoch(root, seven, capsys):
    assert gan(root, "probe", "--run", "tiny", "--image", str(seven)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "the judge reads a 7" in lines[0]
    verdicts = [line.split() for line in lines[2:]]
    assert [int(epoch) for epoch, _ in verdicts] == [1, 2]
    assert all(0 < float(value) < 1 for _, value in verdicts)
    assert gan(root, "probe", "--run", "tiny", "--epoch", "2", "--image", str(seven)) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_invert_an_image_to_png_with_latents(root, seven, tmp_path, capsys):
    out, latents = tmp_path / "found.png", tmp_path / "z.npy"
    assert gan(root, "invert", "--run", "tiny", "--image", str(seven), "--out", str(out),
               "--latents", str(latents), "--steps", "3") == 0  # fmt: skip
    assert "inverted 1 digit(s)" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert np.load(latents).shape == (1, 8)
    assert np.load(tmp_path / "z.digits.npy").shape == (1,)


def test_invert_an_array_to_an_array(root, tmp_path, capsys):
    digits = to_unit_range(load_mnist(split="test").images[:5])[:, 0].numpy()
    np.save(tmp_path / "in.npy", digits)
    out = tmp_path / "out.npy"
    assert (
        gan(root, "invert", "--run", "tiny", "--npy", str(tmp_path / "in.npy"), "--out", str(out), "--steps", "2") == 0
    )
    found = np.load(out)
    assert found.shape == (5, 28, 28) and found.min() >= 0 and found.max() <= 1
    assert "inverted 5 digit(s)" in capsys.readouterr().out


def bad_inputs(folder):
    blank = write_png(folder / "blank.png", np.full((280, 280), 255, dtype=np.uint8))
    tiny = write_png(folder / "tiny.png", np.zeros((3, 3), dtype=np.uint8))
    text = folder / "notes.png"
    text.write_text("not a picture")
    cmyk = folder / "cmyk.jpg"
    Image.new("CMYK", (40, 40), (0, 0, 0, 255)).save(cmyk, format="JPEG")
    np.save(folder / "flat.npy", np.zeros((4, 784)))
    return {
        "empty": ["--image", str(blank)],
        "3x3 pixels": ["--image", str(tiny)],
        "not an image": ["--image", str(text)],
        "mode CMYK": ["--image", str(cmyk)],
        "cannot read": ["--image", str(folder / "missing.png")],
        "(4, 784)": ["--npy", str(folder / "flat.npy")],
    }


@pytest.mark.parametrize("message", ["empty", "3x3 pixels", "not an image", "mode CMYK", "cannot read", "(4, 784)"])
def test_bad_inputs_get_one_line_and_exit_code_1(root, tmp_path, capsys, message):
    source = bad_inputs(tmp_path)[message]
    command = "probe" if source[0] == "--image" else "invert"
    extra = ["--out", str(tmp_path / "out.png")] if command == "invert" else []
    assert gan(root, command, "--run", "tiny", *source, *extra) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_invert_refuses_an_unknown_output_type_before_any_work(root, seven, tmp_path, capsys):
    assert gan(root, "invert", "--run", "tiny", "--image", str(seven), "--out", str(tmp_path / "x.jpg")) == 1
    assert "must end in .png or .npy" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_prints_each_digits_fid_for_a_conditional_run(root, capsys):
    assert gan(root, "eval", "--run", "tiny", "--epoch", "2") == 0
    out = capsys.readouterr().out
    assert "FID of each digit asked for" in out
    row = [line for line in out.splitlines() if line.startswith("epoch 2")][-1].split()
    assert len(row) == 12 and all(float(value) > 0 for value in row[2:])
