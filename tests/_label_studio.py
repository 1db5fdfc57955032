"""A real Label Studio server for the tests, and a way for headless Chromium to see its pages.

The server runs from its own virtual environment (`make label-studio` → .venv-label-studio), on a
free port of 127.0.0.1, over a copy of the migrated empty data directory the setup script left
there (a fresh SQLite database would need a minute of migrations per test session). Its pages
need a logged-in session, which `chromium --headless --screenshot` cannot make, so Chromium is
pointed at a small forwarding proxy that adds the session cookie to every request.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-label-studio"
BINARY = VENV / "bin" / "label-studio"
TEMPLATE = VENV / "template"
REVIEWER = "reviewer@example.com"
PASSWORD = "review-pass-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, token: str):
        self.port, self.token, self.data_dir = free_port(), token, data_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "label-studio.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait_s: float = 300) -> None:
        if TEMPLATE.is_dir():
            shutil.copytree(TEMPLATE, self.data_dir)
        env = dict(os.environ, LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir), DJANGO_DB="sqlite")
        args = [str(BINARY), "start", "--no-browser", "--data-dir", str(self.data_dir), "--internal-host", "127.0.0.1",
                "--port", str(self.port), "--username", REVIEWER, "--password", PASSWORD, "--user-token", self.token,
                "--enable-legacy-api-token", "--log-level", "WARNING"]
        self.proc = subprocess.Popen(args, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + wait_s  # readiness wait, not a timed assertion
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200 and self._user_ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(f"label-studio did not come up in {wait_s} s:\n{self.log.read_text()[-3000:]}")

    def _user_ready(self) -> bool:
        reply = requests.get(f"{self.url}/api/projects", headers={"Authorization": f"Token {self.token}"}, timeout=5)
        return reply.status_code == 200

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)

    def api(self, method: str, path: str, **kwargs):
        reply = requests.request(method, self.url + path, headers={"Authorization": f"Token {self.token}"},
                                 timeout=30, **kwargs)
        assert reply.status_code < 300, f"{method} {path}: {reply.status_code} {reply.text[:300]}"
        return reply.json() if reply.content else None

    def session_cookies(self) -> str:
        """Log in as the reviewer through the login form: the Cookie header a browser would send."""
        s = requests.Session()
        s.get(f"{self.url}/user/login/", timeout=30)
        reply = s.post(f"{self.url}/user/login/", timeout=30, allow_redirects=False,
                       data={"email": REVIEWER, "password": PASSWORD, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
                       headers={"Referer": f"{self.url}/user/login/"})
        assert "sessionid" in s.cookies, f"login failed: {reply.status_code} {reply.text[:300]}"
        return "; ".join(f"{k}={v}" for k, v in s.cookies.items())


def annotation_result(decision: str, question: str | None = None, options: list[str] | None = None,
                      comment: str | None = None) -> list[dict]:
    """What Label Studio stores when a reviewer submits the review form."""
    result = [{"from_name": "decision", "to_name": "page", "type": "choices", "value": {"choices": [decision]}}]
    for name, text in (("question", question), ("options", "\n".join(options) if options else None), ("comment", comment)):
        if text is not None:
            result.append({"from_name": name, "to_name": "page", "type": "textarea", "value": {"text": [text]}})
    return result


class CookieProxy:
    """127.0.0.1 proxy to the server adding the session cookie: what Chromium browses."""

    def __init__(self, target_port: int, cookie: str):
        port, cookie_header = target_port, cookie

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "cookie", "connection")}
                headers["Cookie"] = cookie_header
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "set-cookie"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def chromium(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium not found"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1400,1000", *args],
                          capture_output=True, text=True, timeout=timeout)
