#!/usr/bin/env bash
# spkrec mini recipe: speaker verification and identification on data/so762-mini (60 speakers x 6
# utterances of read speech). 30 speakers (15 f, 15 m) train the background models; each of the other
# 30 enrols on 3 utterances and is tested with 3 (all test utterances against all models).
#
# Usage: recipes/mini/run.sh [--stage N] [--stop-stage M] [--nj J] [--exp DIR] [--data DIR] [--force true]
# Stages:
#   0  prepare the data dir of the whole corpus (spkrec prepare-data so762)
#   1  MFCC features and energy VAD for every utterance
#   2  split background / evaluation speakers; enrolment and test sets; trials
#   3  train the diagonal UBM on background speakers
#   4  GMM-UBM: MAP-adapt a GMM per enrolled speaker; score every trial
#   5  GSV-SVM: MAP supervectors, one linear SVM per speaker against the background utterances
#   6  i-vectors: full-covariance UBM, total-variability matrix, extraction
#   7  i-vector back ends: cosine, LDA+cosine, LDA+WCCN+length norm+PLDA (two-covariance and
#      simplified), and the two-covariance PLDA with S-norm (cohort: background speakers)
#   8  GMM-UBM with S-norm
#   9  RNN (LSTM, GE2E loss) embeddings with cosine and PLDA scoring, and the softmax classifier for
#      identification; skipped with one line when PyTorch (the [rnn] extra) is not installed
#   20 results: exp/results.md (EER, minDCF, Cllr, top-1/top-5) and exp/det.png
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
force=false
corpus=../../data/so762-mini   # so762 layout (WAVE/SPEAKER<spk>/<utt>.flac, utt2spk, spk2gender)
data=data                      # Kaldi data dirs are written here
exp=exp                        # models, scores, logs and results
num_bg_per_gender=15
num_enroll=3
num_gauss=128
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
relevance=16
tv_dim=50                      # total-variability dimension (small: 30 background speakers)
ivector_iters=5
pool_speakers=true             # train T on speaker-pooled statistics (longer "utterances")
rnn_epochs=10
lda_dim=20                     # below the number of background speakers
seed=0

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
. utils/stages.sh
. utils/systems.sh
all_systems="gmm_ubm gmm_ubm_snorm gsv_svm ivec_cosine ivec_lda_cosine ivec_plda_twocov ivec_plda_simplified ivec_plda_twocov_snorm rnn_cosine rnn_plda rnn_softmax_id"
mkdir -p "$exp/log" "$exp/scores"

if run_stage 0 "prepare data from $corpus" "$data/all/spk2utt"; then
  run "$exp/log/prepare.log" spkrec prepare-data so762 "$corpus" "$data/all"
  run "$exp/log/validate.log" spkrec validate-data-dir "$data/all"
fi

if run_stage 1 "MFCC and VAD" "$data/all/feats.scp" "$data/all/vad.scp"; then
  run "$exp/log/mfcc.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
    "$data/all" "$exp/mfcc"
  run "$exp/log/vad.log" spkrec compute-vad --config conf/vad.conf $par "$data/all" "$exp/vad"
fi

if run_stage 2 "background/evaluation split and trials" "$data/test/trials"; then
  local/make_splits.sh "$data/all" "$num_bg_per_gender" "$data/lists"
  run "$exp/log/split.log" spkrec subset-data-dir --spk-list "$data/lists/train.spk" "$data/all" "$data/train"
  run "$exp/log/split.log" spkrec subset-data-dir --spk-list "$data/lists/eval.spk" "$data/all" "$data/eval"
  run "$exp/log/trials.log" spkrec make-trials --num-enroll "$num_enroll" \
    "$data/eval" "$data/enroll" "$data/test" "$data/test/trials.tmp"
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
log "done: $exp/results.md, $exp/det.png, $exp/scores/"
