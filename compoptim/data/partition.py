"""Splits of the training set across nodes: iid, by label, Dirichlet, shards.

Every partition uses each training sample exactly once across the nodes (disjoint shards
covering the set) and gives every node at least one sample, for any n up to the number of
samples (odd n included). ``PARTITIONS`` is the config group ``dataset/partition``: a
partition's settings are its parameters after ``(labels, n, seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from compoptim.errors import UserError
from compoptim.registry import Registry

PARTITIONS = Registry("partition", context=("labels", "n", "seed"))
# Dirichlet splits are redrawn (same seeded generator) until no node is empty, this often.
_DIRICHLET_DRAWS = 100


def iid_partition(num_samples: int, n: int, seed: int) -> list[np.ndarray]:
    """A random permutation cut into n nearly equal shards (sizes differ by at most 1)."""
    _check(num_samples, n)
    perm = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(s) for s in np.array_split(perm, n)]


@PARTITIONS.register("iid")
def iid(labels: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """``iid_partition`` of the samples: the labels play no part."""
    return iid_partition(len(labels), n, seed)


@PARTITIONS.register("label")
def label_partition(labels: np.ndarray, n: int, seed: int, classes_per_node: int | None = None) -> list[np.ndarray]:
    """Each node holds ``classes_per_node`` classes (None: the fewest that cover every
    class, ceil(C/n)). Node i's slots take classes i*k, i*k+1, ... (mod C) in a seeded
    random class order, so with n*k <= C no two nodes share a class, and with more slots each
    class is shared by as few nodes as possible; a class's samples are split evenly among
    the nodes that hold it. No node is ever empty, also when n exceeds the class count."""
    _check(len(labels), n)
    classes = np.unique(labels)
    c = len(classes)
    k = classes_per_node if classes_per_node is not None else math.ceil(c / n)
    if not 1 <= k <= c:
        raise UserError(f"dataset.partition.classes_per_node must be between 1 and the {c} classes; got {k}")
    if n * k < c:
        raise UserError(f"dataset/partition=label with {n} nodes x {k} classes covers only {n * k} of {c} classes; "
                        f"set dataset.partition.classes_per_node >= {math.ceil(c / n)} (or null)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(classes)
    holders: dict[int, list[int]] = {int(cls): [] for cls in classes}
    for slot in range(n * k):
        holders[int(order[slot % c])].append(slot // k)
    shards: list[list[np.ndarray]] = [[] for _ in range(n)]
    for cls, nodes in holders.items():
        members = rng.permutation(np.flatnonzero(labels == cls))
        for node, part in zip(nodes, np.array_split(members, len(nodes))):
            shards[node].append(part)
    return _finish(shards, n)


@PARTITIONS.register("dirichlet")
def dirichlet_partition(labels: np.ndarray, n: int, seed: int, alpha: float = 0.5) -> list[np.ndarray]:
    """Per class, proportions p ~ Dirichlet(alpha, ..., alpha) over the nodes (Hsu et al.
    2019): small alpha, few classes per node; large alpha, near iid. Redrawn until every
    node has a sample."""
    _check(len(labels), n)
    if not 0 < alpha < math.inf:  # also refuses nan
        raise UserError(f"dataset.partition.alpha must be > 0 and finite (the Dirichlet concentration: "
                        f"small is non-iid, large near iid); got {alpha:g}")
    rng = np.random.default_rng(seed)
    for _ in range(_DIRICHLET_DRAWS):
        shards: list[list[np.ndarray]] = [[] for _ in range(n)]
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            cuts = (np.cumsum(rng.dirichlet(np.full(n, alpha))) * len(members)).astype(int)[:-1]
            for node, part in enumerate(np.split(members, cuts)):
                shards[node].append(part)
        if all(sum(len(p) for p in s) for s in shards):
            return _finish(shards, n)
    raise UserError(f"dataset/partition=dirichlet with alpha={alpha:g} left a node without samples in "
                    f"{_DIRICHLET_DRAWS} draws; raise dataset.partition.alpha or use fewer nodes")


@PARTITIONS.register("shards")
def shard_partition(labels: np.ndarray, n: int, seed: int, shards_per_node: int = 2) -> list[np.ndarray]:
    """Sort by label, cut into n*s equal shards and deal s random shards to each node
    (McMahan et al. 2017, the pathological non-iid split)."""
    _check(len(labels), n)
    if shards_per_node < 1 or n * shards_per_node > len(labels):
        raise UserError(f"dataset.partition.shards_per_node must be >= 1 and n*s <= {len(labels)} samples; "
                        f"got {shards_per_node}")
    rng = np.random.default_rng(seed)
    by_label = np.argsort(labels, kind="stable")
    pieces = np.array_split(by_label, n * shards_per_node)
    deal = rng.permutation(n * shards_per_node)
    return _finish([[pieces[p] for p in deal[i::n]] for i in range(n)], n)


def build_partition(cfg: Mapping[str, Any], labels: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """The partition ``cfg['name']`` (with its settings, e.g. ``{"name": "dirichlet", "alpha": 0.1}``)
    of a training set with these labels over n nodes."""
    if not isinstance(cfg, Mapping):  # dataset.partition=X on the command line replaces the node by a string
        raise UserError(f"the partition is a config group: choose it with dataset/partition={cfg} and set its "
                        f"settings as dataset.partition.<key>=...; got dataset.partition={cfg}")
    name = cfg.get("name")
    if name not in tuple(PARTITIONS):  # Registry lookups of unknown names raise, not return False
        raise UserError(f"dataset.partition must be one of {', '.join(PARTITIONS)}; got {name}")
    return PARTITIONS.build(cfg, labels, n, seed)


def label_histogram(labels: np.ndarray, shards: Sequence[np.ndarray], num_classes: int) -> list[list[int]]:
    """Per node, the count of each class in its shard (saved with the run, drawn by the report)."""
    return [np.bincount(labels[s], minlength=num_classes).tolist() for s in shards]


def _check(num_samples: int, n: int) -> None:
    if n > num_samples:
        raise UserError(f"cannot split {num_samples} training samples across {n} nodes")


def _finish(shards: list[list[np.ndarray]], n: int) -> list[np.ndarray]:
    out = [np.sort(np.concatenate(s)) if s else np.array([], dtype=np.int64) for s in shards]
    if any(len(s) == 0 for s in out):
        raise UserError(f"the partition left a node without samples across {n} nodes; use fewer nodes")
    return out
