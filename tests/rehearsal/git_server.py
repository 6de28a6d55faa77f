"""Git over https on 127.0.0.1: a one-commit snapshot of a checkout, served by `git http-backend`.

Clients trust the server's self-signed certificate through a git config file (`write_git_config`),
used with GIT_CONFIG_GLOBAL=<file>, GIT_CONFIG_NOSYSTEM=1 and no GIT_SSL_CAINFO in the environment
(that variable overrides the config, and this machine sets it).

`HttpsGitServer(root, token=...)` serves a private repository as GitHub and GitLab do over https: every request
without HTTP basic auth whose password is the token (any username) gets 401 and a `WWW-Authenticate` challenge.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

AUTHOR = {"GIT_AUTHOR_NAME": "spotgrade rehearsal", "GIT_AUTHOR_EMAIL": "rehearsal@example.invalid",
          "GIT_COMMITTER_NAME": "spotgrade rehearsal", "GIT_COMMITTER_EMAIL": "rehearsal@example.invalid"}


def clean_git_env(**extra: str) -> dict[str, str]:
    """os.environ without GIT_* variables, without the system/global git config, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    env.update(extra)
    return env


def _git(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> str:
    result = subprocess.run(["git", *args], env=env or clean_git_env(), input=input,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode().strip()


def snapshot_repo(source: Path, dest: Path, branch: str) -> str:
    """Make `dest` a bare repository whose `branch` holds one commit of `source`'s working tree.

    The tree is what `git ls-files --cached --others --exclude-standard` lists (tracked files plus
    untracked, not ignored ones) as they are on disk; files deleted from the working tree are left out.
    Fetching any reachable commit by sha is allowed. Returns the commit sha.
    """
    listing = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
                             capture_output=True, check=True).stdout.decode()
    paths = sorted({p for p in listing.split("\0") if p and not p.endswith("/") and os.path.lexists(source / p)})
    _git("init", "-q", "--bare", f"--initial-branch={branch}", "--template=", str(dest))
    for key, value in (("uploadpack.allowReachableSHA1InWant", "true"), ("uploadpack.allowAnySHA1InWant", "true"),
                       ("http.receivepack", "false")):
        _git("--git-dir", str(dest), "config", key, value)
    with tempfile.TemporaryDirectory(prefix="snapshot-index-") as tmp:
        env = clean_git_env(GIT_DIR=str(dest), GIT_WORK_TREE=str(source), GIT_INDEX_FILE=str(Path(tmp, "index")),
                            GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000", **AUTHOR)
        _git("update-index", "--add", "-z", "--stdin", env=env, input="\0".join(paths).encode() + b"\0")
        tree = _git("write-tree", env=env)
        commit = _git("commit-tree", tree, "-m", f"rehearsal snapshot of {source.name}", env=env)
    _git("--git-dir", str(dest), "update-ref", f"refs/heads/{branch}", commit)
    return commit


def make_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate (CN and IP SAN `host`, DNS SAN localhost) and its key: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host},DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class _TlsServer(ThreadingHTTPServer):
    """Does the TLS handshake in the request's thread, so a stalled client never blocks accept()."""

    daemon_threads = True
    tls: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):  # e.g. the client refused the certificate
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request, client_address) -> None:  # quiet on dropped connections
        pass


class HttpsGitServer:
    """Smart HTTP git (read-only) for the bare repositories under `root`, at https://127.0.0.1:PORT/<name>.git;
    with `token`, only for requests that give it as the basic-auth password (`refused`: how many did not)."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = Path(root)
        self.token = token
        self.refused = 0
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="git-https-")
        self.ca_file, key = make_certificate(Path(self._tmp.name))
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

            do_POST = do_GET

        self._server = _TlsServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key)
        self._server.tls = context
        self.port: int = self._server.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-https", daemon=True)

    def url_for(self, name: str) -> str:
        """The clone URL of the bare repository `<root>/<name>.git`."""
        return f"{self.base_url}{name}.git"

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.token is None:
            return True
        scheme, _, encoded = handler.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and bool(user) and hmac.compare_digest(password, self.token)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((handler.command, handler.path))
        body = _read_body(handler)
        if not self._authorized(handler):
            with self._lock:
                self.refused += 1
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="spotgrade rehearsal"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        url = urlsplit(handler.path)
        env = clean_git_env(
            GIT_PROJECT_ROOT=str(self.root), GIT_HTTP_EXPORT_ALL="1", PATH_INFO=unquote(url.path),
            QUERY_STRING=url.query, REQUEST_METHOD=handler.command,
            CONTENT_TYPE=handler.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR=handler.client_address[0], GATEWAY_INTERFACE="CGI/1.1")
        for header, variable in (("Git-Protocol", "HTTP_GIT_PROTOCOL"), ("Content-Encoding", "HTTP_CONTENT_ENCODING")):
            if handler.headers.get(header):
                env[variable] = handler.headers[header]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, sep, payload = result.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = result.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "status":
                status = int(value.split()[0])
            elif name.strip():
                headers.append((name.strip(), value.strip()))
        if result.returncode != 0 and not head:
            status, payload = 500, result.stderr
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def __enter__(self) -> "HttpsGitServer":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, de-chunked when sent with Transfer-Encoding: chunked (git does past http.postBuffer)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def write_git_config(path: Path, server: HttpsGitServer) -> Path:
    """A git config that trusts `server`'s certificate (use as GIT_CONFIG_GLOBAL, with GIT_CONFIG_NOSYSTEM=1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[http "{server.base_url}"]\n\tsslCAInfo = {server.ca_file}\n')
    return path
