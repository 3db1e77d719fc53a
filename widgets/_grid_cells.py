"""Device grid building blocks: cell codes and their pixel patterns and the row placement
of the scope grid. Pure numpy + QColor (no widgets); used by :mod:`widgets.device_grid`
(its options: :mod:`wallboard.layout.specs.device_grid`).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from wallboard.widgets.base import STATUS_COLORS, STATUS_RANK

CODES = ("ok", "maint", "warn", "unknown", "crit", "down", "stale")
CODE = {s: i for i, s in enumerate(CODES)}
STALE = CODE["stale"]
#: Worst-first rank of a code (stale ranks as unknown).
CODE_RANK = np.array([STATUS_RANK[s] for s in CODES[:6]] + [STATUS_RANK["unknown"]], np.int8)
KIND_ORDER = ("pos", "self_checkout", "scale", "esl_gateway", "camera", "gate", "printer",
              "ap", "router")
KIND_SHORT = {"pos": "POS", "self_checkout": "SCO", "scale": "SCL", "esl_gateway": "ESL",
              "camera": "CAM", "gate": "GATE", "printer": "PRN", "ap": "AP", "router": "RTR"}
#: Candidate widths (cells) of a kind block; more devices of a kind wrap to more lines
#: (narrow blocks keep a many-kind row inside the panel at a readable cell size).
KIND_CAPS = (16, 8, 4, 2, 1)
#: Smallest store-label font (px of a 1080-line wall) that is drawn at all: a store row
#: whose label would be smaller is rolled up instead of drawn as unlabelled cells.
LABEL_MIN_PX = 14
#: Size (px of a 1080-line wall) of a rolled-up store's cell: big enough for the status
#: pattern (triangle, cross, ring...) to read as a glyph.
ROLL_CELL_PX = 16

#: Grid margins in px for a 1080-line wall; :func:`px` scales them by the UI scale.
#: ROW_PAD: room after a row's counts; COL_GAP: between columns of rows; HEAD_PX: the
#: totals line of the header; KIND_PAD: room under the kind names; COUNT_GAP: between
#: the cells and the counts, and between count chips; LABEL_PAD: right of a store name.
ROW_PAD, COL_GAP, HEAD_PX, KIND_PAD, COUNT_GAP, LABEL_PAD = 12, 16, 34, 6, 4, 4


def px(value: float, scale: float) -> int:
    """``value`` px of a 1080-line wall at UI ``scale`` (rounded, at least 1)."""
    return max(1, int(round(value * scale)))


def label_px(pitch: int, scale: float) -> int:
    """Pixel size of the store-label font for rows ``pitch`` px apart: it fills the row
    (85%) up to 26 px of a 1080-line wall, times the UI ``scale``."""
    return max(9, min(px(26, scale), int(pitch * 0.85)))


def labelled_min_cell(scale: float) -> int:
    """Smallest cell size (screen px) whose rows get a readable store label: the label
    font (:func:`label_px` of the row pitch) is at least ``LABEL_MIN_PX`` times ``scale``."""
    want = px(LABEL_MIN_PX, scale)
    c = 1
    while label_px(pitch_of(c, scale), scale) < want and c < 512:
        c += 1
    return c


def pitch_of(c: int, scale: float) -> int:
    """Distance between cells of size ``c``: a 2 px gap (1 px for tiny cells) of a
    1080-line wall, times the UI ``scale``."""
    return c + px(1 if c < 8 * scale else 2, scale)


def _rgb(hex_color: str) -> int:
    c = QColor(hex_color)
    return 0xFF000000 | (c.red() << 16) | (c.green() << 8) | c.blue()


def _shade(hex_color: str, f: float) -> int:
    c = QColor(hex_color)
    return 0xFF000000 | (int(c.red() * f) << 16) | (int(c.green() * f) << 8) | int(c.blue() * f)


def cell_templates(c: int) -> np.ndarray:
    """``(7, c, c)`` uint32 pixel patterns, one per cell code (see module docstring)."""
    t = np.empty((len(CODES), c, c), np.uint32)
    yy, xx = np.mgrid[0:c, 0:c]
    m = (c - 1) / 2.0
    for i, name in enumerate(CODES):
        col = STATUS_COLORS["unknown" if name == "stale" else name]
        t[i] = _rgb(col)
        dark = _shade(col, 0.3)
        if c < 5:
            continue
        r = max(1.0, c / 6.0)
        if name == "warn":
            t[i][(abs(xx - m) <= r) & (abs(yy - m) <= r)] = dark
        elif name == "crit":  # upward triangle
            h = (yy - c * 0.2) / (c * 0.6)
            t[i][(h >= 0) & (h <= 1) & (abs(xx - m) <= h * c * 0.32 + 0.5)] = dark
        elif name == "down":  # cross
            t[i][(abs(xx - yy) <= r * 0.6) | (abs(xx + yy - (c - 1)) <= r * 0.6)] = dark
        elif name == "maint":
            t[i][(abs(yy - m) <= r * 0.6) & (abs(xx - m) <= c * 0.3)] = dark
        elif name == "unknown":
            d = np.hypot(xx - m, yy - m)
            t[i][(d <= c * 0.3) & (d >= c * 0.3 - max(1.0, c / 8))] = dark
        elif name == "stale":  # hatch
            t[i][((xx + yy) % max(3, c // 3)) < max(1, c // 8)] = _shade(col, 0.45)
    return t


def place_rows(order: list[str], lines: dict[str, int], W: int, H: int, ncells: int, c: int,
               roll_h: int, scale: float = 1.0, label_em: float = 9.5):
    """Place store rows top to bottom, then in further columns, for cell size ``c``.

    ``lines[s]``: cell lines of store ``s``; ``ncells``: cells per line (with the gaps
    between kind blocks); ``roll_h``: height kept free at the bottom for rolled-up stores;
    ``scale``: the UI scale (margins, header and label font grow with it; ``c`` is
    already in screen pixels). ``label_em``: the widest store label in units of its font
    size; the label column is 9.5 of them and grows towards ``label_em`` into width the
    columns of rows leave unused (never at the cost of a column). Rows get store labels when they are at least 12 px (times
    ``scale``) apart (the panel keeps ``c`` at or above :func:`labelled_min_cell` unless
    its ``allow_unlabelled`` option is set, so its labels are readable). Returns ``(pitch, label_w, count_w, header_h, placed)`` where
    ``placed`` lists ``(store, (x, y))`` for the leading stores of ``order`` that fit.
    """
    p = pitch_of(c, scale)
    labels = p >= 12 * scale
    fpx = label_px(p, scale)
    label_w = int(fpx * 9.5) if labels else 0
    count_w = int(fpx * 6) if labels else 0
    header_h = px(HEAD_PX, scale) + (fpx + px(KIND_PAD, scale) if labels else 0)
    row_w = row_width(label_w, ncells * p, count_w, scale)
    gap = px(COL_GAP, scale)
    ncol = max(1, (W + gap) // (row_w + gap))
    want = int(fpx * label_em) + px(2 * LABEL_PAD, scale)
    if labels and want > label_w:  # longer names: use the width the columns leave unused
        spare = max(0, (W + gap) - ncol * (row_w + gap)) // ncol
        label_w += min(want - label_w, spare)
        row_w = row_width(label_w, ncells * p, count_w, scale)
    avail = H - header_h - roll_h
    placed, col, y = [], 0, header_h
    for s in order:
        rh = lines[s] * p + max(2, p // 3)
        if y + rh > header_h + avail:
            col += 1
            y = header_h
            if col >= ncol or rh > avail:
                break
        placed.append((s, (col * (row_w + gap), y)))
        y += rh
    return p, label_w, count_w, header_h, placed


def row_width(label_w: int, cells_w: int, count_w: int, scale: float) -> int:
    """Width of a store row: label column, cells, counts and the pad after them."""
    return label_w + cells_w + count_w + px(ROW_PAD, scale)
