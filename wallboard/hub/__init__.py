"""The hub: fan-out server with a durable journal, demo simulator, record/replay.

``wallboard.hub.server.Hub`` is the server (in-process or ``wallboard hub``);
``journal`` the storage seam; ``fanout`` the per-wall senders; ``simulator`` the demo
scenarios; ``record`` the producer client, record and replay; ``commands`` the CLI.
Never imports Qt.
"""
