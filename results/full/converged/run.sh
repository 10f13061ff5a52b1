#!/usr/bin/env bash
# The converged full run (KD issue, 2026-12-06): every family plain and with KD at the dev-chosen recipe
# (recipes/default.json), students trained 20 epochs instead of 10 (the budget study: 10 undertrain them),
# the length-bucketed teacher (reproducible on this machine kind), ID-CNNs with residual connections
# (config.ENCODER_OPTIONS), 5 seeds. The six cheaper families first, seed by seed, then the two ID-CNNs.
# Each finished run's results.json is copied under results/full/runs/ (models/ may not survive); the
# report is then rebuilt from those copies (report.sh).
set -euo pipefail
cd "$(dirname "$0")/../../.."
VARS=(STUDENT_EPOCHS=20 TEACHER_BUCKETS=1)
keep() {
  for r in models/*/{plain,kd}/*-ep20-lr0.1-nall*/seed-*/results.json; do
    [ -e "$r" ] && mkdir -p "results/full/runs/$(dirname "$r")" && cp -p "$r" "results/full/runs/$r"
  done
  return 0
}
for families in "bilstm-crf bilstm cnn-crf cnn window-crf window" "idcnn-crf idcnn"; do
  for seed in ${SEEDS:-1 2 3 4 5}; do
    make "${VARS[@]}" SEEDS="$seed" FAMILIES="$families" students
    keep
  done
done
bash results/full/converged/report.sh
