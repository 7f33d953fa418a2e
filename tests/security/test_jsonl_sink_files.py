"""The jsonl: command sink never follows a planted link or writes a file others can read."""

from __future__ import annotations

import os

import pytest

from bci_toolkit.commands import make_sink
from bci_toolkit.commands.sinks.base import SinkError
from bci_toolkit.privacy import PrivacyPolicy


def _command(name: str) -> dict:
    return {"command": name, "class": name.lower(), "probability": 0.9, "sample_time": 1.0,
            "decision_time": 1.01, "latency_ms": 10.0}


def _open(path):
    return make_sink(f"jsonl:{path}", policy=PrivacyPolicy())


def test_a_symlink_planted_at_the_path_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "commands.jsonl"
    link.symlink_to(victim)
    with pytest.raises(SinkError) as info:
        _open(link)
    assert str(info.value) == (f"jsonl:{link}: cannot open {link} for writing "
                               "(Too many levels of symbolic links)")
    assert victim.read_text() == "keep me\n"


def test_an_existing_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "commands.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    with pytest.raises(SinkError) as info:
        _open(path)
    assert str(info.value) == (f"jsonl:{path}: {path} is readable or writable by others "
                               "(mode 644); chmod 600 it or choose a new file")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "commands.jsonl"
    os.mkfifo(path)
    with pytest.raises(SinkError) as info:
        _open(path)  # no reader: opening must fail at once, not wait for one
    assert str(info.value) == (f"jsonl:{path}: cannot open {path} for writing "
                               "(No such device or address)")


def test_a_private_file_is_appended_to(tmp_path):
    path = tmp_path / "commands.jsonl"
    with _open(path) as sink:
        sink.send(_command("LEFT"))
    with _open(path) as sink:  # 0600 as the sink created it: appended to
        sink.send(_command("RIGHT"))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert [line.count('"command"') for line in path.read_text().splitlines()] == [1, 1]
