"""etcd v3's wire messages, generated from kubeproof's own ``kv.proto`` and ``rpc.proto``.

The two .proto files beside this module were written for kubeproof from
the facts of etcd 3.4's API (package, service, method and message names,
field numbers and types), because etcdctl and every etcd client put exactly
those bytes on the wire.  ``kv_pb2``/``rpc_pb2`` (and their ``.pyi`` type
stubs) are generated from them and committed, so that running kubeproof
needs only the ``protobuf`` runtime, not protoc.  Only messages are
generated: the gRPC services are registered by hand in
`kubeproof.serve.etcd_grpc`.

Regenerate after editing a .proto (tests/test_etcd_proto.py fails when the
committed files are stale)::

    python -m kubeproof.serve.etcd_pb.generate
"""
