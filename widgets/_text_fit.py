"""Text that fits: the one place the widgets decide how a title or label fills its box.

The rule, read from 5 m away: a text keeps its full size while it fits; when it does not,
it **shrinks** down to a floor size; when it still does not fit at the floor, it **wraps
to two lines** (where the box is tall enough for two); only then is the last line
**elided** ("..."). Text is never elided while the box has room for it.

Call :func:`fit_text` with the text, the box and the font at its full size; it returns a
:class:`Fitted` (the font to use and the lines, at most ``max_lines``). Paint it with
:func:`draw_fitted`, or in one go with :func:`draw_text_fit`::

    draw_text_fit(painter, rect, "Self-checkout payment SDK 4.2", font, floor_px=12,
                  align=Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

Results are cached per (text, box size, font, floor, lines): a wall repaints the same
labels every second, and fitting measures the text a dozen times. The cache keeps the
:data:`_CACHE_MAX` most recently used fits (LRU): what is on screen stays in it (at most
~130 fits asked for in 5 s on a 4K double-11 wall, at a layout switch), texts that change
(KPI values, deltas: about two thirds of the fits asked for) fall out of it, and its size
stays flat once full (a clear-when-full cache of 4,096 grew for half an hour, then
refitted everything at once).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter

#: The smallest pixel size any widget may shrink a text to (a wall is read from afar).
MIN_FLOOR_PX = 9


@dataclass(frozen=True, slots=True)
class Fitted:
    """How a text is drawn in its box: ``font``, ``lines`` (1..max_lines), whether the last
    line had to be elided, and the block's ``width``/``height`` in pixels."""

    font: QFont
    lines: tuple[str, ...]
    elided: bool
    width: float
    height: float

    @property
    def px(self) -> int:
        return self.font.pixelSize()


def _px_font(font: QFont, px: int) -> QFont:
    f = QFont(font)
    f.setPixelSize(max(1, int(px)))
    return f


def font_px(font: QFont) -> int:
    """``font``'s size in pixels (a point-sized font is converted at 96 dpi)."""
    if font.pixelSize() > 0:
        return font.pixelSize()
    return max(1, round(font.pointSizeF() * 96.0 / 72.0))


def _split_two(text: str, fm: QFontMetricsF, width: float, words_only: bool) -> tuple[str, str] | None:
    """The most balanced split of ``text`` into two lines that both fit ``width``: at a
    space (``words_only``), else between characters (CJK, one long token), the first line
    as full as it can be. None when no split fits."""
    if words_only:
        words = text.split(" ")
        best: tuple[float, tuple[str, str]] | None = None
        for i in range(1, len(words)):
            a, b = " ".join(words[:i]), " ".join(words[i:])
            wa, wb = fm.horizontalAdvance(a), fm.horizontalAdvance(b)
            if wa <= width and wb <= width and (best is None or max(wa, wb) < best[0]):
                best = (max(wa, wb), (a, b))
        return None if best is None else best[1]
    for i in range(len(text) - 1, 0, -1):
        a = text[:i]
        if fm.horizontalAdvance(a) <= width:
            b = text[i:].lstrip()
            return (a.rstrip(), b) if fm.horizontalAdvance(b) <= width else None
    return None


def _greedy_two(text: str, fm: QFontMetricsF, width: float) -> tuple[str, str]:
    """Two lines for a text too long for them: the first filled (at a space if one fits),
    the rest for the second line (to be elided)."""
    cut = 0
    for i in range(len(text), 0, -1):
        if fm.horizontalAdvance(text[:i]) <= width:
            cut = i
            break
    if cut == 0:
        return "", text
    space = text.rfind(" ", 0, cut + 1)
    if space > cut * 0.5:
        cut = space
    return text[:cut].rstrip(), text[cut:].lstrip()


def _fit(text: str, width: float, height: float, family_font: QFont, max_px: int,
         floor_px: int, max_lines: int) -> Fitted:
    floor_px = max(MIN_FLOOR_PX, min(floor_px, max_px))

    def one_line(px: int) -> Fitted | None:
        f = _px_font(family_font, px)
        fm = QFontMetricsF(f)
        w = fm.horizontalAdvance(text)
        if w <= width and fm.height() <= height + 0.5:
            return Fitted(f, (text,), False, w, fm.height())
        return None

    def two_lines(px: int, words_only: bool) -> Fitted | None:
        f = _px_font(family_font, px)
        fm = QFontMetricsF(f)
        if 2 * fm.height() > height + 0.5:
            return None
        split = _split_two(text, fm, width, words_only)
        if split is None:
            return None
        w = max(fm.horizontalAdvance(split[0]), fm.horizontalAdvance(split[1]))
        return Fitted(f, split, False, w, 2 * fm.height())

    def largest(test) -> Fitted | None:
        """The fit at the largest size in floor..max that passes ``test`` (which passes for
        every size below one that passes: fitting is monotonic in the size)."""
        got = test(max_px)
        if got is not None:
            return got
        lo, hi, best = floor_px, max_px - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            r = test(mid)
            if r is not None:
                best, lo = r, mid + 1
            else:
                hi = mid - 1
        return best

    if not text:
        f = _px_font(family_font, max_px)
        return Fitted(f, ("",), False, 0.0, QFontMetricsF(f).height())
    got = largest(one_line)
    if got is None and max_lines >= 2:
        # break between words at any size down to the floor before breaking inside one
        got = largest(lambda px: two_lines(px, True)) if " " in text.strip() else None
        got = got or largest(lambda px: two_lines(px, False))
    if got is not None:
        return got
    # Does not fit even at the floor: elide the last line that the box has room for.
    f = _px_font(family_font, floor_px)
    fm = QFontMetricsF(f)
    if max_lines >= 2 and 2 * fm.height() <= height + 0.5:
        a, b = _greedy_two(text, fm, width)
        b = fm.elidedText(b, Qt.TextElideMode.ElideRight, width)
        return Fitted(f, (a, b), True, min(width, max(fm.horizontalAdvance(a), fm.horizontalAdvance(b))),
                      2 * fm.height())
    line = fm.elidedText(text, Qt.TextElideMode.ElideRight, width)
    return Fitted(f, (line,), line != text, fm.horizontalAdvance(line), fm.height())


#: fit cache: (text, box, font key, sizes) -> Fitted, least recently used first
_CACHE: OrderedDict[tuple, Fitted] = OrderedDict()
_CACHE_MAX = 512


def fit_text(text: str, width: float, height: float, font: QFont, *, floor_px: int = 12,
             max_lines: int = 2) -> Fitted:
    """Fit ``text`` into ``width`` x ``height`` pixels, starting from ``font``'s size:
    shrink to ``floor_px``, then wrap to ``max_lines`` (two at most), then elide."""
    max_px = font_px(font)
    key = (text, round(float(width), 1), round(float(height), 1), font.key(), max_px,
           int(floor_px), max(1, min(2, int(max_lines))))
    got = _CACHE.get(key)
    if got is not None:
        _CACHE.move_to_end(key)
        return got
    while len(_CACHE) >= _CACHE_MAX:
        _CACHE.popitem(last=False)
    got = _CACHE[key] = _fit(key[0], key[1], key[2], font, max_px, key[5], key[6])
    return got


def draw_fitted(p: QPainter, rect: QRectF, fitted: Fitted, align=Qt.AlignmentFlag.AlignLeft
                | Qt.AlignmentFlag.AlignVCenter) -> None:
    """Paint ``fitted`` in ``rect`` (``align``: horizontal and vertical flags), with the
    painter's pen."""
    p.setFont(fitted.font)
    fm = QFontMetricsF(fitted.font)
    lh = fm.height()
    block = lh * len(fitted.lines)
    if align & Qt.AlignmentFlag.AlignTop:
        y = rect.top()
    elif align & Qt.AlignmentFlag.AlignBottom:
        y = rect.bottom() - block
    else:
        y = rect.top() + (rect.height() - block) / 2
    h_flags = align & (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignHCenter)
    for line in fitted.lines:
        p.drawText(QRectF(rect.left(), y, rect.width(), lh), h_flags | Qt.AlignmentFlag.AlignVCenter, line)
        y += lh


def draw_text_fit(p: QPainter, rect: QRectF, text: str, font: QFont, *, floor_px: int = 12,
                  max_lines: int = 2, align=Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter) -> Fitted:
    """Fit ``text`` into ``rect`` (see :func:`fit_text`) and paint it; returns the fit."""
    fitted = fit_text(text, rect.width(), rect.height(), font, floor_px=floor_px, max_lines=max_lines)
    draw_fitted(p, rect, fitted, align)
    return fitted


class TextStamps:
    """Boxes of text painted once into an image, then copied wherever they are drawn again.

    A wall repaints the same store names and count chips over and over (a re-sort moves
    every row); at 4K a string costs ~0.1 ms to lay out and draw, copying its box a few
    microseconds. :meth:`draw` fills the box with its opaque background and runs the
    caller's own painting into the image with the painter moved to the box, so the pixels
    are those the same calls paint on the widget (integer moves keep every glyph's
    sub-pixel position); what would spill out of the box is cut off. A box is drawn
    straight onto the target the first time its key is seen (most one-off texts never
    cost an image) and stamped from the second time on. The least recently drawn of more
    than ``limit`` boxes are dropped.
    """

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self.hits = 0      # copied from a stamp
        self.misses = 0    # stamped (the second time a key was drawn)
        self.direct = 0    # drawn straight onto the target (a key seen the first time)
        self._boxes: OrderedDict[Hashable, tuple[QImage, Any]] = OrderedDict()
        self._seen: OrderedDict[Hashable, None] = OrderedDict()

    def draw(self, p: QPainter, rect: QRect, background: QColor, key: Hashable,
             paint: Callable[[QPainter], Any]) -> Any:
        """Paint ``rect``: ``background``, then what ``paint(painter)`` draws there (in
        ``p``'s coordinates): straight onto ``p`` the first time this ``key`` (with this box
        size and background) is drawn, from an image made the second time on. Returns what
        ``paint`` returned when it ran."""
        dpr = p.device().devicePixelRatioF() if p.device() is not None else 1.0
        full = (key, rect.width(), rect.height(), background.rgba(), dpr)
        got = self._boxes.get(full)
        if got is None and full not in self._seen:
            self.direct += 1
            self._seen[full] = None
            if len(self._seen) > 4 * self.limit:
                self._seen.popitem(last=False)
            p.fillRect(rect, background)
            return paint(p)
        if got is None:
            self.misses += 1
            img = QImage(max(1, round(rect.width() * dpr)), max(1, round(rect.height() * dpr)),
                         QImage.Format.Format_ARGB32_Premultiplied)
            img.setDevicePixelRatio(dpr)
            img.fill(background)
            q = QPainter(img)
            q.translate(-rect.x(), -rect.y())
            out = paint(q)
            q.end()
            if len(self._boxes) >= self.limit:
                self._boxes.popitem(last=False)
            got = self._boxes[full] = (img, out)
        else:
            self.hits += 1
            self._boxes.move_to_end(full)
        p.drawImage(rect.topLeft(), got[0])
        return got[1]

    def clear(self) -> None:
        self._boxes.clear()
        self._seen.clear()


__all__ = ["Fitted", "MIN_FLOOR_PX", "TextStamps", "draw_fitted", "draw_text_fit", "fit_text", "font_px"]
