#!/bin/bash
# The training-budget study on dev: does KD's gain from a transfer set grow when the student trains
# longer and the set is larger? BiLSTM at EPOCHS (default 20; the recipe's 10) plain, with the
# recipe's first 10,000 almedalen sentences, and with the first 50,000 (each epoch draws as many
# transfer sentences as there are train sentences: over 20 epochs 50,000 are seen about 2.5 times).
cd /work/main
V="TEACHER_BUCKETS=1"
SOFT=softlabels/webbnyheter2012/e5-small-sv-lb-bioes-ep10-p2-lr5e-5-b16-nall
T=results/full/studies/budget
E=${EPOCHS:-20}
TEXT=../shared/data/text/almedalen.txt.gz
make $V soft-labels || exit 1
make $V TRANSFER_MAX=50000 $SOFT/transfer-almedalen.npz || exit 1
for s in ${SEEDS:-1 2 3 4 5}; do
  # plain and KD with 50,000 transfer sentences
  make sweep $V STUDENT_EPOCHS=$E SWEEP_FAMILY=bilstm SWEEP_BASE="--transfer $TEXT --transfer-sentences 50000" \
    SWEEP_VARY= SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm-ep$E.json || exit 1
done
for s in ${SEEDS_10K:-1 2 3 4 5}; do
  # the recipe as it is (first 10,000), at the longer budget
  make sweep $V STUDENT_EPOCHS=$E SWEEP_FAMILY=bilstm SWEEP_BASE="--no-plain" SWEEP_VARY= SWEEP_SEEDS=$s \
    SWEEP_TABLE=$T/bilstm-ep$E.json || exit 1
done
echo ALL DONE
