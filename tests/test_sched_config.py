"""KubeSchedulerConfiguration v1 profiles resolved as kube-scheduler v1.32 does."""

from __future__ import annotations

import attrs
import pytest

from kubeproof.sched.config import (
    ConfigError,
    NodeResourcesFitArgs,
    SchedulerConfig,
    parse_config,
)
from kubeproof.sched.load import InputError
from tests.sched_helpers import config, node, pod, run

HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"


def test_default_profile_points_and_weights() -> None:
    p = SchedulerConfig.default().profiles[0]
    assert p.plugins_at("queueSort") == ("PrioritySort",)
    assert p.plugins_at("postFilter") == ("DefaultPreemption",)
    assert p.plugins_at("bind") == ("DefaultBinder",)
    f = p.plugins_at("filter")
    assert f.index("NodeUnschedulable") < f.index("TaintToleration") < f.index("NodeResourcesFit")
    assert f.index("NodeResourcesFit") < f.index("PodTopologySpread") < f.index("InterPodAffinity")
    expected = {
        "TaintToleration": 3,
        "NodeAffinity": 2,
        "NodeResourcesFit": 1,
        "PodTopologySpread": 2,
        "InterPodAffinity": 2,
        "NodeResourcesBalancedAllocation": 1,
        "ImageLocality": 1,
    }
    assert {k: p.weights[k] for k in expected} == expected


def test_disable_at_one_point_keeps_the_others() -> None:
    cfg = config(
        HEAD
        + """profiles:
- plugins:
    score:
      disabled: [{name: TaintToleration}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
"""
    )
    p = cfg.profiles[0]
    assert "TaintToleration" not in p.plugins_at("score")
    assert "TaintToleration" in p.plugins_at("filter")
    assert p.weights["NodeResourcesFit"] == 5
    # An explicit entry overriding a multiPoint one keeps the first place.
    assert p.plugins_at("score")[0] == "NodeResourcesFit"


def test_star_disables_all_defaults_at_a_point() -> None:
    cfg = config(
        HEAD
        + """profiles:
- schedulerName: no-scoring
  plugins:
    preScore: {disabled: [{name: '*'}]}
    score: {disabled: [{name: '*'}]}
"""
    )
    p = cfg.profiles[0]
    assert p.plugins_at("score") == () and p.plugins_at("preScore") == ()
    assert p.scheduler_name == "no-scoring"


def test_multipoint_enable_and_disable() -> None:
    cfg = config(
        HEAD
        + """profiles:
- plugins:
    multiPoint:
      disabled: [{name: ImageLocality}, {name: NodeResourcesBalancedAllocation}]
      enabled: [{name: TaintToleration, weight: 7}]
"""
    )
    p = cfg.profiles[0]
    assert "ImageLocality" not in p.plugins_at("score")
    assert p.weights["TaintToleration"] == 7
    assert p.plugins_at("filter").index("TaintToleration") == 2  # replaced in place


def test_plugin_args_parsed_with_defaults() -> None:
    cfg = config(
        HEAD
        + """profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: RequestedToCapacityRatio
        resources: [{name: cpu, weight: 2}, {name: memory}]
        requestedToCapacityRatio:
          shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]
"""
    )
    args = cfg.profiles[0].arg("NodeResourcesFit")
    assert isinstance(args, NodeResourcesFitArgs)
    s = args.scoring_strategy
    assert s.type == "RequestedToCapacityRatio"
    assert [(r.name, r.weight) for r in s.resources] == [("cpu", 2), ("memory", 1)]
    assert [(p.utilization, p.score) for p in s.shape] == [(0, 0), (100, 10)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "profiles: [{plugins: {score: {enabled: [{name: Nope}]}}}]",
            "plugin 'Nope' does not exist",
        ),
        (
            "profiles: [{plugins: {filter: {enabled: [{name: ImageLocality}]}}}]",
            "'ImageLocality' does not extend filter",
        ),
        (
            "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: "
            "{type: Fancy}}}]}]",
            "scoringStrategy.type: unsupported value 'Fancy'",
        ),
        ("percentageOfNodesToScore: 101", "percentageOfNodesToScore: 101 not in [0, 100]"),
        (
            "profiles: [{schedulerName: a}, {schedulerName: a}]",
            "duplicate profile 'a'",
        ),
        (
            "profiles: [{plugins: {queueSort: {disabled: [{name: '*'}]}}}]",
            "exactly one queueSort plugin",
        ),
        (
            "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: "
            "{type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: "
            "[{utilization: 50, score: 1}, {utilization: 40, score: 2}]}}}}]}]",
            "sorted in increasing order",
        ),
        ("profiles: [{plugins: {sideways: {}}}]", "plugins.sideways: unknown extension point"),
    ],
)
def test_invalid_configs(body: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        config(HEAD + body)
    assert message in str(e.value)


def test_parse_config_rejects_other_versions() -> None:
    with pytest.raises(ConfigError):
        parse_config({"apiVersion": "kubescheduler.config.k8s.io/v1beta2"})


def test_pods_choose_their_profile_by_scheduler_name() -> None:
    cfg = config(
        HEAD
        + """profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
  plugins:
    score: {disabled: [{name: NodeResourcesBalancedAllocation}]}
"""
    )
    nodes = [node("busy", cpu=4000), node("idle", cpu=4000)]
    running = pod("r", 2000, node_name="busy")
    spread = pod("a", 500)
    packed = attrs.evolve(pod("b", 500), scheduler_name="packer")
    ghost = attrs.evolve(pod("g", 1), scheduler_name="ghost")
    r = run(nodes, [running, spread, packed, ghost], cfg)
    assert r.placements["default/a"] == "idle"  # LeastAllocated spreads
    assert r.placements["default/b"] == "busy"  # MostAllocated packs
    assert r.placements["default/g"] is None
    assert r.reasons["default/g"] == "no scheduler profile named 'ghost'"
