#!/usr/bin/env bash
# The book's MarginDistillation runs (chapter 04, full preset) on one lent GPU.
# Usage on the device machine, from the repository root: bash .ci/gpu_margin_runs.sh OUTDIR REV
# Writes OUTDIR/md.tgz (the run folder's JSON records and logs) even when the time limit stops it.
set -u
OUTDIR=${1:?output folder}
export FACEOPT_GIT_REV=${2:?git revision of this tree}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
RUNS=src/faceopt/resources/runs/margin_distillation
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 - <<'PY' > "$OUTDIR/fingerprints.json"
import json, sys, torch
from faceopt.fingerprint import module_file, source_fingerprint
from faceopt.recognition import experiments as ex
print(json.dumps({"python": sys.version, "torch": torch.__version__, "key": ex.PRESETS["full"].key(),
                  "modules": {m: source_fingerprint(module_file(m).read_text()) for m in ex.RUN_CODE}}, indent=1))
PY
cat "$OUTDIR/fingerprints.json" | head -4
timeout --kill-after=5 "${LIMIT_S:-520}" python3 -m faceopt.recognition.runs --preset full --run-dir "$RUNS" --jobs "${JOBS:-14}" --device cuda
echo "driver exit $?"
sleep 2
KEY=$(python3 -c 'from faceopt.recognition import experiments as ex; print(ex.PRESETS["full"].key())')
tar czf "$OUTDIR/md.tgz" -C "$RUNS" --exclude='*.pt' --exclude=ckpt "full-$KEY"
tar tzf "$OUTDIR/md.tgz" | grep -c "students/.*json"
