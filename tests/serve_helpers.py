"""Shared pieces of the real-client tests: a running server with users, and kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubeproof.api import ApiRequest, ApiResponse, ApiServer, UserInfo
from kubeproof.serve.app import ServeOptions, ServerThread
from kubeproof.serve.certs import write_kubeconfig

# /usr/bin/kubectl on these machines is gcloud's dispatcher, which runs the
# kubectl whose minor version matches the server's /version (32 here).
KUBECTL = next(
    (p for p in ("/usr/bin/kubectl", shutil.which("kubectl")) if p and os.path.exists(p)),
    None,
)

TOKENS = {
    "admin-token": ("admin", ["system:masters"]),
    "alice-token": ("alice", ["devs"]),
    "bob-token": ("bob", []),
}


def write_token_file(path: Path) -> Path:
    lines = []
    for i, (token, (user, groups)) in enumerate(TOKENS.items(), start=1):
        line = f"{token},{user},uid-{i}"
        if groups:
            line += ',"' + ",".join(groups) + '"'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def running_server(data_dir: Path, **options: Any) -> Iterator[ServerThread]:
    """A TLS server on a free port with the users of `TOKENS`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tokens = write_token_file(data_dir / "tokens.csv")
    opts = ServeOptions(
        secure_port=0,
        data_dir=data_dir,
        token_auth_file=tokens,
        watch_poll_interval=0.2,
        **options,
    )
    with ServerThread(opts) as srv:
        yield srv


def token_kubeconfig(srv: ServerThread, user_token: str, path: Path) -> Path:
    assert srv.server is not None and srv.server.pki is not None
    name = TOKENS[user_token][0] if user_token in TOKENS else "stranger"
    write_kubeconfig(path, srv.url, srv.server.pki.ca_cert, user=name, token=user_token)
    return path


class Kubectl:
    """Runs kubectl with one kubeconfig and a private discovery cache."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        assert KUBECTL is not None
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def argv(self, args: Sequence[str]) -> list[str]:
        assert KUBECTL is not None
        return [
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            "--request-timeout=30s",
            *args,
        ]

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(args),
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


# --------------------------------------------------------------------------- a bare API core

CORE_ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))


class RecordingApi:
    """The API core, remembering who made each request (method, path, user)."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.calls: list[tuple[str, str, str]] = []

    def handle(self, req: ApiRequest) -> ApiResponse:
        assert req.user is not None
        self.calls.append((req.method, req.path, req.user.name))
        return self.api.handle(req)

    def now(self) -> str:
        return self.api.now()


def core_admin(api: ApiServer, method: str, path: str, body: Any = None) -> Any:
    """A request to the core as a cluster admin (PATCH bodies are merge patches)."""
    data = json.dumps(body).encode() if body is not None else b""
    ctype = "application/merge-patch+json" if method == "PATCH" else None
    resp = api.handle(ApiRequest(method, path, body=data, content_type=ctype, user=CORE_ADMIN))
    assert resp.status < 300, resp.body
    return resp.body


def core_allows(
    api: ApiServer, user: UserInfo, verb: str, resource: str, subresource: str = "", group: str = ""
) -> bool:
    """What a SelfSubjectAccessReview by `user` in namespace default answers."""
    attrs = {"verb": verb, "group": group, "resource": resource, "subresource": subresource}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {**attrs, "namespace": "default"}},
    }
    resp = api.handle(
        ApiRequest(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=json.dumps(review).encode(),
            user=user,
        )
    )
    assert resp.status == 201 and resp.body is not None, resp.body
    return bool(resp.body["status"]["allowed"])
