"""A Shift+click store window's header names the store (issue 12), in the wall's language."""
from __future__ import annotations

from test_app_shell import wall  # noqa: F401 (the controller fixture)


def test_own_store_window_header_names_the_store(wall, qtbot):  # noqa: F811
    ctl, feed, clock, _ = wall
    store = ctl.state.stores["hz-001"]
    assert ctl.open_store("hz-001", own_window=True)
    extra = ctl.windows[-1]
    qtbot.addWidget(extra)
    title = extra.header.texts()[0]
    expect = store.get("name_en") or store.get("name")
    assert expect in title and "Store" in title
    assert expect in extra.windowTitle()
    extra.close()
