#!/usr/bin/env bash
# spkrec general recipe for any corpus in the so762 layout (WAVE/SPEAKER<spk>/<utt>.flac, utt2spk,
# spk2gender). Background models (UBM, i-vector extractor, LDA/PLDA, score-normalisation cohort) come
# from the speakers of the --train corpora; on the --eval corpus each speaker's first 10 utterances
# (sorted by id) enrol and the rest are test utterances, all test utterances against all models.
#
# Usage: recipes/so762/run.sh --train DIR [--train DIR ...] --eval DIR [--stage N] [--stop-stage M]
#        [--nj J] [--exp DIR] [--data DIR]
# The development benchmark of the README:
#   recipes/so762/run.sh --train ../../data/so762-mini --eval ../shared/corpora/so762-dev
# (relative paths are taken from the directory you run it in)
# Stages:
#   0  prepare a data dir for each corpus (spkrec prepare-data so762)
#   1  MFCC features and energy VAD
#   2  combine the background corpora; enrolment/test split of the evaluation corpus; trials
#   3  diagonal UBM on the background speakers
#   4  GMM-UBM: MAP enrolment and scoring
#   5  GSV-SVM: MAP supervectors, one linear SVM per speaker against the background utterances
#   6  i-vectors: full-covariance UBM, total-variability matrix, extraction
#   7  i-vector back ends: cosine, LDA+cosine, LDA+WCCN+length norm+PLDA (two-covariance and
#      simplified), and the two-covariance PLDA with S-norm (cohort: background speakers)
#   8  GMM-UBM with S-norm
#   9  RNN (LSTM, GE2E loss) embeddings with cosine and PLDA scoring, and the softmax classifier for
#      identification; skipped with one line when PyTorch (the [rnn] extra) is not installed
#   20 results: exp/results.md (EER, minDCF, Cllr, top-1, top-5) and exp/det.png
set -euo pipefail
here=$(pwd)
cd "$(dirname "$0")"

stage=0
stop_stage=100
force=false
train=()                       # background corpora (repeat --train)
eval=
data=data
exp=exp
num_enroll=10
num_gauss=256
ubm_iters=4
relevance=16
tv_dim=100                     # total-variability dimension
ivector_iters=5
pool_speakers=true             # train T on speaker-pooled statistics (longer "utterances")
rnn_epochs=10
lda_dim=40                     # below the number of background speakers
seed=0

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
. utils/stages.sh
. utils/systems.sh
all_systems="gmm_ubm gmm_ubm_snorm gsv_svm ivec_cosine ivec_lda_cosine ivec_plda_twocov ivec_plda_simplified ivec_plda_twocov_snorm rnn_cosine rnn_plda rnn_softmax_id"
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
[ ${#train[@]} -gt 0 ] && [ -n "$eval" ] || { echo "$0: give --train DIR (one or more) and --eval DIR" >&2; exit 1; }
mkdir -p "$exp/log"

if run_stage 0 "prepare data" "$data/eval_all/spk2utt"; then
  for i in "${!train[@]}"; do
    run "$exp/log/prepare_train$i.log" spkrec prepare-data so762 "$(abspath "${train[$i]}")" "$data/train$i"
  done
  run "$exp/log/prepare_eval.log" spkrec prepare-data so762 "$(abspath "$eval")" "$data/eval_all"
fi

if run_stage 1 "MFCC and VAD" "$data/eval_all/vad.scp"; then
  for i in "${!train[@]}" eval_all; do
    d=$data/train$i; [ "$i" = eval_all ] && d=$data/eval_all
    name=$(basename "$d")
    run "$exp/log/mfcc_$name.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
      "$d" "$exp/mfcc"
    run "$exp/log/vad_$name.log" spkrec compute-vad --config conf/vad.conf $par "$d" "$exp/vad"
  done
fi

if run_stage 2 "background set, enrolment/test split and trials" "$data/test/trials"; then
  sources=(); for i in "${!train[@]}"; do sources+=("$data/train$i"); done
  run "$exp/log/combine.log" spkrec combine-data-dirs "$data/train" "${sources[@]}"
  run "$exp/log/trials.log" spkrec make-trials --num-enroll "$num_enroll" --skip-short \
    "$data/eval_all" "$data/enroll" "$data/test" "$data/test/trials.tmp"
  mv "$data/test/trials.tmp" "$data/test/trials"
fi

if run_stage 3 "diagonal UBM ($num_gauss Gaussians)" "$exp/ubm/final.ubm.npz"; then
  train_ubm "$data/train" "$exp" "$num_gauss" "$ubm_iters"
fi

if run_stage 4 "GMM-UBM: MAP enrolment and scoring" "$exp/scores/gmm_ubm.txt"; then
  gmm_ubm "$data/enroll" "$data/test" "$exp" "$relevance"
fi

if run_stage 5 "GMM-supervector SVM" "$exp/scores/gsv_svm.txt"; then
  gsv_svm "$data/train" "$data/enroll" "$data/test" "$exp" "$relevance"
fi

if run_stage 6 "i-vectors: full-covariance UBM, T matrix (dim $tv_dim), extraction" \
    "$exp/ivectors_test/ivector.scp"; then
  ivectors "$data/train" "$data/enroll" "$data/test" "$exp" "$tv_dim" "$ivector_iters"
fi

if run_stage 7 "i-vector back ends: cosine, LDA, WCCN, length norm, PLDA (two variants), S-norm" \
    "$exp/scores/ivec_plda_twocov_snorm.txt"; then
  ivector_backends "$data/train" "$data/enroll" "$data/test" "$exp" "$lda_dim"
fi

if run_stage 8 "GMM-UBM with S-norm (cohort: background speakers)" "$exp/scores/gmm_ubm_snorm.txt"; then
  gmm_ubm_snorm "$data/train" "$data/enroll" "$data/test" "$exp" "$relevance"
fi

if run_stage 9 "RNN speaker embeddings (when PyTorch is installed)" "$exp/scores/rnn_softmax_id.txt"; then
  rnn_systems "$data/train" "$data/enroll" "$data/test" "$exp" "$lda_dim" "$rnn_epochs"
fi

if run_stage 20 "results table and DET plot" "$exp/results.md" "$exp/det.png"; then
  results "$data/test" "$exp" $all_systems
fi
log "done: $exp/results.md, $exp/det.png"
