"""tornado_progress: live progress bars for cluster and multi-process jobs.

Workers report with one HTTP request each; the service keeps every job in memory, snapshots
it with msgpack, and shows it as a live page (long polling) or a PNG (pycairo).
"""

__version__ = "0.1.0"
