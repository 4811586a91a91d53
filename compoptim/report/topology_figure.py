"""A picture of a run's topology (from its topology.json): nodes, edges by weight, rounds by colour."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import networkx as nx


def node_positions(spec: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """A layout that shows the structure: a grid for a torus, the hub in the middle of a star,
    a circle otherwise (rings, exponential graphs, hypercubes read best on a circle)."""
    n = spec["n"]
    if spec["name"] == "torus":
        cols = spec["cols"]
        return {i: (float(i % cols), -float(i // cols)) for i in range(n)}
    circle = {i: (math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i in range(n)}
    if spec["name"] == "star" and n > 1:
        others = n - 1
        return {0: (0.0, 0.0), **{i: (math.cos(2 * math.pi * (i - 1) / others),
                                      math.sin(2 * math.pi * (i - 1) / others)) for i in range(1, n)}}
    return circle


def draw_topology(spec: dict[str, Any], path: Path) -> Path:
    """Write the picture (``topology_figure``) to ``path``, format from its suffix."""
    fig = topology_figure(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def topology_figure(spec: dict[str, Any]) -> plt.Figure:
    """The picture of a topology; edge width grows with w_ij.

    A time-varying schedule draws each round's edges in its own colour (the legend names
    the rounds), so a one-peer schedule shows which peer each round pairs. A directed graph
    draws each link i -> j as an arrow, bent a little so that i -> j and j -> i both show.
    """
    directed = bool(spec.get("directed"))
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(spec["n"]))
    pos = node_positions(spec)
    rounds = spec["rounds"]
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    colours = plt.get_cmap("tab10")
    for r, round_ in enumerate(rounds):
        colour = colours(r % 10) if len(rounds) > 1 else "0.35"
        label = f"round {r}" if len(rounds) > 1 else None
        # Wrap-around edges of a grid would hide behind the grid lines: they are drawn as arcs.
        grid = spec["name"] == "torus"
        wraps = [e for e in round_["edges"] if grid and math.dist(pos[e[0]], pos[e[1]]) > 1.01]
        for edges, arc in ((wraps, True), ([e for e in round_["edges"] if e not in wraps], False)):
            if not edges:
                continue
            if directed:
                shape = {"arrows": True, "arrowstyle": "-|>", "arrowsize": 12, "node_size": 300,
                         "connectionstyle": "arc3,rad=0.12"}
            elif arc:
                shape = {"arrows": True, "arrowstyle": "-", "connectionstyle": "arc3,rad=0.25"}
            else:
                shape = {}
            nx.draw_networkx_edges(graph, pos, edgelist=[(i, j) for i, j, _ in edges], ax=ax,
                                   width=[0.5 + 4.0 * w for _, _, w in edges],
                                   edge_color=[colour] * len(edges), label=None if arc else label, **shape)
            if directed and label:  # arrows (patches) take no legend entry of their own
                ax.plot([], [], color=colour, label=label)
    nx.draw_networkx_nodes(graph, pos, node_size=300 if spec["n"] <= 32 else 60, node_color="#4c72b0", ax=ax)
    if spec["n"] <= 32:
        nx.draw_networkx_labels(graph, pos, font_size=8, font_color="white", ax=ax)
    if 1 < len(rounds) <= 12:
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    period = f", period {len(rounds)}" if len(rounds) > 1 else ""
    rate = f"directed, mixing rate 1-|λ2| {spec['spectral_gap']:.4f}" if directed else \
        f"spectral gap {spec['spectral_gap']:.4f}, ||W-J|| {spec['distance_to_average']:.4f}"
    ax.set_title(f"{spec['name']}, n={spec['n']}{period}\n{rate}", fontsize=10)
    ax.set_axis_off()
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig
