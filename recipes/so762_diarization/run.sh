#!/usr/bin/env bash
# spkrec diarization recipe (who spoke when) for corpora in the so762 layout. The models (a small diagonal
# UBM, an i-vector extractor, a PLDA back end) come from the speakers of the --train corpora; SIMULATED
# conversations (spkrec simulate-conversations: 2-4 speakers, turn taking with pauses, some overlap) are
# built from the --eval corpus, whose speakers are split in two: conversations of the first half tune the
# clustering threshold, those of the second half are diarized with it and scored (DER, collar 0.25 s).
#
# Usage: recipes/so762_diarization/run.sh --train DIR [--train DIR ...] --eval DIR [--stage N]
#        [--stop-stage M] [--nj J] [--exp DIR] [--data DIR]
# (relative paths are taken from the directory you run it in). --train and --eval must not share speakers.
# Stages:
#   0  prepare a data dir for each corpus (spkrec prepare-data so762)
#   1  combine the background corpora; MFCC features and energy VAD of the background speakers
#   2  diagonal UBM, i-vector extractor (T on single utterances), background i-vectors, PLDA back end
#   3  the diarization system bundle exp/systems/diarization (spkrec export-system --kind ivector)
#   4  simulated conversations: data/conv_dev (tuning) and data/conv_test (scoring), with ref.rttm and uem
#   5  tune the AHC threshold on conv_dev (DER with collar); written to exp/systems/diarization/diarization.json
#   6  diarize conv_test (tuned threshold; also oracle number of speakers and resegmentation); score;
#      exp/plots/<conversation>.png: reference vs hypothesis timelines
#  20  exp/results.md
set -euo pipefail
cd "$(dirname "$0")"

stage=0                        # first stage to run (see Stages above)
stop_stage=100                 # last stage to run (100: through the last one)
force=false                    # true: redo the stages run even when their outputs exist
train=()                       # (path) a background corpus in the so762 layout (repeat --train for more)
eval=                          # (path) the corpus in the so762 layout the simulated conversations come from (required)
data=data                      # (path) where the Kaldi data dirs and the conversations are written
exp=exp                        # (path) where the models, bundle, RTTMs, logs and results are written
ivector_num_gauss=32           # Gaussians of the i-vector front end's diagonal UBM
ubm_iters=4                    # EM iterations after each doubling of the number of Gaussians
tv_dim=50                      # total-variability dimension
ivector_iters=3                # EM iterations of the total-variability matrix
plda_chain=center,lnorm,plda   # back-end steps (train-backend --steps)
num_dev=6                      # simulated conversations for tuning (first half of the --eval speakers)
num_test=8                     # simulated conversations for scoring (second half)
min_speakers=2                 # speakers per conversation, at least
max_speakers=4                 # speakers per conversation, at most
turns_per_speaker=3            # turns (utterances) per speaker in a conversation
overlap_prob=0.0               # probability that a turn starts before the previous one ends
babble=0                       # number of babble speakers added to each conversation (0: none)
scoring=cosine                 # window scoring: cosine or plda
window=1.5                     # window length in seconds
shift=0.75                     # window shift in seconds
thresholds="-0.3 -0.2 -0.15 -0.1 -0.05 0.0 0.1"   # AHC stop scores tried on conv_dev (cosine scale)
collar=0.25                    # seconds either side of each reference boundary left unscored
seed=0                         # random seed (dither, UBM, T matrix, conversations)

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
stages="0 1 2 3 4 5 6 20"
. utils/stages.sh
. utils/systems.sh
stage_opts[0]="train eval"
stage_opts[1]="seed"
stage_opts[2]="ivector_num_gauss ubm_iters tv_dim ivector_iters plda_chain seed"
stage_opts[4]="num_dev num_test min_speakers max_speakers turns_per_speaker overlap_prob babble seed"
stage_opts[5]="scoring window shift thresholds collar"
stage_opts[6]="collar"
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

if run_stage 3 "diarization system bundle" "$sys/system.json"; then
  run "$exp/log/export.log" spkrec export-system --kind ivector --extractor "$exp/extractor" --scoring plda \
    --backend "$exp/backend/plda.npz" --feat-config conf/mfcc.conf --vad-config conf/vad.conf --seed="$seed" \
    --out "$sys"
fi

if run_stage 4 "simulated conversations" "$data/conv_test/ref.rttm"; then
  cut -d' ' -f1 "$data/eval_all/spk2utt" > "$data/eval_all/speakers"
  n=$(wc -l < "$data/eval_all/speakers")
  head -n $((n / 2)) "$data/eval_all/speakers" > "$data/eval_all/dev_speakers"
  tail -n +$((n / 2 + 1)) "$data/eval_all/speakers" > "$data/eval_all/test_speakers"
  for part in dev test; do
    num=$num_dev; [ $part = test ] && num=$num_test
    run "$exp/log/subset_$part.log" spkrec subset-data-dir --spk-list "$data/eval_all/${part}_speakers" \
      "$data/eval_all" "$data/eval_$part"
    run "$exp/log/simulate_$part.log" spkrec simulate-conversations --num-conversations "$num" \
      --min-speakers "$min_speakers" --max-speakers "$max_speakers" --turns-per-speaker "$turns_per_speaker" \
      --overlap-prob "$overlap_prob" --babble "$babble" --seed $((seed + $([ $part = dev ] && echo 1 || echo 2))) \
      --prefix "${part}_" "$data/eval_$part" "$data/conv_$part"
  done
fi

der_of() {  # der_of REF HYP UEM -> the total DER in % (collar $collar)
  spkrec score-diarization --collar "$collar" --uem "$3" "$1" "$2" | awk '$2 == "TOTAL" {print $4}'
}

if run_stage 5 "tune the clustering threshold on conv_dev" "$sys/diarization.json"; then
  mkdir -p "$exp/tune"
  best= best_der=
  for t in $thresholds; do
    run "$exp/tune/log/diarize_$t.log" spkrec diarize -q "$sys" --scp "$data/conv_dev/wav.scp" --scoring "$scoring" \
      --window "$window" --shift "$shift" --threshold "$t" --rttm "$exp/tune/hyp_$t.rttm"
    d=$(der_of "$data/conv_dev/ref.rttm" "$exp/tune/hyp_$t.rttm" "$data/conv_dev/uem")
    echo "$t $d" >> "$exp/tune/der.tmp"
    log "  threshold $t: DER $d %"
    if [ -z "$best" ] || awk -v a="$d" -v b="$best_der" 'BEGIN {exit !(a < b)}'; then best=$t best_der=$d; fi
  done
  mv "$exp/tune/der.tmp" "$exp/tune/der.txt"
  log "  best threshold $best (DER $best_der % on conv_dev)"
  printf '{"scoring": "%s", "window": %s, "shift": %s, "threshold": %s, "clustering": "ahc"}\n' \
    "$scoring" "$window" "$shift" "$best" > "$sys/diarization.json.tmp"
  mv "$sys/diarization.json.tmp" "$sys/diarization.json"
fi

if run_stage 6 "diarize and score conv_test" "$exp/score/oracle_reseg.txt"; then
  mkdir -p "$exp/hyp" "$exp/score"
  for variant in tuned tuned_reseg oracle oracle_reseg; do
    opts=()
    case $variant in *reseg) opts+=(--resegment) ;; esac
    if [[ $variant == oracle* ]]; then  # one call per file: its true number of speakers
      : > "$exp/hyp/$variant.rttm.tmp"
      while read -r rec k; do
        grep "^$rec " "$data/conv_test/wav.scp" > "$exp/hyp/one.scp"
        run "$exp/log/diarize_$variant.log" spkrec diarize -q "$sys" --scp "$exp/hyp/one.scp" \
          --num-speakers "$k" "${opts[@]}" --rttm "$exp/hyp/$variant.$rec.rttm"
        cat "$exp/hyp/$variant.$rec.rttm" >> "$exp/hyp/$variant.rttm.tmp"; rm "$exp/hyp/$variant.$rec.rttm"
      done < "$data/conv_test/reco2num_spk"
      mv "$exp/hyp/$variant.rttm.tmp" "$exp/hyp/$variant.rttm"
    else
      run "$exp/log/diarize_$variant.log" spkrec diarize -q "$sys" --scp "$data/conv_test/wav.scp" "${opts[@]}" \
        --rttm "$exp/hyp/$variant.rttm"
    fi
    spkrec score-diarization --collar "$collar" --uem "$data/conv_test/uem" "$data/conv_test/ref.rttm" \
      "$exp/hyp/$variant.rttm" $([ $variant = tuned ] && echo --plot-dir "$exp/plots") > "$exp/score/$variant.tmp" \
      2> "$exp/log/score_$variant.log" || \
      { log "stage 6 failed: scoring $variant (log: $exp/log/score_$variant.log)"; exit 1; }
    mv "$exp/score/$variant.tmp" "$exp/score/$variant.txt"
  done
fi

if run_stage 20 "results" "$exp/results.md"; then
  {
    echo "# Diarization of SIMULATED conversations (spkrec simulate-conversations; not real recordings)"
    echo
    echo "Models from $(cut -d' ' -f1 "$data/train/spk2utt" | wc -l) background speakers; threshold tuned on" \
         "$num_dev conversations of other speakers: $(sed 's/.*"threshold": \([^,}]*\).*/\1/' "$sys/diarization.json")" \
         "($scoring scoring, windows $window s / $shift s); $num_test test conversations of $min_speakers-$max_speakers" \
         "speakers; DER with a $collar s collar."
    echo
    echo "| system | DER % | miss % | FA % | confusion % | JER % | speaker-count error |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for variant in tuned tuned_reseg oracle oracle_reseg; do
      awk -v v="$variant" '$2 == "TOTAL" {t = $0} /^DER/ {for (i = 1; i <= NF; i++) if ($i == "error") e = $(i + 1)}
        END {split(t, f, "|"); gsub(/ /, "", f[3]); printf "| %s | %s | %s | %s | %s | %s | %s |\n", v, f[3], f[4], f[5], f[6], f[7], e}' \
        "$exp/score/$variant.txt" | sed 's/;//'
    done
    echo
    echo "Per conversation (tuned threshold):"
    echo
    grep '^|' "$exp/score/tuned.txt"
    echo
    echo "Timelines (reference rows above hypothesis rows): $exp/plots/<conversation>.png"
  } > "$exp/results.md.tmp"
  mv "$exp/results.md.tmp" "$exp/results.md"
  cat "$exp/results.md"
fi
finish_stages "$exp/results.md"
