#!/bin/bash
# The entity-dense transfer-set study on dev: BiLSTM (and BiLSTM-CRF) plain vs KD with the first 10,000
# almedalen sentences (the recipe) vs 10,000 almedalen sentences in which the teacher predicts an entity.
cd /work/main
V="TEACHER_BUCKETS=1"
SOFT=softlabels/webbnyheter2012/e5-small-sv-lb-bioes-ep10-p2-lr5e-5-b16-nall
T=results/full/studies/dense-transfer
TEXT=../shared/data/text/almedalen.txt.gz
make $V soft-labels || exit 1
make $V TRANSFER_MAX=${POOL:-50000} $SOFT/transfer-almedalen.npz || exit 1
[ -f $SOFT/almedalen-dense.txt.gz ] || .venv/bin/swener teacher select-transfer --soft-labels $SOFT --text $TEXT \
  --name almedalen-dense --max-sentences 10000 > $T/selection.txt || exit 1
for s in ${SEEDS:-1 2 3 4 5}; do
  make sweep $V SWEEP_FAMILY=bilstm SWEEP_BASE= SWEEP_VARY= SWEEP_SEEDS=$s SWEEP_TABLE=$T/bilstm.json || exit 1
  # the dense set holds fewer sentences than the recipe's 10,000: all of them (6,423 from a 20,000 pool)
  make sweep $V SWEEP_FAMILY=bilstm SWEEP_BASE="--no-plain --transfer $SOFT/almedalen-dense.txt.gz \
    --transfer-sentences $(zcat $SOFT/almedalen-dense.txt.gz | wc -l)" SWEEP_VARY= SWEEP_SEEDS=$s \
    SWEEP_TABLE=$T/bilstm.json || exit 1
done
echo ALL DONE
