#!/bin/bash
# A portsim sweep split over 8 Slurm array tasks: task I (1..8) runs shard
# I/8 of the grid and writes it under results/shard-I. Submit with
#   sbatch deploy/slurm/sweep-array.sh
# and, when the array has finished (or from a dependent job:
#   sbatch --dependency=afterok:JOBID --wrap 'portsim merge results/shard-* --out results/study'),
# join the shards into the whole grid's result and plots, identical to an
# unsharded sweep:
#   portsim merge results/shard-* --out results/study
#SBATCH --job-name=portsim-sweep
#SBATCH --array=1-8
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=01:00:00
#SBATCH --output=portsim-sweep-%A_%a.out
set -euo pipefail
mkdir -p results
exec portsim sweep linux-burst \
  --vary workloads.0.arrival.rate=100:2000:50 \
  --vary 'hosts.0.sysctls.net.ipv4.ip_local_port_range=32768 60999,1024 65535' \
  --replications 20 -j "${SLURM_CPUS_PER_TASK}" \
  --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" \
  --out "results/shard-${SLURM_ARRAY_TASK_ID}"
