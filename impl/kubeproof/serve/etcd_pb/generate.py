"""Regenerates ``kv_pb2``/``rpc_pb2`` (and ``.pyi`` stubs) from the .proto files here.

Run ``python -m kubeproof.serve.etcd_pb.generate [OUT_DIR]`` (needs the dev
extra's grpcio-tools).  Without OUT_DIR the files beside this module are
rewritten; with it they are written under OUT_DIR (tests compare the two).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTOS = ("kubeproof/serve/etcd_pb/kv.proto", "kubeproof/serve/etcd_pb/rpc.proto")


def generate(out_dir: Path | None = None) -> Path:
    from grpc_tools import protoc  # type: ignore[import-untyped]

    # The import root: impl/, so generated imports read kubeproof.serve.etcd_pb.
    root = Path(__file__).resolve().parents[3]
    out = root if out_dir is None else out_dir
    out.mkdir(parents=True, exist_ok=True)
    code = protoc.main(["protoc", f"-I{root}", f"--python_out={out}", f"--pyi_out={out}", *PROTOS])
    if code != 0:
        raise RuntimeError(f"protoc failed with exit status {code}")
    return out / "kubeproof" / "serve" / "etcd_pb"


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
