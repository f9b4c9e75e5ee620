"""``stase client VERB --request-file PATH`` (issue 22): the request object read from a file.

An echo peer (a bound UDP port that answers each request with the object it received) shows what
the client sent; every refusal is checked to send nothing (exit 2, one ``stase client: error:``
line on stderr) and to leave the file in place.
"""
from __future__ import annotations

import json

import pytest

from stase.bridge.dispatcher import MAX_REQUEST_CHARS
from stase.cli import main as stase_main
from daemon_helpers import FakePeer  # tests/ is on sys.path in pytest


def EchoPeer():
    """Answers every ``/stase/<verb>`` request with ``result = {"verb", "params"}``."""
    return FakePeer(lambda address, params, copies: {"id": params["id"], "ok": True, "status": "done",
                                                     "result": {"verb": address, "params": params}})


@pytest.fixture
def peer():
    p = EchoPeer()
    yield p
    p.close()


def client(peer, *argv):
    return stase_main(["client", *argv, "--port", str(peer.port), "--timeout", "2"])


PAYLOAD = {"reverb_db": -6.5, "room": "jazz_club", "text": "it's \"loud\" & 50% $HOME `id` ünï 😀",
           "nested": {"empty_list": [], "empty_object": {}, "n": [1, 2.5e-300, -0.0, 1e300]}}


@pytest.mark.parametrize("bom", [False, True])
def test_the_request_file_is_sent_as_is(peer, tmp_path, capsys, bom):
    path = tmp_path / "req.json"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps(PAYLOAD, ensure_ascii=False).encode())
    assert client(peer, "set_room", "--request-file", str(path)) == 0
    [(address, params)] = peer.requests
    assert address == "/stase/set_room"
    params.pop("id")
    assert params == PAYLOAD
    reply = json.loads(capsys.readouterr().out)
    assert reply["ok"] and reply["result"]["params"]["text"] == PAYLOAD["text"]
    assert path.exists()  # the caller owns the file (the scripts remove it after the reply)


def test_the_positional_json_still_works_and_an_empty_file_means_an_empty_request(peer, tmp_path):
    assert client(peer, "status", '{"a": 1}') == 0
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    assert client(peer, "status", "--request-file", str(empty)) == 0
    assert [sorted(p) for _, p in peer.requests] == [["a", "id"], ["id"]]


def test_a_request_of_most_of_a_datagram_is_sent_and_one_over_it_is_refused(peer, tmp_path, capsys):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"text": "a" * 60_000}), encoding="utf-8")
    assert client(peer, "status", "--request-file", str(path)) == 0
    assert len(peer.requests[0][1]["text"]) == 60_000
    # within the daemon's character limit, but no UDP datagram carries it: exit 2, not
    # "daemon not reachable" (the kernel's EMSGSIZE)
    text = json.dumps({"text": ""})
    text = json.dumps({"text": "a" * (MAX_REQUEST_CHARS - len(text))})
    assert len(text) == MAX_REQUEST_CHARS
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert client(peer, "status", "--request-file", str(path)) == 2
    err = capsys.readouterr().err
    assert "one UDP datagram" in err and "not reachable" not in err
    assert len(peer.requests) == 1


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("make, fragment", [
    (lambda d: str(d / "absent.json"), "no such file"),
    (lambda d: str(d), "is a folder"),
    (lambda d: _write(d, "list.json", b"[1, 2]"), "must be a JSON object, got list"),
    (lambda d: _write(d, "text.json", b'"set_room"'), "must be a JSON object, got str"),
    (lambda d: _write(d, "broken.json", b'{"reverb_db": '), "not valid JSON"),
    (lambda d: _write(d, "nan.json", b'{"reverb_db": NaN}'), "NaN"),
    (lambda d: _write(d, "inf.json", b'{"reverb_db": -Infinity}'), "Infinity"),
    (lambda d: _write(d, "huge.json", b'{"reverb_db": 1e400}'), "overflows"),
    (lambda d: _write(d, "latin1.json", '{"text": "caf\u00e9"}'.encode("latin-1")), "not UTF-8"),
    (lambda d: _write(d, "long.json", json.dumps({"t": "a" * MAX_REQUEST_CHARS}).encode()),
     f"over the daemon's limit of {MAX_REQUEST_CHARS}"),
    (lambda d: _write(d, "longer.json", b" " * (4 * MAX_REQUEST_CHARS + 1)), "bytes"),
])
def test_a_bad_request_file_is_refused_with_exit_2_and_nothing_sent(peer, tmp_path, capsys, make,
                                                                    fragment):
    path = make(tmp_path)
    rc = client(peer, "set_room", "--request-file", path)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("stase client: error: --request-file") and fragment in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert peer.requests == []


def test_an_unreadable_request_file_is_refused(peer, tmp_path, capsys):
    # a path below a plain file: open() fails with ENOTDIR (chmod 0 would not stop root)
    below_a_file = tmp_path / "plain.json"
    below_a_file.write_text("{}", encoding="utf-8")
    assert client(peer, "status", "--request-file", str(below_a_file / "req.json")) == 2
    err = capsys.readouterr().err
    assert "cannot be read: Not a directory" in err and peer.requests == []


def test_json_argument_and_request_file_together_are_refused(peer, tmp_path, capsys):
    path = tmp_path / "req.json"
    path.write_text("{}", encoding="utf-8")
    assert client(peer, "status", "{}", "--request-file", str(path)) == 2
    assert "not both" in capsys.readouterr().err and peer.requests == []


@pytest.mark.parametrize("text, fragment", [("[1]", "got list"), ('{"x": NaN}', "NaN"),
                                            ("{", "not valid JSON")])
def test_the_positional_json_is_checked_the_same_way(peer, capsys, text, fragment):
    assert client(peer, "status", text) == 2
    err = capsys.readouterr().err
    assert err.startswith("stase client: error: the request") and fragment in err
    assert peer.requests == []
