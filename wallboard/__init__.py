"""wallboard: a live operations wall for retail command centers."""

__version__ = "0.1.0"
