"""Hostile and unlucky input gets one line, never a traceback, a hang or a machine's worth of memory: pictures that
claim a billion pixels, arrays whose header lies, a pipe or a device named as a file, numbers in other scripts or
thousands of digits long, a photo stored sideways, a JPEG named .png, a checkpoints folder that is a file, a page
elsewhere that names this server by another host (DNS rebinding) and uploads larger than the app takes."""

from __future__ import annotations

import io
import os
import re
import socket
import struct
import threading
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan.cli import main
from gan.config import ConfigError, parse_change
from gan.data import load_mnist
from gan.lab.images_in import MAX_DIGITS, ImageError, decode_image, read_digit_array
from gan.lab.probe import digit_from_png, read_image
from gan.numbers import NumberError, decimal_number, whole_number
from gan.store.run import Run
from tests.conftest import WAIT, Evil
from tests.servers import free_port, stop, wait_for_health
from tests.streamlit_client import Tab

REPO = Path(__file__).resolve().parents[1]


def png_claiming(width: int, height: int) -> bytes:
    """A real one-colour PNG of width x height one-bit pixels: a few hundred KB that decode to width x height."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte, then white pixels
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row * 1000) for _ in range(height // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def mnist_digit(index: int = 0, side: int = 140) -> Image.Image:
    """A real test digit (index 0 is a 7), enlarged: dark ink on white paper, as people draw."""
    pixels = ((1 - load_mnist(split="test").images[index, 0].numpy()) * 127.5).astype(np.uint8)
    return Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)


def encoded(picture: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


def call_with_deadline(function, *args, seconds: float = WAIT):
    """function(*args) in a thread: fails the test (instead of hanging the suite) when it has not returned in time."""
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still blocked after {seconds:.0f} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- pictures -------------------------------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, good, cli):
    bomb = png_claiming(30000, 30000)  # 900 million pixels in ~110 KB
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError, match="too many pixels"):
        digit_from_png(bomb, "bomb.png")
    (tmp_path / "bomb.png").write_bytes(bomb)
    code, _, err = cli("probe", "--run", "good", "--image", tmp_path / "bomb.png")
    assert code == 1 and "too many pixels" in err and err.count("\n") == 1
    code, _, err = cli("invert", "--run", "good", "--image", tmp_path / "bomb.png", "--out", tmp_path / "out.png")
    assert code == 1 and "too many pixels" in err and err.count("\n") == 1


def test_a_picture_over_the_side_limit_is_refused_before_decoding():
    with pytest.raises(ImageError, match="5000x5000 pixels is not allowed"):
        decode_image(png_claiming(5000, 5000), "wide.png")


def test_a_large_photo_is_read_at_a_working_size():
    picture = decode_image(encoded(mnist_digit(side=4000), "PNG"), "large.png")
    assert max(picture.size) <= 1024
    assert read_image(encoded(mnist_digit(side=4000), "PNG")).shape == picture.size[::-1]


def test_a_photo_stored_sideways_is_read_upright():
    upright = mnist_digit()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to show
    ink = read_image(encoded(stored.convert("RGB"), "JPEG", exif=exif.tobytes(), quality=95))
    expected = read_image(encoded(upright.convert("RGB"), "JPEG", quality=95))
    assert ink.shape == expected.shape
    assert np.abs(ink - expected).mean() < 0.05, "the same digit, the same way up"


def test_a_jpeg_named_png_is_read_by_its_content(tmp_path, good, cli):
    path = tmp_path / "seven.png"
    path.write_bytes(encoded(mnist_digit().convert("RGB"), "JPEG", quality=95))
    code, out, _ = cli("probe", "--run", "good", "--image", path)
    assert code == 0 and "the judge reads a 7" in out


def test_a_damaged_picture_gets_one_line():
    whole = encoded(mnist_digit(), "PNG")
    with pytest.raises(ImageError, match="damaged or cut short"):
        decode_image(whole[: len(whole) // 2], "cut.png")


# --- arrays ---------------------------------------------------------------------------------------------------


def npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_array_header_claiming_ten_million_digits_is_refused_before_reading(tmp_path, good, cli):
    path = tmp_path / "lie.npy"
    path.write_bytes(npy_header((10**7, 28, 28)))  # 128 bytes
    with pytest.raises(ImageError, match=f"10,000,000 digits is not allowed: from 1 to {MAX_DIGITS:,}"):
        read_digit_array(path)
    code, _, err = cli("invert", "--run", "good", "--npy", path, "--out", tmp_path / "out.npy")
    assert code == 1 and "10,000,000 digits" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "header, data, message",
    [
        ((MAX_DIGITS + 1, 28, 28), b"", "10,001 digits"),
        ((3, 28, 28), b"\0" * 100, "cut short"),
        ((3, 784), b"", "shape (3, 784)"),
        ((3, 28, 28, 1), b"", "shape (3, 28, 28, 1)"),
        ((0, 28, 28), b"", "0 digits"),
    ],
)
def test_array_headers_are_checked_before_data(tmp_path, header, data, message):
    path = tmp_path / "digits.npy"
    path.write_bytes(npy_header(header) + data)
    with pytest.raises(ImageError, match=re.escape(message)):
        read_digit_array(path)


def test_an_array_of_objects_is_never_unpickled(tmp_path):
    marker, path = tmp_path / "executed", tmp_path / "evil.npy"
    np.save(path, np.array([Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="dtype object is not allowed"):
        read_digit_array(path)
    assert not marker.exists()


def test_an_array_in_another_byte_order_and_layout_reads_the_same(tmp_path):
    digits = np.random.default_rng(0).random((4, 28, 28))
    np.save(tmp_path / "big-endian.npy", np.asfortranarray(digits.astype(">f8")))
    assert np.allclose(read_digit_array(tmp_path / "big-endian.npy"), digits)


# --- pipes and devices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--image", "--npy"])
def test_a_pipe_named_as_a_file_is_refused_without_waiting(tmp_path, good, capsys, flag):
    fifo = tmp_path / ("digit.png" if flag == "--image" else "digits.npy")
    os.mkfifo(fifo)
    command = ["invert", "--run", "good", flag, str(fifo), "--out", str(tmp_path / "out.png")]
    assert call_with_deadline(main, command) == 1
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--image", "--npy"])
def test_an_endless_device_is_refused_without_reading(tmp_path, good, capsys, flag):
    command = ["invert", "--run", "good", flag, "/dev/zero", "--out", str(tmp_path / "out.png")]
    assert call_with_deadline(main, command) == 1
    assert "/dev/zero: not a regular file" in capsys.readouterr().err


# --- numbers from text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("500", 500), (" +7 ", 7), ("-3", -3), ("0", 0)])
def test_whole_numbers_are_ascii_digits(text, value):
    assert whole_number(text) == value


@pytest.mark.parametrize("text", ["²", "١٢", "1_000", "1.0", "", "5e3", "9" * 5000, "0x10", "½"])
def test_other_whole_numbers_are_refused_quoting_them_shortened(text):
    with pytest.raises(NumberError, match="is not allowed: a whole number") as refused:
        whole_number(text)
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize("text, value", [("0.002", 0.002), ("2e-3", 0.002), ("5", 5.0), (".5", 0.5), ("1E+2", 100.0)])
def test_numbers_are_plain_decimal_or_scientific(text, value):
    assert decimal_number(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e999", "٠.١", "1_0.5", "0x1p-3", "", "1e" + "9" * 50])
def test_other_numbers_are_refused(text):
    with pytest.raises(NumberError):
        decimal_number(text)


@pytest.mark.parametrize(
    "text", ["²:lr_d=0.001", "١٢:lr_d=0.001", "9" * 5000 + ":lr_d=0.001", "5:lr_d=nan", "5:lr_d=1e999", "5:d_steps=²"]
)
def test_a_scheduled_change_with_a_bad_number_is_a_config_error(text):
    with pytest.raises(ConfigError) as refused:
        parse_change(text)
    assert len(str(refused.value)) < 300


def test_a_bad_scheduled_change_on_the_command_line_gets_one_line(root, cli):
    code, _, err = cli("train", "--run", "x", "--set-at", "²:lr_d=0.001", "--epochs", "1")
    assert code != 0 and "set_at" in err and err.count("\n") <= 3
    assert not Run.at("x").path.exists()


@pytest.mark.parametrize(
    "command", [["sample", "--run", "good", "--out", "{tmp}/s.png"], ["train", "--resume", "--run", "good"]]
)
def test_a_bad_scheduled_change_in_a_saved_config_gets_one_line(good, cli, tmp_path, command):
    config = (good.path / "config.json").read_text()
    (good.path / "config.json").write_text(config.replace('"set_at": []', '"set_at": ["\\u00b2:lr_d=0.001"]'))
    code, _, err = cli(*[part.replace("{tmp}", str(tmp_path)) for part in command])
    assert code == 1 and "config.json" in err and err.count("\n") == 1


def test_compare_lists_a_run_with_a_bad_saved_schedule_with_its_reason(good, cli, root):
    other = Run.at("other", root)
    other.path.mkdir()
    config = (good.path / "config.json").read_text()
    (other.path / "config.json").write_text(config.replace('"set_at": []', '"set_at": ["' + "9" * 5000 + ':lr_d=1"]'))
    code, _, err = cli("compare", "good", "other")
    assert code == 1 and "config.json" in err and err.count("\n") == 1


# --- the checkpoints folder -----------------------------------------------------------------------------------


def test_a_checkpoints_root_that_is_a_file_is_reported_as_such(tmp_path, cli):
    root = tmp_path / "checkpoints"
    root.write_text("not a folder")
    code, _, err = cli("--root", root, "runs")
    assert code == 1 and "is a file, not a folder" in err


def test_the_app_says_the_checkpoints_root_is_a_file(root):
    from streamlit.testing.v1 import AppTest

    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a folder")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not at.exception
    shown = [element.value.replace("\\", "") for element in at.sidebar.error]  # markdown escapes removed
    assert any("is a file, not a folder of runs" in text for text in shown), shown


# --- the server: who may connect, and how much may be uploaded --------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` as shipped (its .streamlit/config.toml), on a free port."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("server")
    port, log = free_port(), folder / "server.log"
    env = {**os.environ, "GAN_STUDIO_CHECKPOINTS": str(folder / "checkpoints")}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, log)
        yield port
    finally:
        stop(process)


@pytest.mark.slow
def test_the_server_answers_only_browsers_that_name_this_machine(server):
    for host in ("localhost", "127.0.0.1"):
        tab = Tab(f"http://127.0.0.1:{server}", host=f"{host}:{server}")
        assert "GAN Studio" in tab.run().texts()
        tab.close()
    with pytest.raises(Exception, match="403"):
        Tab(f"http://127.0.0.1:{server}", host=f"rebound.example:{server}")


def upload(port: int, session: str, size: int) -> int:
    """The HTTP status of a file upload of `size` bytes, sent as a browser sends it (XSRF token included), with
    "Expect: 100-continue": the body follows only when the server asks for it, so a refusal comes before it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as page:  # sets the XSRF cookie
        cookie = next(value for value in page.headers.get_all("Set-Cookie") if value.startswith("_streamlit_xsrf="))
    token = cookie.split(";")[0].split("=", 1)[1]
    boundary = "digitboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    body = head + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"PUT /_stcore/upload_file/{session}/file-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n"
        f"X-Xsrftoken: {token}\r\nCookie: _streamlit_xsrf={token}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        connection.sendall(request.encode())
        answer = connection.makefile("rb")
        status = int(answer.readline().split()[1])
        if status != 100:
            return status
        answer.readline()  # the blank line that ends the interim answer
        connection.sendall(body)
        return int(answer.readline().split()[1])


@pytest.mark.slow
def test_streamlit_refuses_an_upload_larger_than_the_app_takes(server):
    tab = Tab(f"http://127.0.0.1:{server}")
    tab.run()
    try:
        assert upload(server, tab.session_id, 4_000_000) in (200, 204)
        assert upload(server, tab.session_id, 6_000_000) == 413
    finally:
        tab.close()
