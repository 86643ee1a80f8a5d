"""The linearizability checker: histories, sequential models, the search, witnesses.

    from kubeproof.models.lincheck import History, Operation, check, get_model
    result = check(history, get_model("kv"))
    result.linearizable        # True / False / None (gave up)

See docs/lincheck.md for the formats, the rules of the search and the CLI.
"""

from kubeproof.models.sequential import ILLEGAL, AnyModel, Model

from .checker import CheckResult, check, partition
from .formats import (
    HistoryFormatError,
    ParsedHistory,
    detect_format,
    dump_json_history,
    parse_history,
    parse_jepsen_etcd,
    parse_json_history,
    parse_porcupine_kv,
)
from .history import History, HistoryError, Operation
from .kv_model import KvInput, KvModel, KvNoPartitionModel
from .register_model import EtcdRegisterModel, RegisterInput, RegisterOutput
from .registry import MODELS, get_model
from .search import PartitionResult, Verdict, check_partition
from .witness import Witness, minimize

__all__ = [
    "ILLEGAL",
    "MODELS",
    "AnyModel",
    "CheckResult",
    "EtcdRegisterModel",
    "History",
    "HistoryError",
    "HistoryFormatError",
    "KvInput",
    "KvModel",
    "KvNoPartitionModel",
    "Model",
    "Operation",
    "ParsedHistory",
    "PartitionResult",
    "RegisterInput",
    "RegisterOutput",
    "Verdict",
    "Witness",
    "check",
    "check_partition",
    "detect_format",
    "dump_json_history",
    "get_model",
    "minimize",
    "parse_history",
    "parse_jepsen_etcd",
    "parse_json_history",
    "parse_porcupine_kv",
    "partition",
]
