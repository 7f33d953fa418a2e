"""Sink specs: what parses, what is refused, and how the refusal reads."""

from __future__ import annotations

import socket

import pytest

from bci_toolkit.commands import SinkError, make_sink, parse_sink_spec
from bci_toolkit.errors import BCIError


@pytest.mark.parametrize("spec, kind, args", [
    ("lsl", "lsl", {}),
    ("LSL", "lsl", {}),
    ("lsl:My Commands", "lsl", {"name": "My Commands"}),
    ("udp://127.0.0.1:9000", "udp", {"host": "127.0.0.1", "port": 9000}),
    ("udp://:9000", "udp", {"host": "127.0.0.1", "port": 9000}),
    ("udp://[::1]:9000", "udp", {"host": "::1", "port": 9000}),
    ("udp://localhost:65535", "udp", {"host": "localhost", "port": 65535}),
    ("ws://127.0.0.1:8765", "ws", {"host": "127.0.0.1", "port": 8765}),
    ("ws://:0", "ws", {"host": "127.0.0.1", "port": 0}),
    ("ws://127.0.0.1:8765/", "ws", {"port": 8765}),
    ("ws://127.0.0.1:0?queue=8&max_clients=2", "ws", {"client_queue": 8, "max_clients": 2}),
    ("ws://127.0.0.1:0?origins=*", "ws", {"origins": None}),
    ("ws://127.0.0.1:0?origins=http://localhost:3000,null", "ws",
     {"origins": [None, "http://localhost:3000", "null"]}),
    ("jsonl:/tmp/commands.jsonl", "jsonl", {"path": "/tmp/commands.jsonl"}),
    ("jsonl:relative/c.jsonl", "jsonl", {"path": "relative/c.jsonl"}),
])
def test_valid_specs(spec, kind, args):
    parsed = parse_sink_spec(spec)
    assert parsed.kind == kind
    for key, value in args.items():
        assert parsed.args[key] == value


@pytest.mark.parametrize("spec, fragment", [
    ("tcp://127.0.0.1:9000", "expected 'lsl', 'lsl:NAME', 'udp://HOST:PORT'"),
    ("", "expected 'lsl'"),
    ("lsl:", "lsl:NAME"),
    ("udp://127.0.0.1", "missing port"),
    ("udp://127.0.0.1:0", "port 0 is out of range; expected 1-65535"),
    ("udp://127.0.0.1:70000", "expected udp://HOST:PORT"),
    ("udp://127.0.0.1:abc", "expected udp://HOST:PORT"),
    ("udp://127.0.0.1:9000/path", "unexpected path"),
    ("udp://127.0.0.1:9000?x=1", "udp sinks take no options"),
    ("ws://127.0.0.1", "missing port; expected ws://HOST:PORT"),
    ("ws://127.0.0.1:8765?bogus=1", "unknown option 'bogus'"),
    ("ws://127.0.0.1:8765?queue=many", "queue= must be a whole number"),
    ("ws://127.0.0.1:8765?queue=0", "queue= must be at least 1"),
    ("ws://127.0.0.1:8765?origins=", "origins= is empty"),
    ("ws://127.0.0.1:8765?origins=evil", "is not of the form scheme://host"),
    ("wss://127.0.0.1:8765", "TLS is not built in"),
    ("jsonl:", "jsonl:PATH"),
])
def test_invalid_specs_name_the_spec_and_the_expected_form(spec, fragment):
    with pytest.raises(SinkError) as info:
        parse_sink_spec(spec)
    message = str(info.value)
    assert fragment in message
    assert repr(spec) in message or repr(spec.strip()) in message
    assert isinstance(info.value, BCIError) and "\n" not in message


def test_make_sink_refuses_non_specs():
    with pytest.raises(SinkError, match="expected 'lsl'"):
        make_sink(42)


def test_ws_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SinkError, match=rf"ws://127.0.0.1:{port}: cannot listen on "
                                            rf"127.0.0.1:{port}"):
            make_sink(f"ws://127.0.0.1:{port}")


def test_jsonl_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SinkError, match="is a folder; expected a file path"):
        make_sink(f"jsonl:{tmp_path}")


def test_jsonl_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot open"):
        make_sink(f"jsonl:{blocker}/sub/commands.jsonl")


def test_options_override_the_spec_string():
    sink = make_sink("ws://127.0.0.1:0?queue=8", client_queue=3)
    try:
        assert sink.client_queue == 3
    finally:
        sink.close()
