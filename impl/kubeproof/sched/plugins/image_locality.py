"""ImageLocality (kube-scheduler v1.32).

Theory of operation
-------------------
Prefers nodes that already hold the pod's images.  For each init and regular
container whose image (normalized: ``:latest`` appended when the name has
no tag) is on the node, add ``int(size * (nodes with the image / all
nodes))`` (the spread factor keeps pods from piling onto the one node that
has an image).  Clamp the sum to ``[23 MiB, 1000 MiB * containers]`` and
scale: ``100 * (sum - 23Mi) // (max - 23Mi)``.  No normalization; weight 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..config import PluginArgs
from ..framework import MAX_NODE_SCORE, CycleState, Handle, NodeInfo, PodInfo

__all__ = ["ImageLocality", "normalized_image_name"]

MB: Final = 1024 * 1024
MIN_THRESHOLD: Final = 23 * MB
MAX_CONTAINER_THRESHOLD: Final = 1000 * MB


def normalized_image_name(name: str) -> str:
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


class ImageLocality:
    name = "ImageLocality"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        self.handle = handle

    def _images(self, pod: PodInfo) -> list[str]:
        p = pod.pod
        return [normalized_image_name(c.image) for c in (*p.init_containers, *p.containers)]

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total_nodes = len(self.handle.snapshot)
        images = self._images(pod)
        s = 0
        for image in images:
            st = node.image_states.get(image)
            if st is not None:
                size, num_nodes = st
                s += int(size * (num_nodes / total_nodes))
        max_threshold = MAX_CONTAINER_THRESHOLD * len(images)
        s = min(max(s, MIN_THRESHOLD), max_threshold)
        return MAX_NODE_SCORE * (s - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        known = self.handle.snapshot.images
        if not any(i in known for i in self._images(pod)):
            # No node has any of the images: every score is the floor, 0.
            return [0] * len(nodes)
        return [self.score(state, pod, ni) for ni in nodes]
