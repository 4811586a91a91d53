"""The network time model (``network=<preset>``): what a run's training would take on a named
network, the ``sim_time_s`` of metrics.csv, on every backend.

Each node keeps a clock. Between two of its events its own work advances it by c: its
measured busy time (wall time minus the time blocked on other nodes) or, with
``step_compute_s``, that many seconds per training step (machine-independent), times
``straggler_factor`` on the nodes listed in ``stragglers``. Messages follow the per-link
latency-bandwidth model (alpha-beta): a message of b bytes takes ``latency_s + b /
bandwidth`` on its link; links are full-duplex and independent, and sends do not block
the sender. A synchronous gossip round r in which node j posts its message at

    s_j = e_j(r-1) + c_j(before posting)

ends for node i when its own work is done and its slowest in-neighbour's message has arrived:

    e_i(r) = max( s_i + c_i(between posting and waiting),  max_{j -> i} s_j + latency + b_j / bandwidth ).

An all-reduce of b bytes (the all-reduce baselines) starts when the last node reaches it and
ends for every node after the ring all-reduce time 2 (n - 1) (latency + b / (n bandwidth)).
A run's simulated time is the latest clock, after each node's work since its last round.
Evaluation, checkpoints and logging are not training: they do not advance the clocks.

The clocks are resolved once per epoch: each node hands its rounds since the last
resolution (``NodeClock.take``), node 0 gathers them and steps the recursion above
(``SimulatedNetwork.advance``), so nothing is added to a training step but a few floats
appended to a list.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from compoptim.comm.counters import TrafficCounters
from compoptim.errors import UserError, check_range
from compoptim.registry import Registry
from compoptim.topology.base import Topology

GOSSIP, ALLREDUCE = 0.0, 1.0  # a round's kind, as logged
_FIELDS = 5  # per round: compute before posting, compute until waiting, bytes per message, kind, step


@dataclass(frozen=True)
class NetworkModel:
    """Per-link ``latency_s`` and ``bandwidth_gbps`` (10^9 bits per second, each direction;
    None: unlimited, messages take only their latency), and the nodes' compute (see the module)."""

    name: str
    latency_s: float
    bandwidth_gbps: float | None
    step_compute_s: float | None = None
    stragglers: tuple[int, ...] = ()
    straggler_factor: float = 1.0

    def __post_init__(self) -> None:
        check_range("network.latency_s", self.latency_s, 0.0)
        if self.bandwidth_gbps is not None:
            check_range("network.bandwidth_gbps", self.bandwidth_gbps, 0.0, low_open=True)
        if self.step_compute_s is not None:
            check_range("network.step_compute_s", self.step_compute_s, 0.0)
        check_range("network.straggler_factor", self.straggler_factor, 0.0, low_open=True)

    @property
    def bytes_per_s(self) -> float:
        return math.inf if self.bandwidth_gbps is None else self.bandwidth_gbps * 1e9 / 8

    def message_s(self, nbytes: float) -> float:
        """Seconds one message of ``nbytes`` takes on one link."""
        return self.latency_s + nbytes / self.bytes_per_s

    def allreduce_s(self, nbytes: float, n: int) -> float:
        """Seconds of a ring all-reduce of ``nbytes`` over ``n`` nodes: 2 (n - 1) steps, each
        moving one n-th of the vector over every link at once."""
        return 0.0 if n <= 1 else 2 * (n - 1) * (self.latency_s + nbytes / (n * self.bytes_per_s))

    def compute_factor(self, rank: int) -> float:
        return self.straggler_factor if rank in self.stragglers else 1.0

    def check_nodes(self, n: int) -> None:
        wrong = [r for r in self.stragglers if not 0 <= r < n]
        if wrong:
            raise UserError(f"network.stragglers names node(s) {wrong} of a run with {n} nodes; allowed: 0 to {n - 1}")


def _preset(name: str, latency_s: float, bandwidth_gbps: float | None, doc: str):
    def preset(latency_s: float = latency_s, bandwidth_gbps: float | None = bandwidth_gbps,
               step_compute_s: float | None = None, stragglers: tuple[int, ...] = (),
               straggler_factor: float = 1.0) -> NetworkModel:
        return NetworkModel(name, latency_s, bandwidth_gbps, step_compute_s, tuple(stragglers), straggler_factor)

    preset.__doc__ = doc
    preset.__name__ = name
    return preset


NETWORKS = Registry("network")
# The presets' links, stated once (typical small-message latencies of MPI on each fabric).
NETWORKS.register("ideal", _preset("ideal", 0.0, None,
                                   "Messages take no time: the simulated time is the synchronous compute time."))
NETWORKS.register("ethernet_1g", _preset("ethernet_1g", 50e-6, 1.0, "1 Gb/s Ethernet, 50 µs per message."))
NETWORKS.register("ethernet_10g", _preset("ethernet_10g", 20e-6, 10.0, "10 Gb/s Ethernet, 20 µs per message."))
NETWORKS.register("infiniband_hdr", _preset("infiniband_hdr", 1e-6, 200.0, "InfiniBand HDR: 200 Gb/s, 1 µs."))
NETWORKS.register("wan_100m", _preset("wan_100m", 20e-3, 0.1, "A 100 Mb/s wide-area link, 20 ms one way."))
NETWORKS.register("custom", _preset("custom", 0.0, None, "Your own link: network=custom network.latency_s=5e-6 "
                                                        "network.bandwidth_gbps=25 (unset, it is ideal)."))


@dataclass
class NodeClock:
    """One node's side of the model: its busy time, and its rounds since the last ``take``."""

    model: NetworkModel
    counters: TrafficCounters
    virtual: float = 0.0  # with step_compute_s: the configured compute so far
    rounds: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    _mark: float = 0.0  # busy time at the last event logged
    _posted: float = 0.0

    def busy(self) -> float:
        """Seconds of this node's own work so far (on its own, unscaled)."""
        if self.model.step_compute_s is not None:
            return self.virtual
        return time.perf_counter() - self.counters.wait_time_s

    def restart(self) -> None:
        """Training resumes (an epoch starts): what happened since the last take is not training."""
        self._mark = self.busy()

    def compute_step(self) -> None:
        """A training step's compute, where ``step_compute_s`` replaces the measured time."""
        if self.model.step_compute_s is not None:
            self.virtual += self.model.step_compute_s

    def posted(self) -> None:
        self._posted = self.busy()

    def waited(self, nbytes: int, step: int, kind: float = GOSSIP) -> None:
        """A round completes: this node posted ``nbytes`` per message at its last ``posted``
        (an all-reduce posts and waits at once)."""
        now = self.busy()
        posted = now if kind == ALLREDUCE else self._posted
        self.rounds.append((posted - self._mark, now - posted, float(nbytes), kind, float(step)))
        self._mark = now

    def take(self) -> np.ndarray:
        """[rounds * 5 values..., compute since the last round]: the log to resolve; then empty."""
        now = self.busy()
        log = np.array([v for r in self.rounds for v in r] + [now - self._mark], dtype=np.float64)
        self.rounds.clear()
        self._mark = now
        return log


class SimulatedNetwork:
    """The clocks of all nodes (kept by the node that writes the metrics)."""

    def __init__(self, model: NetworkModel, topology: Topology) -> None:
        self.model, self.topology = model, topology
        n = topology.n
        self.clocks = np.zeros(n, dtype=np.float64)
        self.factors = np.array([model.compute_factor(r) for r in range(n)], dtype=np.float64)
        # Per round of the topology's period: in-neighbours padded with the node itself, and a mask.
        self._in = []
        for r in range(topology.period):
            nbrs = [sorted(topology.weights(i, r)[1]) for i in range(n)]
            width = max(1, max(len(x) for x in nbrs))
            index = np.array([x + [i] * (width - len(x)) for i, x in enumerate(nbrs)], dtype=np.int64)
            mask = np.array([[k < len(x) for k in range(width)] for x in nbrs], dtype=bool)
            self._in.append((index, mask))

    def advance(self, logs: Sequence[np.ndarray]) -> np.ndarray:
        """Step every clock through the nodes' logs (``NodeClock.take``, by rank); the clocks."""
        n = self.topology.n
        rounds = {(len(log) - 1) // _FIELDS for log in logs}
        if len(rounds) != 1:
            raise RuntimeError(f"the nodes logged different numbers of rounds ({sorted(rounds)}): the network "
                               f"model needs every node in every round")
        table = np.stack([log[:-1].reshape(-1, _FIELDS) for log in logs])  # (n, rounds, fields)
        e = self.clocks
        for r in range(table.shape[1]):
            before, during, nbytes, kind, step = (table[:, r, k] for k in range(_FIELDS))
            posted = e + before * self.factors
            done = posted + during * self.factors
            if kind[0] == ALLREDUCE:
                e = np.full(n, done.max() + self.model.allreduce_s(float(nbytes.max()), n))
                continue
            index, mask = self._in[int(step[0]) % self.topology.period]
            arrival = posted + self.model.latency_s + nbytes / self.model.bytes_per_s
            e = np.maximum(done, np.where(mask, arrival[index], -np.inf).max(axis=1))
        self.clocks = e + np.array([log[-1] for log in logs]) * self.factors
        return self.clocks

    @property
    def time_s(self) -> float:
        """The run's simulated time so far: when the last node is done."""
        return float(self.clocks.max())
