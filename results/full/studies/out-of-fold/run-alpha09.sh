#!/bin/bash
# The out-of-fold study, alpha 0.9 (BiLSTM, seeds 1-3, with and without the transfer set), out of fold and in fold; plain runs come from run-students.sh.
cd /work/main
V="TEACHER_EPOCHS=10 TEACHER_BUCKETS=1"
OOF=softlabels/webbnyheter2012/e5-small-sv-lb-bioes-ep10-p2-lr5e-5-b16-nall-oof2
T=results/full/studies/out-of-fold
for soft in $OOF $OOF-in; do
  make sweep $V SWEEP_FAMILY=bilstm "SWEEP_BASE=--no-plain --alpha 0.9" SWEEP_VARY=transfer_text=none SWEEP_SOFT=$soft "SWEEP_SEEDS=1 2 3" SWEEP_TABLE=$T/bilstm.json || exit 1
done
echo ALPHA DONE
