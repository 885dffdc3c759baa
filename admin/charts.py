"""Charts for console pages: SVG drawn on the server by pygal, shown as data: images.

No JavaScript and no CDN: the SVG is an image, so it cannot run scripts and needs
nothing beyond the page's own CSP (``img-src data:``). Each chart has an ``alt`` text and
its numbers sit in a table beside it.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence

import pygal
from pygal.style import CleanStyle

_STYLE = CleanStyle(font_family="system-ui, sans-serif", label_font_size=12, major_label_font_size=12,
                    title_font_size=15, legend_font_size=12)


def _data_uri(chart: pygal.graph.graph.Graph) -> str:
    svg = chart.render()  # bytes of a standalone SVG document
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _chart(kind: type, title: str, labels: Sequence[str], **options: object) -> pygal.graph.graph.Graph:
    chart = kind(style=_STYLE, js=[], width=720, height=320, title=title, x_label_rotation=20 if len(labels) > 6
                 else 0, print_values=False, legend_at_bottom=True, truncate_legend=-1, **options)
    chart.x_labels = list(labels)
    return chart


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], *,
              stacked: bool = False) -> str:
    """A (stacked) bar chart as a data: URI."""
    chart = _chart(pygal.StackedBar if stacked else pygal.Bar, title, labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _data_uri(chart)


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    """A line chart over time as a data: URI."""
    chart = _chart(pygal.Line, title, labels, show_minor_x_labels=len(labels) <= 14, x_labels_major_count=8)
    for name, values in series.items():
        chart.add(name, list(values))
    return _data_uri(chart)
