"""One node's traffic and time counters, in one object: the communicator counts bytes and
transfer times into it, the ``Metered`` compressors of the node count encodes into it, and
the trainer reads, checkpoints and resets it as a whole."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class TrafficCounters:
    """Cumulative counters of one node.

    - ``bytes_sent`` / ``bytes_received``: payload bytes of training traffic, counted from
      the buffers handed to and filled by the transport;
    - ``messages_sent``: the neighbour messages that carried a payload (a round an
      event-triggered node skips sends none), so bytes / messages is the payload size;
    - ``metric_bytes_sent`` / ``metric_bytes_received``: evaluation and logging reductions,
      kept apart so they never inflate the algorithm's byte budget;
    - ``compress_time_s`` (encode, decode and the weighted sum), ``comm_time_s`` (posting
      transfers, staging copies) and ``wait_time_s`` (blocked until the neighbours' data
      arrived). On CUDA, kernels run asynchronously, so their time lands where the host
      next waits for them;
    - for a pipeline stage (``parallel=pipeline``): ``activation_bytes_sent``, the
      activations and their gradients sent to the neighbouring stages (apart from the
      gossip's bytes); ``pipeline_time_s``, the time in
      the engine's schedule, and ``bubble_time_s``, the part of it the stage did not compute
      (waiting for the other stages);
    - for asynchronous gossip (AD-PSGD): ``staleness_sum`` / ``staleness_max`` over
      ``stale_steps`` steps, where a step's staleness is the number of averagings other
      nodes applied to this node's model between the read its gradient was computed at and
      the write of that gradient;
    - ``encode_count``: encodes by all the node's compressors (it paces the error sampling);
    - ``error_sum`` / ``error_count``: the sampled relative errors ||C(x) - x|| / ||x||
      since the last ``take_compression_error``.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    metric_bytes_sent: int = 0
    metric_bytes_received: int = 0
    compress_time_s: float = 0.0
    comm_time_s: float = 0.0
    wait_time_s: float = 0.0
    activation_bytes_sent: int = 0
    pipeline_time_s: float = 0.0
    bubble_time_s: float = 0.0
    staleness_sum: int = 0
    staleness_max: int = 0
    stale_steps: int = 0
    encode_count: int = 0
    error_sum: float = 0.0
    error_count: int = 0

    def state_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, int | float]) -> None:
        for f in dataclasses.fields(self):  # each keeps its own type, int or float
            # a checkpoint from before a counter existed: it was 0 then
            setattr(self, f.name, type(f.default)(state.get(f.name, f.default)))

    def take_compression_error(self) -> tuple[float, int]:
        """(sum, count) of the sampled relative errors since the last call, then both reset
        (a lossless compressor is not sampled, and reports 0)."""
        taken = (self.error_sum, self.error_count)
        self.error_sum, self.error_count = 0.0, 0
        return taken
