"""Text that fits (issue 12): shrink to a floor, then wrap to two lines, then elide --
and never elide while the box has room."""
from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetricsF, QImage, QPainter

from wallboard.widgets._text_fit import MIN_FLOOR_PX, draw_text_fit, fit_text
from wallboard.widgets.base import ui_font


def font(px=40, bold=True):
    f = ui_font(10, bold)
    f.setPixelSize(px)
    return f


def width(text, px):
    return QFontMetricsF(font(px)).horizontalAdvance(text)


def test_a_text_that_fits_keeps_its_full_size(qapp):
    got = fit_text("Payment success", 2000, 200, font(40))
    assert (got.px, got.lines, got.elided) == (40, ("Payment success",), False)


def test_too_wide_shrinks_first(qapp):
    text = "Payment success"
    box = width(text, 30) + 1
    got = fit_text(text, box, 60, font(40), floor_px=12)
    assert got.lines == (text,) and not got.elided
    assert 28 <= got.px <= 30
    assert got.width <= box


def test_below_the_floor_it_wraps_to_two_lines(qapp):
    text = "Self-checkout payment SDK 4.2 rollout"
    box = width(text, 20) * 0.7
    got = fit_text(text, box, 200, font(40), floor_px=20)
    assert len(got.lines) == 2 and not got.elided
    assert " ".join(got.lines) == text
    assert got.px >= 20 and got.width <= box


def test_only_when_two_lines_at_the_floor_do_not_fit_is_it_elided(qapp):
    text = "FreshDa Xinjiekou Flagship Store Nanjing Gulou District Central Plaza"
    got = fit_text(text, 120, 200, font(40), floor_px=14)
    assert got.elided and len(got.lines) == 2 and got.px == 14
    assert got.lines[1].endswith("\u2026")
    # a box one line high elides its one line
    got = fit_text(text, 120, 20, font(40), floor_px=14)
    assert got.elided and len(got.lines) == 1


def test_chinese_text_without_spaces_wraps_between_characters(qapp):
    text = "鲜达超市南京新街口旗舰店"
    box = width(text, 16) * 0.55
    got = fit_text(text, box, 200, font(40), floor_px=16)
    assert len(got.lines) == 2 and "".join(got.lines) == text and not got.elided


def test_floor_never_goes_below_the_wall_minimum(qapp):
    got = fit_text("x" * 200, 50, 100, font(40), floor_px=2)
    assert got.px == MIN_FLOOR_PX


def test_draw_text_fit_paints(qapp):
    img = QImage(400, 100, QImage.Format.Format_ARGB32)
    img.fill(0)
    p = QPainter(img)
    got = draw_text_fit(p, QRectF(0, 0, 400, 100), "Price list sync", font(30))
    p.end()
    assert not got.elided and got.lines == ("Price list sync",)
    assert any(img.pixel(x, y) != 0 for x in range(0, 400, 2) for y in range(0, 100, 2))


def test_results_are_cached(qapp):
    a = fit_text("tags_online_ratio", 90, 60, font(30))
    b = fit_text("tags_online_ratio", 90, 60, font(30))
    assert a is b
    assert isinstance(a.font, QFont)


def test_text_stamps_copy_the_pixels_the_same_drawing_paints(qapp):
    """A stamped box equals drawing its text straight onto the target, wherever the box
    sits (integer moves keep each glyph's sub-pixel place); drawn once per key; the least
    recently used box is dropped past the limit."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor
    from wallboard.widgets._text_fit import TextStamps

    bg = QColor("#101820")

    def draw(p, rect):
        p.setFont(font(31))
        p.setPen(QColor("#e0e0e0"))
        draw_text_fit(p, QRectF(rect.x() + 2, rect.y() + 0.5, 300, 40), "FreshDa 杭州 #12 ▲3", font(31))
        return "fit"

    stamps = TextStamps(limit=2)
    for at in (QRect(7, 11, 320, 44), QRect(40, 93, 320, 44), QRect(3, 5, 320, 44)):
        direct, stamped = (QImage(400, 160, QImage.Format.Format_ARGB32_Premultiplied) for _ in range(2))
        for img in (direct, stamped):
            img.fill(QColor("#000000"))
        p = QPainter(direct)
        p.fillRect(at, bg)
        draw(p, at)
        p.end()
        p = QPainter(stamped)
        assert stamps.draw(p, at, bg, "name", lambda q, at=at: draw(q, at)) == "fit"
        p.end()
        assert direct == stamped
    assert (stamps.direct, stamps.misses, stamps.hits) == (1, 1, 1)   # drawn, stamped, copied
    img = QImage(400, 160, QImage.Format.Format_ARGB32_Premultiplied)
    p = QPainter(img)
    for key in ("a", "b", "name", "a", "b", "name"):
        stamps.draw(p, QRect(0, 0, 50, 20), bg, key, lambda q: None)
    p.end()
    assert stamps.misses == 4 and len(stamps._boxes) == 2   # "name" at 320x44 was dropped


def test_the_cache_keeps_the_most_recently_used_fits_and_stays_at_its_bound(qapp):
    """Soak (issue 19): texts that change (KPI values) made a clear-when-full cache grow
    for half an hour; an LRU stays at its bound and keeps what is drawn again and again."""
    from wallboard.widgets import _text_fit as tf

    tf._CACHE.clear()
    kept = fit_text("Payment success", 200, 60, font(30))
    for i in range(3 * tf._CACHE_MAX):
        fit_text(f"{i:,}", 200, 60, font(30))                    # churn: each value once
        if i % 100 == 0:
            assert fit_text("Payment success", 200, 60, font(30)) is kept   # on screen: still cached
    assert len(tf._CACHE) == tf._CACHE_MAX
    assert fit_text("Payment success", 200, 60, font(30)) is kept
    assert ("0", 200.0, 60.0) not in {k[:3] for k in tf._CACHE}  # the oldest churn is gone
