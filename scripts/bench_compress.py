"""Encode + decode speed of every compressor beside torch.topk alone and a plain memory copy.

Decoding is timed as the gossip hot path uses it: ``decode_add`` into a preallocated vector.

    python scripts/bench_compress.py                  # 1M and 10M floats, CPU, all cores
    python scripts/bench_compress.py --sizes 1000000 --repeats 20 --device cuda

For each vector size, in one process and one run: the median time of ``repeats`` encodes
and of as many decodes (after warm-up), the throughput of encode+decode in GB/s of input
(4 bytes per float), the same relative to a plain copy of the vector (the memory-bandwidth
bound), the wire bytes against dense float32, and bits per entry. Layer-aware compressors
(top-k per layer, low-rank) see the vector as 1000 x 1000 matrices.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from compoptim.compress import CompressContext, build_compressor

CONFIGS = {
    "none": {"name": "none"},
    "fp16": {"name": "cast", "dtype": "float16"},
    "bf16": {"name": "cast", "dtype": "bfloat16"},
    "topk 1%": {"name": "topk", "ratio": 0.01},
    "topk 1% per layer": {"name": "topk", "ratio": 0.01, "per_layer": True},
    "topk 1% + EF": {"name": "topk", "ratio": 0.01, "error_feedback": True},
    "randomk 1%": {"name": "randomk", "ratio": 0.01},
    "qsgd s=7": {"name": "qsgd", "levels": 7},
    "sign": {"name": "sign"},
    "natural": {"name": "natural"},
    "lowrank r=2": {"name": "lowrank", "rank": 2},
}


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after two warm-up calls."""
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(numel: int, repeats: int, device: torch.device) -> list[dict]:
    x = torch.randn(numel, device=device)
    side = 1000
    layout = tuple((side, side) for _ in range(numel // side**2)) + (((numel % side**2,),) if numel % side**2 else ())
    ctx = CompressContext(layout=layout, seed=0, rank=0)
    dense = 4 * numel
    copy_target = torch.empty_like(x)
    copy_s = timed(lambda: copy_target.copy_(x), repeats, device)
    k = max(1, numel // 100)
    rows = [{"what": "memory copy", "encode": copy_s, "decode": 0.0, "bytes": dense},
            {"what": "torch.topk alone (k = 1%)", "encode": timed(lambda: torch.topk(x.abs(), k, sorted=False),
                                                                   repeats, device), "decode": 0.0, "bytes": None}]
    for name, cfg in CONFIGS.items():
        c = build_compressor(cfg, ctx)
        encode_s = timed(lambda c=c: c.encode(x), repeats, device)
        payload = c.encode(x).clone()
        decode_s = timed(lambda c=c, p=payload: c.decode_add(p, copy_target, 0.5), repeats, device)
        rows.append({"what": name, "encode": encode_s, "decode": decode_s, "bytes": c.payload_nbytes(numel)})
    for r in rows:
        r.update(numel=numel, copy=copy_s, dense=dense)
    return rows


def table(rows: list[dict]) -> str:
    head = ("| floats | compressor | encode ms | decode_add ms | enc+dec GB/s | copy time / enc+dec | wire bytes "
            "| fp32 / wire | bits per entry |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        total, wire = r["encode"] + r["decode"], r["bytes"]
        on_wire = "— | — | —" if wire is None else \
            f"{wire:,} | {r['dense'] / wire:.1f}x | {8 * wire / r['numel']:.3f}"
        lines.append(
            f"| {r['numel'] / 1e6:g}M | {r['what']} | {1e3 * r['encode']:.2f} | {1e3 * r['decode']:.2f} "
            f"| {r['dense'] / total / 1e9:.2f} | {r['copy'] / total:.3f} | {on_wire} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [row for numel in args.sizes for row in bench(numel, args.repeats, device)]
    print(f"device={device}, torch threads={torch.get_num_threads()}, torch {torch.__version__}")
    print(table(rows))


if __name__ == "__main__":
    main()
