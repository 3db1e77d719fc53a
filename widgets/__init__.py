"""Qt widgets of the wall: one widget per module; each reads the live state and paints."""
