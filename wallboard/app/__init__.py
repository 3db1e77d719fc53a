"""The Qt shell of the wall: windows, header, frame loop, switching, drill-down."""
