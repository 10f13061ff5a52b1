#!/usr/bin/env bash
# The converged run's report, rebuilt from the committed results.json copies under results/full/runs/
# (models/ may not survive a move to another machine): every ep20 run of the dev-chosen recipe.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=results/full/webbnyheter2012-cbow-d100-e5-ep20-lr0.1-nall-default-webbnyheter2012-e5-small-sv-lb-bioes-ep10-p2-lr5e-5-b16-nall
args=()
for r in results/full/runs/models/*/{plain,kd}/*-ep20-lr0.1-nall*/seed-*/results.json; do
  args+=(--result "$r")
done
echo "report over $(( ${#args[@]} / 2 )) runs"
.venv/bin/swener report --profile full --teacher results/full/converged/teacher.json --out "$OUT" "${args[@]}"
