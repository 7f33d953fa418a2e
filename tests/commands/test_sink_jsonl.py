"""The jsonl sink: lines read back, live tailing, appending, encryption at rest."""

from __future__ import annotations

import json
import stat

import pytest

from bci_toolkit.commands import SinkError, check_command, make_sink
from bci_toolkit.privacy import is_encrypted, read_bytes


def _lines(path) -> list[dict]:
    return [check_command(json.loads(line)) for line in path.read_text().splitlines()]


def test_lines_read_back_in_order(tmp_path, make_command):
    path = tmp_path / "session" / "commands.jsonl"
    sent = [make_command(i) for i in range(200)]
    with make_sink(f"jsonl:{path}") as sink:
        for cmd in sent:
            sink.send(cmd)
    assert _lines(path) == sent
    assert sink.stats.delivered == 200 and sink.stats.dropped == 0
    # Derived from brain data: readable by its owner only.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_can_be_followed_while_the_session_runs(tmp_path, make_command):
    path = tmp_path / "commands.jsonl"
    with make_sink(f"jsonl:{path}") as sink, open(path, encoding="utf-8") as tail:
        sink.send(make_command(0))
        assert sink.flush(5)
        first = tail.readline()
        sink.send(make_command(1))
        assert sink.flush(5)
        second = tail.readline()
        assert first.endswith("\n") and second.endswith("\n")
        assert [json.loads(x)["seq"] for x in (first, second)] == [0, 1]


def test_appends_to_an_existing_log(tmp_path, make_command):
    path = tmp_path / "commands.jsonl"
    with make_sink(f"jsonl:{path}") as sink:
        sink.send(make_command(0))
    with make_sink(f"jsonl:{path}") as sink:
        sink.send(make_command(1))
    assert [c["seq"] for c in _lines(path)] == [0, 1]


def test_encrypted_log_is_sealed_at_close(tmp_path, make_command, encrypting_policy):
    path = tmp_path / "commands.jsonl"
    sent = [make_command(i) for i in range(50)]
    with make_sink(f"jsonl:{path}", policy=encrypting_policy) as sink:
        assert sink.encrypted
        for cmd in sent:
            sink.send(cmd)
        assert sink.flush(5)
        assert not path.exists()  # it appears complete, or not at all
    assert is_encrypted(path)
    raw = path.read_bytes()
    assert b"LEFT" not in raw and b"probability" not in raw
    text = read_bytes(path, encrypting_policy).decode("utf-8")
    assert [json.loads(line) for line in text.splitlines()] == sent


def test_encrypted_log_refuses_to_overwrite(tmp_path, encrypting_policy):
    path = tmp_path / "commands.jsonl"
    path.write_text("")
    with pytest.raises(SinkError, match="cannot be appended to; choose a new file"):
        make_sink(f"jsonl:{path}", policy=encrypting_policy)


def test_environment_policy_is_the_default(tmp_path, make_command, encrypting_policy,
                                           monkeypatch):
    monkeypatch.setenv("BCI_PRIVACY_ENCRYPT", "1")
    monkeypatch.setenv("BCI_PRIVACY_KEYSET", encrypting_policy.keyset)
    path = tmp_path / "commands.jsonl"
    with make_sink(f"jsonl:{path}") as sink:
        sink.send(make_command(0))
    assert is_encrypted(path)
