#!/usr/bin/env bash
# spkrec mini recipe: speaker verification and identification on data/so762-mini (60 speakers x 6
# utterances of read speech). 30 speakers (15 f, 15 m) train the background models; each of the other
# 30 enrols on 3 utterances and is tested with 3 (all test utterances against all models).
# Scores are calibrated on trials among the background speakers only (4 cross-fitting folds: what is
# trained with speaker labels is retrained without the fold's speakers), and the systems are fused.
#
# Usage: recipes/mini/run.sh [--stage N] [--stop-stage M] [--nj J] [--exp DIR] [--data DIR] [--force true]
# Stages:
#   0  prepare the data dir of the whole corpus (spkrec prepare-data so762)
#   1  MFCC features and energy VAD for every utterance
#   2  split background / evaluation speakers; enrolment and test sets; trials; calibration folds
#   3  train the diagonal UBM on background speakers
#   4  GMM-UBM: MAP-adapt a GMM per enrolled speaker; score every trial (and the folds' trials)
#   5  GSV-SVM: MAP supervectors, one linear SVM per speaker against the background utterances
#   6  i-vectors: a small diagonal UBM of their own, total-variability matrix (single utterances), extraction
#   7  i-vector back ends: cosine, LDA+cosine, center+length norm+PLDA (two-covariance and
#      simplified), and the two-covariance PLDA with S-norm (cohort: background speakers)
#   8  GMM-UBM with S-norm
#   9  RNN (LSTM, GE2E loss) embeddings with cosine and PLDA scoring, and the softmax classifier for
#      identification; skipped with one line when PyTorch (the [rnn] extra) is not installed
#   10 calibration of every classical system on the folds' trials (GMM-UBM, GSV-SVM and cosine scores Z-normalised
#      first); fusion of GMM-UBM and PLDA
#   11 system bundles exp/systems/<system>/ for spkrec enroll / verify / identify-files on your own files
#   20 results: exp/results.md (EER, minDCF, actDCF, Cllr, minCllr, top-1/top-5) and exp/det.png
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
corpus=../../data/so762-mini   # (path) the corpus, in the so762 layout (WAVE/SPEAKER<spk>/<utt>.flac, utt2spk, spk2gender)
data=data                      # (path) where the Kaldi data dirs are written
exp=exp                        # (path) where the models, scores, logs and results are written
num_bg_per_gender=15           # background speakers of each gender (the others are evaluation speakers)
num_enroll=3                   # enrolment utterances per evaluation speaker (the others are tests)
num_gauss=128                  # Gaussians of the GMM-UBM system's diagonal UBM
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
relevance=16                   # MAP relevance factor of the GMM-UBM and GSV-SVM systems
ivector_num_gauss=32           # the i-vector front end's own UBM (a 128-Gaussian one over-fits 180 utterances)
ivector_ubm=diag               # diag, or full (a full-covariance UBM trained from the diagonal one)
tv_dim=50                      # total-variability dimension (small: 30 background speakers)
ivector_iters=5                # EM iterations of the total-variability matrix
auto_size=false                # true: choose ivector_num_gauss and tv_dim on 3 folds of held-out background
                               # speakers (spkrec choose-ivector-size, grid 16,32,64 x 50,100; measured worse
                               # than the defaults on so762, docs/baselines.md)
pool_speakers=false            # true: train T on speaker-pooled statistics (measured worse, docs/baselines.md)
plda_chain=center,lnorm        # steps before PLDA (e.g. center,lda:20,wccn,lnorm)
snorm_method=s                 # s (S-norm) or as (adaptive S-norm with the snorm_top_n best cohort scores)
snorm_top_n=200                # cohort size of adaptive S-norm (snorm_method=as)
num_folds=4                    # cross-fitting folds of background speakers for calibration and fusion
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
lda_dim=20                     # LDA dimension of the LDA back ends (below the number of background speakers)
seed=0                         # random seed (dither, UBM initialisation, T matrix, RNN)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 6 7 8 9 10 11 12 20"
. utils/stages.sh
. utils/systems.sh
. utils/stage_cnn.sh
stage_opts[0]="corpus"
stage_opts[2]="num_bg_per_gender num_enroll num_folds cal_rotations"
. utils/stage_options.sh        # what each of stages 1 and 3-11 depends on
classical="gmm_ubm gmm_ubm_snorm gsv_svm ivec_cosine ivec_lda_cosine ivec_plda_twocov ivec_plda_simplified ivec_plda_twocov_snorm"
all_systems="$classical fused rnn_cosine rnn_plda rnn_softmax_id cnn_cosine cnn_plda cnn_softmax_id cnn_knn"
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

if run_stage 2 "background/evaluation split, trials and calibration folds" "$data/test/trials" \
    "$data/cal/fold$((num_folds - 1))/test/trials"; then
  local/make_splits.sh "$data/all" "$num_bg_per_gender" "$data/lists"
  run "$exp/log/split_train.log" spkrec subset-data-dir --spk-list "$data/lists/train.spk" "$data/all" "$data/train"
  run "$exp/log/split_eval.log" spkrec subset-data-dir --spk-list "$data/lists/eval.spk" "$data/all" "$data/eval"
  run "$exp/log/trials.log" spkrec make-trials --num-enroll "$num_enroll" \
    "$data/eval" "$data/enroll" "$data/test" "$data/test/trials.tmp"
  mv "$data/test/trials.tmp" "$data/test/trials"
  run "$exp/log/folds.log" spkrec make-folds --num-folds "$num_folds" --num-enroll "$num_enroll" \
    --rotations "$cal_rotations" "$data/train" "$data/cal"
fi
. utils/stages_classical.sh
