#!/usr/bin/env bash
# Page 06's trainings and evaluations (full preset) on one lent GPU.
# Usage on the device machine, from the repository root: bash .ci/gpu_nist_runs.sh OUTDIR REV
# Writes OUTDIR/nist.tgz (records and logs), also when the time limit stops the driver (finished runs are kept).
# Sizing (.ci/gpu_probe_nist.py on one H100, book/results/bench/gpu_probe_nist.json): the iResNet-100-like
# teacher at 64 px trains at ~3,900 images/s, the student at ~8,100; rendering runs in processes.
set -u
OUTDIR=${1:?output folder}
export FACEOPT_GIT_REV=${2:?git revision of this tree}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PRESET=${PRESET:-full}
DEVICE=${DEVICE:-cuda}
RUNS=src/faceopt/resources/runs/nist
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
KEY=$(python3 -c "from faceopt.recognition.nist_runs import PRESETS; print(PRESETS['$PRESET'].key())")
echo "preset $PRESET key $KEY"
timeout --kill-after=5 "${LIMIT_S:-540}" python3 -m faceopt.recognition.nist_runs --preset "$PRESET" --run-dir "$RUNS" \
  --cache-dir /tmp/nist-cache --jobs "${JOBS:-6}" --device "$DEVICE"
echo "driver exit $?"
sleep 2
tar czf "$OUTDIR/nist.tgz" -C "$RUNS" "$PRESET-$KEY"
tar tzf "$OUTDIR/nist.tgz" | grep -c "runs/.*json"
