"""kubectl 1.32 against `kubeproof.serve`, for real: TLS, client certs, tokens, RBAC.

One server for the module (a temp data dir, a free port), three users from
a token file (admin in system:masters, alice bound to a pod-reader Role in
namespace default, bob bound to nothing) and the generated admin
kubeconfig (a client certificate in system:masters).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeproof.serve.app import ServerThread
from tests.serve_helpers import KUBECTL, Kubectl, running_server, token_kubeconfig

pytestmark = [pytest.mark.timeout(300)]


def test_kubectl_is_installed() -> None:
    # Real clients are tested for real (DESIGN.md section 5): a missing kubectl
    # is a failure, not a silent skip.
    assert KUBECTL is not None, "kubectl 1.32 must be installed (expected at /usr/bin/kubectl)"


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    ports:
    - containerPort: 80
"""

REPLICASET = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: frontend
  labels: {tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {tier: frontend}
  template:
    metadata:
      labels: {tier: frontend}
    spec:
      containers:
      - name: php
        image: php:8
"""

POD_READER = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads-pods, namespace: default}
subjects:
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with running_server(tmp_path_factory.mktemp("kubectl-server")) as srv:
        yield srv


@pytest.fixture(scope="module")
def kube_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kubectl")


@pytest.fixture(scope="module")
def admin(server: ServerThread, kube_dir: Path) -> Kubectl:
    return Kubectl(server.kubeconfig, kube_dir / "cache-admin")


@pytest.fixture(scope="module")
def alice(server: ServerThread, kube_dir: Path, admin: Kubectl) -> Kubectl:
    admin.run("apply", "-f", "-", input=POD_READER)
    return Kubectl(
        token_kubeconfig(server, "alice-token", kube_dir / "alice.kubeconfig"),
        kube_dir / "cache-alice",
    )


@pytest.fixture(scope="module")
def bob(server: ServerThread, kube_dir: Path) -> Kubectl:
    return Kubectl(
        token_kubeconfig(server, "bob-token", kube_dir / "bob.kubeconfig"),
        kube_dir / "cache-bob",
    )


def test_version_selects_kubectl_1_32(admin: Kubectl) -> None:
    out = admin.json("version")
    assert out["serverVersion"]["minor"] == "32"
    assert out["serverVersion"]["gitVersion"].startswith("v1.32.")
    # The gcloud dispatcher (or a plain kubectl) is 1.32 ("32" or "32+").
    assert out["clientVersion"]["minor"].rstrip("+") == "32"


def test_create_namespace_sends_protobuf_and_works(admin: Kubectl) -> None:
    out = admin.run("create", "namespace", "team-a")
    assert out.stdout.strip() == "namespace/team-a created"
    ns = admin.json("get", "namespace", "team-a")
    assert ns["metadata"]["name"] == "team-a"
    assert ns["status"]["phase"] == "Active"
    again = admin.run("create", "namespace", "team-a", check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): namespaces "team-a" already exists' in again.stderr


def test_apply_pod_create_configure_unchanged(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    assert admin.run("apply", "-f", str(f)).stdout.strip() == "pod/web created"
    pod = admin.json("get", "pod", "web")
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    f.write_text(POD.replace("{app: web}", "{app: web, tier: edge}"))
    assert admin.run("apply", "-f", str(f)).stdout.strip() == "pod/web configured"
    assert admin.json("get", "pod", "web")["metadata"]["labels"] == {"app": "web", "tier": "edge"}
    assert admin.run("apply", "-f", str(f)).stdout.strip() == "pod/web unchanged"


def test_apply_replicaset(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "rs.yaml"
    f.write_text(REPLICASET)
    out = admin.run("apply", "-f", str(f))
    assert out.stdout.strip() == "replicaset.apps/frontend created"
    rs = admin.json("get", "rs", "frontend")
    assert rs["spec"]["replicas"] == 2
    assert rs["metadata"]["generation"] == 1


def test_get_pods_wide_prints_a_table(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD.replace("name: web", "name: wide"))
    admin.run("apply", "-f", str(f))
    out = admin.run("get", "pods", "-o", "wide").stdout.splitlines()
    header = out[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "NODE" in header and "IP" in header
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert "wide" in rows
    assert rows["wide"][1] == "0/1" and rows["wide"][2] == "Pending"


def test_get_pods_watch_streams_changes(admin: Kubectl, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        admin.argv(["get", "pods", "-w", "--request-timeout=0"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(admin.kubeconfig)},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of stream

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def read_until(name: str) -> None:
        while True:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"{name} never appeared in the watch; saw {seen}") from None
            if not line:
                raise AssertionError(f"watch ended early; saw {seen}")
            seen.append(line)
            if line.split() and line.split()[0] == name:
                return

    try:
        f = tmp_path / "pod.yaml"
        f.write_text(POD.replace("name: web", "name: watched-0"))
        admin.run("apply", "-f", str(f))
        read_until("watched-0")
        assert seen[0].split()[:3] == ["NAME", "READY", "STATUS"]
        f.write_text(POD.replace("name: web", "name: watched-1"))
        admin.run("apply", "-f", str(f))
        read_until("watched-1")  # an event that arrived on the open stream
        admin.run("label", "pod", "watched-1", "seen=twice")
        read_until("watched-1")  # and a modification
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_describe_pod(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD.replace("name: web", "name: described"))
    admin.run("apply", "-f", str(f))
    out = admin.run("describe", "pod", "described").stdout
    fields = dict(
        (line.split(":", 1)[0].strip(), line.split(":", 1)[1].strip())
        for line in out.splitlines()
        if ":" in line and not line.startswith(" ")
    )
    assert fields["Name"] == "described"
    assert fields["Namespace"] == "default"
    assert fields["Status"] == "Pending"
    assert "nginx:1.27" in out


def test_delete_pod(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD.replace("name: web", "name: doomed"))
    admin.run("apply", "-f", str(f))
    out = admin.run("delete", "pod", "doomed")
    assert out.stdout.strip() == 'pod "doomed" deleted'
    gone = admin.run("get", "pod", "doomed", check=False)
    assert gone.returncode == 1
    assert 'Error from server (NotFound): pods "doomed" not found' in gone.stderr


def test_auth_can_i_yes_and_no(admin: Kubectl, alice: Kubectl, bob: Kubectl) -> None:
    yes = alice.run("auth", "can-i", "list", "pods")
    assert yes.stdout.strip() == "yes"
    no = alice.run("auth", "can-i", "delete", "pods", check=False)
    assert no.returncode == 1 and no.stdout.strip().startswith("no")
    other_ns = alice.run("auth", "can-i", "list", "pods", "-n", "kube-system", check=False)
    assert other_ns.returncode == 1 and other_ns.stdout.strip().startswith("no")
    unbound = bob.run("auth", "can-i", "list", "pods", check=False)
    assert unbound.returncode == 1 and unbound.stdout.strip().startswith("no")
    assert admin.run("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"


def test_auth_whoami(admin: Kubectl, alice: Kubectl, bob: Kubectl) -> None:
    """kubectl auth whoami posts a protobuf SelfSubjectReview; every authenticated user may
    (system:basic-user), and the answer is who the authenticator said."""
    me = admin.json("auth", "whoami")
    assert me["kind"] == "SelfSubjectReview"
    assert me["status"]["userInfo"] == {
        "username": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    a = alice.json("auth", "whoami")["status"]["userInfo"]
    assert (a["username"], a["uid"], a["groups"]) == (
        "alice",
        "uid-2",
        ["devs", "system:authenticated"],
    )
    # bob has no role at all, yet may ask who he is.
    assert bob.json("auth", "whoami")["status"]["userInfo"]["username"] == "bob"
    table = admin.run("auth", "whoami", "--as", "jane", "--as-group", "dev").stdout
    assert table.split() == [
        "ATTRIBUTE",
        "VALUE",
        "Username",
        "jane",
        "Groups",
        "[dev",
        "system:authenticated]",
    ]


def test_forbidden_for_a_user_without_a_role(bob: Kubectl, alice: Kubectl) -> None:
    out = bob.run("get", "pods", check=False)
    assert out.returncode == 1
    assert (
        'Error from server (Forbidden): pods is forbidden: User "bob" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    ) in out.stderr
    # alice may read pods but not create them.
    create = alice.run("run", "nope", "--image=nginx", check=False)
    assert create.returncode == 1
    assert "Forbidden" in create.stderr and 'User "alice" cannot create' in create.stderr
    assert alice.run("get", "pods").returncode == 0


def test_conflict_on_a_stale_replace(admin: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD.replace("name: web", "name: contested"))
    admin.run("apply", "-f", str(f))
    old = admin.json("get", "pod", "contested")
    admin.run("label", "pod", "contested", "touched=yes")
    stale = tmp_path / "stale.json"
    old["metadata"]["labels"]["edited"] = "late"
    stale.write_text(json.dumps(old))
    out = admin.run("replace", "-f", str(stale), check=False)
    assert out.returncode == 1
    assert "Error from server (Conflict)" in out.stderr
    assert "the object has been modified" in out.stderr
    labels = admin.json("get", "pod", "contested")["metadata"]["labels"]
    assert labels.get("touched") == "yes" and "edited" not in labels


def test_unknown_token_is_unauthorized(server: ServerThread, kube_dir: Path) -> None:
    k = Kubectl(
        token_kubeconfig(server, "wrong-token", kube_dir / "wrong.kubeconfig"),
        kube_dir / "cache-wrong",
    )
    out = k.run("get", "pods", check=False)
    assert out.returncode == 1
    assert "You must be logged in to the server" in out.stderr


def test_impersonation_is_authorized_not_ignored(
    admin: Kubectl, alice: Kubectl, bob: Kubectl
) -> None:
    # admin (system:masters) may impersonate: the answers are alice's and bob's.
    assert admin.run("auth", "can-i", "list", "pods", "--as=alice").stdout.strip() == "yes"
    as_bob = admin.run("auth", "can-i", "list", "pods", "--as=bob", check=False)
    assert as_bob.returncode == 1 and as_bob.stdout.strip().startswith("no")
    # bob may not impersonate anyone.
    out = bob.run("get", "pods", "--as=admin", check=False)
    assert out.returncode == 1
    assert 'User "bob" cannot impersonate resource "users"' in out.stderr


def test_validate_modes_use_server_side_field_validation(admin: Kubectl, tmp_path: Path) -> None:
    # The OpenAPI documents tell kubectl the server validates fields, so the
    # default --validate=strict sends fieldValidation=Strict, warn sends Warn.
    f = tmp_path / "unknown.yaml"
    f.write_text(
        POD.replace("name: web", "name: unknown-field").replace("spec:\n", "spec:\n  bogus: 1\n")
    )
    strict = admin.run("apply", "-f", str(f), check=False)
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in strict.stderr
    warned = admin.run("apply", "-f", str(f), "--validate=warn")
    assert warned.stdout.strip() == "pod/unknown-field created"
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    assert "bogus" not in admin.json("get", "pod", "unknown-field")["spec"]
