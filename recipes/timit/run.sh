#!/usr/bin/env bash
# spkrec TIMIT recipe. On a real LDC TIMIT (--timit-root /path/to/TIMIT, the folder holding TRAIN/ and
# TEST/) it runs two published protocols (see local/make_protocols.sh):
#   verification as in the MSR Identity Toolbox TIMIT demo (530 background / 100 evaluation speakers,
#   9 enrolment + 1 test sentence, 10,000 trials, 256 Gaussians, MAP relevance 10; reported there:
#   GMM-UBM EER 1.01 %), and closed-set identification over all 630 speakers with 8 training and
#   2 test sentences each (Reynolds 1995: 99.5 %).
# Without --timit-root it runs on data/timit-sample (16 speakers) with a scaled-down protocol of the
# same steps, small enough to walk stage by stage: run.sh --stage N --stop-stage N.
#
# Usage: recipes/timit/run.sh [--timit-root DIR] [--stage N] [--stop-stage M] [--nj J] [--exp DIR] [--data DIR]
# Stages:
#   0  prepare the data dir (spkrec prepare-data timit: TRAIN and TEST, SPHERE audio, SPKRINFO genders)
#   1  MFCC features and energy VAD
#   2  protocol: speaker lists, enrolment/test sets and trials of each condition
#   3  one diagonal UBM per condition
#   4  GMM-UBM: MAP enrolment and scoring of every trial
#   11 a system bundle for your own recordings (exp/systems/gmm_ubm: the first verification condition's
#      UBM, trained on background speakers only, with its EER threshold; spkrec enroll / verify / identify-files)
#   20 results: exp/results.md (verification and identification tables) and exp/det.png
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
timit_root=../../data/timit-sample/TIMIT  # (path) the TIMIT folder holding TRAIN/ and TEST/ (default: the sample)
data=data                      # (path) where the Kaldi data dirs are written
exp=exp                        # (path) where the models, scores, logs and results are written
num_gauss=auto                 # Gaussians of the UBMs; auto: 256 on the full corpus (as the MSR demo), 32 on the sample
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
relevance=10                   # MAP relevance factor (10 as the MSR demo)
seed=0                         # random seed (dither, UBM initialisation)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 11 20"
. utils/stages.sh
. utils/systems.sh
stage_opts[0]="timit_root"
stage_opts[1]="seed"
stage_opts[3]="num_gauss ubm_iters seed"
stage_opts[4]="relevance"
stage_opts[11]="relevance"
all_systems="gmm_ubm"
mkdir -p "$exp/log"

if run_stage 0 "prepare data from $timit_root" "$data/all/spk2utt"; then
  run "$exp/log/prepare.log" spkrec prepare-data timit "$timit_root" "$data/all"
  run "$exp/log/validate.log" spkrec validate-data-dir "$data/all"
fi

if run_stage 1 "MFCC and VAD" "$data/all/feats.scp" "$data/all/vad.scp"; then
  run "$exp/log/mfcc.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
    "$data/all" "$exp/mfcc"
  run "$exp/log/vad.log" spkrec compute-vad --config conf/vad.conf $par "$data/all" "$exp/vad"
fi

if run_stage 2 "protocol lists, enrolment/test sets and trials" "$data/lists/conditions"; then
  rm -f "$data/lists/conditions"
  local/make_protocols.sh "$data/all" "$data/lists.tmp"
  while read -r cond kind num_enroll; do
    d=$data/$cond
    run "$exp/log/split_eval_$cond.log" spkrec subset-data-dir --spk-list "$data/lists.tmp/$cond/eval.spk" \
      "$data/all" "$d/eval"
    run "$exp/log/trials_$cond.log" spkrec make-trials --num-enroll "$num_enroll" \
      "$d/eval" "$d/enroll" "$d/test" "$d/test/trials"
    if [ "$kind" = verif ]; then
      run "$exp/log/split_train_$cond.log" spkrec subset-data-dir --spk-list "$data/lists.tmp/$cond/train.spk" \
        "$data/all" "$d/train"
    else  # identification: the UBM is trained on the enrolment (training) sentences of all speakers
      rm -rf "$d/train"; cp -r "$d/enroll" "$d/train"
    fi
  done < "$data/lists.tmp/conditions"
  rm -rf "$data/lists"; mv "$data/lists.tmp" "$data/lists"
fi
[ -f "$data/lists/conditions" ] || { log "run stage 2 first"; exit 1; }
conditions=$(cut -d' ' -f1 "$data/lists/conditions")
if [ "$num_gauss" = auto ]; then
  if [ "$(wc -l < "$data/all/spk2utt")" -ge 630 ]; then num_gauss=256; else num_gauss=32; fi
fi

if run_stage 3 "diagonal UBMs ($num_gauss Gaussians)"; then
  for cond in $conditions; do train_ubm "$data/$cond/train" "$exp/$cond" "$num_gauss" "$ubm_iters"; done
fi

if run_stage 4 "GMM-UBM enrolment and scoring"; then
  for cond in $conditions; do gmm_ubm "$data/$cond/enroll" "$data/$cond/test" "$exp/$cond" "$relevance"; done
fi

if run_stage 11 "system bundle for your own recordings" "$exp/systems/gmm_ubm/system.json"; then
  c=$(awk '$2 == "verif" {print $1; exit}' "$data/lists/conditions")
  run "$exp/systems/log/gmm_ubm.log" spkrec export-system --kind gmm_ubm --ubm "$exp/$c/ubm/final.ubm.npz" \
    --relevance-factor "$relevance" --top-c 5 --feat-config conf/mfcc.conf --vad-config conf/vad.conf \
    "--seed=$seed" --eer-threshold-from "$exp/$c/scores/gmm_ubm.txt" "$data/$c/test/trials" --out "$exp/systems/gmm_ubm"
fi

if run_stage 20 "results tables and DET plot" "$exp/results.md" "$exp/det.png"; then
  # verification: pool the verification conditions' trials and scores (ids never collide across folds)
  verif=$(awk '$2 == "verif" {print $1}' "$data/lists/conditions")
  mkdir -p "$data/verification" "$exp/verification/scores"
  # (no utt2spk: models of one fold are not scored against the other fold's tests, so no identification)
  for c in $verif; do cat "$data/$c/test/trials"; done | sort > "$data/verification/trials"
  for s in $all_systems; do
    for c in $verif; do cat "$exp/$c/scores/$s.txt" 2>/dev/null || true; done > "$exp/verification/scores/$s.txt.tmp"
    if [ -s "$exp/verification/scores/$s.txt.tmp" ]; then
      mv "$exp/verification/scores/$s.txt.tmp" "$exp/verification/scores/$s.txt"
    else rm -f "$exp/verification/scores/$s.txt.tmp"; fi
  done
  results "$data/verification" "$exp/verification" $all_systems
  results "$data/id/test" "$exp/id" $all_systems
  {
    echo "## Verification ($(echo $verif | tr ' ' '+'))"; echo
    cat "$exp/verification/results.md"; echo
    echo "## Closed-set identification ($(wc -l < "$data/id/enroll/spk2utt") speakers)"; echo
    cat "$exp/id/results.md"; echo
    if [ "$(wc -l < "$data/all/spk2utt")" -ge 630 ]; then
      echo "Published references on full TIMIT: GMM-UBM EER 1.01 % and i-vector/PLDA EER 0.48 % (MSR Identity"
      echo "Toolbox demo, 256 Gaussians); closed-set identification 99.5 % (Reynolds 1995)."
    fi
  } > "$exp/results.md.tmp"
  mv "$exp/results.md.tmp" "$exp/results.md"
  cp "$exp/verification/det.png" "$exp/det.png"
  cat "$exp/results.md"
fi
finish_stages "$exp/results.md" "$exp/det.png"
