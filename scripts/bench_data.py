"""Input pipeline speed: compoptim's tensor path vs torch's DataLoader, same data, one run.

    python scripts/bench_data.py                   # digits, and a CIFAR-shaped set with augmentation
    python scripts/bench_data.py --batch 128 --epochs 3 --cifar-samples 20000

compoptim holds a node's shard as tensors (on the training device) and cuts shuffled batches
by indexing, with CIFAR's random crop + flip as batched tensor ops. The baseline is the usual
per-sample ``torch.utils.data.DataLoader`` over the same tensors (with the same augmentation
per sample, as torchvision transforms do). Samples per second over whole epochs, median of runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from compoptim.data import ShardLoader, load_dataset
from compoptim.data.cifar10 import random_crop_flip


class AugmentedImages(Dataset):
    """Per-sample random crop (4-pixel padding) + flip, the torchvision way."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        from torchvision import transforms

        self.x, self.y = x, y
        self.transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.transform(self.x[i]), self.y[i]


def rate(iterate, samples: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in iterate():
            pass
        times.append(time.perf_counter() - start)
    return samples / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cifar-samples", type=int, default=10000)
    args = parser.parse_args()
    digits = load_dataset({"name": "digits"})
    g = torch.Generator().manual_seed(0)
    cifar_x = torch.randn(args.cifar_samples, 3, 32, 32, generator=g)
    cifar_y = torch.randint(0, 10, (args.cifar_samples,), generator=g)
    cases = [("digits (1,437 x 1x28x28)", digits.x_train, digits.y_train, None, TensorDataset(digits.x_train,
                                                                                            digits.y_train)),
             (f"CIFAR-shaped ({args.cifar_samples:,} x 3x32x32) + crop/flip", cifar_x, cifar_y, random_crop_flip,
              AugmentedImages(cifar_x, cifar_y))]
    print(f"batch {args.batch}, torch threads {torch.get_num_threads()}, samples/s (median of {args.repeats} epochs)")
    print("| data | compoptim tensor path | torch DataLoader | speed-up |")
    print("|---|---|---|---|")
    for name, x, y, augment, dataset in cases:
        shard = np.arange(len(y))
        loader = ShardLoader(x, y, shard, args.batch, len(y), seed=0, device=torch.device("cpu"), augment=augment)
        ours = rate(loader.epoch, len(y), args.repeats)
        baseline_loader = DataLoader(dataset, batch_size=args.batch, shuffle=True)
        theirs = rate(lambda dl=baseline_loader: iter(dl), len(y), args.repeats)
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x |")


if __name__ == "__main__":
    main()
