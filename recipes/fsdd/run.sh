#!/usr/bin/env bash
# spkrec FSDD recipe: text-dependent speaker verification on the Free Spoken Digit Dataset (6 speakers x
# 10 digits x 50 repetitions, 8 kHz). Each digit is a pass-phrase. Leave-speakers-out folds: in fold k the
# speakers k and k+3 (sorted) are held out, the other 4 are background speakers (SI HMMs, UBM); each held-out
# speaker enrols one model per digit with its first 5 repetitions and is tested with the rest, every model
# against every test utterance of the fold. Trials of four kinds (RSR2015): target speaker / correct digit
# (the targets), impostor / correct digit, target speaker / wrong digit, impostor / wrong digit.
#
# Usage: recipes/fsdd/run.sh [--corpus DIR] [--stage N] [--stop-stage M] [--nj J] [--exp DIR] [--data DIR]
# Stages:
#   0  prepare the data dir (spkrec prepare-data fsdd: wav.scp, utt2spk, text = the digit word)
#   1  MFCC features for 8 kHz speech (no VAD: the corpus is trimmed to the spoken word)
#   2  folds, enrolment/test sets and text-dependent trials (spkrec make-td-trials)
#   3  per fold: speaker-independent HMM per digit (train-hmm) and a diagonal UBM (train-ubm)
#   4  per fold: HMM system: MAP states per speaker x digit (enroll-hmm), LLR scoring (score-hmm)
#      against the best SI digit model (hmm), the claimed digit's SI model (hmm_claimed) and the best SI
#      model of the other digits (hmm_phrase: a phrase check)
#   5  per fold: GMM-UBM (text-independent modelling): MAP per speaker x digit model, top-5 LLR scoring;
#      gmm_ubm (means, relevance $gmm_relevance) and gmm_ubm_mwv (means, weights, variances, relevance 4)
#   6  hmm_fused: linear logistic fusion (spkrec fuse) of hmm and hmm_phrase, trained on the first fold's
#      trials only and applied to the other folds
#   7  system bundles exp/systems/{hmm,hmm_phrase,hmm_fused} (spkrec export-system; enrol a digit, verify a file)
#   20 results: pooled folds; exp/results.md (all trials, and EER per non-target kind; all systems on the
#      folds the fusion was not trained on), exp/det.png
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
corpus=../../../shared/corpora/fsdd   # (path) the corpus, in the fsdd layout (WAVE/<spk>/<spk>_<digit>_<n>.flac, utt2spk, text)
data=data                      # (path) where the Kaldi data dirs are written
exp=exp                        # (path) where the models, scores, logs and results are written
num_folds=3                    # leave-speakers-out folds (2 of the 6 speakers held out in each)
num_enroll=5                   # enrolment repetitions per speaker and digit
num_test=0                     # test repetitions per speaker and digit (0: all the others)
num_states=8                   # HMM states per digit (measured: 8 x 4 beat 5 x 4, 3 x 8 and 5 x 8)
num_mix=4                      # Gaussians per state
hmm_iters=5                    # Baum-Welch iterations after each doubling of the Gaussians per state
relevance=2                    # MAP relevance of the HMM states (measured: 2 beat 1, 4 and 8)
hmm_adapt=mwv                  # MAP-adapted HMM state parameters: m (means), mw (+weights), mwv (+variances)
num_gauss=64                   # Gaussians of the GMM-UBM system's UBM
ubm_iters=4                    # EM iterations after each doubling of the UBM's Gaussians
gmm_relevance=16               # MAP relevance of the GMM-UBM system
gmm_adapt=m                    # MAP-adapted GMM-UBM parameters: m (Reynolds' means only), mw, mwv
mwv_relevance=4                # MAP relevance of the gmm_ubm_mwv system (means, weights, variances)
cmvn=none                      # feature normalisation of both systems: none, or sliding (= utterance CMN here)
fold_jobs=2                    # folds processed at once in stages 3-5 (1: one after the other, commands with --nj)
seed=0                         # random seed of every step (a seed makes a rerun bit-identical)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 6 7 20"
. utils/stages.sh
. utils/systems.sh
stage_opts[0]="corpus"
stage_opts[1]="seed"
stage_opts[2]="num_folds num_enroll num_test"
stage_opts[3]="num_states num_mix hmm_iters num_gauss ubm_iters cmvn seed"
stage_opts[4]="relevance hmm_adapt"
stage_opts[5]="gmm_relevance gmm_adapt mwv_relevance"
all_systems="hmm hmm_claimed hmm_phrase gmm_ubm gmm_ubm_mwv"
declare kinds="impostor_correct target_wrong impostor_wrong"   # (declare: not an option)
mkdir -p "$exp/log" "$exp/scores"
[ -d "$corpus" ] || { echo "$0: --corpus $corpus is not a directory (the FSDD corpus in the layout of shared/corpora/fsdd)" >&2; exit 1; }

if run_stage 0 "prepare data from $corpus" "$data/all/text"; then
  run "$exp/log/prepare.log" spkrec prepare-data fsdd "$corpus" "$data/all"
  run "$exp/log/validate.log" spkrec validate-data-dir --no-check-audio "$data/all"
fi

if run_stage 1 "MFCC (8 kHz: 13 coefficients, 23 mel bins up to 3800 Hz)" "$data/all/feats.scp"; then
  run "$exp/log/mfcc.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
    "$data/all" "$exp/mfcc"
fi

if run_stage 2 "folds and text-dependent trials" "$data/folds/fold$((num_folds - 1))/test/trials"; then
  rm -rf "$data/folds"
  test_opt=(); [ "$num_test" -gt 0 ] && test_opt=(--num-test "$num_test")
  run "$exp/log/folds.log" spkrec make-td-trials --num-folds "$num_folds" --num-enroll "$num_enroll" "${test_opt[@]}" \
    "$data/all" "$data/folds.tmp"
  mv "$data/folds.tmp" "$data/folds"
fi
declare folds; folds=$(folds "$data/folds")
fold_outputs() { local f; for f in $folds; do echo "$exp/$f/$1"; done; }

# for_folds FUNC: FUNC FOLD for every fold, $fold_jobs at a time (each command single-process then: on jobs
# this small, worker processes cost more CPU, mostly their start-up, than they save); a failed fold stops.
fpar=$par; [ "$fold_jobs" -gt 1 ] && fpar="--nj 1"
for_folds() {
  local fn=$1 f running=0 failed=0
  for f in $folds; do
    if [ "$fold_jobs" -le 1 ]; then "$fn" "$f"; continue; fi
    "$fn" "$f" &
    running=$((running + 1))
    if [ "$running" -ge "$fold_jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
  [ "$failed" = 0 ] || { echo "$0: a fold failed (its log is shown above)" >&2; exit 1; }
}

train_fold() {
  local f=$1
  done_already "$exp/$f/hmm/hmms.npz" || \
    run "$exp/$f/hmm/log/train.log" spkrec train-hmm --num-states "$num_states" --num-mix "$num_mix" \
      --num-iters "$hmm_iters" --cmvn "$cmvn" --seed "$seed" $fpar "$data/folds/$f/train" "$exp/$f/hmm"
  # (train_ubm of utils/systems.sh, with the feature normalisation; later verbs take it from the UBM)
  done_already "$exp/$f/ubm/final.ubm.npz" || \
    run "$exp/$f/ubm/log/train.log" spkrec train-ubm --num-gauss "$num_gauss" --num-iters "$ubm_iters" \
      --cmvn "$cmvn" --seed "$seed" $fpar "$data/folds/$f/train" "$exp/$f/ubm"
}
if run_stage 3 "SI HMMs ($num_states states x $num_mix Gaussians) and UBM ($num_gauss Gaussians)" \
    $(fold_outputs hmm/hmms.npz) $(fold_outputs ubm/final.ubm.npz); then
  for_folds train_fold
fi

hmm_fold() {
  local f=$1 e=$exp/$1 d=$data/folds/$1
  done_already "$e/hmm/speakers.npz" || \
    run "$e/hmm/log/enroll.log" spkrec enroll-hmm --relevance-factor "$relevance" --adapt "$hmm_adapt" $fpar \
      "$e/hmm" "$d/enroll" "$e/hmm/speakers.npz"
  # one pass, three backgrounds: hmm (best SI digit), hmm_claimed (the claimed digit's SI model), hmm_phrase
  done_already "$e/scores/hmm_phrase.txt" || \
    run "$e/hmm/log/score.log" spkrec score-hmm --background all --other-background-scores "$e/scores/hmm_claimed.txt" \
      --phrase-scores "$e/scores/hmm_phrase.txt" $fpar "$e/hmm" "$e/hmm/speakers.npz" "$d/test" "$d/test/trials" "$e/scores/hmm.txt"
}
if run_stage 4 "HMM: MAP enrolment (relevance $relevance) and scoring" $(fold_outputs scores/hmm_phrase.txt); then
  for_folds hmm_fold
fi

gmm_fold() {
  local f=$1 e=$exp/$1 d=$data/folds/$1
  # (gmm_ubm of utils/systems.sh, with the MAP-adapted parameters as an option)
  local name rel adapt
  for name in gmm_ubm gmm_ubm_mwv; do
    if [ $name = gmm_ubm ]; then rel=$gmm_relevance adapt=$gmm_adapt; else rel=$mwv_relevance adapt=mwv; fi
    done_already "$e/scores/$name.txt" && continue
    run "$e/$name/log/enroll.log" spkrec enroll-gmm --relevance-factor "$rel" --adapt "$adapt" $fpar \
      "$e/ubm/final.ubm.npz" "$d/enroll_models" "$e/$name/speakers.npz"
    run "$e/$name/log/score.log" spkrec score-gmm --top-c 5 $fpar \
      "$e/ubm/final.ubm.npz" "$e/$name/speakers.npz" "$d/test" "$d/test/trials" "$e/scores/$name.txt"
  done
}
if run_stage 5 "GMM-UBM: MAP per speaker x digit (m, relevance $gmm_relevance; mwv, relevance $mwv_relevance), scoring" \
    $(fold_outputs scores/gmm_ubm.txt) $(fold_outputs scores/gmm_ubm_mwv.txt); then
  for_folds gmm_fold
fi

declare -a fold_list; read -r -d '' -a fold_list <<< "$folds" || true
declare first_fold=${fold_list[0]} eval_folds=${fold_list[*]:1}
if run_stage 6 "hmm_fused: fusion of hmm and hmm_phrase trained on $first_fold, applied to $eval_folds" \
    $(for f in $eval_folds; do echo "$exp/$f/scores/hmm_fused.txt"; done); then
  e0=$exp/$first_fold
  run "$exp/log/fuse_train.log" spkrec fuse --trials "$data/folds/$first_fold/test/trials" --names hmm,hmm_phrase \
    --model-out "$exp/fusion_hmm.npz" "$e0/scores/hmm.txt" "$e0/scores/hmm_phrase.txt"
  for f in $eval_folds; do
    run "$exp/$f/log/fuse.log" spkrec fuse --model "$exp/fusion_hmm.npz" --out "$exp/$f/scores/hmm_fused.txt" \
      "$exp/$f/scores/hmm.txt" "$exp/$f/scores/hmm_phrase.txt"
  done
fi

if run_stage 7 "system bundles exp/systems/{hmm,hmm_phrase,hmm_fused} (fold 0's SI HMMs; spkrec enroll --phrase / verify)" \
    "$exp/systems/hmm_fused/system.json"; then
  for bg in all phrase; do
    name=hmm; [ $bg = all ] || name=hmm_$bg
    run "$exp/systems/log/$name.log" spkrec export-system --kind hmm --hmm "$exp/$first_fold/hmm" \
      --hmm-background $bg --relevance-factor "$relevance" --adapt "$hmm_adapt" --feat-config conf/mfcc.conf \
      --no-vad --seed="$seed" --out "$exp/systems/$name"
  done
  run "$exp/systems/log/hmm_fused.log" spkrec export-system --kind fusion --component "$exp/systems/hmm" \
    --component "$exp/systems/hmm_phrase" --fusion "$exp/fusion_hmm.npz" --out "$exp/systems/hmm_fused"
fi

# kind_table POOLED TAG SYSTEM...: the EER % per non-target kind of the systems' scores in $exp/scores$TAG on
# the trials of data dir POOLED (a Markdown table on stdout)
kind_table() {
  local pooled=$1 tag=$2 k s; shift 2
  echo "| system | $(echo $kinds | sed 's/ / | /g') |"
  echo "|---$(for k in $kinds; do printf '|---:'; done)|"
  for k in $kinds; do    # one results-table per kind (all systems at once); its EER column
    run "$exp/log/results${tag}_$k.log" spkrec results-table --trials "$pooled/trials_$k" --out "$exp/results${tag}_$k.md" \
      $(for s in "$@"; do echo "$exp/scores$tag/$s.txt:$s"; done)
  done
  for s in "$@"; do
    echo "| $s$(for k in $kinds; do awk -F'|' -v s="$s" '{gsub(/ /, "", $2)} $2 == s {gsub(/ /, "", $3); printf " | %s", $3}' "$exp/results${tag}_$k.md"; done) |"
  done
}
# pool POOLED TAG SYSTEMS FOLDS...: the folds' trials into data dir POOLED, the systems' scores into $exp/scores$TAG
pool() {
  local pooled=$1 tag=$2 systems=$3 t s f; shift 3
  mkdir -p "$pooled" "$exp/scores$tag"
  for t in trials $(for k in $kinds; do echo trials_$k; done) trial_kinds; do
    pool_fold_files "$pooled/$t" $(for f in "$@"; do echo "$data/folds/$f/test/$t"; done)
  done
  for s in $systems; do
    pool_fold_files "$exp/scores$tag/$s.txt" $(for f in "$@"; do echo "$exp/$f/scores/$s.txt"; done)
  done
}
if run_stage 20 "results: pooled folds, EER per trial kind, DET plot" "$exp/results.md" "$exp/det.png"; then
  # model ids (<speaker>-<digit>) never repeat across folds: pool the trials and scores
  pool "$data/pooled" "" "$all_systems" $folds
  pool "$data/pooled_eval" "_eval" "$all_systems hmm_fused" $eval_folds
  results "$data/pooled" "$exp" $all_systems     # no utt2spk in data/pooled: no identification columns
  {
    echo "## All trials ($(wc -l < "$data/pooled/trials") trials, $num_folds folds pooled)"; echo
    cat "$exp/results.md"; echo
    echo "## EER % per non-target kind (each against all $(grep -c ' target$' "$data/pooled/trials") targets)"; echo
    kind_table "$data/pooled" "" $all_systems
    echo; echo "Trials per kind: $(awk '{n[$3]++} END {for (k in n) printf "%s %d, ", k, n[k]}' "$data/pooled/trial_kinds" | sed 's/, $//')."
    echo; echo "## EER % per non-target kind on the folds the fusion was not trained on ($(echo $eval_folds | sed 's/ /, /g'))"; echo
    kind_table "$data/pooled_eval" "_eval" $all_systems hmm_fused
  } > "$exp/results.md.tmp"
  mv "$exp/results.md.tmp" "$exp/results.md"
  cat "$exp/results.md"
fi
finish_stages "$exp/results.md" "$exp/det.png"
