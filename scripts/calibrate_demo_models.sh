#!/usr/bin/env bash
# Calibrate the three demo checkpoints (Platt scaling of the video logit, fitted on the
# 84 validation videos their thresholds were chosen on), evaluate them on the test split
# and rewrite their model cards. About 15 minutes on 2 CPU cores.
#   bash scripts/calibrate_demo_models.sh
# Needs runs/train_extra8v (made here if missing, ~3 minutes). Writes models/NAME.pt
# (metadata only: the weights are unchanged), models/NAME.md and runs/eval_NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
XS=(python -m xai_study)
DATA="xai-study make-train-extra --demo study_data/demo_data --out runs/train_extra8v --clips 8 --val-clips 8 --seed 7"
PLAIN="xai-study train --arch plain --data runs/train_extra8v/labels.csv --out runs/rv/plain.pt --size 224 --frames 6 --freeze-stages 3 --aug-copies 3 --epochs 6 --batch-size 32 --lr 1e-3 --seed 0 --half --quiet"
[ -f runs/train_extra8v/labels.csv ] || "${XS[@]}" ${DATA#xai-study }
for name in plain bonettini ltpa; do
  "${XS[@]}" calibrate --checkpoint "models/$name.pt" --data runs/train_extra8v/labels.csv \
    --split val --frames 32 --method platt --cache-dir runs/face_cache --out "runs/cal_$name" --quiet
  "${XS[@]}" evaluate-detector --model "models/$name.pt" --data study_data/demo_data/labels.csv \
    --split test --out "runs/eval_$name" --cache-dir runs/face_cache --quiet
  if [ "$name" = plain ]; then
    train="$PLAIN   # then: cp runs/rv/plain.pt models/plain.pt"
  else
    train="$PLAIN   # first the plain detector (models/plain.md)
xai-study train --arch $name --data runs/train_extra8v/labels.csv --out runs/r4/$name.pt --size 224 --frames 6 --freeze-stages 3 --aug-copies 3 --epochs 3 --batch-size 32 --lr 3e-4 --seed 0 --half --quiet --init runs/rv/plain.pt   # then: cp runs/r4/$name.pt models/$name.pt"
  fi
  python scripts/write_model_card.py "$name" "$DATA" "$train" "runs/eval_$name" > "models/$name.md.new"
  mv "models/$name.md.new" "models/$name.md"
done
