#!/usr/bin/env bash
# Stages 3-20 shared by recipes/mini and recipes/so762, sourced by their run.sh after stage 2 has written
#   $data/{train,enroll,test} and $data/test/trials  (background, enrolment and test sets)
#   $data/cal/fold<k>/{train,enroll,test}             (calibration folds of the background speakers)
# Every system scores the evaluation trials, then each fold's trials with the models of that fold
# (fold_exp: all but the i-vector front end retrained without the fold's speakers), which are pooled
# into the calibration set of stage 10.
cal_folds=$(folds "$data/cal")
fold_outputs() {  # fold_outputs FILE: that file under every fold's experiment dir
  local f; for f in $cal_folds; do echo "$exp/cal/$f/$1"; done
}

if run_stage 3 "diagonal UBM ($num_gauss Gaussians)" "$exp/ubm/final.ubm.npz" $(fold_outputs ubm/final.ubm.npz); then
  train_ubm "$data/train" "$exp" "$num_gauss" "$ubm_iters"
  for f in $cal_folds; do
    if [ "${fold_ubm:-retrain}" = shared ]; then  # the folds use the evaluation's UBM (unsupervised, like T)
      mkdir -p "$(fold_exp "$f" "$exp")/ubm"
      cp "$exp/ubm/final.ubm.npz" "$exp/cal/$f/ubm/final.ubm.npz.tmp"
      mv "$exp/cal/$f/ubm/final.ubm.npz.tmp" "$exp/cal/$f/ubm/final.ubm.npz"
    else
      train_ubm "$data/cal/$f/train" "$(fold_exp "$f" "$exp")" "$num_gauss" "$ubm_iters"
    fi
  done
fi

if run_stage 4 "GMM-UBM: MAP enrolment and scoring" "$exp/scores/gmm_ubm.txt" $(fold_outputs scores/gmm_ubm.txt); then
  gmm_ubm "$data/enroll" "$data/test" "$exp" "$relevance"
  for f in $cal_folds; do gmm_ubm "$data/cal/$f/enroll" "$data/cal/$f/test" "$(fold_exp "$f" "$exp")" "$relevance"; done
fi

if run_stage 5 "GMM-supervector SVM" "$exp/scores/gsv_svm.txt" $(fold_outputs scores/gsv_svm.txt); then
  gsv_svm "$data/train" "$data/enroll" "$data/test" "$exp" "$relevance"
  for f in $cal_folds; do
    # a shared UBM gives the folds' supervectors too: those of the background utterances
    [ "${fold_ubm:-retrain}" = shared ] && \
      share_vectors "$exp/gsv/train/supervector.scp" "$data/cal/$f" "$(fold_exp "$f" "$exp")/gsv/%s/supervector.scp"
    gsv_svm "$data/cal/$f/train" "$data/cal/$f/enroll" "$data/cal/$f/test" "$(fold_exp "$f" "$exp")" "$relevance"
  done
fi

iv_sizes="$ivector_num_gauss Gaussians), T matrix (dim $tv_dim"
[ "$auto_size" = true ] && iv_sizes="size chosen on held-out speakers), T matrix (dim chosen"
if run_stage 6 "i-vectors: $ivector_ubm UBM ($iv_sizes), extraction" \
    "$exp/ivectors_test/ivector.scp" $(fold_outputs ivectors_test/ivector.scp); then
  ivectors "$data/train" "$data/enroll" "$data/test" "$exp" "$tv_dim" "$ivector_iters"
  for f in $cal_folds; do
    share_vectors "$exp/ivectors_train/ivector.scp" "$data/cal/$f" "$(fold_exp "$f" "$exp")/ivectors_%s/ivector.scp"
  done
fi

if run_stage 7 "i-vector back ends: cosine, LDA+cosine, $plda_chain+PLDA (two variants), $snorm_method-norm" \
    "$exp/scores/ivec_plda_twocov_snorm.txt" $(fold_outputs scores/ivec_plda_twocov_snorm.txt); then
  ivector_backends "$data/train" "$data/enroll" "$data/test" "$exp" "$lda_dim"
  for f in $cal_folds; do
    ivector_backends "$data/cal/$f/train" "$data/cal/$f/enroll" "$data/cal/$f/test" "$(fold_exp "$f" "$exp")" "$lda_dim"
  done
fi

if run_stage 8 "GMM-UBM with $snorm_method-norm (cohort: background speakers)" "$exp/scores/gmm_ubm_snorm.txt" \
    $(fold_outputs scores/gmm_ubm_snorm.txt); then
  gmm_ubm_snorm "$data/train" "$data/enroll" "$data/test" "$exp" "$relevance"
  for f in $cal_folds; do
    gmm_ubm_snorm "$data/cal/$f/train" "$data/cal/$f/enroll" "$data/cal/$f/test" "$(fold_exp "$f" "$exp")" "$relevance"
  done
fi

if run_stage 9 "RNN speaker embeddings (when PyTorch is installed)" "$exp/scores/rnn_softmax_id.txt"; then
  rnn_systems "$data/train" "$data/enroll" "$data/test" "$exp" "$lda_dim" "$rnn_epochs"
fi

if run_stage 10 "calibration on the folds' background trials (prior $target_prior; Z-norm first: ${cal_znorm:-none}); fusion of $fused" \
    "$exp/scores_cal/fused.txt"; then
  calibrate "$data" "$exp" $classical
  fuse_systems "$exp" fused $fused
fi

if run_stage 11 "system bundles for your own recordings (spkrec enroll / verify / identify-files)" \
    "$exp/systems/ivec_plda_twocov/system.json" "$exp/systems/fused/system.json"; then
  export_bundles "$data/train" "$data/test" "$exp"
fi

declare -F run_cnn_stage >/dev/null && run_cnn_stage   # stage 12, when run.sh sourced utils/stage_cnn.sh

if run_stage 20 "results table and DET plot" "$exp/results.md" "$exp/det.png"; then
  results "$data/test" "$exp" $all_systems
  cat "$exp/results.md"  # the results table on stdout (everything else goes to stderr and the logs)
fi
finish_stages "$exp/results.md" "$exp/det.png" "$exp/scores_cal"
