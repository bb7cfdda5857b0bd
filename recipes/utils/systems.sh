#!/usr/bin/env bash
# The systems every recipe runs, one function each, over Kaldi data dirs:
#   TRAIN  background speakers (UBM, extractor, back ends, cohort)
#   ENROLL enrolment utterances (spk2utt: one model per speaker)
#   TEST   test utterances, with TEST/trials
# Each function skips its work when its outputs exist (all spkrec outputs are written atomically)
# unless force=true. Needs run() and log() from stages.sh and $par from cmd.sh/stages.sh.

done_already() {  # done_already OUTPUT... : true when all outputs exist and force is not set
  [ "${force:-false}" = true ] && return 1
  local f; for f in "$@"; do [ -e "$f" ] || return 1; done
  log "  $* exist(s), skipping"
}

# train_ubm TRAIN EXP NUM_GAUSS ITERS -> EXP/ubm/final.ubm.npz
train_ubm() {
  local train=$1 exp=$2 num_gauss=$3 iters=$4
  done_already "$exp/ubm/final.ubm.npz" && return 0
  run "$exp/ubm/log/train.log" spkrec train-ubm --num-gauss "$num_gauss" --num-iters "$iters" \
    --seed "${seed:-0}" $par "$train" "$exp/ubm"
}

# gmm_ubm ENROLL TEST EXP RELEVANCE -> EXP/scores/gmm_ubm.txt
gmm_ubm() {
  local enroll=$1 test=$2 exp=$3 relevance=$4
  done_already "$exp/scores/gmm_ubm.txt" && return 0
  run "$exp/gmm/log/enroll.log" spkrec enroll-gmm --relevance-factor "$relevance" $par \
    "$exp/ubm/final.ubm.npz" "$enroll" "$exp/gmm/speakers.npz"
  run "$exp/gmm/log/score.log" spkrec score-gmm --top-c 5 $par \
    "$exp/ubm/final.ubm.npz" "$exp/gmm/speakers.npz" "$test" "$test/trials" "$exp/scores/gmm_ubm.txt"
}

# gsv_svm TRAIN ENROLL TEST EXP RELEVANCE -> EXP/scores/gsv_svm.txt
# GMM-supervector SVM (Campbell et al. 2006): one linear SVM per enrolled speaker, its enrolment
# utterances' MAP supervectors against every background utterance's.
gsv_svm() {
  local train=$1 enroll=$2 test=$3 exp=$4 relevance=$5 set
  done_already "$exp/scores/gsv_svm.txt" && return 0
  for set in train test enroll; do
    local d=$train; [ $set = enroll ] && d=$enroll; [ $set = test ] && d=$test
    if [ $set = enroll ] && [ -f "$enroll/utt2orig" ] && ! done_already "$exp/gsv/enroll/supervector.scp"; then
      # rotated folds: every enrolment utterance is a test utterance too (same UBM): share its supervector
      mkdir -p "$exp/gsv/enroll"
      vectors_of_originals "$exp/gsv/test/supervector.scp" "$enroll/utt2orig" "$exp/gsv/enroll/supervector.scp"
      continue
    fi
    done_already "$exp/gsv/$set/supervector.scp" || \
      run "$exp/gsv/log/supervectors_$set.log" spkrec extract-supervectors --relevance-factor "$relevance" $par \
        "$exp/ubm/final.ubm.npz" "$d" "$exp/gsv/$set"
  done
  run "$exp/gsv/log/train_svm.log" spkrec train-svm "$exp/gsv/enroll/supervector.scp" "$enroll/utt2spk" \
    "$exp/gsv/train/supervector.scp" "$exp/gsv/svm.npz"
  run "$exp/gsv/log/score_svm.log" spkrec score-svm "$exp/gsv/svm.npz" "$exp/gsv/test/supervector.scp" \
    "$test/trials" "$exp/scores/gsv_svm.txt"
}

# ivectors TRAIN ENROLL TEST EXP TV_DIM ITERS -> EXP/ivectors_{train,enroll,test}/{ivector,spk_ivector}.scp
# The i-vector front end has its own UBM, sized to the data (ivector_num_gauss, default 32, diagonal:
# ivector_ubm=diag; full: a full-covariance UBM trained from it), independent of the GMM-UBM system's.
# T trains on single utterances (pool_speakers=true: on speaker-pooled statistics), then extraction.
# auto_size=true: the UBM size and T dimension are chosen by spkrec choose-ivector-size (EXP/ivector_size:
# sizes.txt, grid.md) on held-out background speakers instead of ivector_num_gauss and TV_DIM.
ivectors() {
  local train=$1 enroll=$2 test=$3 exp=$4 tv_dim=$5 iters=$6 set d ubm_dir=$4/ivector_ubm
  local iv_gauss=${ivector_num_gauss:-32}
  if [ "${auto_size:-false}" = true ]; then
    done_already "$exp/ivector_size/sizes.txt" || \
      run "$exp/ivector_size/log/choose.log" spkrec choose-ivector-size --steps "${plda_chain:-center,lnorm},plda" \
        --seed "${seed:-0}" $par "$train" "$exp/ivector_size"
    iv_gauss=$(sed -n 's/^num_gauss=//p' "$exp/ivector_size/sizes.txt")
    tv_dim=$(sed -n 's/^tv_dim=//p' "$exp/ivector_size/sizes.txt")
  fi
  done_already "$exp/ivector_ubm/final.ubm.npz" || \
    run "$exp/ivector_ubm/log/train.log" spkrec train-ubm --num-gauss "$iv_gauss" \
      --num-iters "${ubm_iters:-4}" --seed "${seed:-0}" $par "$train" "$exp/ivector_ubm"
  if [ "${ivector_ubm:-diag}" = full ]; then
    ubm_dir=$exp/full_ubm
    done_already "$exp/full_ubm/final.ubm.npz" || \
      run "$exp/full_ubm/log/train.log" spkrec train-full-ubm --num-iters 4 $par \
        "$exp/ivector_ubm/final.ubm.npz" "$train" "$exp/full_ubm"
  fi
  done_already "$exp/extractor/extractor.npz" || \
    run "$exp/extractor/log/train.log" spkrec train-ivector-extractor --ubm "${ivector_ubm:-diag}" \
      --tv-dim "$tv_dim" --num-iters "$iters" $([ "${pool_speakers:-false}" = true ] && echo --pool-speakers) \
      --seed "${seed:-0}" $par "$ubm_dir" "$train" "$exp/extractor"
  for set in train enroll test; do
    d=$train; [ $set = enroll ] && d=$enroll; [ $set = test ] && d=$test
    done_already "$exp/ivectors_$set/ivector.scp" || \
      run "$exp/extractor/log/extract_$set.log" spkrec extract-ivectors $par "$exp/extractor" "$d" "$exp/ivectors_$set"
  done
}

# ivector_backends TRAIN ENROLL TEST EXP LDA_DIM -> EXP/scores/ivec_{cosine,lda_cosine,plda_twocov,plda_simplified,plda_twocov_snorm}.txt
# PLDA systems use the chain $plda_chain (default center,lnorm: LDA and WCCN trained on in-sample
# i-vectors hurt on small background sets, docs/baselines.md). S-norm: both sides are scored the same way,
# models against the cohort speakers' single utterances and the cohort speakers' models (all their
# utterances, multi-enrolment PLDA) against the test utterances; --snorm-method as = adaptive S-norm.
ivector_backends() {
  local train=$1 enroll=$2 test=$3 exp=$4 lda_dim=$5
  local iv=$exp/ivectors b=$exp/backend sc=$exp/scores
  mkdir -p "$b"
  done_already "$sc/ivec_cosine.txt" || \
    run "$b/log/cosine.log" spkrec score-cosine --enroll-spk2utt "$enroll/spk2utt" \
      "${iv}_enroll/ivector.scp" "${iv}_test/ivector.scp" "$test/trials" "$sc/ivec_cosine.txt"
  done_already "$b/lda.npz" || \
    run "$b/log/train_lda.log" spkrec train-backend --steps "center,lda:$lda_dim,lnorm" \
      "${iv}_train/ivector.scp" "$train/utt2spk" "$b/lda.npz"
  done_already "$sc/ivec_lda_cosine.txt" || \
    run "$b/log/lda_cosine.log" spkrec score-cosine --backend "$b/lda.npz" --enroll-spk2utt "$enroll/spk2utt" \
      "${iv}_enroll/ivector.scp" "${iv}_test/ivector.scp" "$test/trials" "$sc/ivec_lda_cosine.txt"
  local variant
  for variant in two-cov simplified; do
    local name=plda_${variant//-/}
    done_already "$b/$name.npz" || \
      run "$b/log/train_$name.log" spkrec train-backend --steps "${plda_chain:-center,lnorm},plda" \
        --plda "$variant" "${iv}_train/ivector.scp" "$train/utt2spk" "$b/$name.npz"
    done_already "$sc/ivec_$name.txt" || \
      run "$b/log/score_$name.log" spkrec score-plda --enroll-spk2utt "$enroll/spk2utt" "$b/$name.npz" \
        "${iv}_enroll/ivector.scp" "${iv}_test/ivector.scp" "$test/trials" "$sc/ivec_$name.txt"
  done
  if ! done_already "$sc/ivec_plda_twocov_snorm.txt"; then
    run "$b/log/cohort_trials_enroll.log" spkrec make-cohort-trials "$enroll" "$train" "$b/enroll_cohort.trials"
    run "$b/log/cohort_trials_test.log" spkrec make-cohort-trials "$train" "$test" "$b/cohort_test.trials"
    run "$b/log/snorm_enroll.log" spkrec score-plda --enroll-spk2utt "$enroll/spk2utt" "$b/plda_twocov.npz" \
      "${iv}_enroll/ivector.scp" "${iv}_train/ivector.scp" "$b/enroll_cohort.trials" "$b/enroll_cohort.scores"
    run "$b/log/snorm_test.log" spkrec score-plda --enroll-spk2utt "$train/spk2utt" "$b/plda_twocov.npz" \
      "${iv}_train/ivector.scp" "${iv}_test/ivector.scp" "$b/cohort_test.trials" "$b/cohort_test.scores"
    run "$b/log/snorm.log" spkrec score-norm --method "${snorm_method:-s}" --top-n "${snorm_top_n:-200}" \
      "$sc/ivec_plda_twocov.txt" "$b/enroll_cohort.scores" "$b/cohort_test.scores" "$sc/ivec_plda_twocov_snorm.txt"
  fi
}

# gmm_ubm_snorm TRAIN ENROLL TEST EXP RELEVANCE -> EXP/scores/gmm_ubm_snorm.txt
# S-norm of the GMM-UBM scores; the cohort is one MAP model per background speaker.
gmm_ubm_snorm() {
  local train=$1 enroll=$2 test=$3 exp=$4 relevance=$5
  local g=$exp/gmm
  done_already "$exp/scores/gmm_ubm_snorm.txt" && return 0
  run "$g/log/cohort_enroll.log" spkrec enroll-gmm --relevance-factor "$relevance" $par \
    "$exp/ubm/final.ubm.npz" "$train" "$g/cohort.npz"
  # enrolment models against the cohort speakers' utterances, cohort models against the test utterances
  run "$g/log/cohort_trials_enroll.log" spkrec make-cohort-trials "$enroll" "$train" "$g/enroll_cohort.trials"
  run "$g/log/cohort_trials_test.log" spkrec make-cohort-trials "$train" "$test" "$g/cohort_test.trials"
  run "$g/log/cohort_score_enroll.log" spkrec score-gmm --top-c 5 $par "$exp/ubm/final.ubm.npz" "$g/speakers.npz" \
    "$train" "$g/enroll_cohort.trials" "$g/enroll_cohort.scores"
  run "$g/log/cohort_score_test.log" spkrec score-gmm --top-c 5 $par "$exp/ubm/final.ubm.npz" "$g/cohort.npz" \
    "$test" "$g/cohort_test.trials" "$g/cohort_test.scores"
  run "$g/log/snorm.log" spkrec score-norm --method "${snorm_method:-s}" --top-n "${snorm_top_n:-200}" \
    "$exp/scores/gmm_ubm.txt" \
    "$g/enroll_cohort.scores" "$g/cohort_test.scores" "$exp/scores/gmm_ubm_snorm.txt"
}

# have_torch: true when the Python that runs spkrec can import torch (the [rnn] extra)
have_torch() {
  local py; py=$(head -n 1 "$(command -v spkrec)" | sed 's/^#!//')
  "$py" -c "import torch" >/dev/null 2>&1
}

# rnn_systems TRAIN ENROLL TEST EXP LDA_DIM EPOCHS -> EXP/scores/rnn_{cosine,plda,softmax_id}.txt
# LSTM speaker encoder (GE2E loss) trained on the background speakers; its embeddings scored by the same
# back ends as the i-vectors; and the closed-set softmax classifier trained on the enrolment utterances.
rnn_systems() {
  local train=$1 enroll=$2 test=$3 exp=$4 lda_dim=$5 epochs=$6 set d
  local sc=$exp/scores
  if ! have_torch; then
    log "  RNN systems skipped: PyTorch is not installed (pip install 'spkrec[rnn]' or pip install torch==2.13.0)"
    return 0
  fi
  done_already "$exp/rnn/final.pt" || \
    run "$exp/rnn/log/train.log" spkrec train-rnn --loss ge2e --lr 0.003 --epochs "$epochs" --seed "${seed:-0}" \
      $par "$train" "$exp/rnn"
  for set in train enroll test; do
    d=$train; [ $set = enroll ] && d=$enroll; [ $set = test ] && d=$test
    done_already "$exp/embeddings_$set/embedding.scp" || \
      run "$exp/rnn/log/extract_$set.log" spkrec extract-embeddings $par "$exp/rnn" "$d" "$exp/embeddings_$set"
  done
  local em=$exp/embeddings
  done_already "$sc/rnn_cosine.txt" || \
    run "$exp/rnn/log/cosine.log" spkrec score-cosine --enroll-spk2utt "$enroll/spk2utt" \
      "${em}_enroll/embedding.scp" "${em}_test/embedding.scp" "$test/trials" "$sc/rnn_cosine.txt"
  done_already "$exp/rnn/plda.npz" || \
    run "$exp/rnn/log/train_plda.log" spkrec train-backend --steps "center,lda:$lda_dim,wccn,lnorm,plda" \
      "${em}_train/embedding.scp" "$train/utt2spk" "$exp/rnn/plda.npz"
  done_already "$sc/rnn_plda.txt" || \
    run "$exp/rnn/log/score_plda.log" spkrec score-plda --enroll-spk2utt "$enroll/spk2utt" "$exp/rnn/plda.npz" \
      "${em}_enroll/embedding.scp" "${em}_test/embedding.scp" "$test/trials" "$sc/rnn_plda.txt"
  done_already "$sc/rnn_softmax_id.txt" || \
    run "$exp/rnn/log/classify.log" spkrec classify-rnn --epochs "$epochs" --lr 0.003 --batches-per-epoch 5 --seed "${seed:-0}" \
      --model-dir "$exp/rnn_classifier" "$enroll" "$test" "$sc/rnn_softmax_id.txt"
}

# fold_exp FOLD EXP: the experiment dir EXP/cal/FOLD of one calibration fold (make-folds). The fold uses
# the i-vectors of EXP's front end (unsupervised; share_vectors); the GMM-UBM system's UBM and whatever
# is trained with speaker labels (PLDA, LDA, SVMs, S-norm cohorts) are trained again on the fold's own
# train dir, which lacks the fold's speakers (GMM-UBM scores of speakers inside the UBM's training data
# are more spread than those of new speakers: a calibration on them was over-confident by 2x).
fold_exp() {
  mkdir -p "$2/cal/$1/scores"
  echo "$2/cal/$1"
}

# vectors_of_originals SCP UTT2ORIG OUT: a vector table for the rotated ids of UTT2ORIG (make-folds
# --rotations: <model>-<utt> <utt>), each the line of SCP of its original utterance; written atomically.
vectors_of_originals() {
  awk 'NR == FNR {vec[$1] = $2; next} $2 in vec {print $1, vec[$2]}' "$1" "$2" > "$3.tmp"
  mv "$3.tmp" "$3"
}

# share_vectors SCP FOLD_DATA OUT_PATTERN: for each set of FOLD_DATA/{train,enroll,test}, the lines of the
# vector table SCP (of every background utterance) for that set's utterances, written to OUT_PATTERN
# with %s replaced by the set: a fold's sets are background utterances, whose vectors (from
# unsupervised models) need no second extraction.
share_vectors() {
  local scp=$1 fold=$2 pattern=$3 set out
  for set in train enroll test; do
    out=$(printf "$pattern" "$set")
    mkdir -p "$(dirname "$out")"
    if [ -f "$fold/$set/utt2orig" ]; then  # rotated folds (make-folds --rotations): <model>-<utt> -> <utt>
      vectors_of_originals "$scp" "$fold/$set/utt2orig" "$out"
    else
      awk 'NR == FNR {keep[$1]; next} $1 in keep' "$fold/$set/utt2spk" "$scp" > "$out.tmp"
      mv "$out.tmp" "$out"
    fi
  done
}

# folds DATA_CAL: the fold names (fold0 fold1 ...) written by make-folds
folds() { local f; for f in "$1"/fold*; do [ -d "$f" ] && basename "$f"; done; return 0; }

# znorm_cohort SYSTEM TRAIN ENROLL EXP -> EXP/znorm/SYSTEM.enroll_cohort.scores: the system's models (ENROLL)
# against every utterance of the cohort TRAIN (the background speakers), for Z-norm before calibration.
znorm_cohort() {
  local s=$1 train=$2 enroll=$3 exp=$4 z=$4/znorm iv=$4/ivectors
  local out=$z/$s.enroll_cohort.scores
  done_already "$out" && return 0
  mkdir -p "$z/log"
  local reuse=false; [ "$s" = gmm_ubm ] && [ -f "$exp/gmm/enroll_cohort.scores" ] && reuse=true
  [ $reuse = true ] || { [ -f "$z/enroll_cohort.trials" ] && [ "${force:-false}" != true ]; } || \
    run "$z/log/cohort_trials.log" spkrec make-cohort-trials "$enroll" "$train" "$z/enroll_cohort.trials"
  case "$s" in
    gmm_ubm)
      if [ $reuse = true ]; then  # stage 8 made it (same models, same cohort)
        cp "$exp/gmm/enroll_cohort.scores" "$out.tmp" && mv "$out.tmp" "$out"
      else
        run "$z/log/$s.log" spkrec score-gmm --top-c 5 $par "$exp/ubm/final.ubm.npz" "$exp/gmm/speakers.npz" \
          "$train" "$z/enroll_cohort.trials" "$out"
      fi ;;
    gsv_svm)
      run "$z/log/$s.log" spkrec score-svm "$exp/gsv/svm.npz" "$exp/gsv/train/supervector.scp" \
        "$z/enroll_cohort.trials" "$out" ;;
    ivec_cosine)
      run "$z/log/$s.log" spkrec score-cosine --enroll-spk2utt "$enroll/spk2utt" \
        "${iv}_enroll/ivector.scp" "${iv}_train/ivector.scp" "$z/enroll_cohort.trials" "$out" ;;
    ivec_lda_cosine)
      run "$z/log/$s.log" spkrec score-cosine --backend "$exp/backend/lda.npz" --enroll-spk2utt "$enroll/spk2utt" \
        "${iv}_enroll/ivector.scp" "${iv}_train/ivector.scp" "$z/enroll_cohort.trials" "$out" ;;
    *) log "  znorm_cohort: no cohort scoring for $s"; return 1 ;;
  esac
}

# in_list WORD LIST...: true when WORD is one of LIST
in_list() { local w=$1 x; shift; for x in "$@"; do [ "$x" = "$w" ] && return 0; done; return 1; }

# cal_input EXP SYSTEM: the score file that SYSTEM's calibration (and fusion) reads: its Z-normalised scores
# (EXP/scores_z) when it is one of $cal_znorm, else its scores
cal_input() {
  if in_list "$2" ${cal_znorm:-}; then echo "$1/scores_z/$2.txt"; else echo "$1/scores/$2.txt"; fi
}

# znorm_scores SYSTEM TRAIN ENROLL EXP -> EXP/scores_z/SYSTEM.txt: Z-norm of EXP/scores/SYSTEM.txt with the
# cohort of TRAIN's utterances. Raw GMM-UBM, SVM and cosine scores spread with the enrolment size (the
# folds enrol fewer utterances than the evaluation), so their calibration does not transfer; Z-normalised
# ones (each model's non-target scores standardised) do (docs/baselines.md).
znorm_scores() {
  local s=$1 train=$2 enroll=$3 exp=$4
  done_already "$exp/scores_z/$s.txt" && return 0
  znorm_cohort "$s" "$train" "$enroll" "$exp" || return 1
  mkdir -p "$exp/scores_z"
  local coh=$exp/znorm/$s.enroll_cohort.scores
  run "$exp/znorm/log/znorm_$s.log" spkrec score-norm --method z "$exp/scores/$s.txt" "$coh" "$coh" \
    "$exp/scores_z/$s.txt"
}

# calibrate DATA EXP SYSTEM... -> EXP/scores_cal/<s>.txt: each system's scores on the pooled fold trials of
# DATA/cal (background speakers only) train a linear calibration (EXP/cal/<s>.npz, train-calibration),
# applied to its evaluation scores (apply-calibration). The systems of $cal_znorm are Z-normalised first
# (znorm_scores; evaluation cohort DATA/train, each fold's cohort its own train dir).
calibrate() {
  local d=$1 exp=$2 s f; shift 2
  local c=$exp/cal cal=$d/cal
  mkdir -p "$c/scores" "$exp/scores_cal"
  pool_fold_files "$c/trials" $(for f in $(folds "$cal"); do echo "$cal/$f/test/trials"; done)
  for s in "$@"; do
    [ -f "$exp/scores/$s.txt" ] || continue
    if in_list "$s" ${cal_znorm:-}; then
      znorm_scores "$s" "$d/train" "$d/enroll" "$exp" || continue
      for f in $(folds "$cal"); do znorm_scores "$s" "$cal/$f/train" "$cal/$f/enroll" "$c/$f" || continue 2; done
    fi
    pool_fold_files "$c/scores/$s.txt" $(for f in $(folds "$cal"); do cal_input "$c/$f" "$s"; done)
    done_already "$exp/scores_cal/$s.txt" && continue
    run "$c/log/train_$s.log" spkrec train-calibration --target-prior "${target_prior:-0.01}" \
      "$c/scores/$s.txt" "$c/trials" "$c/$s.npz"
    run "$c/log/apply_$s.log" spkrec apply-calibration "$c/$s.npz" "$(cal_input "$exp" "$s")" "$exp/scores_cal/$s.txt"
  done
}

# pool_fold_files OUT FILE...: concatenate the folds' files (atomically)
pool_fold_files() {
  local out=$1; shift
  cat "$@" > "$out.tmp" && mv "$out.tmp" "$out"
}

# fuse_systems EXP NAME SYSTEM...: linear logistic-regression fusion trained on the pooled fold scores
# of the systems (EXP/cal/scores), applied to their evaluation scores -> EXP/scores_cal/NAME.txt
fuse_systems() {
  local exp=$1 name=$2 s pairs=() names=(); shift 2
  local c=$exp/cal
  for s in "$@"; do
    [ -f "$c/scores/$s.txt" ] && [ -f "$(cal_input "$exp" "$s")" ] || continue
    pairs+=("$c/scores/$s.txt,$(cal_input "$exp" "$s")"); names+=("$s")
  done
  [ ${#pairs[@]} -ge 2 ] || { log "  fusion $name skipped: fewer than two systems with calibration scores"; return 0; }
  done_already "$exp/scores_cal/$name.txt" && return 0
  local IFS=,
  run "$c/log/fuse_$name.log" spkrec fuse --trials "$c/trials" --target-prior "${target_prior:-0.01}" \
    --names "${names[*]}" --model-out "$c/$name.npz" --out "$exp/scores_cal/$name.txt" "${pairs[@]}"
}

# export_bundles TRAIN TEST EXP -> EXP/systems/<system>/: a system bundle (spkrec export-system) for each
# system that scores single files: features and VAD as conf/, the models, the S-norm cohort (TRAIN's
# speakers, as in stages 7-8), the system's calibration from stage 10 and the EER threshold measured on
# TEST/trials. A system of $cal_znorm is bundled Z-normalised with TRAIN's utterances as the cohort (as in
# stage 10), so that its calibration, which is of Z-normalised scores, applies to what the bundle scores;
# the fusion bundle holds its components' bundles. rnn_softmax_id is a closed-set classifier of
# the evaluation speakers, not a system to enrol new speakers with: it has no bundle.
export_bundles() {
  local train=$1 test=$2 exp=$3 s
  local feat=(--feat-config conf/mfcc.conf --vad-config conf/vad.conf "--seed=${seed:-0}")
  local snorm=(--snorm-cohort "$train" --snorm-method "${snorm_method:-s}" --snorm-top-n "${snorm_top_n:-200}")
  _bundle() {  # _bundle SYSTEM OPTION...
    local s=$1; shift
    [ -f "$exp/scores/$s.txt" ] || return 0
    done_already "$exp/systems/$s/system.json" && return 0
    local cal=(); [ -f "$exp/cal/$s.npz" ] && cal=(--calibration "$exp/cal/$s.npz")
    local norm=() scores=$exp/scores/$s.txt
    if in_list "$s" ${cal_znorm:-}; then  # calibrated on Z-normalised scores: the bundle Z-normalises too
      norm=(--snorm-cohort "$train" --snorm-method z); scores=$exp/scores_z/$s.txt
    fi
    run "$exp/systems/log/$s.log" spkrec export-system "$@" "${norm[@]}" "${feat[@]}" "${cal[@]}" \
      --eer-threshold-from "$scores" "$test/trials" --out "$exp/systems/$s"
  }
  local gmm=(--kind gmm_ubm --ubm "$exp/ubm/final.ubm.npz" --relevance-factor "${relevance:-16}" --top-c 5)
  _bundle gmm_ubm "${gmm[@]}"
  _bundle gmm_ubm_snorm "${gmm[@]}" "${snorm[@]}"
  _bundle gsv_svm --kind gsv_svm --ubm "$exp/ubm/final.ubm.npz" --relevance-factor "${relevance:-16}" \
    --background-supervectors "$exp/gsv/train/supervector.scp"
  _bundle ivec_cosine --kind ivector --extractor "$exp/extractor" --scoring cosine
  _bundle ivec_lda_cosine --kind ivector --extractor "$exp/extractor" --scoring cosine --backend "$exp/backend/lda.npz"
  local plda=(--kind ivector --extractor "$exp/extractor" --scoring plda)
  _bundle ivec_plda_twocov "${plda[@]}" --backend "$exp/backend/plda_twocov.npz"
  _bundle ivec_plda_simplified "${plda[@]}" --backend "$exp/backend/plda_simplified.npz"
  _bundle ivec_plda_twocov_snorm "${plda[@]}" --backend "$exp/backend/plda_twocov.npz" "${snorm[@]}"
  _bundle rnn_cosine --kind rnn --rnn "$exp/rnn" --scoring cosine
  _bundle rnn_plda --kind rnn --rnn "$exp/rnn" --scoring plda --backend "$exp/rnn/plda.npz"
  local name=fused comps=()
  [ -f "$exp/cal/$name.npz" ] || return 0
  done_already "$exp/systems/$name/system.json" && return 0
  for s in ${fused:-}; do comps+=(--component "$exp/systems/$s"); done  # cal_znorm ones Z-normalise (above)
  run "$exp/systems/log/$name.log" spkrec export-system --kind fusion "${comps[@]}" --fusion "$exp/cal/$name.npz" \
    --eer-threshold-from "$exp/scores_cal/$name.txt" "$test/trials" --out "$exp/systems/$name"
}

# results TEST EXP SYSTEM... -> EXP/results.md, EXP/det.png and EXP/plots/*.png. Each system's calibrated scores
# (EXP/scores_cal/<s>.txt) when it has them, else its raw scores, marked "(raw)";
# top-k identification columns when TEST/utt2spk exists (every test utterance scored against every model).
# Plots in EXP/plots (docs/plots.md), one panel per system where it applies: det.png (titled "<recipe>:
# <evaluation set>"; copied to EXP/det.png), hist.png (raw scores, EER and calibrated Bayes thresholds),
# ape.png (Bayes error rate of raw vs calibrated scores), confusion.png (the best identifier), em.png (UBM and
# T-matrix EM objective per iteration), map.png (PCA/t-SNE of the test i-vectors and embeddings).
results() {
  local test=$1 exp=$2; shift 2
  local systems=() s
  for s in "$@"; do
    if [ -f "$exp/scores_cal/$s.txt" ]; then systems+=("$exp/scores_cal/$s.txt:$s")
    elif [ -f "$exp/scores/$s.txt" ]; then systems+=("$exp/scores/$s.txt:$s (raw)"); fi
  done
  [ ${#systems[@]} -gt 0 ] || { log "no score files in $exp/scores"; exit 1; }
  local id_opts=(); [ -f "$test/utt2spk" ] && id_opts=(--utt2spk "$test/utt2spk")
  run "$exp/log/results.log" spkrec results-table --trials "$test/trials" "${id_opts[@]}" \
    --out "$exp/results.md" "${systems[@]}"
  local plots=$exp/plots
  local title="${recipe:-$(basename "$PWD")}: ${test#${data:-data}/}"
  mkdir -p "$plots"
  run "$exp/log/det.log" spkrec plot-det --title "$title" --out "$plots/det.png" "${systems[@]}" "$test/trials"
  cp "$plots/det.png" "$exp/det.png.tmp" && mv "$exp/det.png.tmp" "$exp/det.png"
  local pairs=()     # RAW[,CALIBRATED]:LABEL; a fusion has calibrated scores only (its LLRs twice)
  for s in "$@"; do
    if [ -f "$exp/scores/$s.txt" ] && [ -f "$exp/scores_cal/$s.txt" ]; then
      pairs+=("$exp/scores/$s.txt,$exp/scores_cal/$s.txt:$s")
    elif [ -f "$exp/scores/$s.txt" ]; then pairs+=("$exp/scores/$s.txt:$s (raw)")
    elif [ -f "$exp/scores_cal/$s.txt" ]; then pairs+=("$exp/scores_cal/$s.txt,$exp/scores_cal/$s.txt:$s"); fi
  done
  run "$exp/log/plot_hist.log" spkrec plot-hist --title "$title: score distributions" --out "$plots/hist.png" \
    "${pairs[@]}" "$test/trials"
  run "$exp/log/plot_ape.log" spkrec plot-ape --target-prior "${target_prior:-0.01}" \
    --title "$title: Bayes error rate" --out "$plots/ape.png" "${pairs[@]}" "$test/trials"
  [ ${#id_opts[@]} -gt 0 ] && run "$exp/log/plot_confusion.log" spkrec plot-confusion --optional \
    --utt2spk "$test/utt2spk" --title "$title: %s" --out "$plots/confusion.png" "${systems[@]}"
  local em=() m
  for m in ubm/final.ubm:UBM ivector_ubm/final.ubm:"i-vector UBM" full_ubm/final.ubm:"full-covariance UBM" \
           extractor/extractor:"T matrix"; do
    [ -f "$exp/${m%%:*}.objective.txt" ] && em+=("$exp/${m%%:*}.objective.txt:${m#*:}") && continue
    [ -f "$exp/${m%%:*}.npz" ] && em+=("$exp/${m%%:*}.npz:${m#*:}")
  done
  [ ${#em[@]} -gt 0 ] && run "$exp/log/plot_em.log" spkrec plot-em --title "$title: EM training" \
    --out "$plots/em.png" "${em[@]}"
  local maps=()
  [ -f "$exp/ivectors_test/ivector.scp" ] && maps+=("$exp/ivectors_test/ivector.scp:i-vectors")
  [ -f "$exp/embeddings_test/embedding.scp" ] && maps+=("$exp/embeddings_test/embedding.scp:RNN embeddings")
  [ ${#maps[@]} -gt 0 ] && [ -f "$test/utt2spk" ] && run "$exp/log/plot_map.log" spkrec plot-map \
    --utt2spk "$test/utt2spk" --title "$title: test utterances" --out "$plots/map.png" "${maps[@]}"
  return 0
}
