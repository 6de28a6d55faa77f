"""A PEP 503 package index on 127.0.0.1 serving a wheelhouse, so pip installs without the internet.

`build_wheelhouse` downloads once (through this machine's pip configuration) and caches;
`PackageIndex` serves the result over http and counts what it sends; `pip_env` points pip at it.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote

MARKER = ".complete"
_REQUIREMENT_FILE = re.compile(r"^(?:-r|--requirement)(?:\s+|=)(\S+)")


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str | None:
    """The normalized project name of a wheel or sdist file name, or None for anything else."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    for suffix in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(suffix) and "-" in filename:
            return normalize(filename[: -len(suffix)].rsplit("-", 1)[0])
    return None


def _fingerprint(lines: Sequence[str], base: Path, digest: "hashlib._Hash") -> None:
    """Feed the requirement lines, and the contents of the files they name with -r, into `digest`."""
    for line in sorted(line.strip() for line in lines):
        digest.update(line.encode() + b"\n")
        match = _REQUIREMENT_FILE.match(line)
        if match:
            path = (base / match.group(1)).resolve()
            _fingerprint([line for line in path.read_text().splitlines()
                          if line.strip() and not line.lstrip().startswith("#")],
                         path.parent, digest)


def build_wheelhouse(requirements: Sequence[str], cache_root: Path) -> Path:
    """Download `requirements` plus `pip` itself as wheels into a cached folder and return it.

    Each item is one requirements-file line, e.g. "six==1.16.0" or "-r path/to/requirements.txt"
    (relative paths are taken from the current directory; the files' contents count in the cache key).
    Only wheels are fetched (--only-binary=:all:), so installing from the folder never needs
    setuptools or wheel. The folder is `cache_root/<key>/`, key = sha256 of the sorted lines, the -r
    files and the Python version; it is complete once its marker file exists, else it is redone.
    """
    digest = hashlib.sha256(sys.version.encode() + b"\n")
    _fingerprint(list(requirements), Path.cwd(), digest)
    folder = Path(cache_root) / digest.hexdigest()[:16]
    if (folder / MARKER).exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    args = [arg for line in requirements for arg in shlex.split(line, comments=True)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(folder),
                    "pip", *args], check=True)
    (folder / MARKER).write_text("\n".join(requirements) + "\n")
    return folder


class PackageIndex:
    """http://127.0.0.1:PORT/simple/ (PEP 503) for the files of `wheelhouse`; /files/<name> serves them.

    `bytes_served` and `files_served` count file downloads (thread-safe); `reset_counters()` zeroes them.
    """

    def __init__(self, wheelhouse: Path) -> None:
        self.wheelhouse = Path(wheelhouse)
        self.projects: dict[str, list[str]] = {}
        for path in sorted(self.wheelhouse.iterdir()):
            project = project_of(path.name)
            if project and path.is_file():
                self.projects.setdefault(project, []).append(path.name)
        self.bytes_served = 0
        self.files_served: list[str] = []
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                index._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/simple/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="package-index", daemon=True)

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_served = 0
            self.files_served = []

    def _sha256(self, filename: str) -> str:
        with self._lock:
            known = self._hashes.get(filename)
        if known is None:
            digest = hashlib.sha256()
            with open(self.wheelhouse / filename, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
            known = digest.hexdigest()
            with self._lock:
                self._hashes[filename] = known
        return known

    def _page(self, title: str, links: list[tuple[str, str]]) -> bytes:
        anchors = "\n".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br/>' for href, text in links)
        return (f"<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
                f"<title>{html.escape(title)}</title></head><body>\n{anchors}\n</body></html>\n").encode()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = unquote(handler.path.split("?", 1)[0])
        parts = [part for part in path.split("/") if part]
        if parts == ["simple"]:
            return _send(handler, self._page("Simple index", [(f"/simple/{p}/", p) for p in sorted(self.projects)]))
        if len(parts) == 2 and parts[0] == "simple" and normalize(parts[1]) in self.projects:
            files = self.projects[normalize(parts[1])]
            links = [(f"/files/{quote(name)}#sha256={self._sha256(name)}", name) for name in files]
            return _send(handler, self._page(f"Links for {parts[1]}", links))
        if len(parts) == 2 and parts[0] == "files" and project_of(parts[1]) in self.projects \
                and parts[1] in self.projects[project_of(parts[1]) or ""]:
            file = self.wheelhouse / parts[1]
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(file.stat().st_size))
            handler.end_headers()
            sent = 0
            with open(file, "rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    handler.wfile.write(block)
                    sent += len(block)
            with self._lock:
                self.bytes_served += sent
                self.files_served.append(parts[1])
            return None
        return _send(handler, b"not found\n", 404, "text/plain")

    def __enter__(self) -> "PackageIndex":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, content_type: str = "text/html") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", f"{content_type}; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def pip_env(index: PackageIndex, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) without any PIP_* variable, plus settings that make pip use only `index`.

    No config files (PIP_CONFIG_FILE=os.devnull drops this machine's mirror, find-links and constraints),
    no cache (every install really downloads, so the index's counters see it), no version check.
    """
    env = {key: value for key, value in (os.environ if base is None else base).items() if not key.startswith("PIP_")}
    env.update(PIP_INDEX_URL=index.url, PIP_TRUSTED_HOST="127.0.0.1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_CACHE_DIR="1", PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1")
    return env
