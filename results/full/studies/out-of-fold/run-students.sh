#!/bin/bash
# The out-of-fold study on dev: BiLSTM and BiLSTM-CRF, plain vs KD from out-of-fold vs in-fold fold-teacher caches.
cd /work/main
V="TEACHER_EPOCHS=10 TEACHER_BUCKETS=1"
OOF=softlabels/webbnyheter2012/e5-small-sv-lb-bioes-ep10-p2-lr5e-5-b16-nall-oof2
T=results/full/studies/out-of-fold
for s in ${SEEDS:-1 2 3}; do
  make sweep $V SWEEP_FAMILY=bilstm SWEEP_BASE= SWEEP_VARY=transfer_text=none SWEEP_SOFT=$OOF SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm.json || exit 1
  make sweep $V SWEEP_FAMILY=bilstm SWEEP_BASE=--no-plain SWEEP_VARY=transfer_text=none SWEEP_SOFT=$OOF-in SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm.json || exit 1
  make sweep $V SWEEP_FAMILY=bilstm-crf SWEEP_BASE= SWEEP_VARY= SWEEP_SOFT=$OOF SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm-crf.json || exit 1
  make sweep $V SWEEP_FAMILY=bilstm-crf SWEEP_BASE=--no-plain SWEEP_VARY= SWEEP_SOFT=$OOF-in SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm-crf.json || exit 1
done
echo ALL DONE
