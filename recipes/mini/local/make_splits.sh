#!/usr/bin/env bash
# Usage: local/make_splits.sh ALL_DATA NUM_BG_PER_GENDER OUT_DIR
# Background speakers: the first NUM_BG_PER_GENDER female and male speakers (sorted by id) of
# ALL_DATA/spk2gender; evaluation speakers: all the others. Writes OUT_DIR/{train,eval}.spk.
set -euo pipefail
all=$1 n=$2 out=$3
mkdir -p "$out"
for g in f m; do
  awk -v g=$g '$2 == g {print $1}' "$all/spk2gender" | sort | head -n "$n"
done | sort > "$out/train.spk.tmp"
cut -d' ' -f1 "$all/spk2gender" | sort | comm -23 - "$out/train.spk.tmp" > "$out/eval.spk.tmp"
[ -s "$out/eval.spk.tmp" ] || { echo "$0: no evaluation speakers left in $all" >&2; exit 1; }
mv "$out/train.spk.tmp" "$out/train.spk"; mv "$out/eval.spk.tmp" "$out/eval.spk"
echo "$0: $(wc -l < "$out/train.spk") background and $(wc -l < "$out/eval.spk") evaluation speakers" >&2
