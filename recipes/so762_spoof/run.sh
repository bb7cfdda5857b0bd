#!/usr/bin/env bash
# spkrec spoofing-countermeasure recipe on corpora in the so762 layout (WAVE/SPEAKER<spk>/<utt>.flac,
# utt2spk, spk2gender). The spoofs are SIMULATED from bona fide speech (docs/spoofing.md): the CM trains
# on the --train speakers' utterances and their $train_attacks spoofs; the evaluation spoofs the
# --eval speakers' test utterances with $eval_attacks, which include an attack unseen in training
# (mel_griffin_lim by default). A GMM-UBM ASV system (background: the --train speakers) scores every enrolled
# speaker against every bona fide and spoofed test utterance; the CMs (LFCC-GMM, CQCC-GMM) gate it.
#
# Usage: recipes/so762_spoof/run.sh --train DIR [--train DIR ...] --eval DIR [--stage N] [--stop-stage M]
#        [--nj J] [--exp DIR] [--data DIR]
# Stages:
#   0  prepare the corpora (spkrec prepare-data so762); enrolment/test split of the evaluation corpus
#   1  simulate spoofs: CM training set (train speakers, first $cm_utts_per_spk utterances, $train_attacks)
#      and evaluation test set (test utterances, $eval_attacks); utt2attack
#   2  features: LFCC and CQCC (CM; conf/lfcc.conf, conf/cqcc.conf), MFCC + VAD (ASV)
#   3  train the CMs ($cm_num_gauss-Gaussian GMMs: bona fide and spoof, or one per attack; no CMVN, no VAD)
#   4  score the evaluation test set with both CMs
#   5  ASV: GMM-UBM (recipes/utils/systems.sh) on bona fide and spoofed trials
#   20 results: exp/results.md (CM EER per attack, seen/unseen, min t-DCF, SASV EERs, tandem rates),
#      exp/det_cm_{lfcc,cqcc}.png (DET curves per attack)
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
train=()                       # (path) a background corpus in the so762 layout (repeat --train for more)
eval=                          # (path) the evaluation corpus in the so762 layout (required)
data=data                      # (path) where the Kaldi data dirs and the simulated spoofs are written
exp=exp                        # (path) where the models, scores, logs and results are written
num_enroll=3                   # enrolment utterances per evaluation speaker (the rest are test utterances)
max_test_per_spk=2             # test utterances per evaluation speaker (each also spoofed by every attack)
cm_utts_per_spk=2              # bona fide utterances per training speaker for the CM (each spoofed too; so762 has 6)
train_attacks=griffin_lim,replay,world                # attacks the countermeasures are trained on
eval_attacks=griffin_lim,replay,world,mel_griffin_lim  # attacks of the evaluation (mel_griffin_lim: unseen)
cm_num_gauss=64                # Gaussians of each CM GMM (the ASVspoof baseline uses 512, on far more data)
cm_iters=5                     # EM iterations of the CM GMMs after each doubling
cm_spoof_models=per-attack     # pooled (one spoof GMM, the ASVspoof baseline) or per-attack (closest attack model)
lfcc_threshold=                # tandem threshold of the LFCC-GMM CM (tuned on another half; empty: oracle EER)
cqcc_threshold=                # tandem threshold of the CQCC-GMM CM (tuned on another half; empty: oracle EER)
num_gauss=64                   # Gaussians of the ASV system's UBM (GMM-UBM)
ubm_iters=4                    # EM iterations of the ASV UBM after each doubling
relevance=16                   # MAP relevance of the ASV system
seed=0                         # random seed of every step (spoof simulation, dither, EM)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 20"
. utils/stages.sh
. utils/systems.sh
stage_opts[0]="train eval num_enroll max_test_per_spk cm_utts_per_spk"
stage_opts[1]="train_attacks eval_attacks seed"
stage_opts[3]="cm_num_gauss cm_iters cm_spoof_models seed"
stage_opts[5]="num_gauss ubm_iters relevance seed"
[ ${#train[@]} -gt 0 ] && [ -n "$eval" ] || { echo "$0: give --train DIR (one or more) and --eval DIR" >&2; exit 1; }
mkdir -p "$exp/log" "$exp/scores"

if run_stage 0 "prepare data, enrolment/test split" "$data/test_bona/spk2utt" "$data/train_cm_bona/spk2utt"; then
  sources=()
  for i in "${!train[@]}"; do
    run "$exp/log/prepare_train$i.log" spkrec prepare-data so762 "${train[$i]}" "$data/train$i"
    sources+=("$data/train$i")
  done
  run "$exp/log/combine.log" spkrec combine-data-dirs "$data/train" "${sources[@]}"
  run "$exp/log/prepare_eval.log" spkrec prepare-data so762 "$eval" "$data/eval_all"
  run "$exp/log/subset_enroll.log" spkrec subset-data-dir --first-utts-per-spk "$num_enroll" \
    "$data/eval_all" "$data/enroll"
  cut -d' ' -f1 "$data/enroll/utt2spk" > "$data/enroll.utts"
  awk 'NR==FNR {e[$1]=1; next} !($1 in e) {print $1}' "$data/enroll.utts" "$data/eval_all/utt2spk" \
    > "$data/rest.utts"
  run "$exp/log/subset_rest.log" spkrec subset-data-dir --utt-list "$data/rest.utts" "$data/eval_all" "$data/rest"
  run "$exp/log/subset_test.log" spkrec subset-data-dir --first-utts-per-spk "$max_test_per_spk" \
    "$data/rest" "$data/test_bona"
  run "$exp/log/subset_train_cm.log" spkrec subset-data-dir --first-utts-per-spk "$cm_utts_per_spk" \
    "$data/train" "$data/train_cm_bona"
fi

if run_stage 1 "simulate spoofs ($train_attacks for training, $eval_attacks for evaluation)" \
    "$data/test/utt2attack" "$data/train_cm/utt2attack"; then
  run "$exp/log/spoof_train.log" spkrec simulate-spoofs --attacks "$train_attacks" --seed "$seed" $par \
    "$data/train_cm_bona" "$data/train_cm"
  run "$exp/log/spoof_test.log" spkrec simulate-spoofs --attacks "$eval_attacks" --seed "$((seed + 1))" $par \
    "$data/test_bona" "$data/test"
fi

if run_stage 2 "LFCC, CQCC (CM) and MFCC + VAD (ASV) features" "$data/test_cqcc/feats.scp" "$data/test/vad.scp"; then
  for set in train_cm test; do
    for f in lfcc cqcc; do
      rm -rf "$data/${set}_$f"; mkdir -p "$data/${set}_$f"
      cp "$data/$set"/{wav.scp,utt2spk,spk2utt,utt2attack} "$data/${set}_$f/"
      run "$exp/log/${f}_$set.log" spkrec compute-feats --feat-type "$f" --config "conf/$f.conf" $par \
        "$data/${set}_$f" "$exp/$f"
    done
  done
  for d in train enroll test; do
    run "$exp/log/mfcc_$d.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
      "$data/$d" "$exp/mfcc"
    run "$exp/log/vad_$d.log" spkrec compute-vad --config conf/vad.conf $par "$data/$d" "$exp/vad"
  done
fi

if run_stage 3 "train the LFCC-GMM and CQCC-GMM countermeasures" "$exp/cm_cqcc/spoof.gmm.npz"; then
  for f in lfcc cqcc; do
    run "$exp/log/train_cm_$f.log" spkrec train-cm --num-gauss "$cm_num_gauss" --num-iters "$cm_iters" \
      --spoof-models "$cm_spoof_models" --cmvn none --seed "$seed" $par "$data/train_cm_$f" "$exp/cm_$f"
  done
fi

if run_stage 4 "CM scores of the evaluation test set" "$exp/scores/cm_cqcc.txt"; then
  for f in lfcc cqcc; do
    run "$exp/log/score_cm_$f.log" spkrec score-cm $par "$exp/cm_$f" "$data/test_$f" "$exp/scores/cm_$f.txt"
  done
fi

if run_stage 5 "GMM-UBM ASV on bona fide and spoofed trials" "$exp/scores/gmm_ubm.txt"; then
  # every enrolled speaker against every test utterance; a spoof of speaker S's utterance claiming S is
  # a (spoofed) target trial
  awk 'NR==FNR {spk[++n]=$1; next} {for (i = 1; i <= n; i++) print spk[i], $1, (spk[i] == $2 ? "target" : "nontarget")}' \
    "$data/enroll/spk2utt" "$data/test/utt2spk" | sort > "$data/test/trials.tmp"
  mv "$data/test/trials.tmp" "$data/test/trials"
  force=true   # a stage that runs redoes the ASV system (its inputs may have changed)
  train_ubm "$data/train" "$exp" "$num_gauss" "$ubm_iters"
  gmm_ubm "$data/enroll" "$data/test" "$exp" "$relevance"
fi

if run_stage 20 "results" "$exp/results.md"; then
  {
    echo "# so762_spoof results"
    echo
    echo "Spoofs are simulated (docs/spoofing.md). CM training attacks: $train_attacks; evaluation attacks:"
    echo "$eval_attacks. Training: $(wc -l < "$data/train_cm/utt2attack") utterances of $(wc -l < "$data/train_cm_bona/spk2utt") speakers;"
    echo "evaluation: $(wc -l < "$data/test/utt2attack") test utterances of $(wc -l < "$data/test_bona/spk2utt") speakers, $(wc -l < "$data/test/trials") ASV trials (GMM-UBM, $num_gauss Gaussians)."
    echo
  } > "$exp/results.md.tmp"
  for f in lfcc cqcc; do
    name=$(echo "$f" | tr a-z A-Z)-GMM
    thr_var=${f}_threshold; thr=()
    [ -n "${!thr_var}" ] && thr=(--cm-threshold "${!thr_var}")
    run "$exp/log/eval_cm_$f.log" spkrec eval-cm --name "$name" --seen-attacks "$train_attacks" "${thr[@]}" \
      --asv-scores "$exp/scores/gmm_ubm.txt" --asv-trials "$data/test/trials" \
      --out "$exp/eval_cm_$f.md" --det-plot "$exp/det_cm_$f.png" "$exp/scores/cm_$f.txt" "$data/test_$f"
    { cat "$exp/eval_cm_$f.md"; echo; } >> "$exp/results.md.tmp"
  done
  mv "$exp/results.md.tmp" "$exp/results.md"
  cat "$exp/results.md"
fi
finish_stages "$exp/results.md"
