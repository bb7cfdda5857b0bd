#!/usr/bin/env bash
# spkrec diarization recipe (who spoke when) for corpora in the so762 layout. The models (a small diagonal
# UBM, an i-vector extractor, a PLDA back end trained on 1.5-s windows) come from the speakers of the --train
# corpora; SIMULATED conversations (spkrec simulate-conversations: turn taking with pauses) are built from the
# --eval corpus, whose speakers are split in two: conversations of the first half tune the clustering
# threshold, those of the second half are diarized with it and scored (DER, collar 0.25 s and 0). Each half
# has 2-4-speaker conversations (conv_<half>) and two-speaker ones (conv_<half>2).
#
# Usage: recipes/so762_diarization/run.sh --train DIR [--train DIR ...] --eval DIR [--cross DATA]
#        [--stage N] [--stop-stage M] [--nj J] [--exp DIR] [--data DIR]
# (relative paths are taken from the directory you run it in). --train and --eval must not share speakers.
# --cross DATA: a Kaldi data dir of another corpus (e.g. spkrec prepare-data timit ...): stage 7 diarizes
# conversations simulated from it with the settings tuned on so762 (no re-tuning).
# Stages:
#   0  prepare a data dir for each corpus (spkrec prepare-data so762)
#   1  combine the background corpora; MFCC features and energy VAD of the background speakers
#   2  diagonal UBM, i-vector extractor (T on single utterances), background i-vectors, utterance PLDA
#   3  the diarization system bundle exp/systems/diarization: its back end (center, lnorm, PLDA) trained on
#      1.5-s windows of the background speakers (spkrec train-diarization-backend)
#   4  simulated conversations: data/conv_dev, conv_dev2 (tuning) and data/conv_test, conv_test2 (scoring);
#      conv_testfx, conv_testfx2: the test conversations' speakers with channel effects (levels, reverberation, noise)
#   5  tune the AHC threshold and the cluster merging threshold (PLDA LLR) on conv_dev + conv_dev2 (DER with collar);
#      written to exp/systems/diarization/diarization.json
#   6  diarize the test sets (tuned threshold; also the oracle number of speakers, and resegmentation); score;
#      exp/plots/<conversation>.png: reference vs hypothesis timelines
#   7  (with --cross) conversations of the --cross corpus, clean and with channel effects, diarized and scored
#  20  exp/results.md
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
train=()                       # (path) a background corpus in the so762 layout (repeat --train for more)
eval=                          # (path) the corpus in the so762 layout the simulated conversations come from (required)
cross=                         # (path) optional: a data dir of another corpus (prepare-data) for stage 7
data=data                      # (path) where the Kaldi data dirs and the conversations are written
exp=exp                        # (path) where the models, bundle, RTTMs, logs and results are written
ivector_num_gauss=32           # Gaussians of the i-vector front end's diagonal UBM
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
tv_dim=50                      # total-variability dimension
ivector_iters=3                # EM iterations of the total-variability matrix
plda_chain=center,lnorm,plda   # back-end steps (train-backend and train-diarization-backend --steps)
num_dev=20                     # simulated 2-4-speaker conversations for tuning (first half of the --eval speakers)
num_dev2=20                    # simulated two-speaker conversations for tuning
num_test=30                    # simulated 2-4-speaker conversations for scoring (second half)
num_test2=30                   # simulated two-speaker conversations for scoring
min_speakers=2                 # speakers per conversation of conv_dev/conv_test, at least
max_speakers=4                 # speakers per conversation of conv_dev/conv_test, at most
turns_per_speaker=3            # turns (utterances) per speaker in a conversation
overlap_prob=0.0               # probability that a turn starts before the previous one ends
babble=0                       # number of babble speakers added to each conversation (0: none)
fx="--level-spread 10 --rt60 0.4 --snr 15"   # channel effects of conv_testfx* and of stage 7's second set
scoring=plda                   # window scoring: plda or cosine
window=1.5                     # window length in seconds
shift=0.25                     # window shift in seconds
min_cluster=2.0                # seconds: smaller clusters are merged into their nearest
thresholds="-5 -3 -2"           # AHC stop scores tried on conv_dev + conv_dev2 (PLDA LLR scale)
merge_thresholds="none -25 -15 -10"  # cluster-level PLDA LLRs to merge above after AHC, tried with each threshold (none: no merging)
collar=0.25                    # seconds either side of each reference boundary left unscored
seed=0                         # random seed (dither, UBM, T matrix, conversations)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 6 7 20"
. utils/stages.sh
. utils/systems.sh
stage_opts[0]="train eval"
stage_opts[1]="seed"
stage_opts[2]="ivector_num_gauss ubm_iters tv_dim ivector_iters plda_chain seed"
stage_opts[3]="plda_chain window"
stage_opts[4]="num_dev num_dev2 num_test num_test2 min_speakers max_speakers turns_per_speaker overlap_prob babble fx seed"
stage_opts[5]="scoring window shift min_cluster thresholds merge_thresholds collar"
stage_opts[6]="collar"
stage_opts[7]="cross fx collar seed"
[ ${#train[@]} -gt 0 ] && [ -n "$eval" ] || { echo "$0: give --train DIR (one or more) and --eval DIR" >&2; exit 1; }
mkdir -p "$exp/log"
sys=$exp/systems/diarization

if run_stage 0 "prepare data" "$data/eval_all/spk2utt"; then
  for i in "${!train[@]}"; do
    run "$exp/log/prepare_train$i.log" spkrec prepare-data so762 "${train[$i]}" "$data/train$i"
  done
  run "$exp/log/prepare_eval.log" spkrec prepare-data so762 "$eval" "$data/eval_all"
fi

if run_stage 1 "background set, MFCC and VAD" "$data/train/vad.scp"; then
  sources=(); for i in "${!train[@]}"; do sources+=("$data/train$i"); done
  run "$exp/log/combine.log" spkrec combine-data-dirs "$data/train" "${sources[@]}"
  shared=$(cut -d' ' -f1 "$data/train/spk2utt" | grep -Fxf - <(cut -d' ' -f1 "$data/eval_all/spk2utt") | head -3 || true)
  [ -z "$shared" ] || { echo "$0: --train and --eval share speakers ($(echo $shared)); use disjoint corpora" >&2; exit 1; }
  run "$exp/log/mfcc.log" spkrec compute-feats --feat-type mfcc --config conf/mfcc.conf --seed="$seed" $par \
    "$data/train" "$exp/mfcc"
  run "$exp/log/vad.log" spkrec compute-vad --config conf/vad.conf $par "$data/train" "$exp/vad"
fi

if run_stage 2 "UBM, i-vector extractor, PLDA" "$exp/backend/plda.npz"; then
  num_gauss=$ivector_num_gauss train_ubm "$data/train" "$exp" "$ivector_num_gauss" "$ubm_iters"
  run "$exp/extractor/log/train.log" spkrec train-ivector-extractor --ubm diag --tv-dim "$tv_dim" \
    --num-iters "$ivector_iters" --seed "$seed" $par "$exp/ubm" "$data/train" "$exp/extractor"
  run "$exp/extractor/log/extract_train.log" spkrec extract-ivectors $par "$exp/extractor" "$data/train" \
    "$exp/ivectors_train"
  run "$exp/backend/log/train.log" spkrec train-backend --steps "$plda_chain" "$exp/ivectors_train/ivector.scp" \
    "$data/train/utt2spk" "$exp/backend/plda.npz"
fi

if run_stage 3 "diarization system bundle (back end on windows)" "$sys/system.json"; then
  export_opts=(--kind ivector --extractor "$exp/extractor" --scoring plda --feat-config conf/mfcc.conf
               --vad-config conf/vad.conf --seed="$seed")
  run "$exp/log/export_utt.log" spkrec export-system "${export_opts[@]}" --backend "$exp/backend/plda.npz" \
    --out "$exp/systems/ivector_utt"
  run "$exp/log/train_window_backend.log" spkrec train-diarization-backend --steps "$plda_chain" \
    --window "$window" --shift "$window" "$exp/systems/ivector_utt" "$data/train" "$exp/backend/plda_windows.npz"
  run "$exp/log/export.log" spkrec export-system "${export_opts[@]}" --backend "$exp/backend/plda_windows.npz" \
    --out "$sys"
fi

simulate() {  # simulate NAME DATA NUM MIN MAX SEED [OPTION...]
  local name=$1 src=$2 num=$3 lo=$4 hi=$5 sd=$6; shift 6
  run "$exp/log/simulate_$name.log" spkrec simulate-conversations --num-conversations "$num" \
    --min-speakers "$lo" --max-speakers "$hi" --turns-per-speaker "$turns_per_speaker" \
    --overlap-prob "$overlap_prob" --babble "$babble" --seed "$sd" --prefix "${name#conv_}_" "$@" "$src" "$data/$name"
}

if run_stage 4 "simulated conversations" "$data/conv_testfx2/ref.rttm"; then
  cut -d' ' -f1 "$data/eval_all/spk2utt" > "$data/eval_all/speakers"
  n=$(wc -l < "$data/eval_all/speakers")
  head -n $((n / 2)) "$data/eval_all/speakers" > "$data/eval_all/dev_speakers"
  tail -n +$((n / 2 + 1)) "$data/eval_all/speakers" > "$data/eval_all/test_speakers"
  for part in dev test; do
    run "$exp/log/subset_$part.log" spkrec subset-data-dir --spk-list "$data/eval_all/${part}_speakers" \
      "$data/eval_all" "$data/eval_$part"
  done
  simulate conv_dev "$data/eval_dev" "$num_dev" "$min_speakers" "$max_speakers" $((seed + 1))
  simulate conv_dev2 "$data/eval_dev" "$num_dev2" 2 2 $((seed + 2))
  simulate conv_test "$data/eval_test" "$num_test" "$min_speakers" "$max_speakers" $((seed + 3))
  simulate conv_test2 "$data/eval_test" "$num_test2" 2 2 $((seed + 4))
  simulate conv_testfx "$data/eval_test" "$num_test" "$min_speakers" "$max_speakers" $((seed + 3)) $fx
  simulate conv_testfx2 "$data/eval_test" "$num_test2" 2 2 $((seed + 4)) $fx
fi

der_of() {  # der_of REF HYP UEM -> the total DER in % (collar $collar)
  spkrec score-diarization --collar "$collar" --uem "$3" "$1" "$2" | awk '$2 == "TOTAL" {print $4}'
}

if run_stage 5 "tune the clustering threshold on conv_dev + conv_dev2" "$sys/diarization.json"; then
  mkdir -p "$exp/tune" "$data/conv_tune"
  for f in wav.scp ref.rttm uem; do cat "$data/conv_dev/$f" "$data/conv_dev2/$f" > "$data/conv_tune/$f"; done
  best= best_merge= best_der=
  : > "$exp/tune/der.tmp"
  for t in $thresholds; do
    for m in $merge_thresholds; do
      run "$exp/tune/log/diarize_${t}_$m.log" spkrec diarize -q "$sys" --scp "$data/conv_tune/wav.scp" --scoring "$scoring" \
        --window "$window" --shift "$shift" --min-cluster "$min_cluster" --threshold "$t" \
        $([ "$m" = none ] || echo --merge-threshold "$m") --rttm "$exp/tune/hyp_${t}_$m.rttm"
      d=$(der_of "$data/conv_tune/ref.rttm" "$exp/tune/hyp_${t}_$m.rttm" "$data/conv_tune/uem")
      echo "$t $m $d" >> "$exp/tune/der.tmp"
      log "  threshold $t, merge threshold $m: DER $d %"
      if [ -z "$best" ] || awk -v a="$d" -v b="$best_der" 'BEGIN {exit !(a < b)}'; then best=$t best_merge=$m best_der=$d; fi
    done
  done
  mv "$exp/tune/der.tmp" "$exp/tune/der.txt"
  log "  best threshold $best, merge threshold $best_merge (DER $best_der % on conv_dev + conv_dev2)"
  [ "$best_merge" = none ] && best_merge=null
  printf '{"scoring": "%s", "window": %s, "shift": %s, "min_cluster": %s, "threshold": %s, "merge_threshold": %s, "clustering": "ahc"}\n' \
    "$scoring" "$window" "$shift" "$min_cluster" "$best" "$best_merge" > "$sys/diarization.json.tmp"
  mv "$sys/diarization.json.tmp" "$sys/diarization.json"
fi

score_set() {  # score_set SET VARIANT [--plot-dir DIR]: exp/score/SET.VARIANT.txt (collar) and .c0.txt (collar 0)
  local set=$1 variant=$2; shift 2
  for c in "$collar" 0; do
    local out="$exp/score/$set.$variant$([ "$c" = 0 ] && echo .c0).txt"
    spkrec score-diarization --collar "$c" --uem "$data/$set/uem" "$data/$set/ref.rttm" "$exp/hyp/$set.$variant.rttm" \
      $([ "$c" = "$collar" ] && echo "$@") > "$out.tmp" 2> "$exp/log/score_$set.$variant.log" || \
      { log "scoring $set $variant failed (log: $exp/log/score_$set.$variant.log)"; exit 1; }
    mv "$out.tmp" "$out"
  done
}

diarize_set() {  # diarize_set SET VARIANT: exp/hyp/SET.VARIANT.rttm; VARIANT tuned, tuned_reseg, oracle
  local set=$1 variant=$2 opts=()
  case $variant in *reseg) opts+=(--resegment) ;; esac
  [[ $variant == oracle* ]] && opts+=(--num-speakers-file "$data/$set/reco2num_spk")  # the true numbers
  run "$exp/log/diarize_$set.$variant.log" spkrec diarize -q "$sys" --scp "$data/$set/wav.scp" "${opts[@]}" \
    --rttm "$exp/hyp/$set.$variant.rttm"
}

if run_stage 6 "diarize and score the test conversations" "$exp/score/conv_testfx2.tuned.txt"; then
  mkdir -p "$exp/hyp" "$exp/score"
  for set in conv_test2 conv_test; do
    for variant in tuned tuned_reseg oracle; do
      diarize_set $set $variant
      score_set $set $variant $([ $variant = tuned ] && echo --plot-dir "$exp/plots")
    done
  done
  for set in conv_testfx2 conv_testfx; do diarize_set $set tuned; score_set $set tuned; done
fi

if [ -n "$cross" ] && run_stage 7 "conversations of the --cross corpus (settings tuned on so762)" \
    "$exp/score/conv_crossfx2.tuned.txt"; then
  mkdir -p "$exp/hyp" "$exp/score"
  simulate conv_cross2 "$cross" "$num_test2" 2 2 $((seed + 5))
  simulate conv_cross "$cross" "$num_test" "$min_speakers" "$max_speakers" $((seed + 6))
  simulate conv_crossfx2 "$cross" "$num_test2" 2 2 $((seed + 5)) $fx
  for set in conv_cross2 conv_cross conv_crossfx2; do diarize_set $set tuned; score_set $set tuned; done
fi

total_of() {  # total_of FILE -> "DER | miss | FA | confusion | JER | count error"
  awk '$2 == "TOTAL" {t = $0} /^DER/ {for (i = 1; i <= NF; i++) if ($i == "error") e = $(i + 1)}
    END {split(t, f, "|"); gsub(/ /, "", f[3]); gsub(/;/, "", e); printf "%s | %s | %s | %s | %s | %s", f[3], f[4], f[5], f[6], f[7], e}' "$1" | tr -s ' '
}

if run_stage 20 "results" "$exp/results.md"; then
  {
    echo "# Diarization of SIMULATED conversations (spkrec simulate-conversations; not real recordings)"
    echo
    echo "Models from $(cut -d' ' -f1 "$data/train/spk2utt" | wc -l) background speakers; threshold tuned on" \
         "$num_dev + $num_dev2 conversations of other speakers: $(sed 's/.*"threshold": \([^,}]*\).*/\1/' "$sys/diarization.json")," \
         "merge threshold $(sed 's/.*"merge_threshold": \([^,}]*\).*/\1/' "$sys/diarization.json")" \
         "($scoring scoring, windows $window s / $shift s, clusters under $min_cluster s merged). DER % with a $collar s" \
         "collar (and with none); speaker-count error summed over the conversations."
    echo
    echo "| test set | system | DER % | miss % | FA % | confusion % | JER % | count error | DER % collar 0 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for f in "$exp"/score/*.txt; do
      case $f in *.c0.txt) continue ;; esac
      b=$(basename "$f" .txt); set=${b%%.*}; variant=${b#*.}
      echo "| $set ($(wc -l < "$data/$set/reco2num_spk")) | $variant | $(total_of "$f") | $(total_of "${f%.txt}.c0.txt" | cut -d'|' -f1) |"
    done
    echo
    echo "Per conversation (conv_test, tuned threshold):"
    echo
    grep '^|' "$exp/score/conv_test.tuned.txt"
    echo
    echo "Timelines (reference rows above hypothesis rows): $exp/plots/<conversation>.png"
  } > "$exp/results.md.tmp"
  mv "$exp/results.md.tmp" "$exp/results.md"
  cat "$exp/results.md"
fi
finish_stages "$exp/results.md"
