"""Choosing a tf.distribute strategy by name, so one flag scales training past one device.

- "none": TensorFlow's default strategy (one device: the CPU or one GPU).
- "mirrored": MirroredStrategy, synchronous data parallelism over every local GPU (or the
  CPU when there is none).
- "multiworker": MultiWorkerMirroredStrategy across hosts; each host sets `TF_CONFIG`.

The per-replica batch size stays as configured; the global batch is that times the number of
replicas, as in the tf.distribute guides.
"""

from __future__ import annotations

STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name: str = "none"):
    """The tf.distribute.Strategy for `name` (see module docstring)."""
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution strategy {name!r}; choose one of {STRATEGIES}")


def global_batch_size(per_replica_batch_size: int, strategy) -> int:
    """Batch size across all replicas of `strategy`."""
    return per_replica_batch_size * strategy.num_replicas_in_sync
