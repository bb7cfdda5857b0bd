#!/usr/bin/env bash
# spkrec general recipe for any corpus in the so762 layout (WAVE/SPEAKER<spk>/<utt>.flac, utt2spk,
# spk2gender). Background models (UBM, i-vector extractor, LDA/PLDA, score-normalisation cohort) come
# from the speakers of the --train corpora; on the --eval corpus each speaker's first 10 utterances
# (sorted by id) enrol and the rest are test utterances, all test utterances against all models.
#
# Usage: recipes/so762/run.sh --train DIR [--train DIR ...] --eval DIR [--stage N] [--stop-stage M]
#        [--nj J] [--exp DIR] [--data DIR]
# The development benchmark (docs/running-recipes.md):
#   recipes/so762/run.sh --train ../../data/so762-mini --eval ../shared/corpora/so762-dev
# (relative paths are taken from the directory you run it in)
# Stages:
#   0  prepare a data dir for each corpus (spkrec prepare-data so762)
#   1  MFCC features and energy VAD
#   2  combine the background corpora; enrolment/test split of the evaluation corpus; trials;
#      calibration folds of the background speakers (make-folds)
#   3-20 as recipes/mini (utils/stages_classical.sh): diagonal UBM, GMM-UBM, GSV-SVM, i-vectors (a small
#      diagonal UBM of their own, T on single utterances), cosine / LDA / PLDA back ends, S-norm, RNN,
#      calibration on the folds' background trials and fusion (stage 10), results (stage 20)
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
train=()                       # (path) a background corpus in the so762 layout (repeat --train for more)
eval=                          # (path) the evaluation corpus in the so762 layout (required)
data=data                      # (path) where the Kaldi data dirs are written
exp=exp                        # (path) where the models, scores, logs and results are written
num_enroll=10                  # enrolment utterances per evaluation speaker (the others are tests)
num_gauss=256                  # Gaussians of the GMM-UBM system's diagonal UBM
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
relevance=16                   # MAP relevance factor of the GMM-UBM and GSV-SVM systems
ivector_num_gauss=32           # the i-vector front end's own UBM (measured: 32 beats 16, 64 and 256 here)
ivector_ubm=diag               # diag, or full (a full-covariance UBM trained from the diagonal one)
tv_dim=100                     # total-variability dimension
ivector_iters=5                # EM iterations of the total-variability matrix
auto_size=false                # true: choose ivector_num_gauss and tv_dim on 3 folds of held-out background
                               # speakers (spkrec choose-ivector-size, grid 16,32,64 x 50,100; measured worse
                               # than the defaults on so762, docs/baselines.md)
pool_speakers=false            # true: train T on speaker-pooled statistics (measured worse, docs/baselines.md)
plda_chain=center,lnorm        # steps before PLDA (e.g. center,lda:40,wccn,lnorm)
snorm_method=s                 # s (S-norm) or as (adaptive S-norm with the snorm_top_n best cohort scores)
snorm_top_n=200                # cohort size of adaptive S-norm (snorm_method=as)
num_folds=4                    # cross-fitting folds of background speakers for calibration and fusion
num_cal_enroll=5               # enrolment utterances per speaker in the folds' trials: as close to the
                               # evaluation's 10 as so762-mini's 6 allow (3 gave GMM-UBM actDCF 1.13, 5: 0.50)
fold_ubm=retrain               # the folds' GMM-UBM UBM: retrain (without the fold's speakers) or shared (the
                               # evaluation's; faster)
cal_rotations=6                # models per background speaker in the folds' trials, enrolled on rotating
                               # windows of its utterances (1: one model; 6 give 6x the target trials)
cal_znorm="gmm_ubm gsv_svm ivec_cosine ivec_lda_cosine"  # systems Z-normalised (cohort: background
                               # utterances) before calibration: their raw scale grows with the enrolment size
target_prior=0.01              # target prior of the calibration (and of minDCF)
fused="gmm_ubm ivec_plda_twocov"  # the systems fused in stage 10 (gmm_ubm Z-normalised, cal_znorm; measured:
                                  # with gmm_ubm_snorm instead actDCF 1.45x minDCF, adding GSV-SVM hurts)
rnn_epochs=10                  # training epochs of the RNN encoder and classifier (stage 9)
cnn_epochs=10                  # training epochs of the CNN speaker encoder (stage 12, utils/stage_cnn.sh)
cnn_arch=resnet18              # vgg, resnet18, resnet34 or resnet50 (thin: 8 channels in the first stage)
lda_dim=40                     # LDA dimension of the LDA back ends (below the number of background speakers)
seed=0                         # random seed (dither, UBM initialisation, T matrix, RNN)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 6 7 8 9 10 11 12 20"
. utils/stages.sh
. utils/systems.sh
. utils/stage_cnn.sh
stage_opts[0]="train eval"
stage_opts[2]="num_enroll num_folds num_cal_enroll cal_rotations"
. utils/stage_options.sh        # what each of stages 1 and 3-11 depends on
classical="gmm_ubm gmm_ubm_snorm gsv_svm ivec_cosine ivec_lda_cosine ivec_plda_twocov ivec_plda_simplified ivec_plda_twocov_snorm"
all_systems="$classical fused rnn_cosine rnn_plda rnn_softmax_id cnn_cosine cnn_plda cnn_softmax_id cnn_knn"
[ ${#train[@]} -gt 0 ] && [ -n "$eval" ] || { echo "$0: give --train DIR (one or more) and --eval DIR" >&2; exit 1; }
mkdir -p "$exp/log"

if run_stage 0 "prepare data" "$data/eval_all/spk2utt"; then
  for i in "${!train[@]}"; do
    run "$exp/log/prepare_train$i.log" spkrec prepare-data so762 "${train[$i]}" "$data/train$i"
  done
  run "$exp/log/prepare_eval.log" spkrec prepare-data so762 "$eval" "$data/eval_all"
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

if run_stage 2 "background set, enrolment/test split, trials and calibration folds" "$data/test/trials" \
    "$data/cal/fold$((num_folds - 1))/test/trials"; then
  sources=(); for i in "${!train[@]}"; do sources+=("$data/train$i"); done
  run "$exp/log/combine.log" spkrec combine-data-dirs "$data/train" "${sources[@]}"
  run "$exp/log/trials.log" spkrec make-trials --num-enroll "$num_enroll" --skip-short \
    "$data/eval_all" "$data/enroll" "$data/test" "$data/test/trials.tmp"
  mv "$data/test/trials.tmp" "$data/test/trials"
  run "$exp/log/folds.log" spkrec make-folds --num-folds "$num_folds" --num-enroll "$num_cal_enroll" \
    --rotations "$cal_rotations" \
    "$data/train" "$data/cal"
fi
mkdir -p "$exp/scores"
. utils/stages_classical.sh
