#!/usr/bin/env bash
# Record the outputs of the five reference commands on the demo data into OUT, so that a
# refactoring can be checked for "same output before and after":
#
#   bash scripts/golden_outputs.sh runs/golden_before        # on the old commit
#   bash scripts/golden_outputs.sh runs/golden_after         # on the new one
#   .venv/bin/python scripts/compare_outputs.py runs/golden_before runs/golden_after
#
# XAI_STUDY (default .venv/bin/xai-study) and PY (default .venv/bin/python) pick the
# interpreter, e.g. to run an old checkout against this checkout's environment.
set -euo pipefail
out=${1:?usage: golden_outputs.sh OUT_DIR}
X=${XAI_STUDY:-.venv/bin/xai-study}
PY=${PY:-.venv/bin/python}
rm -rf "$out"; mkdir -p "$out"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# detect --json, on each architecture
for m in plain bonettini ltpa; do
  $X detect tests/data/single_face.mp4 --model $m --json > "$out/detect_$m.json"
done
# explain on a bundled clip (the paper's four explainers, fast preset)
$X explain tests/data/single_face.mp4 --out "$out/explain" --preset fast --quiet > "$out/explain.stdout"
# evaluate --limit 2 (2 fake + 2 real test videos, the four explainers, sanity on)
$X evaluate --data study_data/demo_data/labels.csv --explainers gradcam,shap3d,ltpa,bonettini \
  --out "$out/evaluate" --preset fast --split test --limit 2 --sanity --bootstrap 200 --quiet \
  > "$out/evaluate.stdout"
# build-study with 2 sections
$X build-study --data study_data/demo_data/labels.csv --out "$out/study" --sections 2 \
  --quiet > "$out/build_study.stdout"
# analyze --responses on the paper's counts (a synthetic responses.csv, seeded)
$PY - "$out/responses.csv" <<'PYEOF'
import sys
from xai_study.study.analysis import paper_responses
paper_responses().to_csv(sys.argv[1], index=False)
PYEOF
$X analyze --responses "$out/responses.csv" --out "$out/analyze" > "$out/analyze.stdout"
echo "recorded into $out"
