"""The table of sequential models the checker knows, by name."""

from __future__ import annotations

from types import MappingProxyType

from kubeproof.models.etcd_kv import EtcdKvModel
from kubeproof.models.sequential import AnyModel

from .kv_model import KvModel, KvNoPartitionModel
from .register_model import EtcdRegisterModel

MODELS: MappingProxyType[str, AnyModel] = MappingProxyType(
    {m.name: m for m in (KvModel(), KvNoPartitionModel(), EtcdRegisterModel(), EtcdKvModel())}
)
"""kv (per key), kv-nopartition (whole map), etcd-register (Jepsen), etcd-kv (etcd v3)."""


def get_model(name: str) -> AnyModel:
    """The model called `name`; KeyError lists the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})") from None
