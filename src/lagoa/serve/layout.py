"""A layered drawing of a directed acyclic graph (sources on the left, gold on the right), computed
on the server so that the browser only draws: a thousand nodes lay out in milliseconds.

Sugiyama's scheme, kept small: each node's layer is its longest path from a root, nodes within a
layer are ordered by the barycentre of their neighbours in the layer before (then after), a few
sweeps each way, and edges are drawn as curves between the layers' columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

NODE_WIDTH = 200
NODE_HEIGHT = 30
LAYER_GAP = 90
ROW_GAP = 14
SWEEPS = 4


@dataclass(frozen=True)
class Placed:
    id: str
    x: float
    y: float
    layer: int


@dataclass(frozen=True)
class Drawing:
    nodes: dict[str, Placed]
    edges: list[tuple[str, str, str]]
    """(from, to, SVG path)."""
    width: float
    height: float


def layers(nodes: Iterable[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's longest distance from a node without inputs (a cycle is cut where found)."""
    ids = list(nodes)
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    indegree = {n: len(parents[n]) for n in ids}
    layer = dict.fromkeys(ids, 0)
    ready = [n for n in ids if indegree[n] == 0]
    seen = 0
    while True:
        while ready:
            node = ready.pop()
            seen += 1
            for child in children[node]:
                layer[child] = max(layer[child], layer[node] + 1)
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if seen >= len(ids):
            return layer
        # A cycle: start again from one of its nodes as if its remaining inputs were not there.
        stuck = min((n for n in ids if indegree[n] > 0), key=lambda n: (indegree[n], n))
        indegree[stuck] = 0
        ready.append(stuck)


def draw(nodes: Iterable[str], edges: list[tuple[str, str]]) -> Drawing:
    ids = sorted(set(nodes))
    edges = [(a, b) for a, b in edges if a != b]
    layer = layers(ids, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in ids:
        columns[layer[node]].append(node)
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    order = {node: i for column in columns.values() for i, node in enumerate(column)}
    depth = max(columns) if columns else 0
    for _ in range(SWEEPS):
        for sweep, neighbours in ((range(1, depth + 1), parents), (range(depth - 1, -1, -1), children)):
            for index in sweep:
                column = columns[index]
                column.sort(key=lambda n: (_barycentre(n, neighbours, order), order[n]))
                order.update({node: i for i, node in enumerate(column)})
    placed: dict[str, Placed] = {}
    tallest = max((len(c) for c in columns.values()), default=0)
    height = tallest * (NODE_HEIGHT + ROW_GAP) + ROW_GAP
    for index, column in columns.items():
        offset = (height - len(column) * (NODE_HEIGHT + ROW_GAP)) / 2
        for i, node in enumerate(column):
            placed[node] = Placed(
                node,
                x=ROW_GAP + index * (NODE_WIDTH + LAYER_GAP),
                y=offset + ROW_GAP / 2 + i * (NODE_HEIGHT + ROW_GAP),
                layer=index,
            )
    paths = []
    for a, b in edges:
        start, end = placed[a], placed[b]
        x1, y1 = start.x + NODE_WIDTH, start.y + NODE_HEIGHT / 2
        x2, y2 = end.x, end.y + NODE_HEIGHT / 2
        bend = max((x2 - x1) / 2, 30)
        paths.append(
            (a, b, f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}")
        )
    width = ROW_GAP * 2 + (depth + 1) * NODE_WIDTH + depth * LAYER_GAP
    return Drawing(placed, paths, width, max(height, NODE_HEIGHT + 2 * ROW_GAP))


def _barycentre(node: str, neighbours: dict[str, list[str]], order: dict[str, int]) -> float:
    linked = neighbours.get(node)
    if not linked:
        return float(order[node])
    return sum(order[n] for n in linked) / len(linked)
