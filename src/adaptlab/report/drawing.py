"""The SVG pieces every chart of report.html is drawn with: its colours, text widths, clipped names, the `<svg>`
element, axes, and labels placed so that none overlaps another; and what charts and tables both read figures with
(`number`, `ci_pair`) and say an empty section with (`note`).

Every chart fits the page's 1100px body; text widths are estimated at ~6.6 px per character of 11px text.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TypeGuard

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
PAGE_WIDTH = 1100  # px: the body's max-width (report.STYLE), so no chart is wider
# px per character of 11px system-ui text: DejaVu Sans (Debian's) measures 5.2 for figures to 6.5 for snake_case names
CHAR_WIDTH = 6.6


def text_width(text: str, size: float = 11) -> float:
    return len(text) * CHAR_WIDTH * size / 11


def clip(text: str, chars: int) -> str:
    """text cut to `chars` characters around an ellipsis, keeping its start and end (label names often differ only at
    the end)."""
    if len(text) <= chars:
        return text
    tail = (chars - 1) * 2 // 5
    return text[: chars - 1 - tail] + "\u2026" + (text[-tail:] if tail else "")


def svg(width: float, height: float, content: str, label: str) -> str:
    return (
        f"<svg class=chart role=img aria-label='{escape(label)}' width={width:.0f} height={height:.0f} "
        f"viewBox='0 0 {width:.0f} {height:.0f}' xmlns='http://www.w3.org/2000/svg'>{content}</svg>"
    )


def axes(w, h, m, xlabel, ylabel, xticks, yticks) -> str:
    out = [
        f"<line x1={m} y1={h - m} x2={w - 10} y2={h - m} stroke=#444 /><line x1={m} y1=10 x2={m} "
        f"y2={h - m} stroke=#444 />"
    ]
    out += [f"<text x={x:.1f} y={h - m + 14} text-anchor=middle>{escape(t)}</text>" for x, t in xticks]
    out += [f"<text x={m - 4} y={y + 4:.1f} text-anchor=end>{escape(t)}</text>" for y, t in yticks]
    out.append(
        f"<text x={(w + m) / 2:.0f} y={h - 4} text-anchor=middle>{escape(xlabel)}</text><text x=12 "
        f"y={h / 2:.0f} transform='rotate(-90 12 {h / 2:.0f})' "
        f"text-anchor=middle>{escape(ylabel)}</text>"
    )
    return "".join(out)


def place_labels(
    anchors: list[tuple[float, float]],
    widths: list[float],
    bounds: tuple[float, float, float, float],
    avoid: Sequence[tuple[float, float, float, float]] = (),
    height: float = 14,
    gap: float = 2,
) -> list[tuple[float, float, float, float]]:
    """Boxes (x, y, width, height) for labels beside their anchor points, inside bounds (x0, y0, x1, y1), overlapping
    neither each other, `avoid` nor the points.

    A label goes up and right of its point (left of it where it would leave the chart), then
    steps a line up or down at a time, nearest first, trying the point's other side at each step,
    until it is clear; labels are placed top to bottom.
    """
    x0, y0, x1, y1 = bounds
    avoid = [*avoid, *((ax - 5, ay - 5, 10, 10) for ax, ay in anchors)]  # no label hides a point (circles of radius 5)
    placed: list[tuple[float, float, float, float]] = []
    boxes: dict[int, tuple[float, float, float, float]] = {}

    def clear(box):
        bx, by, bw, bh = box
        return all(
            bx >= ox + ow + gap or ox >= bx + bw + gap or by >= oy + oh + gap or oy >= by + bh + gap
            for ox, oy, ow, oh in [*placed, *avoid]
        )

    for i in sorted(range(len(anchors)), key=lambda i: (anchors[i][1], anchors[i][0])):
        (ax, ay), w = anchors[i], min(widths[i], x1 - x0)
        sides = [ax + 8, ax - 8 - w] if ax + 8 + w <= x1 else [ax - 8 - w, ax + 8]
        sides = [min(max(bx, x0), x1 - w) for bx in sides]
        start = min(max(ay - 4 - height, y0), y1 - height)
        steps = int((y1 - y0) / (height + gap)) + 1
        candidates = [
            start + sign * k * (height + gap) for k in range(steps + 1) for sign in ((1,) if k == 0 else (-1, 1))
        ]
        candidates = [y for y in candidates if y0 <= y <= y1 - height] or [start]
        box = next(
            (b for b in ((bx, y, w, height) for y in candidates for bx in sides) if clear(b)),
            (sides[0], candidates[0], w, height),
        )
        placed.append(box)
        boxes[i] = box
    return [boxes[i] for i in range(len(anchors))]


def number(value, spec: str = ".3f", missing: str = "") -> str:
    """`value` formatted by `spec`, or `missing` where results.json holds no number there (an old run, a section left
    partial).

    >>> number(0.8312), number(None, missing="n/a"), number("x", ".0f", "?")
    ('0.831', 'n/a', '?')
    """
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else missing


def is_number(value: object) -> TypeGuard[float]:
    """Whether results.json holds a number at `value` (an int or a float, not a bool): what `number` formats."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ci_pair(ci) -> tuple[float, float] | None:
    """A 95% interval [lo, hi] as two floats, or None where it is missing or not two numbers."""
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(number(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def note(text: str) -> str:
    """A short muted line saying what a section has nothing to show, and why."""
    return f"<p class=muted>{escape(text, quote=False)}</p>"  # element text: quotes need no escaping
