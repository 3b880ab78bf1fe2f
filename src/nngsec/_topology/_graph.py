"""Pictures of a checked deployment: Graphviz DOT and Mermaid, SVG/PNG through Graphviz.

Nodes are grouped by host; relays are hexagons; each link is an edge labelled with its
channel, pattern and scheme, pointing the way frames flow (publisher to subscriber, client
to server; both ways for pair and bus). Links touched by a finding are drawn red, dials
that reach nothing end in a red "nothing listens" box.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._errors import NngsecError, Problem
from ._check import CheckResult
from ._links import End, Link, node_key

__all__ = ["GRAPH_SUFFIXES", "render_dot", "render_mermaid", "write_graph"]

GRAPH_SUFFIXES = (".dot", ".gv", ".mmd", ".svg", ".png")
_BAD = "#c62828"


@dataclass(frozen=True, slots=True)
class _Vertex:
    id: str
    label: str
    host: str
    relay: bool
    bad: bool


@dataclass(frozen=True, slots=True)
class _Edge:
    tail: str
    head: str
    label: str
    both: bool  # frames flow both ways (pair, bus)
    bad: bool
    dashed: bool  # the ends cannot talk (mismatch), or nothing answers the dial


class _Picture:
    """The vertices and edges shared by both output formats."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        flagged = {s for f in result.findings for s in f.subjects}
        self.flagged = flagged
        self.vertices: dict[str, _Vertex] = {}
        edges: dict[tuple[str, str, str, bool, bool], bool] = {}
        for end in result.graph.ends:
            self._vertex(end)
        for link in result.graph.links:
            edge = self._edge(link)
            key = (edge.tail, edge.head, edge.label, edge.both, edge.dashed)
            edges[key] = edges.get(key, False) or edge.bad
        for port, _ in result.graph.unpaired:
            tail = self._vertex(port.end)
            head = "missing:" + port.address.url
            self.vertices[head] = _Vertex(
                head, f"{port.address.url}\nnothing listens", port.end.host, False, True
            )
            edges[(tail, head, self._channel_label(port.end), False, True)] = True
        self.edges = [
            _Edge(t, h, label, both, bad, dashed)
            for (t, h, label, both, dashed), bad in edges.items()
        ]

    def _vertex(self, end: End) -> str:
        if end.is_relay:
            vertex_id = f"relay:{end.node}:{end.index}"
            pattern = end.pattern.name if end.pattern is not None else "?"
            label = f"relay {end.node}\n{end.channel} ({pattern})"
            bad = end.relay_key in self.flagged
        else:
            vertex_id = f"node:{end.node}"
            identity = end.identity
            label = end.node if identity in (None, end.node) else f"{end.node}\nas {identity}"
            bad = node_key(end.topology, end.node) in self.flagged
        old = self.vertices.get(vertex_id)
        self.vertices[vertex_id] = _Vertex(
            vertex_id, label, end.host, end.is_relay, bad or (old is not None and old.bad)
        )
        return vertex_id

    def _channel_label(self, end: End) -> str:
        spec = self.result.policy.channels.get(end.channel)
        if spec is None:
            return f"{end.channel}\n(unknown channel)"
        return f"{end.channel}\n{spec.pattern_name}, {spec.resolved_scheme}"

    def _edge(self, link: Link) -> _Edge:
        a, b = link.dialer.end, link.listener.end
        tail, head = self._vertex(a), self._vertex(b)
        both = a.symmetric and link.mismatch is None
        # Point the way frames flow: from the initiator side (a relay's back acts as one).
        flows = not both and link.mismatch is None and a.sound and b.sound
        if flows and b.initiates:
            tail, head = head, tail
        bad = a.key in self.flagged or b.key in self.flagged
        dashed = link.mismatch is not None
        return _Edge(tail, head, self._channel_label(a), both, bad, dashed)

    def hosts(self) -> Iterator[tuple[str, list[_Vertex]]]:
        by_host: dict[str, list[_Vertex]] = {}
        for vertex in self.vertices.values():
            by_host.setdefault(vertex.host, []).append(vertex)
        for host in sorted(by_host):
            yield host, sorted(by_host[host], key=lambda v: v.id)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(result: CheckResult) -> str:
    """Graphviz DOT source of the deployment."""
    picture = _Picture(result)
    title = f"{result.policy.name}: " + ", ".join(t.display for t in result.topologies)
    out = [
        "digraph nngsec {",
        f"  graph [rankdir=LR, fontname=Helvetica, fontsize=12, label={_dot_quote(title)}, "
        "labelloc=t];",
        '  node [fontname=Helvetica, fontsize=11, shape=box, style="rounded,filled", '
        'fillcolor="#ffffff"];',
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    for number, (host, vertices) in enumerate(picture.hosts()):
        out.append(f"  subgraph cluster_{number} {{")
        out.append(
            f'    label={_dot_quote("host " + host)}; style="rounded,dashed"; color="#9e9e9e";'
        )
        for vertex in vertices:
            attrs = [f"label={_dot_quote(vertex.label)}"]
            if vertex.relay:
                attrs.append('shape=hexagon, fillcolor="#e3f2fd"')
            if vertex.id.startswith("missing:"):
                attrs.append('shape=note, style="dashed", fillcolor="#ffffff"')
            if vertex.bad:
                attrs.append(f'color="{_BAD}", penwidth=2')
            out.append(f"    {_dot_quote(vertex.id)} [{', '.join(attrs)}];")
        out.append("  }")
    for edge in picture.edges:
        attrs = [f"label={_dot_quote(edge.label)}"]
        if edge.both:
            attrs.append("dir=both")
        if edge.dashed:
            attrs.append("style=dashed")
        if edge.bad:
            attrs.append(f'color="{_BAD}", fontcolor="{_BAD}", penwidth=2')
        out.append(f"  {_dot_quote(edge.tail)} -> {_dot_quote(edge.head)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def render_mermaid(result: CheckResult) -> str:
    """Mermaid flowchart of the deployment (renders in GitHub and GitLab markdown)."""
    picture = _Picture(result)
    ids: dict[str, str] = {}

    def mid(vertex_id: str) -> str:
        if vertex_id not in ids:
            base = re.sub(r"[^A-Za-z0-9_]", "_", vertex_id)
            ids[vertex_id] = f"{base}_{len(ids)}"
        return ids[vertex_id]

    out = ["flowchart LR"]
    for number, (host, vertices) in enumerate(picture.hosts()):
        out.append(f"  subgraph host_{number}[{_mermaid_text('host ' + host)}]")
        for vertex in vertices:
            label = _mermaid_text(vertex.label)
            shape = f"{{{{{label}}}}}" if vertex.relay else f"[{label}]"
            out.append(f"    {mid(vertex.id)}{shape}")
        out.append("  end")
    bad_edges = []
    for number, edge in enumerate(picture.edges):
        arrow = (
            ("<-.->" if edge.both else "-.->") if edge.dashed else ("<-->" if edge.both else "-->")
        )
        out.append(f"  {mid(edge.tail)} {arrow}|{_mermaid_text(edge.label)}| {mid(edge.head)}")
        if edge.bad:
            bad_edges.append(str(number))
    out.append("  classDef relay fill:#e3f2fd,stroke:#1565c0")
    out.append(f"  classDef bad stroke:{_BAD},stroke-width:2px")
    relays = [mid(v.id) for v in picture.vertices.values() if v.relay]
    bad = [mid(v.id) for v in picture.vertices.values() if v.bad]
    if relays:
        out.append(f"  class {','.join(relays)} relay")
    if bad:
        out.append(f"  class {','.join(bad)} bad")
    if bad_edges:
        out.append(f"  linkStyle {','.join(bad_edges)} stroke:{_BAD},stroke-width:2px")
    return "\n".join(out) + "\n"


def write_graph(result: CheckResult, path: Path) -> None:
    """Write the picture in the format its suffix names (.dot .gv .mmd, or .svg .png)."""
    suffix = path.suffix.lower()
    if suffix in (".dot", ".gv"):
        path.write_text(render_dot(result), encoding="utf-8")
    elif suffix == ".mmd":
        path.write_text(render_mermaid(result), encoding="utf-8")
    elif suffix in (".svg", ".png"):
        _render_with_graphviz(render_dot(result), path, suffix[1:])
    else:
        raise NngsecError(
            Problem(
                f"unknown graph format {suffix or '(no suffix)'!r}",
                str(path),
                hint=f"name the file with one of {', '.join(GRAPH_SUFFIXES)}",
            )
        )


def _render_with_graphviz(dot: str, path: Path, kind: str) -> None:
    program = shutil.which("dot")
    if program is None:
        raise NngsecError(
            Problem(
                f"rendering {kind.upper()} needs Graphviz's 'dot', which is not installed",
                str(path),
                hint="install graphviz, or write a .dot or .mmd file instead",
            )
        )
    try:
        # The input is our own DOT text and the program a fixed, resolved path.
        subprocess.run(  # noqa: S603
            [program, f"-T{kind}", "-o", str(path)],
            input=dot.encode(),
            check=True,
            capture_output=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip().splitlines()
        raise NngsecError(
            Problem(f"Graphviz failed: {detail[-1] if detail else error}", str(path))
        ) from None
    except subprocess.TimeoutExpired:
        raise NngsecError(Problem("Graphviz took longer than 120 s", str(path))) from None
