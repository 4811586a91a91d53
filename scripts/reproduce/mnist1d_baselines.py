"""MNIST-1D (Greydanus, "Scaling down deep learning", 2020): the published single-model
baselines with n = 1, then what decentralization costs on the same data.

    python scripts/reproduce/mnist1d_baselines.py           # ~12 min here; rewrites its section
    python scripts/reproduce/mnist1d_baselines.py --smoke   # a few steps per configuration (CI)

The paper (README of github.com/greydanus/mnist1d): test accuracy 32% (logistic regression),
68% (MLP), 94% (CNN) on the default dataset (4000 train / 1000 test), each trained with Adam,
lr 1e-2, batch 100, 6000 steps. Here, n = 1: the same dataset (generated offline by the
package, dataset=mnist1d), logreg, an MLP with two hidden layers of 100, and model=cnn1d
(the paper's CNN, 5,210 parameters), Adam lr 1e-2 (allreduce_adam on one node is Adam), batch
100, 150 epochs = 6000 steps, 3 seeds. Then the CNN with SGD: one node; all-reduce SGD on 8
and 16 nodes (the same global batch and steps as the decentralized runs, without gossip);
D-PSGD and CHOCO-SGD + top-10% on 8 and 16 nodes (ring), iid and label-sorted shards; batch 32
per node, the same lr and epochs for all, seed 0.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import Reproduction, final_acc, mean_spread, table

from compoptim.data.mnist1d import PUBLISHED_TEST_ACC

BASELINES = {"logistic regression": ["model=logreg"], "MLP": ["model=mlp", "model.hidden=[100,100]"],
             "CNN": ["model=cnn1d"]}
SGD_LR = 0.1


def main(argv=None) -> None:
    rep = Reproduction("mnist1d_baselines", __doc__, argv)
    smoke = rep.smoke
    seeds = [0] if smoke else [0, 1, 2]
    adam_epochs, sgd_epochs = (1, 1) if smoke else (150, 100)
    common = ["dataset=mnist1d", "trainer.eval_every=10"]

    single = {name: [rep.train(f"n1-{name.split()[0].lower()}-s{s}",
                               [*common, "backend.nodes=1", "topology=none", *model, "optimizer=allreduce_adam",
                                "optimizer.lr=1e-2", "trainer.batch_size=100", f"trainer.epochs={adam_epochs}",
                                f"seed={s}"]) for s in seeds]
              for name, model in BASELINES.items()}

    sgd = [*common, "model=cnn1d", f"optimizer.lr={SGD_LR}", f"trainer.epochs={sgd_epochs}", "trainer.batch_size=32"]
    decentralized = {("SGD, 1 node", 1, "—"): rep.train("sgd-n1", [*sgd, "backend.nodes=1", "topology=none",
                                                                   "optimizer=allreduce_sgd"])}
    for n in [8] if smoke else [8, 16]:
        # the same global batch and number of steps without decentralization: the exact average
        # of the n gradients every step (what n nodes cost before any gossip does)
        decentralized[("all-reduce SGD", n, "iid")] = rep.train(
            f"allreduce-n{n}", [*sgd, f"backend.nodes={n}", "topology=ring", "optimizer=allreduce_sgd"])
        for partition in ("iid", "label"):
            for method, overrides in (("D-PSGD", ["optimizer=dsgd", "compressor=none"]),
                                      ("CHOCO-SGD + top-10%", ["optimizer=choco_sgd", "compressor=topk",
                                                               "compressor.ratio=0.1"])):
                key = f"{'dsgd' if method == 'D-PSGD' else 'choco'}-n{n}-{partition}"
                decentralized[(method, n, partition)] = rep.train(
                    key, [*sgd, f"backend.nodes={n}", "topology=ring", f"dataset/partition={partition}", *overrides])

    figure = rep.figure_path()
    draw(figure, single, decentralized)
    rows = [[name, f"{100 * PUBLISHED_TEST_ACC[name]:.0f}%", mean_spread([100 * final_acc(r) for r in runs], 1),
             f"{runs[0].summary['num_params']:,}"] for name, runs in single.items()]
    base = final_acc(decentralized[("SGD, 1 node", 1, "—")])
    rows2 = [[method, n, partition, r.summary["steps"], f"{100 * final_acc(r):.1f}",
              f"{100 * (final_acc(r) - base):+.1f}",
              f"{r.summary['train_objective']:.3f}", f"{r.summary['consensus_distance']:.2e}",
              f"{r.summary['bytes_sent_per_node'] / 1e6:.2f}"] for (method, n, partition), r in decentralized.items()]
    rep.write_section(f"""
**n = 1, Adam lr 1e-2, batch 100, {adam_epochs} epochs ({adam_epochs * 40} steps)**: final test accuracy,
seeds {', '.join(map(str, seeds))} (mean ± std (min–max)).

{table(["model", "paper", "ours", "parameters"], rows)}

**Decentralized, the CNN with SGD** (lr {SGD_LR}, batch 32 per node, {sgd_epochs} epochs, ring, seed 0): final test
accuracy of the averaged model, its difference to one node with the same SGD, f(x̄) on the whole
training set, consensus distance and MB sent per node.

{table(["method", "nodes", "shards", "steps/node", "test acc %", "vs 1 node", "f(x̄)", "consensus", "MB/node"],
       rows2)}

![MNIST-1D](figures/{figure.name})
""")



def draw(path, single, decentralized) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (name, runs) in enumerate(single.items()):
        curve = np.mean([r.metrics["test_acc"].to_numpy() for r in runs], axis=0)
        left.plot(runs[0].metrics["epoch"], curve, color=f"C{i}", label=f"{name} (n=1)")
        left.axhline(PUBLISHED_TEST_ACC[name], color=f"C{i}", linestyle=":", linewidth=1)
    left.set_title("n = 1, Adam (dotted: the paper's numbers)")
    for (method, n, partition), r in decentralized.items():
        style = "-" if partition in ("iid", "—") else "--"
        right.plot(r.metrics["epoch"], r.metrics["test_acc"], linestyle=style,
                   label=f"{method}" + ("" if n == 1 else f", n={n}, {partition}"))
    right.set_title("the CNN with SGD (dashed: label-sorted shards)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
