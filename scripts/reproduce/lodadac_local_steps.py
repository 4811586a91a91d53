"""LoDAdaC's local-steps trade-off: K local AMSGrad steps between CHOCO-compressed gossip
rounds, with top-k (Liu et al., "LoDAdaC: a unified local training-based decentralized
framework with adaptive gradients and compressed communication", TMLR 2026; the origin
project's grid is ``+experiment=lodadac_cifar10``).

    python scripts/reproduce/lodadac_local_steps.py          # ~6 min here; rewrites its section
    python scripts/reproduce/lodadac_local_steps.py --smoke  # a few steps per configuration (CI)

The paper: multiple local training steps and compression multiply into a reduction of the
communication cost, while adaptive updates keep convergence fast (their grid: 4 nodes on a
ring, ResNet-20 on CIFAR-10, Adam/AMSGrad/AdaGrad lr 1e-3, top-k keeping 30-60%, K up to 50,
250*K epochs). Here: LeNet-5 on digits, 4 nodes on a ring, iid shards, decentralized AMSGrad
lr 1e-3 (optimizer.period = K), batch 32, the same 30 epochs for every K (a fixed
computation budget, so a larger K communicates K times less), K in {1, 5, 20} x {exact,
top-k 30%, top-k 5%}, 2 seeds.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import Reproduction, final_acc, mean_spread, table

SETTING = ["backend.nodes=4", "topology=ring", "dataset=digits", "dataset/partition=iid", "model=lenet5",
           "optimizer=amsgrad", "optimizer.lr=1e-3"]
COMPRESSORS = {"exact": ["compressor=none"], "top-k 30%": ["compressor=topk", "compressor.ratio=0.3"],
               "top-k 5%": ["compressor=topk", "compressor.ratio=0.05"]}


def main(argv=None) -> None:
    rep = Reproduction("lodadac_local_steps", __doc__, argv)
    seeds = [0] if rep.smoke else [0, 1]
    periods = [1, 5] if rep.smoke else [1, 5, 20]
    epochs = 1 if rep.smoke else 30
    results = {(k, c): [rep.train(f"K{k}-{c.replace(' ', '').replace('%', '')}-s{s}",
                                  [*SETTING, f"optimizer.period={k}", *comp, f"trainer.epochs={epochs}", f"seed={s}"])
                        for s in seeds]
               for k in periods for c, comp in COMPRESSORS.items()}

    figure = rep.figure_path()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = dict(zip(COMPRESSORS, "osD"))
    rows = []
    for (k, c), runs in results.items():
        accs = [final_acc(r) for r in runs]
        sent = np.mean([r.summary["bytes_sent_per_node"] for r in runs])
        rows.append([k, c, mean_spread(accs), f"{sent / 1e6:.2f}", f"{runs[0].summary['consensus_distance']:.2e}"])
        left.scatter(sent / 1e6, np.mean(accs), marker=markers[c], s=50, label=f"K={k}, {c}",
                     color=f"C{periods.index(k)}")
        curve = np.mean([r.metrics["test_acc"].to_numpy() for r in runs], axis=0)
        sent_so_far = runs[0].metrics["bytes_sent_per_node"].to_numpy()
        after = sent_so_far > 0  # the initial model (nothing sent yet) has no place on a log axis
        right.plot(sent_so_far[after] / 1e6, curve[after],
                   color=f"C{periods.index(k)}", linestyle={"exact": "-", "top-k 30%": "--", "top-k 5%": ":"}[c])
    left.set_xscale("log")
    left.set_xlabel("MB sent per node over the run (log)")
    left.set_ylabel("final test accuracy of the average")
    left.set_title(f"K local steps x compression (mean of {len(seeds)} seeds)")
    left.legend(fontsize=7, ncol=2)
    right.set_xscale("log")
    right.set_xlabel("MB sent per node (log)")
    right.set_ylabel("test accuracy of the average")
    right.set_title("accuracy along the run (colour: K; line: compressor)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    rep.write_section(f"""
Final test accuracy of the averaged model over seeds {', '.join(map(str, seeds))} (mean ± std (min–max)),
bytes sent per node over the {epochs} epochs (mean over seeds), consensus distance at the end (seed {seeds[0]}):

{table(["K", "compression", "test acc", "MB/node", "consensus"], rows)}

![LoDAdaC local steps vs compression](figures/{figure.name})
""")



if __name__ == "__main__":
    main()
