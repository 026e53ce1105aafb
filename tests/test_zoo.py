"""Model zoo: registry validation, downloads against a local HTTP server (resume, Range
ignored, dropped connections, corruption, cancel, offline), imports, the atomic file
helpers and the `models` CLI. Nothing here touches the internet."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from editor.cli import models as cli_models
from editor.core import paths, zoo
from editor.core.errors import AtelierError, ZooDownloadError
from tests.conftest import reading_fifo

DATA = bytes(range(256)) * 800  # 204800 bytes: several chunks at the test chunk size
SHA = hashlib.sha256(DATA).hexdigest()


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    """Serves DATA at /<mode>/file.bin. Modes: ok (Range honoured), norange (Range
    ignored), drop (closes the connection half way while drops remain), corrupt (one byte
    flipped), html (a web page), missing (404), trickle (headers and 1000 bytes, then
    silence until the state's release event), silent (no answer until released),
    versioned (the state's body and ETag, If-Range honoured, drops like drop), empty
    (200 with no body), htmloctet (a web page as application/octet-stream), gzip (DATA
    gzipped, saying Content-Encoding: gzip), gzipped (the same without saying so), from0
    (a Range answered with 206 and all of the file), offby (a Range answered with 206 from
    one byte earlier), partial (206 from byte 5 even to a request for all of it)."""

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.server.state
        mode = self.path.strip("/").split("/")[0]
        with state["lock"]:
            state["requests"].append((self.path, self.headers.get("Range")))
            state["if_range"].append(self.headers.get("If-Range"))
        if mode == "missing":
            self.send_error(404, "Not Found")
            return
        if mode == "empty":
            self._send(200, b"", "application/octet-stream")
            return
        if mode == "silent":  # accepts the request, answers only once released
            state["release"].wait(10)
            return
        if mode == "html":
            self._send(200, b"<html>Too many users have downloaded this file</html>",
                       "text/html; charset=utf-8")
            return
        if mode == "htmloctet":
            self._send(200, b"\n<!DOCTYPE html><html>Sign in to continue</html>",
                       "application/octet-stream")
            return
        if mode in ("gzip", "gzipped"):
            self._send(200, gzip.compress(DATA), "application/octet-stream",
                       {"Content-Encoding": "gzip"} if mode == "gzip" else {})
            return
        body = bytearray(state["body"] if mode == "versioned" else DATA)
        if mode == "corrupt":
            body[1000] ^= 0xFF
        start = self._range_start() if mode != "norange" else None
        if mode == "versioned" and self.headers.get("If-Range", state["etag"]) != state["etag"]:
            start = None  # the file changed since the part was started: send all of it
        if start is not None and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is None and mode != "partial":
            status, chunk = 200, bytes(body)
        else:
            status, chunk = 206, bytes(body[start or 0:])
        if mode in ("from0", "offby", "partial"):  # 206 with other bytes than asked for
            start = {"from0": 0, "offby": (start or 1) - 1, "partial": 5}[mode]
            chunk = bytes(body[start:])
        drop = False
        if mode in ("drop", "versioned"):
            with state["lock"]:
                drop = state["drops"] > 0
                state["drops"] -= drop
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        if mode == "versioned":
            self.send_header("ETag", state["etag"])
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if mode == "trickle":  # 1000 bytes, then nothing until released
            self.wfile.write(chunk[:1000])
            self.wfile.flush()
            state["release"].wait(10)
            chunk = chunk[1000:]
        # A dropped connection: half the promised body, then the socket closes.
        self.wfile.write(chunk[: len(chunk) // 2] if drop else chunk)

    def _range_start(self) -> int | None:
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        return int(m[1]) if m else None

    def _send(self, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = {"lock": threading.Lock(), "requests": [], "drops": 0,
                            "release": threading.Event(), "if_range": [], "body": DATA,
                            "etag": '"v1"'}
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/file.bin"

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return list(self.httpd.state["requests"])

    def publish(self, body: bytes, etag: str) -> None:
        """A new version of the file in versioned mode."""
        self.httpd.state.update(body=body, etag=etag)

    def set_drops(self, n: int) -> None:
        self.httpd.state["drops"] = n

    def close(self) -> None:
        self.httpd.state["release"].set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setattr(zoo, "CHUNK_SIZE", 16384)
    monkeypatch.setattr(zoo, "RETRY_DELAY_S", 0.0)


def make_entry(url: str, *, sha: str | None = SHA, size: int | None = len(DATA),
               name: str = "toy-model", filename: str = "toy.bin") -> zoo.ZooEntry:
    return zoo.ZooEntry(name=name, kind="generator", format="rosinality-pt", url=url,
                        filename=filename, licence="test licence", description="a test file",
                        size=size, sha256=sha)


def write_user_registry(entries: list[dict]) -> Path:
    path = paths.config_dir() / "zoo_registry.json"
    path.write_text(json.dumps({"version": 1, "entries": entries}), encoding="utf-8")
    return path


def raw_entry(url: str, name: str = "toy-model", **extra) -> dict:
    raw = {"name": name, "kind": "generator", "format": "rosinality-pt", "url": url,
           "filename": "toy.bin", "size": len(DATA), "sha256": SHA, "licence": "test",
           "description": "a test file"}
    raw.update(extra)
    return raw


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------- registry

REQUIRED_KEYS = {"name", "kind", "format", "url", "size", "sha256", "licence", "description"}


def _raw_builtin() -> list[dict]:
    return json.loads(zoo.REGISTRY_PATH.read_text(encoding="utf-8"))["entries"]


def test_builtin_registry_entries_are_complete():
    raw = _raw_builtin()
    names = [e["name"] for e in raw]
    assert len(names) == len(set(names)), "names must be unique"
    for e in raw:
        assert REQUIRED_KEYS <= e.keys(), f"{e['name']} lacks {REQUIRED_KEYS - e.keys()}"
        assert e["url"].startswith("https://"), e["name"]
        assert e["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", e["sha256"]), e["name"]
        assert e["size"] is None or (isinstance(e["size"], int) and e["size"] > 0)
        assert e["licence"].strip() and e["description"].strip()
        if e["kind"] == "clip":
            assert e["format"] == "open_clip" and e["arch"] and e["tag"], e["name"]
        # OpenAI put each file's sha256 in its URL: the two must agree.
        m = re.search(r"/([0-9a-f]{64})/", e["url"])
        if m:
            assert e["sha256"] == m[1], e["name"]
    entries = zoo.load_registry_file(zoo.REGISTRY_PATH)  # and it passes our own validation
    assert [e.name for e in entries] == names


def test_builtin_registry_has_the_reference_models():
    entries = {e.name: e for e in zoo.list_entries(include_user=False)}
    assert entries["ffhq-1024-rosinality"].format == "rosinality-pt"
    assert entries["ffhq-1024-rosinality"].filename == "stylegan2-ffhq-config-f.pt"
    assert {"ffhq-1024-nvidia", "afhqcat-512-nvidia", "afhqdog-512-nvidia"} <= entries.keys()
    clips = {(e.arch, e.tag) for e in entries.values() if e.kind == "clip"}
    assert {("ViT-B-32", "openai"), ("ViT-B-16", "openai")} <= clips


def test_clip_entries_match_open_clip():
    open_clip = pytest.importorskip("open_clip")
    for e in zoo.list_entries(include_user=False):
        if e.kind != "clip":
            continue
        pcfg = open_clip.get_pretrained_cfg(e.arch, e.tag)
        assert pcfg, f"open_clip does not know {e.arch}/{e.tag}"
        if pcfg.get("url"):  # newer open_clip versions only list the HF hub copy
            assert pcfg["url"] == e.url


def test_registry_validation_reports_every_problem():
    bad = [
        {"name": "Bad Name", "kind": "gan", "format": "rosinality-pt", "url": "http://x/y.pt",
         "licence": "", "description": "d", "sha256": "abc", "size": -1, "colour": 1},
        {"name": "clip-x", "kind": "clip", "format": "open_clip", "url": "https://h/v.pt",
         "licence": "MIT", "description": "d"},
    ]
    with pytest.raises(zoo.ZooRegistryError) as info:
        zoo.parse_registry(bad, "test.json")
    msg = str(info.value)
    for phrase in ("unknown field 'colour'", "name must use", "kind must be one of",
                   "url must be an https URL", "licence must be", "sha256 must be 64",
                   "size must be a positive", "needs 'arch'", "needs 'tag'"):
        assert phrase in msg


def test_registry_rejects_duplicates_and_format_kind_mismatch():
    e = raw_entry("https://h/toy.bin")
    with pytest.raises(zoo.ZooRegistryError, match="used twice"):
        zoo.parse_registry([e, dict(e)], "test.json")
    with pytest.raises(zoo.ZooRegistryError, match="is for a clip"):
        zoo.parse_registry([raw_entry("https://h/t.bin", format="open_clip")], "t.json")
    with pytest.raises(zoo.ZooRegistryError, match="version"):
        zoo.parse_registry({"version": 99, "entries": []}, "t.json")


def test_registry_filename_defaults_to_url_basename_and_sha_is_lowercased():
    raw = raw_entry("https://h/dir/model%20a.pt", sha256=SHA.upper())
    del raw["filename"]
    (entry,) = zoo.parse_registry([raw], "t.json")
    assert entry.filename == "model a.pt" and entry.sha256 == SHA


def test_user_registry_adds_and_overrides(server):
    write_user_registry([raw_entry(server.url("ok")),  # http allowed for the user's own
                         raw_entry("https://mirror.example/v.pt", name="clip-vit-b-32-openai",
                                   kind="clip", format="open_clip", arch="ViT-B-32",
                                   tag="openai")])
    names = [e.name for e in zoo.list_entries()]
    assert names.count("clip-vit-b-32-openai") == 1 and names[-1] == "toy-model"
    assert zoo.get_entry("clip-vit-b-32-openai").url == "https://mirror.example/v.pt"
    assert zoo.get_entry("toy-model").origin.endswith("zoo_registry.json")


def test_broken_user_registry_names_the_file():
    path = paths.config_dir() / "zoo_registry.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(zoo.ZooRegistryError, match="not valid JSON") as info:
        zoo.list_entries()
    assert str(path) in str(info.value)


def test_a_broken_user_registry_leaves_the_built_in_models_usable(capsys, tmp_path):
    path = paths.config_dir() / "zoo_registry.json"
    path.write_text("{not json", encoding="utf-8")
    entries, problem = zoo.registry_entries()
    assert [e.name for e in entries] == [e.name for e in zoo.list_entries(include_user=False)]
    assert str(path) in problem and "not valid JSON" in problem and "\n" not in problem
    assert zoo.get_entry("ffhq-1024-nvidia").origin == "builtin"
    with pytest.raises(zoo.UnknownModelError, match="Note: the model registry"):
        zoo.get_entry("my-own-model")
    src = tmp_path / "custom.pt"
    src.write_bytes(b"abc")
    zoo.import_file(src)
    assert _run(["models", "list"]) == 0
    out, err = capsys.readouterr()
    assert "ffhq-1024-nvidia" in out and "custom" in out
    assert err.startswith("atelier models: warning:") and err.count("\n") == 1
    assert str(path) in err


def test_registry_names_that_would_take_the_index_place_are_refused():
    for name in ("index.json", "index.lock"):
        with pytest.raises(zoo.ZooRegistryError, match="reserved for the model index"):
            zoo.parse_registry([raw_entry("https://h/t.bin", name=name)], "t.json")


def test_a_redirect_loop_is_one_line_naming_the_model(monkeypatch):
    import email.message

    def loop(*a, **k):
        raise urllib.error.HTTPError("https://h/t.bin", 302, "The HTTP server returned a "
                                     "redirect error that would lead to an infinite loop.\n"
                                     "The last 30x error message was:\nFound",
                                     email.message.Message(), None)

    monkeypatch.setattr(zoo, "_urlopen", loop)
    with pytest.raises(ZooDownloadError) as info:
        zoo.download(make_entry("https://h/t.bin"))
    assert str(info.value) == "h redirected the download of toy-model in a loop (HTTP 302); " \
                              "try again later"


def test_get_entry_unknown_lists_names():
    with pytest.raises(zoo.UnknownModelError) as info:
        zoo.get_entry("ffhq-1024-rosinalty")
    msg = str(info.value)
    assert "Did you mean 'ffhq-1024-rosinality'" in msg and "clip-vit-b-16-openai" in msg
    assert zoo.get_entry("FFHQ-1024-NVIDIA").name == "ffhq-1024-nvidia"


# ------------------------------------------------------------------------- download


def test_download_verifies_and_records(server):
    progress: list[tuple[int, int | None]] = []
    model = zoo.download(make_entry(server.url("ok")),
                         progress=lambda d, t: progress.append((d, t)))
    assert model.path.read_bytes() == DATA
    assert model.verified and model.sha256 == SHA and model.entry == "toy-model"
    assert model.path == zoo.models_dir() / "toy-model" / "toy.bin"
    assert leftovers(model.path.parent) == ["toy.bin"]
    assert progress[-1] == (len(DATA), len(DATA)) and len(progress) > 3
    assert [m.name for m in zoo.installed()] == ["toy-model"]
    index = json.loads((zoo.models_dir() / "index.json").read_text())
    assert index["models"]["toy-model"]["path"] == "toy-model/toy.bin"


def test_download_by_name_from_user_registry(server):
    write_user_registry([raw_entry(server.url("ok"))])
    assert zoo.download("toy-model").path.read_bytes() == DATA


def test_download_without_known_hash_records_it_unverified(server, caplog):
    # logged for the record (INFO): the callers say it where people see it, once
    with caplog.at_level(logging.INFO, logger="editor.core.zoo"):
        model = zoo.download(make_entry(server.url("ok"), sha=None, size=None))
    assert not model.verified and model.sha256 == SHA
    assert "not verified" in caplog.text and SHA in caplog.text
    assert not zoo.installed_model("toy-model").verified


def test_download_into_dest_dir(server, tmp_path):
    model = zoo.download(make_entry(server.url("ok")), tmp_path / "out")
    assert model.path == tmp_path / "out" / "toy.bin" and model.path.read_bytes() == DATA
    assert zoo.installed_model("toy-model").path == model.path.resolve()


def test_checksum_mismatch_leaves_nothing(server):
    entry = make_entry(server.url("corrupt"))
    with pytest.raises(ZooDownloadError) as info:
        zoo.download(entry)
    msg = str(info.value)
    bad = bytearray(DATA)
    bad[1000] ^= 0xFF
    assert f"expected sha256 {SHA}" in msg and hashlib.sha256(bad).hexdigest() in msg
    assert not zoo.target_path(entry).exists() and not zoo.part_path(entry).exists()
    assert zoo.installed() == []


def test_dropped_connection_keeps_part_then_resumes(server):
    entry = make_entry(server.url("drop"))
    server.set_drops(1)
    with pytest.raises(ZooDownloadError, match="resume") as info:
        zoo.download(entry, retries=0)
    assert not isinstance(info.value, zoo.DownloadCancelled)
    part = zoo.part_path(entry)
    assert 0 < part.stat().st_size < len(DATA) and not zoo.target_path(entry).exists()
    have = part.stat().st_size
    model = zoo.download(entry)
    assert model.verified and model.path.read_bytes() == DATA and not part.exists()
    assert server.requests[-1][1] == f"bytes={have}-"


def test_dropped_connection_is_resumed_within_one_call(server):
    server.set_drops(2)
    model = zoo.download(make_entry(server.url("drop")))
    assert model.verified and model.path.read_bytes() == DATA
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and ranges[1] and ranges[2] and len(ranges) == 3


def test_server_ignoring_range_restarts_the_part(server):
    entry = make_entry(server.url("norange"))
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\x00" * 5000)  # would corrupt the file if appended to
    model = zoo.download(entry)
    assert model.verified and model.path.read_bytes() == DATA
    assert server.requests[0][1] == "bytes=5000-"



@pytest.mark.parametrize("mode, asked", [("from0", ["bytes=5000-"]),
                                         ("offby", ["bytes=5000-", None])])
def test_a_resume_answered_with_other_bytes_completes(server, mode, asked):
    # "206 bytes 0-N/N" to a resume is the whole file; another start is no resume at all:
    # both were taken for a dropped connection, retried, and the download stayed stuck.
    entry = make_entry(server.url(mode))
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\x00" * 5000)  # would corrupt the file if appended to
    model = zoo.download(entry, retries=1)
    assert model.verified and model.path.read_bytes() == DATA
    assert [r for _, r in server.requests] == asked


def test_a_server_answering_with_the_wrong_bytes_is_not_told_to_resume(server):
    entry = make_entry(server.url("partial"))
    with pytest.raises(ZooDownloadError, match=r"answered the request for all of toy-model "
                       r"with part of it \(bytes 5-") as info:
        zoo.download(entry)
    assert "resume" not in str(info.value) and len(server.requests) == 1
    assert leftovers(zoo.models_dir()) == []


def test_complete_part_with_unknown_size_gets_416_and_is_kept(server):
    entry = make_entry(server.url("ok"), size=None)
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(DATA)
    model = zoo.download(entry)
    assert model.verified and model.path.read_bytes() == DATA


def test_resume_after_the_file_changed_on_the_server_starts_over(server):
    # The part holds half of version 1; the server now has version 2. Resuming must not
    # glue version 2's second half onto version 1's first half.
    entry = make_entry(server.url("versioned"), sha=None, size=None)
    server.set_drops(1)
    with pytest.raises(ZooDownloadError, match="resume"):
        zoo.download(entry, retries=0)
    part = zoo.part_path(entry)
    assert 0 < part.stat().st_size < len(DATA)
    new = DATA[::-1]
    server.publish(new, '"v2"')
    model = zoo.download(entry)
    assert model.path.read_bytes() == new
    # the resume named the version it had; the server's 200 (all of v2) was used from 0
    assert server.httpd.state["if_range"] == [None, '"v1"']
    assert leftovers(model.path.parent) == ["toy.bin"]  # the validators are gone too


def test_resume_of_an_unchanged_file_appends(server):
    entry = make_entry(server.url("versioned"))
    server.set_drops(1)
    with pytest.raises(ZooDownloadError):
        zoo.download(entry, retries=0)
    have = zoo.part_path(entry).stat().st_size
    assert zoo.download(entry).verified
    assert server.requests[-1][1] == f"bytes={have}-"
    assert server.httpd.state["if_range"][-1] == '"v1"'


def test_a_part_longer_than_the_file_on_the_server_starts_over(server):
    # 416 with "bytes */N": only a part of exactly N bytes is complete.
    entry = make_entry(server.url("ok"), sha=None, size=None)
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(DATA + b"stale tail of an older, longer file")
    model = zoo.download(entry)
    assert model.path.read_bytes() == DATA and model.sha256 == SHA
    assert [r for _, r in server.requests] == [f"bytes={part_len}-" for part_len in
                                               [len(DATA) + 35]] + [None]


@pytest.mark.parametrize("as_callable", [False, True])
def test_cancel_keeps_part_and_resume_completes(server, as_callable):
    entry = make_entry(server.url("ok"))
    event = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            event.set()

    cancel = event.is_set if as_callable else event
    with pytest.raises(zoo.DownloadCancelled, match="resume"):
        zoo.download(entry, progress=progress, cancel=cancel)
    part = zoo.part_path(entry)
    assert 0 < part.stat().st_size < len(DATA) and not zoo.target_path(entry).exists()
    assert zoo.installed() == []
    model = zoo.download(entry)
    assert model.verified and model.path.read_bytes() == DATA and not part.exists()
    assert server.requests[-1][1] == f"bytes={zoo.CHUNK_SIZE}-"


def _cancel_after(event: threading.Event, progress_seen: threading.Event | None = None,
                  delay: float = 0.0) -> list[float]:
    """Sets `event` once `progress_seen` is set (or at once), after `delay`; returns a list
    that receives the time it was set."""
    when: list[float] = []

    def run() -> None:
        if progress_seen is not None:
            progress_seen.wait(10)
        time.sleep(delay)
        when.append(time.monotonic())
        event.set()

    threading.Thread(target=run, daemon=True).start()
    return when


def test_a_slow_server_shows_progress_and_cancels_within_a_second(server):
    # The server sends 1000 bytes, then nothing: the bytes are reported, and a cancel
    # ends the download at once (a full-chunk read waited for the socket's timeout).
    entry = make_entry(server.url("trickle"))
    cancel, first_bytes = threading.Event(), threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= 1000:
            first_bytes.set()

    when = _cancel_after(cancel, first_bytes)
    with pytest.raises(zoo.DownloadCancelled, match="resume"):
        zoo.download(entry, progress=progress, cancel=cancel, timeout=5)
    latency = time.monotonic() - when[0]
    assert latency < 1.0, f"cancel took {latency:.2f} s"
    assert zoo.part_path(entry).stat().st_size == 1000


def test_an_entry_is_not_imported_while_it_downloads(server, tmp_path):
    # An import matched by file name to an entry being downloaded was installed, then the
    # download, ending, replaced its file and record without a word.
    write_user_registry([raw_entry(server.url("trickle"), sha256=None, size=None)])
    entry = make_entry(server.url("trickle"), sha=None, size=None)
    cancel, first_bytes = threading.Event(), threading.Event()
    ended: list[BaseException] = []

    def fetch():
        try:
            zoo.download(entry, cancel=cancel, timeout=5,
                         progress=lambda done, _t: done >= 1000 and first_bytes.set())
        except BaseException as e:  # noqa: BLE001 - looked at below
            ended.append(e)

    thread = threading.Thread(target=fetch)
    thread.start()
    assert first_bytes.wait(10)
    mine = tmp_path / "toy.bin"
    mine.write_bytes(b"my own toy model")
    with pytest.raises(zoo.ZooImportError, match="toy-model is already being downloaded"):
        zoo.import_file(mine)
    cancel.set()
    thread.join(10)
    assert isinstance(ended[0], zoo.DownloadCancelled)
    model = zoo.import_file(mine)  # the download stopped: the name is free again
    assert model.entry == "toy-model" and model.path.read_bytes() == b"my own toy model"


def test_cancel_while_the_server_has_not_answered_yet(server):
    entry = make_entry(server.url("silent"))
    cancel = threading.Event()
    when = _cancel_after(cancel, delay=0.2)
    with pytest.raises(zoo.DownloadCancelled):
        zoo.download(entry, cancel=cancel, timeout=5)
    latency = time.monotonic() - when[0]
    assert latency < 1.0, f"cancel took {latency:.2f} s"
    assert not zoo.part_path(entry).exists()


def test_a_server_that_stops_sending_is_one_clear_error(server):
    entry = make_entry(server.url("trickle"))
    with pytest.raises(ZooDownloadError, match=r"stopped sending toy-model \(nothing for "
                       r"0.5 s\); 0.0 MB kept in .*resume") as info:
        zoo.download(entry, timeout=0.5)
    assert not isinstance(info.value, zoo.DownloadCancelled)
    assert zoo.part_path(entry).stat().st_size == 1000
    assert len(server.requests) == 1  # reported, not retried for another timeout


def test_unreachable_host_says_offline():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: connecting is refused
    entry = make_entry(f"http://127.0.0.1:{port}/toy.bin")
    with pytest.raises(ZooDownloadError) as info:
        zoo.download(entry, timeout=5)
    msg = str(info.value)
    # the window's way too: its import has no --name, and a file the registry has a
    # checksum for is known whatever its name
    assert "offline" in msg and "and import it (Import file… in Models ▸ Model packs, " \
        "or `atelier models import PATH`)." in msg
    assert "refused" in msg
    hashless = zoo._unreachable_error(make_entry("https://x.invalid/t", sha=None), "down")
    assert "import it under its file name, toy.bin (Import file… in Models ▸ Model packs, " \
        "or `atelier models import PATH`; there `--name toy-model` takes it under any " \
        "name)." in str(hashless)
    assert not zoo.part_path(entry).exists() and not zoo.target_path(entry).exists()


def test_dns_failure_says_offline(monkeypatch):
    def fail(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(zoo, "_urlopen", fail)
    with pytest.raises(ZooDownloadError, match="looked up.*offline"):
        zoo.download(make_entry("https://no-such-host.invalid/toy.bin"))


def test_failed_download_leaves_no_empty_folder_or_part():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = make_entry(f"http://127.0.0.1:{port}/toy.bin")
    with pytest.raises(ZooDownloadError):
        zoo.download(entry, timeout=5)
    assert not zoo.target_path(entry).parent.exists()


def test_second_download_of_the_same_file_is_refused_while_the_first_runs(server):
    entry = make_entry(server.url("ok"))
    started, release = threading.Event(), threading.Event()
    result: list[object] = []

    def slow_progress(done: int, total: int | None) -> None:
        if done > 0:
            started.set()
            release.wait(10)

    def first() -> None:
        result.append(zoo.download(entry, progress=slow_progress))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(ZooDownloadError, match="already being downloaded"):
            zoo.download(entry)
    finally:
        release.set()
        thread.join(10)
    assert isinstance(result[0], zoo.InstalledModel) and result[0].verified
    assert result[0].path.read_bytes() == DATA


@pytest.mark.skipif(getattr(zoo, "fcntl", None) is None, reason="POSIX file locks")
def test_part_locked_by_another_program_is_left_alone(server):
    entry = make_entry(server.url("ok"))
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:100])
    with open(part, "rb+") as other:
        zoo.fcntl.flock(other.fileno(), zoo.fcntl.LOCK_EX)
        with pytest.raises(ZooDownloadError, match="already being downloaded"):
            zoo.download(entry)
    assert part.read_bytes() == DATA[:100]
    assert zoo.download(entry).path.read_bytes() == DATA


@pytest.mark.skipif(getattr(zoo, "fcntl", None) is None, reason="POSIX file locks")
def test_refused_download_leaves_another_programs_empty_part_alone(server):
    # The other program has just started: its part is still empty. The refused download
    # must not delete it (the other program would then write into a file no one can see).
    entry = make_entry(server.url("ok"))
    part = zoo.part_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"")
    with open(part, "rb+") as other:
        zoo.fcntl.flock(other.fileno(), zoo.fcntl.LOCK_EX)
        inode = os.fstat(other.fileno()).st_ino
        with pytest.raises(ZooDownloadError, match="already being downloaded"):
            zoo.download(entry)
        assert part.exists() and part.stat().st_ino == inode
    assert server.requests == []



@pytest.mark.skipif(getattr(zoo, "fcntl", None) is None, reason="POSIX file locks")
def test_another_program_cannot_take_the_part_while_it_is_checked(server):
    # The part's lock ended with the transfer: a second program downloading the same
    # entry while the first checked and read the file rewrote or renamed the part under
    # it (a server ignoring Range: truncated and rewritten), and the first failed or
    # installed a half-written file recorded with the good file's hash and another size.
    from types import SimpleNamespace

    write_user_registry([raw_entry(server.url("norange"), sha256=None, size=None)])
    entry = make_entry(server.url("norange"), sha=None, size=None)
    script = ("from editor.core import zoo\n"
              "try:\n"
              "    print('installed', zoo.download('toy-model').size)\n"
              "except zoo.ZooDownloadError as e:\n"
              "    print('refused:', e)\n")
    root = Path(__file__).resolve().parents[1]
    other: list[str] = []

    def identify_while_another_program_downloads(path, _arch, _stopped):
        other.append(subprocess.run([sys.executable, "-c", script], cwd=root, text=True,
                                    capture_output=True, timeout=120).stdout)
        return SimpleNamespace(kind="generator", resolution=None)

    model = zoo.download(entry, identify=identify_while_another_program_downloads)
    assert other[0].startswith("refused: toy-model is already being downloaded"), other
    assert model.path.read_bytes() == DATA and model.size == len(DATA)
    assert zoo.installed_model("toy-model").size == len(DATA)
    assert len(server.requests) == 1
    assert leftovers(model.path.parent) == ["toy.bin"]


@pytest.mark.skipif(getattr(zoo, "fcntl", None) is None, reason="POSIX file locks")
def test_a_part_installed_between_its_open_and_its_lock_is_not_written_into(
        server, monkeypatch):
    # Another program renames its finished part into place just after this download
    # opened the part and before it locked it: what it holds is the installed file now.
    entry = make_entry(server.url("norange"), sha=None, size=None)
    part, final = zoo.part_path(entry), zoo.target_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA)
    real = zoo.fcntl

    class OtherProgramFinishes:
        renamed = False

        def __getattr__(self, name):
            return getattr(real, name)

        def flock(self, fd, how):
            if how & real.LOCK_NB and not self.renamed:
                self.renamed = True
                os.replace(part, final)  # the other program installs it, and lets go
            return real.flock(fd, how)

    monkeypatch.setattr(zoo, "fcntl", OtherProgramFinishes())
    model = zoo.download(entry)
    assert final.read_bytes() == DATA and model.size == len(DATA) and model.sha256 == SHA
    assert server.requests == []  # installed already: nothing downloaded, nothing truncated
    assert leftovers(final.parent) == ["toy.bin"]


def test_web_page_instead_of_file_is_refused(server):
    entry = make_entry(server.url("html"))
    with pytest.raises(ZooDownloadError, match="web page"):
        zoo.download(entry)
    assert not zoo.part_path(entry).exists() and not zoo.target_path(entry).exists()


def test_a_download_cancelled_while_it_is_checked_is_not_installed(server):
    from types import SimpleNamespace

    # The checksum and the reading of a large file take seconds; a cancel then said
    # "cancelled" while the model was installed all the same.
    entry = make_entry(server.url("ok"))
    cancelled = []

    def read_then_cancel(path, _arch, _stopped):  # the user cancels while it is being read
        cancelled.append(True)
        return SimpleNamespace(kind="generator", resolution=None)

    with pytest.raises(zoo.DownloadCancelled, match="cancelled after it arrived"):
        zoo.download(entry, identify=read_then_cancel, cancel=lambda: bool(cancelled))
    assert zoo.installed() == []
    model = zoo.download(entry)  # started again: installed from the kept file
    assert model.path.read_bytes() == DATA and model.verified


def test_a_download_that_is_not_a_model_is_refused_and_deleted(server, capsys):
    # Served as application/octet-stream, but only bytes: import refused such a file,
    # download installed it "(not verified)".
    from editor.core.model_files import identify_model_file

    entry = make_entry(server.url("ok"), sha=None, size=None)
    with pytest.raises(ZooDownloadError, match=r"sent for toy-model is not the model "
                       r"\(.*not a model file.*\); it was deleted"):
        zoo.download(entry, identify=identify_model_file)
    assert leftovers(zoo.models_dir()) == [] and zoo.installed() == []
    write_user_registry([raw_entry(server.url("ok"), sha256=None, size=None)])
    assert _run(["models", "download", "toy-model"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("atelier models: error: what 127.0.0.1 sent")
    assert err.count("error") == 1 and "not the model" in err and "Traceback" not in err
    assert zoo.installed() == []



def test_a_file_in_the_way_of_an_unhashed_download_is_read_not_taken_for_it(
        server, served_generator, tmp_path):
    # the registry knows no size or hash of it: a file of its name there (a note of the
    # user's) was recorded as the installed model, unread, and nothing was downloaded
    from editor.core.model_files import identify_model_file

    gen, _sha = served_generator
    entry = make_entry(server.url("versioned"), sha=None, size=None)
    (tmp_path / "toy.bin").write_text("my notes, not a model")
    with pytest.raises(ZooDownloadError, match=r"toy.bin is there already and is not "
                                               r"toy-model \(.*\); move it away"):
        zoo.download(entry, tmp_path, identify=identify_model_file)
    assert (tmp_path / "toy.bin").read_text() == "my notes, not a model"  # not replaced
    assert zoo.installed() == []
    assert zoo.download(entry, tmp_path, identify=identify_model_file,
                        force=True).path.read_bytes() == gen  # asked: replaced
    # the model itself there (an install whose record was lost) is read and kept
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "toy.bin").write_bytes(gen)
    asked = len(server.requests)
    model = zoo.download(entry, tmp_path / "again", identify=identify_model_file)
    assert model.path == tmp_path / "again" / "toy.bin" and len(server.requests) == asked


def test_a_refused_download_names_the_file_not_its_part(server):
    # "toy.bin.part is not a model file": the part is the download's own business.
    def not_a_model(path, _arch, _stopped):
        raise AtelierError(f"{path} is not a model file ({path.name} holds no tensors)")

    entry = make_entry(server.url("ok"))
    with pytest.raises(ZooDownloadError, match=r"not the model \(toy.bin is not a model "
                       r"file \(toy.bin holds no tensors\)\)") as info:
        zoo.download(entry, identify=not_a_model)
    assert ".part" not in str(info.value)


def test_a_downloaded_generator_is_identified_and_installed(server, served_generator):
    from editor.core.model_files import identify_model_file

    gen, _sha = served_generator
    model = zoo.download(make_entry(server.url("versioned"), sha=None, size=None),
                         identify=identify_model_file)
    assert model.path.read_bytes() == gen and zoo.installed_model("toy-model") == model
    clip_entry = zoo.ZooEntry(**{**make_entry("", sha=None, size=None).__dict__,
                                 "name": "toy-clip", "kind": "clip", "format": "open_clip",
                                 "url": server.url("versioned"), "arch": "x", "tag": "y"})
    # the entry's architecture is checked, and a generator is no CLIP weights of it
    with pytest.raises(ZooDownloadError, match="is a StyleGAN2 generator, not CLIP weights "
                       "of x"):
        zoo.download(clip_entry, identify=identify_model_file)
    assert zoo.installed_model("toy-clip") is None


def test_an_empty_answer_is_one_clear_error(server):
    entry = make_entry(server.url("empty"), sha=None, size=None)
    with pytest.raises(ZooDownloadError, match="sent an empty file for toy-model; nothing"):
        zoo.download(entry)
    assert leftovers(zoo.models_dir()) == []


def test_a_download_that_does_not_fit_is_refused_before_writing(server, monkeypatch):
    free = len(DATA) - 1
    monkeypatch.setattr(zoo.shutil, "disk_usage", lambda p: shutil_usage(free))
    with pytest.raises(ZooDownloadError, match=r"not enough free space for toy-model.*"
                       r"needs 204.8 kB more, 204.8 kB is free"):
        zoo.download(make_entry(server.url("ok"), size=None))  # the server says the size
    assert leftovers(zoo.models_dir()) == []


def shutil_usage(free: int):
    import shutil

    return shutil._ntuple_diskusage(10**12, 10**12 - free, free)


def test_a_full_disk_during_the_download_keeps_the_part_and_says_so(server, monkeypatch):
    import errno

    real_lock = zoo._PartFile._lock

    class FullDisk:  # the part file, on a disk that fills after 2 writes
        def __init__(self, real):
            self.real, self.writes = real, 0

        def __getattr__(self, name):
            return getattr(self.real, name)

        def write(self, data):
            self.writes += 1
            if self.writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.real.write(data)

    def lock(self):
        real_lock(self)
        self.file = FullDisk(self.file)

    monkeypatch.setattr(zoo._PartFile, "_lock", lock)
    entry = make_entry(server.url("ok"))
    with pytest.raises(ZooDownloadError, match=r"the disk is full.*kept in .*toy.bin.part\. "
                       "Free some space and run the download again to resume") as info:
        zoo.download(entry)
    assert "\n" not in str(info.value)
    assert 0 < zoo.part_path(entry).stat().st_size < len(DATA)


def test_file_system_errors_are_one_line_in_the_cli(server, capsys, tmp_path):
    write_user_registry([raw_entry(server.url("ok")),
                         raw_entry(server.url("ok"), name="long-name", filename="x" * 300)])
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    assert _run(["models", "download", "toy-model", "--dir", str(a_file)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"atelier models: error: cannot save toy-model in {a_file}: it is a file, " \
                  "not a folder"
    assert _run(["models", "download", "long-name"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("atelier models: error: cannot save long-name (")
    assert "file name too long" in err
    assert not (zoo.models_dir() / "long-name").exists()


def test_http_404_names_status_and_import(server):
    with pytest.raises(ZooDownloadError, match=r"HTTP 404.*atelier models import"):
        zoo.download(make_entry(server.url("missing")))


def test_server_size_disagreeing_with_registry_fails_early(server):
    entry = make_entry(server.url("ok"), sha=None, size=len(DATA) + 1)
    with pytest.raises(ZooDownloadError, match="has changed"):
        zoo.download(entry)
    assert not zoo.part_path(entry).exists()



@pytest.mark.parametrize("mode, says", [
    ("htmloctet", r"sent a web page labelled as a file instead of toy.bin"),
    ("gzip", r"sent toy.bin compressed \(Content-Encoding: gzip\)"),
    ("gzipped", r"sent toy.bin gzip-compressed \(\d+ bytes, the file has 204800\)"),
])
@pytest.mark.parametrize("size", [len(DATA), None])
def test_what_the_server_sent_is_named_before_sizes_are_compared(server, mode, says, size):
    # These were "the server offers N bytes ... the file has changed".
    entry = make_entry(server.url(mode), size=size)
    if mode == "gzipped" and size is None:  # without a size to explain, the hash does
        says = "checksum mismatch"
    with pytest.raises(ZooDownloadError, match=says) as info:
        zoo.download(entry)
    assert "has changed" not in str(info.value) or mode == "gzipped"
    assert leftovers(zoo.models_dir()) == []


def test_second_download_reuses_the_file(server):
    entry = make_entry(server.url("ok"))
    zoo.download(entry)
    n = len(server.requests)
    assert zoo.download(entry).verified
    assert len(server.requests) == n


def test_wrong_existing_file_is_downloaded_again(server):
    entry = make_entry(server.url("ok"), size=None)
    final = zoo.target_path(entry)
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"not the model")
    assert zoo.download(entry).path.read_bytes() == DATA


def test_a_damaged_installed_file_is_downloaded_again(server):
    # The registry knows neither size nor hash: the size recorded at install decides.
    entry = make_entry(server.url("ok"), sha=None, size=None)
    path = zoo.download(entry).path
    path.write_bytes(DATA[:1000])  # truncated since
    n = len(server.requests)
    model = zoo.download(entry)
    assert model.path.read_bytes() == DATA and model.sha256 == SHA
    assert len(server.requests) == n + 1


# --------------------------------------------------------------------------- import


def test_import_recognises_a_registry_file_by_hash(tmp_path):
    write_user_registry([raw_entry("https://h/toy.bin")])
    src = tmp_path / "whatever-name.bin"
    src.write_bytes(DATA)
    model = zoo.import_file(src)
    assert model.name == "toy-model" and model.entry == "toy-model" and model.verified
    assert model.path == zoo.models_dir() / "toy-model" / "toy.bin"
    assert model.path.read_bytes() == DATA and src.exists()
    assert leftovers(model.path.parent) == ["toy.bin"]
    assert zoo.import_file(src).path == model.path  # importing twice is harmless


def test_import_unknown_file_keeps_its_name_unverified(tmp_path):
    src = tmp_path / "My Model.pkl"
    src.write_bytes(b"weights" * 100)
    model = zoo.import_file(src)
    assert model.name == "my-model" and model.entry is None and not model.verified
    assert model.path.name == "My Model.pkl"
    assert model.sha256 == hashlib.sha256(b"weights" * 100).hexdigest()
    assert [m.name for m in zoo.installed()] == ["my-model"]


def test_an_import_whose_index_cannot_be_written_leaves_no_unlisted_copy(
        tmp_path, monkeypatch, capsys):
    # A full disk after the copy: `models import` ended in a traceback, and the copy
    # stayed in the model cache, listed nowhere.
    import errno

    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_generator

    src = save_generator(make_tiny_generator(), tmp_path / "My Model.safetensors")

    def full(_models):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zoo, "_write_index", full)
    assert _run(["models", "import", str(src)]) == 1
    err = capsys.readouterr().err
    assert "cannot record my-model in the model index (No space left on device)" in err
    assert "Traceback" not in err and zoo.installed() == []
    assert not (zoo.models_dir() / "my-model").exists()


def test_a_cancelled_repair_of_an_installed_model_keeps_it_listed(tmp_path):
    # Re-importing a model whose file was damaged, cancelled after the copy: the listed
    # model's file was deleted ("nothing was installed") and it vanished from the list.
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    model = zoo.import_file(src, name="mine")
    model.path.write_bytes(b"damaged")

    def cancel_after_the_copy():  # the copy is renamed into place only once it is whole
        return model.path.read_bytes() == src.read_bytes()

    with pytest.raises(zoo.ImportCancelled):
        zoo.import_file(src, name="mine", cancel=cancel_after_the_copy)
    assert [m.name for m in zoo.installed()] == ["mine"]
    assert model.path.read_bytes() == src.read_bytes()  # repaired, as the copy was made


def test_an_import_reports_progress_and_stops_within_a_chunk(tmp_path, monkeypatch):
    # A large file's hash and copy took seconds to a minute with no progress, and a cancel
    # was seen only between them (4.8 s for a 5 GB file).
    monkeypatch.setattr(zoo, "CHUNK_SIZE", 1000)
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: 11 chunks a pass
    seen: list[tuple[int, int]] = []
    model = zoo.import_file(src, progress=lambda done, total: seen.append((done, total)))
    assert model.path.read_bytes() == src.read_bytes()
    assert len(seen) == 23 and seen[-1] == (2 * 10_240, 2 * 10_240)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # the hash, then the copy
    assert {t for _, t in seen} == {2 * 10_240}

    for stop_at in (3, 14):  # during the hash, during the copy
        reports: list[int] = []
        other = tmp_path / f"other{stop_at}.bin"
        other.write_bytes(bytes(range(255, -1, -1)) * 40)
        with pytest.raises(zoo.ImportCancelled, match="nothing was installed"):
            zoo.import_file(other, progress=lambda d, _t, r=reports: r.append(d),
                            cancel=lambda r=reports, n=stop_at: len(r) >= n)
        assert len(reports) == stop_at  # not one chunk more
    assert [m.name for m in zoo.installed()] == ["big"]
    assert not any(p.name.startswith("other") for p in zoo.models_dir().iterdir())
    assert [p.name for p in (zoo.models_dir() / "big").iterdir()] == ["big.bin"]


def test_import_matches_hashless_entry_by_file_name(tmp_path):
    src = tmp_path / "stylegan2-ffhq-config-f.pt"
    src.write_bytes(b"pretend rosinality checkpoint")
    model = zoo.import_file(src)
    assert model.entry == "ffhq-1024-rosinality" and not model.verified
    assert model.format == "rosinality-pt"


def test_a_file_of_a_hashless_entrys_name_never_replaces_the_model_installed_as_it(
        tmp_path):
    # the registry knows no hash of most generators (ffhq.pkl, ...): a fine-tune that kept
    # the file name, imported without a name or with the entry's, silently replaced the
    # intact model installed as that entry (helper-122)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "stylegan2-ffhq-config-f.pt"
    tuned = tmp_path / "b" / "stylegan2-ffhq-config-f.pt"
    first.write_bytes(b"pretend rosinality checkpoint")
    tuned.write_bytes(b"pretend fine-tuned rosinality checkpoint")
    installed = zoo.import_file(first)
    assert installed.entry == "ffhq-1024-rosinality"
    other = zoo.import_file(tuned)  # matched by its name only: a model of its own
    assert (other.name, other.entry) == ("stylegan2-ffhq-config-f", None)
    with pytest.raises(zoo.ZooImportError, match="a different file is installed as "
                                                 "'ffhq-1024-rosinality'"):
        zoo.import_file(tuned, name="ffhq-1024-rosinality")
    assert installed.path.read_bytes() == b"pretend rosinality checkpoint"
    assert other.path.read_bytes() == b"pretend fine-tuned rosinality checkpoint"
    # a damaged install is still repaired by an import of the right file
    installed.path.write_bytes(b"pretend rosinality checkpoinX")
    assert zoo.import_file(first).entry == "ffhq-1024-rosinality"
    assert installed.path.read_bytes() == b"pretend rosinality checkpoint"


def test_import_under_a_name_of_ones_own_is_not_taken_for_the_registry_file_of_its_name(
        tmp_path, capsys):
    # A fine-tune that kept the registry's file name, imported with --name, was recorded
    # as that registry model (listed under its name, "installed (not verified)"), and the
    # given name was shown nowhere.
    src = tmp_path / "stylegan2-ffhq-config-f.pt"
    src.write_bytes(b"pretend fine-tuned rosinality checkpoint")
    model = zoo.import_file(src, name="my-anime-ffhq")
    assert (model.name, model.entry, model.format) == ("my-anime-ffhq", None, None)
    assert _run(["models", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["ffhq-1024-rosinality", "generator", "?", "no"] == \
        next(r for r in rows if r and r[0] == "ffhq-1024-rosinality")[:4]
    assert any(r and r[0] == "my-anime-ffhq" for r in rows)


def test_import_with_registry_name_checks_the_hash(tmp_path):
    src = tmp_path / "ViT-B-32.pt"
    src.write_bytes(b"not clip")
    with pytest.raises(zoo.ZooImportError, match="is not clip-vit-b-32-openai"):
        zoo.import_file(src, name="clip-vit-b-32-openai")
    assert zoo.installed() == []


def test_import_with_custom_name_and_errors(tmp_path):
    src = tmp_path / "a.pt"
    src.write_bytes(b"abc")
    assert zoo.import_file(src, name="my-ffhq").name == "my-ffhq"
    with pytest.raises(zoo.ZooImportError, match="no such file"):
        zoo.import_file(tmp_path / "missing.pt")
    with pytest.raises(zoo.ZooImportError, match="not a usable model name"):
        zoo.import_file(src, name="../evil")
    # a name longer than a folder's name may be was a traceback (File name too long)
    with pytest.raises(zoo.ZooImportError, match=r"too long for a model name \(300 "):
        zoo.import_file(src, name="a" * 300)
    assert zoo.import_file(src, name="b" * zoo.MAX_NAME_CHARS).path.is_file()
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(zoo.ZooImportError, match="empty"):
        zoo.import_file(tmp_path / "empty.pt")


def test_installed_skips_missing_files_and_survives_a_corrupt_index(tmp_path):
    src = tmp_path / "m.pt"
    src.write_bytes(b"abc")
    model = zoo.import_file(src)
    model.path.unlink()
    assert zoo.installed() == []
    (zoo.models_dir() / "index.json").write_text("{broken")
    assert zoo.installed() == []


def test_a_damaged_index_is_set_aside_and_its_models_files_are_not_written_over(tmp_path):
    # A damaged index.json read as empty: the next import took the name 'tiny' again and
    # wrote over the installed model's file, and the old records were overwritten.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "tiny.bin", tmp_path / "b" / "tiny.bin"
    first.write_bytes(b"the first model")
    second.write_bytes(b"another model")
    installed = zoo.import_file(first)
    index = zoo.models_dir() / "index.json"
    damaged = index.read_text()[:20]
    index.write_text(damaged)
    assert zoo.installed() == []
    assert (zoo.models_dir() / "index.json.bad").read_text() == damaged  # kept to mend
    again = zoo.import_file(second)
    assert again.name == "tiny-2" and installed.path.read_bytes() == b"the first model"
    with pytest.raises(zoo.ZooImportError, match="already installed as 'tiny'"):
        zoo.import_file(second, name="tiny")
    # damaged again: set aside beside the first, which it overwrote (its records were lost)
    index.write_text("{ again")
    assert zoo.installed() == []
    assert (zoo.models_dir() / "index.json.bad").read_text() == damaged
    assert (zoo.models_dir() / "index.json.bad-2").read_text() == "{ again"


def test_a_damaged_index_read_while_another_program_mends_it_keeps_that_ones_record(
        tmp_path, monkeypatch):
    # A program that only lists the models (the window) read the damaged index, another
    # (an import in the CLI) set it aside and wrote a new one, then the first set aside
    # what it took for the damaged one: the new index, with the import's record, was
    # gone, and the damaged one to mend was overwritten by it
    src = tmp_path / "tiny.bin"
    src.write_bytes(b"a model")
    index = zoo.models_dir() / "index.json"
    index.write_text('{"version": 1, "models": {"ol')
    script = ("import sys\nfrom editor.core import zoo\n"
              "zoo.import_file(sys.argv[1], name='fresh')\n")
    root = Path(__file__).resolve().parents[1]
    real_read = Path.read_text

    def read_then_other_program_imports(self, *args, **kwargs):
        text = real_read(self, *args, **kwargs)
        if self == index and "fresh" not in text:
            # the other program, which waits while this one holds the index
            other = subprocess.Popen([sys.executable, "-c", script, str(src)], cwd=root,
                                     stderr=subprocess.PIPE, text=True)
            try:
                other.wait(timeout=6)
            except subprocess.TimeoutExpired:
                pass  # waiting for this one's lock: it records once this one is done
            monkeypatch.setattr(Path, "read_text", real_read)
            read_then_other_program_imports.other = other
        return text

    monkeypatch.setattr(Path, "read_text", read_then_other_program_imports)
    assert zoo.installed() == []
    other = read_then_other_program_imports.other
    assert other.wait(timeout=120) == 0, other.stderr.read()
    assert [m.name for m in zoo.installed()] == ["fresh"]
    assert (zoo.models_dir() / "index.json.bad").read_text().startswith('{"version": 1')


def test_programs_recording_at_once_keep_every_record():
    # Two programs (the window and the CLI, say) recording models at the same time: each
    # read-modify-write of the index must see the other's records.
    import subprocess

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from editor.core import zoo\n"
        "for i in range(25):\n"
        "    zoo._record(zoo.InstalledModel(f'{sys.argv[1]}-{i}', Path('/x'), '0' * 64, 1,"
        " False, None, None, None, '', ''))\n"
    )
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], cwd=root)
             for tag in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    index = json.loads((zoo.models_dir() / "index.json").read_text())
    assert len(index["models"]) == 75


# ---------------------------------------------------------------------------- paths


def test_cache_and_config_dirs_follow_env_and_are_created(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "c" / "deep"))
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(tmp_path / "k"))
    assert paths.cache_dir() == tmp_path / "c" / "deep" and paths.cache_dir().is_dir()
    assert paths.config_dir() == tmp_path / "k" and paths.config_dir().is_dir()


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "f.json"
    paths.atomic_write_bytes(target, b"one")
    paths.atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert leftovers(target.parent) == ["f.json"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_atomic_write_into_a_pipe_writes_into_it_and_keeps_it(tmp_path):
    # a file renamed over a device or a pipe replaced it (`--json /dev/stdout` with
    # stdout on /dev/null made /dev/null a plain file, as root); its reader got nothing
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with reading_fifo(fifo) as got:
        paths.atomic_write_text(fifo, "data")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and leftovers(tmp_path) == ["pipe"]
    assert got == [b"data"]


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="no /dev/fd")
def test_atomic_write_to_a_name_of_an_open_descriptor_writes_through_it(tmp_path):
    # `atelier discover --json /dev/stdout >> log`: the log was replaced by the JSON (its
    # earlier lines lost, the table printed after it written to the replaced file), and
    # without --overwrite the name was refused as a file that exists
    from editor.cli.outputs import refuse_existing

    log = tmp_path / "log"
    log.write_bytes(b"earlier\n")
    inode = log.stat().st_ino
    with open(log, "ab") as f:
        name = f"/dev/fd/{f.fileno()}"
        refuse_existing(Path(name), overwrite=False)
        paths.atomic_write_text(name, "json\n")
        f.write(b"table\n")
    assert log.read_bytes() == b"earlier\njson\ntable\n" and log.stat().st_ino == inode
    assert leftovers(tmp_path) == ["log"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_failure_keeps_old_file_and_removes_temp(tmp_path, exc):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(exc), paths.atomic_path(target) as tmp:
        tmp.write_bytes(b"half written")
        raise exc()
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["f.bin"]


def test_atomic_path_failure_creates_nothing(tmp_path):
    with pytest.raises(OSError), paths.atomic_path(tmp_path / "new.bin") as tmp:
        tmp.write_bytes(b"x")
        raise OSError("disk full")
    assert leftovers(tmp_path) == []


def test_a_failed_write_removes_the_folders_it_made_but_not_others(tmp_path):
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("mine")
    with pytest.raises(OSError), paths.atomic_path(tmp_path / "kept" / "a" / "b" / "f") as tmp:
        tmp.write_bytes(b"x")
        raise OSError("disk full")
    assert leftovers(tmp_path) == ["kept"] and leftovers(tmp_path / "kept") == ["mine.txt"]
    # a folder something else wrote into meanwhile stays
    with pytest.raises(OSError), paths.atomic_path(tmp_path / "new" / "f") as tmp:
        (tmp_path / "new" / "other.txt").write_text("other")
        raise OSError("disk full")
    assert leftovers(tmp_path / "new") == ["other.txt"]


def test_atomic_path_when_writer_replaces_the_temp_file(tmp_path):
    target = tmp_path / "f.bin"
    with paths.atomic_path(target) as tmp:
        tmp.unlink()  # libraries that write by path may recreate the file
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and leftovers(tmp_path) == ["f.bin"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        fresh = paths.atomic_write_bytes(tmp_path / "fresh", b"x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept"
        kept.write_bytes(b"x")
        kept.chmod(0o600)
        paths.atomic_write_bytes(kept, b"y")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        # a library that writes its own private file in the temporary one's place (as
        # safetensors' save_file does): every cache file came out 0600 whatever the umask
        private = tmp_path / "private"
        with paths.atomic_path(private) as tmp:
            tmp.unlink()
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))
        assert stat.S_IMODE(private.stat().st_mode) == 0o644
    finally:
        os.umask(umask)


# ------------------------------------------------------------------------------ CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atelier")
    cli_models.register(parser.add_subparsers())
    return parser.parse_args(argv)


def _run(argv: list[str]) -> int:
    args = _parse(argv)
    return args.func(args)


def test_an_installed_model_can_be_removed(tmp_path, capsys, server):
    # there was no way to delete an installed model but by hand in the cache folder
    src = tmp_path / "mine.pt"
    src.write_bytes(b"my weights")
    model = zoo.import_file(src)
    kept = zoo.import_file(tmp_path / "mine.pt", name="other")
    assert _run(["models", "remove", "MINE"]) == 0
    assert "deleted" in capsys.readouterr().err
    assert not model.path.exists() and not model.path.parent.exists()
    assert [m.name for m in zoo.installed()] == ["other"] and kept.path.is_file()
    assert src.read_bytes() == b"my weights"  # the user's own file is never touched
    assert _run(["models", "remove", "mine"]) == 1
    err = capsys.readouterr().err
    assert "no installed model is called 'mine' (installed: other)" in err
    assert "Traceback" not in err

    # a download into a folder of the user's is forgotten, its file left there
    outside = tmp_path / "downloads"
    downloaded = zoo.download(make_entry(server.url("ok")), dest_dir=outside)
    removed = zoo.remove("toy-model")
    assert not removed.file_deleted and downloaded.path.read_bytes() == DATA
    assert zoo.installed_model("toy-model") is None


def test_removing_a_record_that_names_another_file_in_the_cache_deletes_only_the_record(
        tmp_path, capsys):
    # an index edited by hand to point a model at the index itself: `models remove` deleted
    # index.json, and with it every other model's record
    src = tmp_path / "mine.pt"
    src.write_bytes(b"my weights")
    kept = zoo.import_file(src)
    other = zoo.import_file(src, name="other")
    index = zoo.models_dir() / zoo.INDEX_NAME
    records = json.loads(index.read_text(encoding="utf-8"))
    records["models"]["odd"] = dict(records["models"]["other"], path=zoo.INDEX_NAME)
    records["models"]["twin"] = dict(records["models"]["other"], path="mine/mine.pt")
    index.write_text(json.dumps(records), encoding="utf-8")
    for name in ("odd", "twin"):
        assert _run(["models", "remove", name]) == 0
        assert "is left where it is" in capsys.readouterr().err
    assert index.is_file() and kept.path.read_bytes() == b"my weights"
    assert [m.name for m in zoo.installed()] == ["mine", "other"]
    assert zoo.remove("other").file_deleted and not other.path.exists()  # its own: deleted


def test_removing_from_a_cache_that_cannot_be_written_says_so(tmp_path, capsys, monkeypatch):
    # a read-only cache: a traceback from atelier models remove, and in the window a box
    # naming the index's temporary file
    import errno

    src = tmp_path / "mine.pt"
    src.write_bytes(b"my weights")
    model = zoo.import_file(src)

    def read_only(*args):
        raise OSError(errno.EROFS, "Read-only file system", str(zoo.models_dir() / ".x.tmp"))

    monkeypatch.setattr(zoo, "_write_index", read_only)
    assert _run(["models", "remove", "mine"]) == 1
    err = capsys.readouterr().err
    assert f"cannot remove mine: the model index in {zoo.models_dir()} cannot be written " \
        "(Read-only file system); nothing was removed" in err
    assert "Traceback" not in err and ".tmp" not in err
    assert zoo.installed_model("mine") is not None and model.path.is_file()


def test_an_import_ended_leaves_its_name_claims_empty(tmp_path):
    # each claim file kept the sha256 of the import that had ended, for a reader to take
    # as the file a running import writes
    src = tmp_path / "mine.pt"
    src.write_bytes(b"my weights")
    zoo.import_file(src)
    with pytest.raises(zoo.ZooImportError):
        zoo.import_file(tmp_path / "missing.pt")
    claims = list((zoo.models_dir() / zoo.CLAIMS_DIR).glob("*.lock"))
    assert claims and all(c.stat().st_size == 0 for c in claims)


def test_cli_list_shows_the_zoo(capsys, tmp_path):
    src = tmp_path / "custom.pt"
    src.write_bytes(b"abc")
    zoo.import_file(src)
    assert _run(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SIZE", "INSTALLED", "LICENCE"]
    row = next(line for line in lines if line.startswith("clip-vit-b-32-openai"))
    assert "clip" in row and "354.0 MB" in row and " no " in row and "MIT" in row
    assert any(line.startswith("custom") and "imported" in line for line in lines)
    assert str(zoo.models_dir()) in out


def test_cli_list_shows_partial_and_unverified(capsys, tmp_path):
    write_user_registry([raw_entry("https://h/toy.bin")])
    part = zoo.part_path(zoo.get_entry("toy-model"))
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[: len(DATA) // 4])
    src = tmp_path / "stylegan2-ffhq-config-f.pt"
    src.write_bytes(b"abc")
    zoo.import_file(src)
    assert _run(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"toy-model .* partial 25%", out)
    assert re.search(r"ffhq-1024-rosinality .* yes \(unverified\)", out)


@pytest.fixture
def served_generator(server, tmp_path) -> tuple[bytes, str]:
    """A tiny generator file the server offers in versioned mode: (its bytes, sha256)."""
    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_generator

    gen = save_generator(make_tiny_generator(), tmp_path / "g.safetensors").read_bytes()
    server.publish(gen, '"g"')
    return gen, hashlib.sha256(gen).hexdigest()


def test_cli_download_with_progress(server, served_generator, capsys):
    gen, sha = served_generator
    write_user_registry([raw_entry(server.url("versioned"), size=len(gen), sha256=sha)])
    assert _run(["models", "download", "toy-model"]) == 0
    err = capsys.readouterr().err
    assert "100.0%" in err and "MB/s" in err and "sha256 verified" in err


def test_cli_download_unverified_says_so(server, served_generator, capsys):
    gen, sha = served_generator
    write_user_registry([raw_entry(server.url("versioned"), size=len(gen), sha256=None)])
    assert _run(["models", "download", "toy-model"]) == 0
    err = capsys.readouterr().err
    assert "Not verified" in err and sha in err



def test_cli_download_unverified_says_so_once(server, served_generator, capsys, caplog):
    # The CLI's last line says it; a logged warning said it a second time above.
    gen, sha = served_generator
    write_user_registry([raw_entry(server.url("versioned"), size=len(gen), sha256=None)])
    with caplog.at_level(logging.INFO, logger="editor.core.zoo"):
        assert _run(["models", "download", "toy-model"]) == 0
    err = capsys.readouterr().err
    assert err.lower().count("not verified") == 1 and sha in err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cli_force_repairs_a_damage_that_kept_the_size(server, served_generator, capsys):
    gen, sha = served_generator
    write_user_registry([raw_entry(server.url("versioned"), size=None, sha256=None)])
    assert _run(["models", "download", "toy-model"]) == 0
    path = zoo.installed_model("toy-model").path
    path.write_bytes(b"\0" * len(gen))  # same size: only --force can tell
    n = len(server.requests)
    assert _run(["models", "download", "toy-model"]) == 0
    assert len(server.requests) == n and path.read_bytes() != gen
    assert _run(["models", "download", "toy-model", "--force"]) == 0
    assert len(server.requests) == n + 1 and path.read_bytes() == gen
    assert zoo.installed_model("toy-model").sha256 == sha


def test_cli_errors_are_one_line(capsys):
    assert _run(["models", "download", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("atelier models: error: unknown model") and err.count("\n") == 1
    assert "Traceback" not in err


def test_cli_offline_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_user_registry([raw_entry(f"http://127.0.0.1:{port}/toy.bin")])
    assert _run(["models", "download", "toy-model"]) == 1
    err = capsys.readouterr().err
    assert "offline" in err and "atelier models import" in err and "Traceback" not in err


def _interrupted_download(server, monkeypatch, after_bytes: bool) -> int:
    """`models download toy-model` with Ctrl-C at its first progress (after bytes came,
    or before any); its exit status."""
    write_user_registry([raw_entry(server.url("ok"))])

    def interrupt(self, done, total):
        if done > 0 or not after_bytes:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_models.ProgressBar, "__call__", interrupt)
    return _run(["models", "download", "toy-model"])


def test_cli_ctrl_c_keeps_the_part(server, capsys, monkeypatch):
    assert _interrupted_download(server, monkeypatch, after_bytes=True) == 130
    err = capsys.readouterr().err
    part = zoo.part_path(zoo.get_entry("toy-model"))
    assert part.is_file() and str(part) in err and "resume" in err


def test_cli_ctrl_c_before_any_byte_does_not_offer_to_resume(server, capsys, monkeypatch):
    # "interrupted; nothing kept. Run … again to resume" contradicted itself
    assert _interrupted_download(server, monkeypatch, after_bytes=False) == 130
    err = capsys.readouterr().err
    assert not zoo.part_path(zoo.get_entry("toy-model")).exists()  # stopped at its start
    assert "nothing was downloaded yet" in err and "resume" not in err


def test_a_stopped_downloads_part_can_be_removed(server, capsys, monkeypatch):
    # "no installed model is called 'toy-model'": the kept part could only go by hand
    assert _interrupted_download(server, monkeypatch, after_bytes=True) == 130
    part = zoo.part_path(zoo.get_entry("toy-model"))
    assert part.is_file()
    capsys.readouterr()
    with zoo._PartFile(part, zoo.get_entry("toy-model")):  # a download writing it
        assert _run(["models", "remove", "toy-model"]) == 1
        assert "already being downloaded" in capsys.readouterr().err and part.is_file()
    assert _run(["models", "remove", "toy-model"]) == 0
    assert "Deleted the partial download of toy-model" in capsys.readouterr().err
    assert not part.exists() and not part.parent.exists()
    assert _run(["models", "remove", "toy-model"]) == 1  # nothing left
    assert "no installed model is called 'toy-model'" in capsys.readouterr().err


def test_cli_import(capsys, tmp_path):
    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_generator

    src = save_generator(make_tiny_generator(), tmp_path / "x.safetensors")
    assert _run(["models", "import", str(src), "--name", "mine"]) == 0
    assert "not verified" in capsys.readouterr().err
    assert zoo.installed_model("mine").kind == "generator"
    assert _run(["models", "import", str(tmp_path / "nope.pt")]) == 1
    assert "no such file" in capsys.readouterr().err
    # a file the editor cannot open is refused and nothing is copied or recorded
    text = tmp_path / "notes.pt"
    text.write_bytes(b"abc")
    assert _run(["models", "import", str(text)]) == 1
    assert "not a model file" in capsys.readouterr().err
    assert [m.name for m in zoo.installed()] == ["mine"]
    assert not (zoo.models_dir() / "notes").exists()


def test_cli_models_without_action_prints_help(capsys):
    assert _run(["models"]) == 2
    assert "list" in capsys.readouterr().err


def test_progress_bar_text():
    bar = cli_models.ProgressBar("m")
    bar._first = (0.0, 0)
    text = bar.render(50_000_000, 100_000_000, 10.0)
    assert "50.0%" in text and "50.0/100.0 MB" in text and "5.0 MB/s" in text
    assert "ETA 0:10" in text
    assert "MB/s" in bar.render(3_000_000, None, 1.0)


def test_errors_are_atelier_errors():
    assert issubclass(zoo.DownloadCancelled, ZooDownloadError)
    assert issubclass(zoo.ZooImportError, ZooDownloadError)
    assert issubclass(zoo.UnknownModelError, AtelierError)


def test_import_reads_the_file_first_and_checks_it_against_its_entry(tmp_path):
    from editor.core.checkpoints import save_generator
    from editor.core.model_files import identify_model_file
    from tests.conftest import make_tiny_clip, make_tiny_generator

    gen = save_generator(make_tiny_generator(), tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    assert zoo.import_file(gen, identify=identify_model_file).kind == "generator"
    assert zoo.import_file(clip, identify=identify_model_file).kind == "clip"
    with pytest.raises(zoo.ZooImportError, match="16 px generator, but ffhq-1024"):
        zoo.import_file(gen, name="ffhq-1024-rosinality", identify=identify_model_file)
    with pytest.raises(zoo.ZooImportError, match="it is a clip, but ffhq-1024"):
        zoo.import_file(clip, name="ffhq-1024-rosinality", identify=identify_model_file)
    png = tmp_path / "stylegan2-ffhq-config-f.pt"  # the registry's file name, not its content
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(zoo.ZooImportError, match="not a model file"):
        zoo.import_file(png, identify=identify_model_file)
    assert sorted(m.kind for m in zoo.installed()) == ["clip", "generator"]


def test_a_model_of_ones_own_that_kept_a_registry_file_name_is_imported_as_its_own(
        tmp_path):
    # A 16 px generator saved as stylegan2-ffhq-config-f.pt was taken for the 1024 px
    # registry model by its name alone and refused ("it is a 16 px generator, but
    # ffhq-1024-rosinality is 1024 px"): the window's Import file… has no --name
    from editor.core.checkpoints import save_generator
    from editor.core.model_files import identify_model_file
    from tests.conftest import make_tiny_clip, make_tiny_generator

    (tmp_path / "g").mkdir()
    gen = save_generator(make_tiny_generator(), tmp_path / "g" / "stylegan2-ffhq-config-f.pt")
    model = zoo.import_file(gen, identify=identify_model_file)
    assert (model.name, model.entry, model.kind) == ("stylegan2-ffhq-config-f", None,
                                                    "generator")
    clip = make_tiny_clip().save(tmp_path / "ffhq.pkl")  # a CLIP by a generator's name
    assert zoo.import_file(clip, identify=identify_model_file).entry is None
    # named as the entry, it must be that model
    with pytest.raises(zoo.ZooImportError, match="16 px generator, but ffhq-1024"):
        zoo.import_file(gen, name="ffhq-1024-rosinality", identify=identify_model_file)
    assert sorted(m.name for m in zoo.installed()) == ["ffhq", "stylegan2-ffhq-config-f"]


def test_two_files_of_one_name_imported_at_the_same_moment_both_stay(tmp_path):
    # The name was chosen before the copy, outside any lock: both imports took 'good',
    # copied to the same place, and the second replaced the first, which said "imported".
    files = []
    for folder, content in (("a", b"one" * 10), ("b", b"two" * 10)):
        (tmp_path / folder).mkdir()
        files.append(tmp_path / folder / "good.pt")
        files[-1].write_bytes(content)
    both_reading = threading.Barrier(2, timeout=5)

    def identify(path, _arch, _stopped):  # each import reads its file as the other does
        both_reading.wait()
        return None

    results: dict[int, object] = {}

    def run(i):
        try:
            results[i] = zoo.import_file(files[i], identify=identify)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(r.name for r in results.values()) == ["good", "good-2"], results
    assert {m.path.read_bytes() for m in zoo.installed()} == {b"one" * 10, b"two" * 10}
    # another program writing a name: a name of one's own is refused, not shared
    held = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from editor.core import zoo; "
         "claim = zoo._try_claim('busy', 'f' * 64); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, env=os.environ,
        cwd=Path(__file__).resolve().parents[1])
    try:
        assert held.stdout.readline().strip() == "held"
        with pytest.raises(zoo.ZooImportError, match="another import is writing a model "
                           "named 'busy' right now"):
            zoo.import_file(files[0], name="busy")
        (tmp_path / "busy.pt").write_bytes(b"three")
        assert zoo.import_file(tmp_path / "busy.pt").name == "busy-2"
    finally:
        held.kill()
        held.wait()
    assert zoo.import_file(files[0], name="busy").name == "busy"  # released with its holder


def test_an_import_whose_name_claim_cannot_be_written_goes_on(tmp_path, monkeypatch):
    # a full disk failed the claim's write, and its close flushed again: a traceback
    # (OSError: No space left on device) from `atelier models import`, or with a name of
    # one's own "another import is writing a model named ..." (helper-122)
    import errno
    import io

    class FullDisk(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open = open

    def claims_on_a_full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".lock"):
            return FullDisk(path, "a+")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(zoo, "open", claims_on_a_full_disk, raising=False)
    src = tmp_path / "mine.pt"
    src.write_bytes(b"my model")
    model = zoo.import_file(src, name="mine")
    assert model.name == "mine" and model.path.read_bytes() == b"my model"


def test_a_model_can_be_removed_from_a_full_disk(tmp_path, monkeypatch):
    # the index was written (a new temporary file) before the model was deleted: on a
    # full disk, when models are removed most, "nothing was removed" (helper-122)
    import errno

    src = tmp_path / "big.pt"
    src.write_bytes(b"a big model")
    model = zoo.import_file(src)
    write, calls = zoo._write_index, []

    def full_until_a_file_goes(models):
        calls.append(model.path.exists())
        if model.path.exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        write(models)

    monkeypatch.setattr(zoo, "_write_index", full_until_a_file_goes)
    removed = zoo.remove("big")
    assert removed.file_deleted and not model.path.exists() and calls == [True, False]
    assert zoo.installed() == []


def test_import_never_replaces_a_different_file_of_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "good.pt", tmp_path / "b" / "good.pt"
    first.write_bytes(b"one" * 10)
    second.write_bytes(b"two" * 10)
    one, two = zoo.import_file(first), zoo.import_file(second)
    assert (one.name, two.name) == ("good", "good-2")
    assert one.path.read_bytes() == b"one" * 10 and two.path.read_bytes() == b"two" * 10
    assert zoo.import_file(second).name == "good-2"  # the same file again: the same entry
    with pytest.raises(zoo.ZooImportError, match="already installed as 'good'"):
        zoo.import_file(second, name="good")
    with pytest.raises(zoo.ZooImportError, match="it is a folder"):
        zoo.import_file(tmp_path / "a")
    accents = tmp_path / "génératéur 模型.pt"
    accents.write_bytes(b"three")
    assert zoo.import_file(accents).name == "generateur"
    other_script = tmp_path / "模型.pt"
    other_script.write_bytes(b"four")
    assert zoo.import_file(other_script).name.startswith("model-")


def test_cli_output_to_a_reader_that_went_away_ends_quietly():
    # `atelier models list | head`: the reader closes the pipe before the listing is
    # written; the command stops with status 1 and no traceback or "Exception ignored".
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "editor", "models", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1])
    proc.stdout.close()  # before the program has even started
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err
    assert err == ""


def test_a_redirect_from_https_to_plain_http_is_refused(monkeypatch):
    # The built-in models publish no checksum: TLS is all that vouches for them, and the
    # default redirect handling followed https -> http.
    import email
    import io
    import urllib.response

    seen = []

    class TlsServer(urllib.request.BaseHandler):
        """Answers https requests: /moved redirects to the URL after '?to='."""

        handler_order = 100  # before urllib's own, which would go to the network

        def https_open(self, req):
            seen.append(req.full_url)
            if "?to=" not in req.full_url:
                raise urllib.error.URLError("stop here")
            target = req.full_url.split("?to=", 1)[1]
            headers = email.message_from_string(f"Location: {target}\r\n\r\n")
            response = urllib.response.addinfourl(io.BytesIO(b""), headers, req.full_url, 302)
            response.msg = "Found"
            return response

    monkeypatch.setattr(zoo, "_OPENER", urllib.request.build_opener(
        zoo._NoDowngradeRedirects, TlsServer))
    entry = make_entry("https://h/moved?to=http://evil.example/toy.bin")
    with pytest.raises(ZooDownloadError, match="from https to an insecure address "
                                               r"\(http://evil.example/toy.bin\); refused"):
        zoo.download(entry)
    assert seen == ["https://h/moved?to=http://evil.example/toy.bin"]
    assert not zoo.part_path(entry).exists()
    seen.clear()  # https -> https is followed as before
    with pytest.raises(ZooDownloadError):
        zoo.download(make_entry("https://h/moved?to=https://mirror.example/toy.bin"))
    assert seen[:2] == ["https://h/moved?to=https://mirror.example/toy.bin",
                        "https://mirror.example/toy.bin"]
    # nor, from http either, to anything but http(s): an ftp hop was followed, and its
    # failure said "we seem to be offline" (helper-122)
    TlsServer.http_open = TlsServer.https_open
    monkeypatch.setattr(zoo, "_OPENER", urllib.request.build_opener(
        zoo._NoDowngradeRedirects, TlsServer))
    seen.clear()
    with pytest.raises(ZooDownloadError, match="to an address that is not a web address "
                                               r"\(ftp://h/toy.bin\); refused"):
        zoo.download(make_entry("http://h/moved?to=ftp://h/toy.bin"))
    assert seen == ["http://h/moved?to=ftp://h/toy.bin"]


def test_an_import_never_takes_the_index_place(tmp_path):
    # a file called index.json.pt was imported under the name 'index.json', a folder that
    # would take the index file's place
    src = tmp_path / "index.json.pt"
    src.write_bytes(b"weights")
    assert zoo.import_file(src).name == "index.json-imported"
    assert zoo.installed_model("index.json-imported") is not None
    for name in ("index.json", "INDEX.lock"):
        with pytest.raises(zoo.ZooImportError, match="reserved for the model index"):
            zoo.import_file(src, name=name)


def test_a_clip_installed_through_the_zoo_serves_its_arch_and_tag(tmp_path):
    # 'models download clip-vit-b-32-openai' put ViT-B-32.pt into the model cache, but
    # opening ViT-B-32/openai (a real generator's default CLIP, --clip-arch/--clip-pretrained)
    # looked only in open_clip's caches and said the weights were not available.
    from editor.core.clip_model import ClipModel
    from editor.core.errors import ClipError

    assert zoo.installed_clip_weights("ViT-B-32", "openai") is None
    path = zoo.models_dir() / "clip-vit-b-32-openai" / "ViT-B-32.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really the weights")
    zoo._record(zoo.InstalledModel(
        name="clip-vit-b-32-openai", path=path, sha256="0" * 64, size=path.stat().st_size,
        verified=False, entry="clip-vit-b-32-openai", kind="clip", format="open_clip",
        source="test", added="2026-12-06T00:00:00+00:00"))
    assert zoo.installed_clip_weights("ViT-B-32", "openai") == path
    assert zoo.installed_clip_weights("ViT-B-16", "openai") is None
    # the loader reads that file (here: refuses it as damaged, naming it)
    with pytest.raises(ClipError) as info:
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path / "empty")
    assert "ViT-B-32.pt" in str(info.value) and "not available locally" not in str(info.value)


def test_atomic_path_removes_temporary_files_a_killed_writer_left(tmp_path):
    # A SIGKILL while a cache entry was written left ".NAME.xxxx.tmp" for good; one a
    # writer is still filling is recent and must stay.
    import time

    target = tmp_path / "entry.safetensors"
    stale = tmp_path / ".entry.safetensors.0badcafe.tmp"
    fresh = tmp_path / ".entry.safetensors.1234abcd.tmp"
    other = tmp_path / ".other.safetensors.0badcafe.tmp"
    for f in (stale, fresh, other):
        f.write_bytes(b"partial")
    day_old = time.time() - paths.STALE_TEMP_S - 60
    for f in (stale, other):
        os.utime(f, (day_old, day_old))
    paths.atomic_write_bytes(target, b"done")
    assert target.read_bytes() == b"done"
    assert not stale.exists() and fresh.exists() and other.exists()


def test_the_cache_sweep_removes_every_stale_temporary_file_and_nothing_else(tmp_path):
    # A killed write's temporary file stayed until the same target was written again, and
    # a pack computed once (never again) kept its ".…tmp" of hundreds of MB for good.
    import time

    day_old = time.time() - paths.STALE_TEMP_S - 60
    deep = tmp_path / "packs" / "relevance"
    deep.mkdir(parents=True)
    stale = [deep / ".abc.safetensors.0badcafe.tmp", tmp_path / ".index.json.12345678.tmp"]
    kept = [deep / ".abc.safetensors.1234abcd.tmp",  # fresh: a writer is at work
            deep / "abc.safetensors", deep / ".abc.partial.safetensors",  # ours, not temp
            tmp_path / "model.pt.part", deep / ".notes.tmp"]  # not our temp name
    for f in stale + kept:
        f.write_bytes(b"x")
    for f in [*stale, *kept[1:]]:
        os.utime(f, (day_old, day_old))
    assert paths.sweep_stale_temps(tmp_path) == 2
    assert not any(f.exists() for f in stale) and all(f.exists() for f in kept)


def test_a_cache_folder_that_cannot_be_made_is_one_line_and_lists_nothing(tmp_path,
                                                                          monkeypatch, capsys):
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "a-file"))
    assert zoo.installed() == []  # what the window's menus read: nothing, not an error
    # the zoo is listed (a read-only cache said only "read-only file system"), with why
    # nothing can be installed
    assert _run(["models", "list"]) == 0
    out, err = capsys.readouterr()
    assert "ffhq" in out
    assert "atelier models: warning: nothing can be installed: " in err
    assert "not a directory" in err and "Traceback" not in err


def test_one_file_imported_twice_at_the_same_moment_is_one_model(tmp_path):
    # The second import found the name held and took 'good-2': two entries, two copies.
    src = tmp_path / "good.pt"
    src.write_bytes(b"same" * 10)
    ready = threading.Event()

    def identify(path, _arch, _stopped):
        if not ready.is_set():  # the first holds its name while the second arrives
            ready.set()
            time.sleep(0.5)
        return None

    results = []
    threads = [threading.Thread(target=lambda: results.append(zoo.import_file(
        src, identify=identify))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [m.name for m in results] == ["good", "good"]
    assert [m.name for m in zoo.installed()] == ["good"]


def test_a_file_installed_already_under_another_name_is_not_copied_again(tmp_path, capsys):
    # the same generator imported from a second folder (or a renamed copy) was stored
    # twice, as 'good' and 'copy': 360 MB more for an FFHQ file, and two rows
    first, second = tmp_path / "good.pt", tmp_path / "copy.pt"
    first.write_bytes(b"same" * 10)
    second.write_bytes(b"same" * 10)
    installed = zoo.import_file(first)
    assert not zoo.found_installed(installed, first)
    again = zoo.import_file(second)
    assert again == installed and zoo.found_installed(again, second)
    assert [m.name for m in zoo.installed()] == ["good"]
    assert not (zoo.models_dir() / "copy").exists()
    assert zoo.import_file(first) == installed  # the same file: as it is
    # asked for by a name of the user's own, it is recorded under that name as before
    assert zoo.import_file(second, name="mine").name == "mine"
    assert [m.name for m in zoo.installed()] == ["good", "mine"]
    # the CLI says so rather than "Imported ..."
    from editor.core.checkpoints import save_generator
    from tests.conftest import make_tiny_generator

    generator = save_generator(make_tiny_generator(), tmp_path / "g.safetensors")
    assert _run(["models", "import", str(generator)]) == 0
    renamed = tmp_path / "renamed.safetensors"
    renamed.write_bytes(generator.read_bytes())
    capsys.readouterr()
    assert _run(["models", "import", str(renamed)]) == 0
    said = capsys.readouterr().err
    assert said.startswith(f"{renamed} is installed already, as g: ") and \
        "nothing was copied" in said
    assert [m.name for m in zoo.installed()] == ["g", "good", "mine"]


def test_a_name_of_ones_own_never_replaces_another_model_for_a_registry_file(tmp_path):
    # A file the registry knows by its sha256, imported with --name mine, replaced the
    # different model installed as 'mine' (left on disk, unlisted).
    mine, known = tmp_path / "a.pt", tmp_path / "b.pt"
    mine.write_bytes(b"mine" * 10)
    known.write_bytes(b"known" * 10)
    write_user_registry([raw_entry("https://example.com/known.pt", name="known-gen",
                                   filename="known.pt",
                                   sha256=hashlib.sha256(known.read_bytes()).hexdigest(),
                                   size=None)])
    zoo.import_file(mine, name="mine")
    with pytest.raises(zoo.ZooImportError, match="a different model is already installed "
                       "as 'mine'"):
        zoo.import_file(known, name="mine")
    assert [(m.name, m.path.read_bytes()) for m in zoo.installed()] == [("mine", b"mine" * 10)]
    assert zoo.import_file(known, name="theirs").entry == "known-gen"  # as before


def test_an_imported_clips_architecture_serves_the_commands_given_its_file(tmp_path,
                                                                          monkeypatch):
    # `atelier models import` matched the weights to their architecture (the window's CLIP
    # list uses it), but `atelier edit` / `atelier precompute` given that installed file
    # said "say which open_clip architecture these weights are for"; one imported as
    # -quickgelu was then run with the GELU of the plain name the message suggested
    from types import SimpleNamespace

    import torch

    from editor.cli import precompute
    from editor.core.clip_model import ClipModel
    from editor.engine.packs import ClipSource, load_clip

    weights = tmp_path / "finetune.pt"
    torch.save({"w": torch.zeros(1)}, weights)
    model = zoo.import_file(weights, identify=lambda *_a: SimpleNamespace(
        kind="clip", resolution=None, arch="ViT-B-32-quickgelu"))
    asked = []
    monkeypatch.setattr(ClipModel, "from_checkpoint",
                        classmethod(lambda _cls, arch, _path, **_k: asked.append(arch)))
    load_clip(ClipSource(path=str(model.path)))
    precompute.load_clip(argparse.Namespace(clip_pretrained=None, clip_arch=None,
                                            clip_checkpoint=str(model.path)),
                         torch.device("cpu"))
    assert asked == ["ViT-B-32-quickgelu"] * 2
    load_clip(ClipSource(path=str(model.path), arch="ViT-B-32"))  # the one named wins
    load_clip(ClipSource(path=str(weights)))  # not installed: nothing known of it
    assert asked[2:] == ["ViT-B-32", None]


def test_a_known_model_imported_again_is_installed_already(tmp_path, capsys, server):
    # importing the file the zoo had downloaded said "Imported … as toy-model" and wrote
    # the import over the download's record (its source and date)
    write_user_registry([raw_entry(server.url("ok"))])
    downloaded = zoo.download("toy-model")
    copy = tmp_path / "toy.bin"
    copy.write_bytes(DATA)
    assert zoo.import_file(copy) == downloaded
    assert _run(["models", "import", str(copy)]) == 0
    assert f"is installed already, as toy-model: {downloaded.path}" in capsys.readouterr().err
    assert zoo.installed_model("toy-model") == downloaded  # the download's record kept
    # a damaged install is mended by importing the right file
    downloaded.path.write_bytes(b"X" * len(DATA))
    mended = zoo.import_file(copy)
    assert mended.path.read_bytes() == DATA and mended.source == str(copy.resolve())
