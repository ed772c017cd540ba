"""Charts of the statistics dashboard as inline SVG, drawn on the server.

No script and no file from outside: the markup is part of the page, so the
charts work on a closed network and print. Each chart has a title and a
description for screen readers, writes every value as text beside its bar,
and links every bar to the list of the mail it counts. The template shows the
same figures in a table next to the chart.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext
from markupsafe import Markup, escape

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 210
VALUE_WIDTH = 70
CHART_WIDTH = 640
COLUMN_WIDTH = 18
COLUMN_GAP = 10
COLUMN_CHART_HEIGHT = 200



def _labelled(name: str, value: int) -> str:
    """Return "name: value" as the user's language writes it (a space before the colon in French)."""
    return gettext("%(name)s: %(value)s", name=name, value=value)

@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    url: str


@dataclass(frozen=True)
class Series:
    """One series of a column chart: its name, CSS class and one bar per category."""

    name: str
    css_class: str
    bars: list[Bar]


def _scale(maximum: int, length: float) -> float:
    return length / maximum if maximum else 0.0


def horizontal_bars(chart_id: str, title: str, description: str, bars: list[Bar], css_class: str = "bar") -> Markup:
    """Draw one horizontal bar per item, its label on the left and its value on the right."""
    track = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    scale = _scale(max((bar.value for bar in bars), default=0), track)
    height = max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    parts = [
        f'<svg id="{escape(chart_id)}" class="statistics-chart" role="img" width="100%" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    for index, bar in enumerate(bars):
        y = BAR_GAP + index * (BAR_HEIGHT + BAR_GAP)
        width = max(bar.value * scale, 1 if bar.value else 0)
        parts.append(
            f'<a href="{escape(bar.url)}" class="chart-link" data-label="{escape(bar.label)}" data-value="{bar.value}">'
            f'<title>{escape(_labelled(bar.label, bar.value))}</title>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT * 0.7:.1f}" text-anchor="end" class="chart-label">{escape(bar.label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" class="{escape(css_class)}"></rect>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + BAR_HEIGHT * 0.7:.1f}" class="chart-value">{bar.value}</text>'
            "</a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def grouped_columns(chart_id: str, title: str, description: str, categories: list[str], series: list[Series]) -> Markup:
    """Draw columns per category (e.g. per month), one per series, each value written above its column."""
    group_width = len(series) * COLUMN_WIDTH + COLUMN_GAP
    width = max(CHART_WIDTH, 40 + len(categories) * group_width)
    top, bottom = 24, 40
    track = COLUMN_CHART_HEIGHT - top - bottom
    maximum = max((bar.value for item in series for bar in item.bars), default=0)
    scale = _scale(maximum, track)
    parts = [
        f'<svg id="{escape(chart_id)}" class="statistics-chart" role="img" width="100%" '
        f'viewBox="0 0 {width} {COLUMN_CHART_HEIGHT}" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        f'<line x1="30" y1="{top + track}" x2="{width}" y2="{top + track}" class="chart-axis"></line>',
    ]
    for index, category in enumerate(categories):
        x0 = 36 + index * group_width
        parts.append(
            f'<text x="{x0 + len(series) * COLUMN_WIDTH / 2:.1f}" y="{top + track + 16}" text-anchor="middle" '
            f'class="chart-label">{escape(category)}</text>'
        )
        for position, item in enumerate(series):
            bar = item.bars[index]
            height = bar.value * scale
            x = x0 + position * COLUMN_WIDTH
            y = top + track - height
            parts.append(
                f'<a href="{escape(bar.url)}" class="chart-link" data-label="{escape(category)} {escape(item.name)}" data-value="{bar.value}">'
                f'<title>{escape(_labelled(f"{category}, {item.name}", bar.value))}</title>'
                f'<rect x="{x}" y="{y:.1f}" width="{COLUMN_WIDTH - 2}" height="{height:.1f}" class="{escape(item.css_class)}"></rect>'
                f'<text x="{x + COLUMN_WIDTH / 2 - 1:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="chart-value small">{bar.value}</text>'
                "</a>"
            )
    legend_y = COLUMN_CHART_HEIGHT - 8
    for position, item in enumerate(series):
        x = 36 + position * 160
        parts.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" class="{escape(item.css_class)}"></rect>'
            f'<text x="{x + 16}" y="{legend_y}" class="chart-label">{escape(item.name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
