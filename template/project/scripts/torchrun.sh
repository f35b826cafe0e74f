#!/usr/bin/env bash
# Distributed training with torchrun: DEVICES processes on each of NODES machines, one per GPU.
#
#   scripts/torchrun.sh NODES DEVICES [trainer.py flags...]
#
#   scripts/torchrun.sh 1 4 --max_epochs 50                        # one machine, 4 GPUs
#   scripts/torchrun.sh 1 2 --accelerator cpu --max_epochs 2       # try it on a CPU
#
# Several machines: run the script on each with the same RUN_ID and MASTER_ADDR (the address of
# node 0), and NODE_RANK = 0, 1, ... :
#   RUN_ID=exp1 MASTER_ADDR=10.0.0.1 NODE_RANK=0 scripts/torchrun.sh 2 4 --max_epochs 50   # on node 0
#   RUN_ID=exp1 MASTER_ADDR=10.0.0.1 NODE_RANK=1 scripts/torchrun.sh 2 4 --max_epochs 50   # on node 1
#
# Every process must log to the same run folder: the run id exported here becomes the first part of
# its name (TRAINER_RUN_ID, see util/runs.py); only global rank 0 writes logs and checkpoints.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
NODES=$1
DEVICES=$2
shift 2

if [ "$NODES" -gt 1 ] && [ -z "${RUN_ID:-}" ]; then
    echo "torchrun.sh: set RUN_ID to the same value on every node (e.g. RUN_ID=\$(date +%Y%m%d-%H%M%S))" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
export TRAINER_RUN_ID="${RUN_ID:-$(date +%Y%m%d-%H%M%S)}"

exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes "$NODES" \
    --nproc-per-node "$DEVICES" \
    --node-rank "${NODE_RANK:-0}" \
    --master-addr "${MASTER_ADDR:-127.0.0.1}" \
    --master-port "${MASTER_PORT:-29500}" \
    trainer.py --num_nodes "$NODES" --devices "$DEVICES" --strategy ddp "$@"
