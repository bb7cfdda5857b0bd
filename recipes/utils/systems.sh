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
  for set in train enroll test; do
    local d=$train; [ $set = enroll ] && d=$enroll; [ $set = test ] && d=$test
    done_already "$exp/gsv/$set/supervector.scp" || \
      run "$exp/gsv/log/supervectors_$set.log" spkrec extract-supervectors --relevance-factor "$relevance" $par \
        "$exp/ubm/final.ubm.npz" "$d" "$exp/gsv/$set"
  done
  run "$exp/gsv/log/train_svm.log" spkrec train-svm "$exp/gsv/enroll/supervector.scp" "$enroll/utt2spk" \
    "$exp/gsv/train/supervector.scp" "$exp/gsv/svm.npz"
  run "$exp/gsv/log/score_svm.log" spkrec score-svm "$exp/gsv/svm.npz" "$exp/gsv/test/supervector.scp" \
    "$test/trials" "$exp/scores/gsv_svm.txt"
}

# results TEST EXP SYSTEM... -> EXP/results.md, EXP/det.png (systems whose EXP/scores/<s>.txt exists);
# top-k identification columns when TEST/utt2spk exists (every test utterance scored against every model)
results() {
  local test=$1 exp=$2; shift 2
  local systems=() s
  for s in "$@"; do [ -f "$exp/scores/$s.txt" ] && systems+=("$exp/scores/$s.txt:$s"); done
  [ ${#systems[@]} -gt 0 ] || { log "no score files in $exp/scores"; exit 1; }
  local id_opts=(); [ -f "$test/utt2spk" ] && id_opts=(--utt2spk "$test/utt2spk")
  run "$exp/log/results.log" spkrec results-table --trials "$test/trials" "${id_opts[@]}" \
    --out "$exp/results.md" "${systems[@]}"
  run "$exp/log/det.log" spkrec plot-det --out "$exp/det.png" "${systems[@]}" "$test/trials"
}
