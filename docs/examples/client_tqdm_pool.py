"""Four processes of a multiprocessing pool, each with a tqdm bar that also reports to the
server: the job shows four workers.

Run: python docs/examples/client_tqdm_pool.py [SERVER]   (default http://127.0.0.1:8000)
Needs tqdm: pip install 'tornado_progress[client]'
"""

import sys
import time
from multiprocessing import Pool

from tornado_progress.client import create_job
from tornado_progress.client.tqdm import tqdm

PARTS = 4


def reduce_part(server: str, jobid: str, part: int) -> int:
    total = 0
    # Leaving the loop by an exception would mark this worker failed with its class name.
    for item in tqdm(range(50), server=server, jobid=jobid, workid=f"part {part}",
                     desc=f"part {part}", position=part):
        time.sleep(0.005)  # the real work
        total += item
    return total


if __name__ == "__main__":
    server = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    job = create_job(server, desc="Reduction in 4 parts", workers=PARTS)
    print(f"View progress of this job at {job.show_url}")
    with Pool(PARTS) as pool:
        print(pool.starmap(reduce_part, [(server, job.jobid, part) for part in range(PARTS)]))
