"""One MPI rank (or Slurm task) reports as one worker, named after its rank.

progress_for() reads the rank from OMPI_COMM_WORLD_RANK, PMI_RANK or SLURM_PROCID, so this
needs no mpi4py. Start it with `mpirun -n 8 python docs/examples/client_mpi.py SERVER` or
`srun`; every rank must name the same job, here from PROGRESS_JOBID (or Slurm's job id). No
rank calls create_job: the first update creates the job, and a create while other ranks already
report would drop their workers. Create it once beforehand to set its description, e.g.
curl "SERVER/progress/create?jobid=$PROGRESS_JOBID&desc=Imaging&workers=8".
"""

import os
import sys
import time

from tornado_progress.client import progress_for

server = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
jobid = os.environ.get("PROGRESS_JOBID") or f"mpi-{os.environ.get('SLURM_JOB_ID', 'local')}"

channels = 30
with progress_for(server, jobid) as progress:  # workid: the rank, else host:pid
    for channel in range(channels):
        time.sleep(0.01)  # the real work
        progress.update(channel + 1, channels, desc=f"channel {channel + 1}")
print(f"rank {progress.workid} done: {server}/progress/show?jobid={jobid}")
