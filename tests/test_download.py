"""The downloader against a loopback HTTP server (127.0.0.1) that redirects like
go.vicos.si and honours Range requests; no test touches the network."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from diag.data.download import download, sha256_of
from diag.data.ksdd2 import read_official_split
from diag.errors import DataError
from tests.conftest import write_pair


def make_archive(tmp_path: Path) -> bytes:
    """A small KolektorSDD2.zip: one folder level, train/ and test/, images and masks."""
    src = tmp_path / "zipsrc"
    for split in ("train", "test"):
        (src / split).mkdir(parents=True)
        write_pair(src / split, "10000" if split == "train" else "20000", (230, 630), defect=True)
        write_pair(src / split, "10001" if split == "train" else "20001", (230, 630), defect=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(src.rglob("*.png")):
            archive.write(path, "KolektorSDD2/" + path.relative_to(src).as_posix())
    return buffer.getvalue()


class Server:
    """Serves ``payload`` at /KolektorSDD2.zip; /kolektorsdd2 redirects there. Records Range headers."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.ranges = payload, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path == "/kolektorsdd2":
                    self.send_response(302)
                    self.send_header("Location", "/KolektorSDD2.zip")
                    self.end_headers()
                    return
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header.split("=")[1].rstrip("-")) if header else 0
                body = server.payload[start:]
                self.send_response(206 if header else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/kolektorsdd2"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(make_archive(tmp_path))
    yield srv
    srv.httpd.shutdown()


def test_download_follows_redirect_verifies_and_unpacks(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "ksdd2"
    root = download(out, url=server.url, expected_size=len(server.payload))
    assert root == out / "KolektorSDD2"
    assert [s.label for s in read_official_split(root, "train")] == ["positive", "negative"]
    assert (out / "KolektorSDD2.zip").stat().st_size == len(server.payload)
    assert not (out / "KolektorSDD2.zip.part").exists()
    assert server.ranges == [None]


def test_download_resumes_a_partial_file(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "ksdd2"
    out.mkdir()
    half = len(server.payload) // 2
    (out / "KolektorSDD2.zip.part").write_bytes(server.payload[:half])
    download(out, url=server.url, expected_size=len(server.payload))
    assert server.ranges == [f"bytes={half}-"]
    assert (out / "KolektorSDD2.zip").read_bytes() == server.payload


def test_checksum_is_enforced(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="SHA-256 differs"):
        download(tmp_path / "a", url=server.url, expected_size=len(server.payload), sha256="0" * 64)
    good = tmp_path / "b"
    download(good, url=server.url, expected_size=len(server.payload), sha256=None)
    digest = sha256_of(good / "KolektorSDD2.zip")
    download(good, url=server.url, expected_size=len(server.payload), sha256=digest)  # re-run: verified, not re-fetched
    assert server.ranges == [None, None]


def test_wrong_size_keeps_the_partial_file(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "ksdd2"
    with pytest.raises(DataError, match=r"KolektorSDD2\.zip\.part: .* bytes, expected"):
        download(out, url=server.url, expected_size=len(server.payload) + 10)
    assert (out / "KolektorSDD2.zip.part").stat().st_size == len(server.payload)


def test_corrupt_member_is_caught(server: Server, tmp_path: Path) -> None:
    corrupt = bytearray(server.payload)
    info = zipfile.ZipFile(io.BytesIO(server.payload)).infolist()[0]
    corrupt[info.header_offset + 30 + len(info.filename) + 20] ^= 0xFF  # a byte inside the first member's data
    server.payload = bytes(corrupt)
    with pytest.raises(DataError, match="fails its CRC-32 check"):
        download(tmp_path / "c", url=server.url, expected_size=len(server.payload))
