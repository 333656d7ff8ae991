"""One worker reports its progress with tornado_progress.client.

Run: python docs/examples/client_basic.py [SERVER]   (default http://127.0.0.1:8000)
"""

import sys
import time

from tornado_progress.client import Reporter, create_job

server = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"

job = create_job(server, desc="Calibrating 40 scans")
print(f"View progress of this job at {job.show_url}")

scans = 40
# The with block sends the last state as it ends; an exception in it marks the worker failed.
with Reporter(server, job.jobid, "calibrator") as progress:
    for scan in range(scans):
        time.sleep(0.01)  # the real work
        progress.update(scan + 1, scans, desc=f"scan {scan + 1}")  # cheap: sent once a second
