"""Label Studio's HTTP API, the few calls the review needs, each failure as one line.

Why plain HTTP (requests) and not `label-studio-sdk`: the server runs
in its own virtual environment, and the SDK would pull its pins into ours. Tokens: a personal
access token (a JWT, Label Studio >= 1.11) is exchanged for a short-lived access token at
`/api/token/refresh/`; a legacy token (40 hex, or what `label-studio start --user-token` set) is
sent as `Token <key>`. The token is never printed, logged or written: errors name the variable.
"""

from __future__ import annotations

import os

import requests

from opinionbench.annotation import AnnotationError, ReviewParams

PAGE_SIZE = 100


def token_from_env(params: ReviewParams) -> str:
    token = os.environ.get(params.api_token_env, "").strip()
    if not token:
        raise AnnotationError(f"review.api_token_env: ${params.api_token_env} is not set (a Label Studio API token: "
                              "Account & Settings -> Personal Access Token, or the --user-token the server started with)")
    return token


class LabelStudio:
    def __init__(self, url: str, token: str, token_env: str = "the token", timeout: float = 30.0):
        self.url, self._env = url.rstrip("/"), token_env
        self._timeout = timeout
        self._http = requests.Session()
        self._http.headers["Authorization"] = self._authorization(token)

    @classmethod
    def from_params(cls, params: ReviewParams) -> LabelStudio:
        return cls(params.url, token_from_env(params), f"${params.api_token_env}", params.timeout)

    def close(self) -> None:
        self._http.close()

    def _authorization(self, token: str) -> str:
        if token.count(".") != 2:
            return f"Token {token}"
        reply = self._send("POST", "/api/token/refresh/", json={"refresh": token}, auth=False)
        return f"Bearer {reply['access']}"

    def _send(self, method: str, path: str, auth: bool = True, **kwargs):
        try:
            send = self._http.request if auth else requests.request
            response = send(method, self.url + path, timeout=self._timeout, allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            raise AnnotationError(f"{self.url}: cannot connect to Label Studio ({_reason(exc)}); "
                                  "is it running? (`make label-studio-server`)") from None
        except requests.Timeout:
            raise AnnotationError(f"{self.url}{path}: Label Studio did not answer in time (review.timeout)") from None
        except requests.RequestException as exc:
            raise AnnotationError(f"{self.url}{path}: {type(exc).__name__}: {_reason(exc)}") from None
        if response.status_code in (401, 403):
            raise AnnotationError(f"{self.url}: Label Studio rejected the API token in {self._env} "
                                  f"(HTTP {response.status_code}: {_detail(response)})")
        if response.status_code == 404:
            raise AnnotationError(f"{self.url}{path}: not found in Label Studio (HTTP 404: {_detail(response)})")
        if response.status_code >= 400:
            raise AnnotationError(f"{self.url}{path}: HTTP {response.status_code}: {_detail(response)}")
        if response.status_code >= 300:
            raise AnnotationError(f"{self.url}{path}: HTTP {response.status_code} (redirected to "
                                  f"{response.headers.get('Location', '?')}): is review.url a Label Studio server?")
        try:
            return response.json() if response.content else None
        except ValueError:
            raise AnnotationError(f"{self.url}{path}: not a JSON reply (is review.url a Label Studio server?)") from None

    # --- projects and tasks -------------------------------------------------------------------
    def find_project(self, title: str) -> dict | None:
        page = 1
        while True:
            reply = self._send("GET", "/api/projects", params={"page": page, "page_size": PAGE_SIZE})
            for project in reply.get("results", []):
                if project["title"] == title:
                    return project
            if not reply.get("next"):
                return None
            page += 1

    def ensure_project(self, title: str, label_config: str, description: str) -> tuple[dict, str]:
        """The project titled `title`, created or with its labeling config brought up to date."""
        project = self.find_project(title)
        if project is None:
            body = {"title": title, "label_config": label_config, "description": description}
            return self._send("POST", "/api/projects", json=body), "created"
        if project.get("label_config", "").strip() != label_config.strip():
            return self._send("PATCH", f"/api/projects/{project['id']}", json={"label_config": label_config}), "updated"
        return project, "found"

    def tasks(self, project_id: int) -> list[dict]:
        """Every task of the project with its annotations."""
        out, page = [], 1
        while True:
            reply = self._send("GET", "/api/tasks", params={"project": project_id, "fields": "all",
                                                            "page": page, "page_size": PAGE_SIZE})
            out += reply.get("tasks", [])
            if len(out) >= reply.get("total", 0) or not reply.get("tasks"):
                return out
            page += 1

    def import_tasks(self, project_id: int, tasks: list[dict]) -> int:
        if not tasks:
            return 0
        return int(self._send("POST", f"/api/projects/{project_id}/import", json=tasks).get("task_count", 0))

    def update_task(self, task_id: int, data: dict) -> None:
        self._send("PATCH", f"/api/tasks/{task_id}", json={"data": data})

    def annotate(self, task_id: int, result: list[dict]) -> dict:
        """Submit an annotation as the token's user (what a reviewer's Submit does)."""
        return self._send("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})

    def users(self) -> dict[int, str]:
        """user id -> email (or username): annotations name their author by id."""
        return {u["id"]: u.get("email") or u.get("username") or str(u["id"]) for u in self._send("GET", "/api/users")}


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no detail"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("validation_errors") or body
        return str(detail)[:200]
    return str(body)[:200]
