"""Reading and writing a run folder's small files: JSON that is read only from capped, valid UTF-8, and an append
that is all or nothing."""

from __future__ import annotations

import errno
import os

import pytest

from gan.store.files import FileError, append_lines, read_json


def test_read_json_turns_bad_utf8_into_a_file_error(tmp_path):
    (tmp_path / "x.json").write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(FileError, match="not UTF-8"):
        read_json(tmp_path / "x.json")


def test_a_failed_append_is_rolled_back_so_a_retry_logs_once(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "change", "step": 0, "field": "lr_g", "old": 1, "new": 2}\n')
    real_write = os.write
    calls = []

    def half_then_full(descriptor, data):  # the disk fills after half the bytes
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        append_lines(path, "a line\n" * 10)
    monkeypatch.setattr(os, "write", real_write)
    append_lines(path, "a line\n" * 10)
    assert path.read_text().count("a line") == 10 and path.read_text().startswith('{"kind": "change"')
