"""Helpers shared by tests: private stacks on free ports."""

from __future__ import annotations

import random
from pathlib import Path

from pang.stack.process import port_is_free


def free_port(*, with_grpc: bool = False, taken: set[int]) -> int:
    """A loopback port nothing listens on (and its +10000 gRPC twin, for SeaweedFS)."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(20000, 45000)
        pair = {port, port + 10000} if with_grpc else {port}
        if not pair & taken and all(port_is_free(p) for p in pair):
            taken |= pair
            return port
    raise RuntimeError("no free port found")


def stack_overrides(state_dir: Path) -> dict[str, object]:
    """Settings for a private stack: fresh state folder, free ports everywhere."""
    taken: set[int] = set()
    return {
        "state_dir": state_dir,
        "opensearch_url": f"http://127.0.0.1:{free_port(taken=taken)}",
        "opensearch_transport_port": free_port(taken=taken),
        "s3_local_port": free_port(with_grpc=True, taken=taken),
        "seaweedfs_master_port": free_port(with_grpc=True, taken=taken),
        "seaweedfs_volume_port": free_port(with_grpc=True, taken=taken),
        "seaweedfs_filer_port": free_port(with_grpc=True, taken=taken),
        "seaweedfs_admin_port": free_port(with_grpc=True, taken=taken),
        "opensearch_heap": "1g",
    }
