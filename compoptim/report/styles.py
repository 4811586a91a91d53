"""How a figure tells groups apart: the first dimension by colour, the second by line style, the
third by marker (further dimensions share the colour with the first), so an optimizer x
compressor grid reads as 'colour = optimizer, dashes = compressor' from a legend of few entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from compoptim.report.grouping import Group, dimension_text

LINESTYLES: list[Any] = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
NEUTRAL = "0.35"  # the colour of legend entries that explain a line style or a marker


@dataclass(frozen=True)
class Style:
    colour: Any
    linestyle: Any = "-"
    marker: str | None = None


@dataclass
class Encoding:
    """Each group's style, and the legend: one entry per value of each encoded dimension. Plots
    of points (no lines) mark the second and third dimensions together by ``point_markers``."""

    styles: dict[str, Style]
    legend: list[tuple[str, Style]]
    point_markers: dict[str, str]

    def handles(self) -> tuple[list[Line2D], list[str]]:
        handles = [Line2D([], [], color=s.colour, linestyle=s.linestyle if s.linestyle else "none",
                          marker=s.marker) for _, s in self.legend]
        return handles, [label for label, _ in self.legend]


def encode(groups: Sequence[Group], dims: Sequence[str]) -> Encoding:
    """Styles from the groups' values of ``dims`` (in the order the groups come)."""
    colour_dims, style_dims, marker_dims = [*dims[:1], *dims[3:]], dims[1:2], dims[2:3]

    def values(of: Sequence[str]) -> list[tuple]:
        return list(dict.fromkeys(tuple(g.values[d] for d in of) for g in groups))

    colours, styles, markers = values(colour_dims), values(style_dims), values(marker_dims)
    shapes = values(dims[1:3])
    point_markers = {g.label: MARKERS[shapes.index(tuple(g.values[d] for d in dims[1:3])) % len(MARKERS)]
                     for g in groups}
    palette = _palette(len(colours))
    encoded = {g.label: Style(palette[colours.index(tuple(g.values[d] for d in colour_dims))],
                              LINESTYLES[styles.index(tuple(g.values[d] for d in style_dims)) % len(LINESTYLES)],
                              MARKERS[markers.index(tuple(g.values[d] for d in marker_dims)) % len(MARKERS)]
                              if marker_dims else None)
               for g in groups}
    if len(dims) <= 1:  # nothing to factor: one entry per group, in its own style
        return Encoding(encoded, [(g.label, encoded[g.label]) for g in groups] if dims else [], point_markers)
    legend = [(_text(colour_dims, v), Style(palette[i])) for i, v in enumerate(colours)]
    legend += [(_text(style_dims, v), Style(NEUTRAL, LINESTYLES[i % len(LINESTYLES)])) for i, v in enumerate(styles)]
    if marker_dims:
        legend += [(_text(marker_dims, v), Style(NEUTRAL, None, MARKERS[i % len(MARKERS)]))
                   for i, v in enumerate(markers)]
    return Encoding(encoded, legend, point_markers)


def _text(dims: Sequence[str], values: tuple) -> str:
    return ", ".join(dimension_text(d, v) for d, v in zip(dims, values))


def _palette(n: int) -> list[Any]:
    """Distinct colours: tab10, tab20 for more, evenly spaced viridis beyond that."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(max(n, 1))]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(i / (n - 1)) for i in range(n)]
