#!/usr/bin/env bash
# The book's device-tier runs (chapter 05, full preset) on one lent GPU.
# Usage on the device machine, from the repository root: bash .ci/gpu_tier_runs.sh OUTDIR REV
# Writes OUTDIR/tiers.tgz (records and logs) and OUTDIR/tier_weights.tgz (first-seed weights),
# also when the time limit stops the driver (the finished runs are kept).
set -u
OUTDIR=${1:?output folder}
export FACEOPT_GIT_REV=${2:?git revision of this tree}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PRESET=${PRESET:-full}
DEVICE=${DEVICE:-cuda}
RUNS=src/faceopt/resources/runs/device_tiers
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
KEY=$(python3 -c "from faceopt.system.tier_runs import PRESETS; print(PRESETS['$PRESET'].key())")
echo "preset $PRESET key $KEY"
timeout --kill-after=5 "${LIMIT_S:-500}" python3 -m faceopt.system.tier_runs --preset "$PRESET" --run-dir "$RUNS" \
  --cache-dir /tmp/tier-cache --jobs "${JOBS:-15}" --device "$DEVICE"
echo "driver exit $?"
sleep 2
tar czf "$OUTDIR/tiers.tgz" -C "$RUNS" --exclude=weights "$PRESET-$KEY"
tar czf "$OUTDIR/tier_weights.tgz" -C "$RUNS" "$PRESET-$KEY/weights"
tar tzf "$OUTDIR/tiers.tgz" | grep -c "runs/.*json"
grep -h "images_per_s\|Error\|error" "$RUNS/$PRESET-$KEY"/logs/*.log | head -20
