"""Loading nodes, pods and configurations from Kubernetes YAML (kube v1.32 semantics)."""

from __future__ import annotations

import pytest

from kubeproof.sched.load import InputError, load_cluster, load_objects
from kubeproof.sched.model import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    Container,
    Pod,
    Resources,
)

NODE = """
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {zone: a}}
spec:
  unschedulable: true
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status:
  capacity: {cpu: "4", memory: 32Gi, pods: "110", nvidia.com/gpu: "2"}
  images: [{names: ["nginx:1.27"], sizeBytes: 1000}]
"""


def test_node_fields() -> None:
    nodes, pods, cfg = load_objects(NODE)
    (n,) = nodes
    assert not pods
    assert n.name == "n1" and n.labels["zone"] == "a" and n.unschedulable
    assert n.allocatable == n.capacity  # allocatable defaults to capacity
    assert n.allocatable.milli_cpu == 4000
    assert n.allocatable.memory == 32 * 2**30
    assert n.allocatable.pods == 110
    assert n.allocatable.get("nvidia.com/gpu") == 2
    assert n.taints[0].key == "dedicated" and n.taints[0].effect == "NoSchedule"
    assert n.images[0].names == ("nginx:1.27",)
    assert cfg.profiles[0].scheduler_name == "default-scheduler"


def test_list_kind_and_multi_document() -> None:
    text = """
kind: List
items:
- {kind: Node, metadata: {name: a}}
- {kind: Pod, metadata: {name: p}, spec: {containers: [{name: c}]}}
---
kind: Pod
metadata: {name: q, namespace: team}
spec: {nodeName: a, containers: [{name: c}]}
---
kind: ConfigMap
metadata: {name: ignored}
"""
    nodes, pods, _ = load_objects(text)
    assert [n.name for n in nodes] == ["a"]
    assert [p.key for p in pods] == ["default/p", "team/q"]
    assert pods[1].node_name == "a"


def _pod(spec: str) -> Pod:
    (p,) = load_objects(f"kind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}")[1]
    return p


def test_effective_request_is_max_of_containers_and_init_plus_overhead() -> None:
    p = _pod(
        """
  overhead: {cpu: 10m}
  initContainers:
  - {name: i1, resources: {requests: {cpu: "2", memory: 1G}}}
  - {name: i2, resources: {requests: {cpu: "2", memory: 3G}}}
  containers:
  - {name: c1, resources: {requests: {cpu: "2", memory: 1G}}}
  - {name: c2, resources: {requests: {cpu: "1", memory: 1G}}}
"""
    )
    # kube's computePodResourceRequest example: CPU 3, memory 3G (+ overhead).
    assert p.requests() == Resources(3010, 3 * 10**9)


def test_sidecar_init_containers_add_to_the_sum() -> None:
    p = _pod(
        """
  initContainers:
  - {name: side, restartPolicy: Always, resources: {requests: {cpu: 500m}}}
  - {name: init, resources: {requests: {cpu: "1"}}}
  containers:
  - {name: c, resources: {requests: {cpu: 200m}}}
"""
    )
    # regular 200m + sidecar 500m = 700m; the init container runs beside the
    # sidecar: 1000m + 500m = 1500m; the max wins.
    assert p.requests().milli_cpu == 1500


def test_limits_default_requests() -> None:
    p = _pod("  containers: [{name: c, resources: {limits: {cpu: 200m, memory: 1Gi}}}]")
    assert p.requests() == Resources(200, 2**30)


def test_non_zero_requests_fill_only_missing_cpu_and_memory() -> None:
    p = _pod("  containers: [{name: c, resources: {requests: {memory: 0}}}, {name: d}]")
    # c: cpu missing -> 100m, memory explicitly 0 stays 0; d: both missing.
    nz = p.non_zero_requests()
    assert nz.milli_cpu == 2 * DEFAULT_MILLI_CPU_REQUEST
    assert nz.memory == DEFAULT_MEMORY_REQUEST
    assert p.requests().is_zero()


def test_priority_class_and_namespace_labels() -> None:
    text = """
kind: PriorityClass
metadata: {name: high}
value: 1000
preemptionPolicy: Never
---
kind: Namespace
metadata: {name: team, labels: {env: prod}}
---
kind: Pod
metadata: {name: p, namespace: team}
spec: {priorityClassName: high, containers: [{name: c}]}
---
kind: Pod
metadata: {name: q}
spec: {priorityClassName: system-node-critical, containers: [{name: c}]}
"""
    _, (p, q), _ = load_objects(text)
    assert p.priority == 1000 and p.preemption_policy == "Never"
    assert p.namespace_labels == {"env": "prod"}
    assert q.priority == 2000001000


def test_default_spread_selector_from_services_and_the_controller() -> None:
    # kube 1.32's DefaultSelector: matching Services, and the *controlling* owner's
    # selector; a ReplicaSet whose selector merely matches does not count.
    text = """
kind: Service
metadata: {name: web}
spec: {selector: {app: web}}
---
kind: ReplicaSet
metadata: {name: web-rs}
spec: {selector: {matchLabels: {app: web, tier: fe}}}
---
kind: Pod
metadata:
  name: p
  labels: {app: web, tier: fe}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, controller: true}]
spec: {containers: [{name: c}]}
---
kind: Pod
metadata: {name: stray, labels: {app: web, tier: fe}}
spec: {containers: [{name: c}]}
---
kind: Pod
metadata:
  name: adopted-elsewhere
  labels: {app: other, tier: fe}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, controller: false}]
spec: {containers: [{name: c}]}
"""
    _, (p, stray, other), _ = load_objects(text)
    assert p.default_spread_selector is not None
    assert dict(p.default_spread_selector.match_labels) == {"app": "web", "tier": "fe"}
    assert stray.default_spread_selector is not None
    assert dict(stray.default_spread_selector.match_labels) == {"app": "web"}
    assert other.default_spread_selector is None


def test_pdb_disruptions_allowed_from_status_or_spec() -> None:
    text = """
kind: Node
metadata: {name: n}
---
kind: Pod
metadata: {name: a, labels: {app: x}}
spec: {nodeName: n, containers: [{name: c}]}
---
kind: Pod
metadata: {name: b, labels: {app: x}}
spec: {nodeName: n, containers: [{name: c}]}
---
kind: PodDisruptionBudget
metadata: {name: spec-only}
spec: {minAvailable: 1, selector: {matchLabels: {app: x}}}
---
kind: PodDisruptionBudget
metadata: {name: with-status}
spec: {minAvailable: 1, selector: {matchLabels: {app: x}}}
status: {disruptionsAllowed: 0}
"""
    c = load_cluster(text)
    assert [p.disruptions_allowed for p in c.pdbs] == [1, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, resources: "
            "{requests: {cpu: lots}}}]}",
            "Pod default/web: spec.containers[0].resources.requests.cpu: quantity 'lots'",
        ),
        (
            "kind: Node\nmetadata: {name: n}\nspec: {taints: [{key: k, effect: Sometimes}]}",
            "Node n: spec.taints[0].effect: 'Sometimes' is not a valid taint effect",
        ),
        (
            "kind: Pod\nmetadata: {name: p, namespace: ns}\nspec: {containers: [{name: c}], "
            "tolerations: [{operator: Equal, value: v}]}",
            "Pod ns/p: spec.tolerations[0].operator: must be Exists when key is empty",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n  affinity:\n"
            "    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "        nodeSelectorTerms: [{matchExpressions: [{key: k, operator: Near}]}]",
            "Pod default/p: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuring"
            "Execution.nodeSelectorTerms[0].matchExpressions[0].operator: 'Near'",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}], "
            "topologySpreadConstraints: [{maxSkew: 0, topologyKey: z, "
            "whenUnsatisfiable: DoNotSchedule}]}",
            "Pod default/p: spec.topologySpreadConstraints[0].maxSkew: 0 must be greater than zero",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}], nodeName: ghost}",
            "Pod default/p: spec.nodeName: node 'ghost' is not defined",
        ),
        ("kind: Pod\nmetadata: {name: p}\nspec: {}", "Pod default/p: spec.containers: a pod"),
        ("kind: Pod\nmetadata: {}\n", "Pod #0: metadata.name: expected a string, got null"),
        ("- 1\n- 2\n", "document 1: expected a Kubernetes object, got a list"),
        ("metadata: {name: x}\n", "document 1: has no kind"),
        ("kind: [\n", "not valid YAML"),
        (
            "kind: Node\nmetadata: {name: n, labels: {zone: 1}}",
            "Node n: metadata.labels.zone: expected a string, got the number 1",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {priorityClassName: nope, containers: [{}]}",
            "Pod default/p: spec.priorityClassName: no PriorityClass with name 'nope'",
        ),
        (
            "kind: KubeSchedulerConfiguration\napiVersion: kubescheduler.config.k8s.io/v1beta3",
            "KubeSchedulerConfiguration: apiVersion 'kubescheduler.config.k8s.io/v1beta3'",
        ),
        (
            "kind: Node\nmetadata: {name: n}\n---\nkind: Node\nmetadata: {name: n}",
            "Node n: defined twice",
        ),
    ],
)
def test_errors_name_the_object_and_field(text: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        load_cluster(text)
    assert message in str(e.value)


def test_container_value_defaults() -> None:
    c = Container("c")
    assert c.requests.is_zero() and not c.requested_names


def test_scheduling_gates_parsed() -> None:
    _, (p,), _ = load_objects(
        "kind: Pod\nmetadata: {name: p}\nspec: {schedulingGates: [{name: a}, {name: b}], "
        "containers: [{name: c}]}"
    )
    assert p.scheduling_gates == ("a", "b")
