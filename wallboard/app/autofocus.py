"""The controller's auto-focus side: the layout's ``[[rules]]`` turn screens to incidents.

The rules and their state live in the pure :class:`wallboard.layout.focus.AutoFocus`; this
module shows what it decides. When an open, unacknowledged incident matches a rule, the
window holding the rule's screen turns to the incident's store page (or the first screen
of the rule's ``layout``; with neither, to the rule's screen itself), its rotation pauses,
the header says why ("P1 INC-0928-01: auto-focus, Esc to return") and the rule's sound
repeats every ``repeat_s`` until the incident is acknowledged. It turns back when the
incident is acknowledged (an ``incident`` event from any wall: every wall turns back),
resolved, after ``for_min`` minutes, or on Esc there.

``FocusScreens(controller)``: the controller calls :meth:`reset` after each layout is
applied, :meth:`second` once a second, :meth:`escape` on Esc, :meth:`header_text` for a
window's header, :meth:`held` / :meth:`play_due` from its alerts.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from wallboard import layout as L
from wallboard.app.window import PageView
from wallboard.layout.focus import AutoFocus, Focus, focus_store, incident_facts
from wallboard.state import Dirty

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.app.controller import WallController
    from wallboard.app.window import WallWindow

log = logging.getLogger(__name__)

HEADER = "{incident}: auto-focus, Esc to return"


class FocusScreens:
    """Auto-focus on the controller's windows (see the module docstring)."""

    def __init__(self, ctl: "WallController") -> None:
        self.ctl = ctl
        self.engine = AutoFocus(())
        #: screen name -> (window, the page pushed there or None, the page index before)
        self.shown: dict[str, tuple["WallWindow", PageView | None, int]] = {}
        #: Why the last focus could not show what its rule asked ("" when it could).
        self.error = ""

    # ------------------------------------------------------------------ layout
    def reset(self, layout: L.Layout) -> None:
        """A layout was applied (its pages are new): the rules for the screens this
        process shows start again; with the same rules, an Esc or a time limit already
        spent on an incident stays spent."""
        shown = {p.screen.name for w in self.ctl.windows if w.spec is not None for p in w.spec.pages}
        rules = tuple(r for r in layout.rules if r.screen in shown)
        for w in self.ctl.windows:
            w.auto_focus = None
        self.shown = {}
        if rules == self.engine.rules:
            self.engine.focused.clear()         # they turn again at the next second
            self.engine.default_repeat_s = layout.sound.repeat_s
        else:
            self.engine = AutoFocus(rules, layout.sound.repeat_s)

    # ------------------------------------------------------------------ once a second
    def second(self, now: float) -> None:
        if not self.engine.rules:
            return
        state = self.ctl.state
        incidents = list(state.open_incidents())
        ids = {i.get("id") for i in incidents}
        for foc in self.engine.focused.values():   # acknowledged or resolved since: its reason
            rec = state.incidents.get(foc.incident.id)
            if rec is not None and foc.incident.id not in ids:
                incidents.append(rec)
        change = self.engine.update([incident_facts(i, state.stores) for i in incidents], now)
        for foc in change.ended:
            self._end(foc)
        for foc in change.started:
            self._start(foc)

    def _window(self, screen: str) -> "WallWindow | None":
        for w in self.ctl.windows:
            if w.spec is not None and any(p.screen.name == screen for p in w.spec.pages):
                return w
        return None

    def _start(self, foc: Focus) -> None:
        w = self._window(foc.screen)
        if w is None:
            return
        page = self._page(foc)
        before = w.page_index
        if page is not None:
            self.ctl.push_page(w, page)
        else:                                   # no store to show: the rule's screen itself
            self.ctl.rewind.live(w)
            index = next(i for i, p in enumerate(w.spec.pages) if p.screen.name == foc.screen)
            if index != w.page_index:
                self.ctl.flip(w, index - w.page_index)
        w.auto_focus = foc
        self.shown[foc.screen] = (w, page, before)
        log.info("auto-focus: screen %s turns to %s (rule %s)%s", foc.screen, foc.label, foc.rule.name,
                 f", {page.title}" if page is not None else "")
        self.ctl._update_headers(self.ctl.clock())

    def _page(self, foc: Focus) -> PageView | None:
        """The page a focus shows: the rule's layout, else the incident's store page."""
        store = focus_store(foc.rule, foc.incident, self.ctl.state.stores)
        if foc.rule.layout is not None:
            page = self._layout_page(foc, store)
            if page is not None:
                return page
        return self.ctl.store_page(store) if store is not None else None

    def _layout_page(self, foc: Focus, store: str | None) -> PageView | None:
        ctl = self.ctl
        try:
            lay = L.load_layout(L.find_layout(foc.rule.layout, L.rule_layout_dirs(ctl.layout, ctl.layout_dirs)))
            if lay.kind == "store":
                if store is None:
                    raise ValueError(f"{foc.label} names no store this wall knows")
                rec = ctl.state.stores[store]
                name = rec.get("name_en" if ctl.lang == "en" else "name") or rec.get("name") or store
                lay = L.bind_store(lay, store, (rec.get("city") or {}).get("id", ""), name)
        except (L.LayoutError, ValueError, KeyError) as e:
            why = "; ".join(i.message if i.file == foc.rule.layout and not i.path else str(i)
                            for i in e.issues) if isinstance(e, L.LayoutError) else str(e)
            self.error = f"{ctl.tr('auto-focus')} {foc.rule.name}: {why}"
            log.warning("%s", self.error)
            ctl._update_status_line()
            return None
        self.error = ""
        screen = lay.screens[0]
        title = (screen.title_zh if ctl.lang == "zh" and screen.title_zh else screen.title) or lay.name
        page = PageView(screen, ctl.state, ctl.ctx_for(lay.event.scope), title=title)
        page.store_clicked.connect(ctl.open_store)
        return page

    def _end(self, foc: Focus) -> None:
        w, page, before = self.shown.pop(foc.screen, (None, None, 0))
        if w is None:
            return
        w.auto_focus = None
        self.ctl._page_started = self.ctl.clock()   # the rotation resumes: the page gets its time
        if page is not None:
            w.remove_drill(page)
            top = w.current_page()
            if top is not None:
                top.refresh(Dirty.everything(), self.ctl.clock())
        elif w.page_index != before and w.pages:
            self.ctl.flip(w, before - w.page_index)
        log.info("auto-focus: screen %s back from %s (%s)", foc.screen, foc.label, foc.reason)
        self.ctl._update_headers(self.ctl.clock())

    # ------------------------------------------------------------------ keys, header, sound
    def escape(self, w: "WallWindow") -> bool:
        """Esc on ``w``: back from its focus (when the focus page is on top)."""
        foc = getattr(w, "auto_focus", None)
        if foc is None:
            return False
        _w, page, _before = self.shown.get(foc.screen, (None, None, 0))
        if w.drill and w.drill[-1] is not page:
            return False                        # a page opened over it closes first
        if self.engine.dismiss(foc.screen) is not None:
            self._end(foc)
        return True

    def header_text(self, w: "WallWindow") -> str:
        foc = getattr(w, "auto_focus", None)
        return self.ctl.tr(HEADER).format(incident=foc.label) if foc is not None else ""

    def held(self) -> set[str]:
        """The incidents whose sound the rules repeat (the plain alerts leave them out)."""
        return set(self.engine.holds)

    def play_due(self, now: float) -> str | None:
        """Play the one rule sound due now (the most severe), unless muted or the
        layout's [sound] is off; returns its name (None: nothing played)."""
        alerts = self.ctl.alerts
        if alerts.muted or not alerts.enabled or not self.engine.holds:
            return None
        due = self.engine.sounds_due(now)
        if not due:
            return None
        hold = due[0]
        snd = self.ctl.layout.sound
        name = hold.rule.sound or (snd.p1 if hold.incident.severity == "P1" else snd.p2)
        if name != "none":
            self.ctl.sound.play(name, snd.volume)
        return name

    def status(self) -> dict[str, Any]:
        """For tests and the status file: each screen's focus now, and the counts."""
        return {"focused": {s: f.label for s, f in self.engine.focused.items()},
                "started": self.engine.started, "ended": self.engine.ended}


__all__ = ["FocusScreens", "HEADER"]
