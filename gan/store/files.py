"""Reading and writing the small files of a run folder safely: the package's one atomic writer, a JSON reader
that accepts only capped regular files, and an all-or-nothing append.

Everything read here is untrusted (a damaged disk, a shared folder): errors never quote a file's content.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

JSON_LIMIT = 1_000_000  # bytes; a config is about 500


class FileError(ValueError):
    """A file cannot be used; the message names the file and what is wrong, never its content."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    The file gets the mode every other file of a run gets (0666 less the umask, as the history has), not
    mkstemp's 0600: others who share a runs folder can read the whole run or none of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _new_temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and not error.filename:  # a failed write() names no file: say which
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


def _new_temporary(path: Path) -> tuple[int, str]:
    """A new, empty file beside `path` (its name unused until now), opened for writing with the umask's mode."""
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666), str(temporary)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(path))


def open_regular(path: Path, within: Path | None = None) -> int:
    """A read-only descriptor of `path`, refusing FIFOs, devices, folders and symlinks leading out of `within`.

    O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it before any read."""
    path = target = Path(path)
    if path.is_symlink():
        target = path.resolve()
        if within is None or not target.is_relative_to(Path(within).resolve()):
            raise FileError(f"{path}: a link to a file outside its run folder is not read")
    try:  # O_NOFOLLOW: a file swapped for a link since the check above is refused, not followed
        descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise FileError(f"{path}: cannot read ({error.strerror or 'error'})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise FileError(f"{path}: not a regular file (a pipe, a device or a folder)")
    return descriptor


def read_capped(path: Path, max_bytes: int, within: Path | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (one byte more is read to tell)."""
    descriptor = open_regular(path, within)
    try:
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise FileError(f"{path}: cannot read ({error.strerror or 'error'})") from None
    if len(data) > max_bytes:
        raise FileError(f"{path}: larger than {max_bytes:,} bytes, too large for this file")
    return data


def parse_json(data: bytes | str, what: str) -> Any:
    """Parse JSON; every way it can fail (deep nesting, huge integers, bad UTF-8) is one FileError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise FileError(f"{what}: nested too deeply to be a GAN Studio file") from None
    except UnicodeDecodeError:
        raise FileError(f"{what}: not UTF-8 text") from None
    except json.JSONDecodeError as error:  # its message quotes no content: line, column and what was expected
        raise FileError(f"{what}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise FileError(f"{what}: holds a value out of range (e.g. a number too long)") from None


def read_json(path: Path, max_bytes: int = JSON_LIMIT, within: Path | None = None) -> Any:
    """The parsed JSON of a capped regular file; any problem is a FileError naming the file."""
    return parse_json(read_capped(path, max_bytes, within), str(path))


def append_lines(path: Path, text: str) -> None:
    """Append `text` whole or not at all: a failed write is truncated back to the previous size, then re-raised,
    so a retried append never leaves half (or twice) the lines."""
    data = text.encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        try:
            view = memoryview(data)
            while view:  # unbuffered: nothing is left in a buffer to be written after a rollback
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)
