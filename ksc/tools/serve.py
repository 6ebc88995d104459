"""``ksc view``: the web viewer and one ``.ksc`` file served on 127.0.0.1, for a local browser.

The page (built from ``web/`` into ``ksc/viewer/`` by the set-up) decodes the
file itself, in the browser: this server only hands out the page's three files
and the file's bytes, read again on every request so that a re-encoded file
shows on reload.
"""

from __future__ import annotations

import logging
import urllib.parse
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ksc.errors import KscInputError

VIEWER = Path(__file__).resolve().parent.parent / "viewer"
"""Where the built page lives: index.html, ksc-viewer.js and ksc-worker.js (``npm run build`` in web/ writes them)."""
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ksc-viewer.js": ("ksc-viewer.js", "text/javascript; charset=utf-8"),
    "/ksc-worker.js": ("ksc-worker.js", "text/javascript; charset=utf-8"),
}

logger = logging.getLogger(__name__)


def viewer_files() -> Path:
    """The folder of the built page; KscInputError when it was not built."""
    missing = [name for name, _ in PAGES.values() if not (VIEWER / name).is_file()]
    if missing:
        raise KscInputError(
            f"the web viewer is not built ({', '.join(missing)} missing in {VIEWER}):"
            " run `make setup`, or `npm ci && npm run build` in web/"
        )
    return VIEWER


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, *args, ksc_file: Path, **kwargs):
        self.ksc_file = ksc_file
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        try:
            if path == file_path(self.ksc_file):
                body, kind = self.ksc_file.read_bytes(), "application/octet-stream"
            elif path in PAGES:
                name, kind = PAGES[path]
                body = (VIEWER / name).read_bytes()
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
        except OSError as error:
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, str(error.strerror or error))
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        logger.debug("%s %s", self.address_string(), format % args)


def make_server(path, port: int = 0) -> ThreadingHTTPServer:
    """A server of the viewer and the ``.ksc`` file at ``path`` on 127.0.0.1:``port`` (0: any free port)."""
    viewer_files()
    ksc_file = Path(path)
    if not ksc_file.is_file():
        raise KscInputError(f"{path}: no such file")
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, ksc_file=ksc_file))
    server.ksc_file = ksc_file
    return server


def file_path(ksc_file: Path) -> str:
    """Where the file is served: under its own name, so that the page shows it (``/files/bunny.ksc``)."""
    return "/files/" + ksc_file.name


def page_url(server: ThreadingHTTPServer) -> str:
    """The address a browser opens: the page, told to load the served file."""
    host, port = server.server_address[:2]
    name = urllib.parse.quote(file_path(server.ksc_file))
    return f"http://{host}:{port}/?file={urllib.parse.quote(name, safe='')}"
