#!/usr/bin/env bash
# Usage: local/make_protocols.sh ALL_DATA OUT_DIR
# Writes the speaker lists of each condition and OUT_DIR/conditions ("<name> <verif|id> <num_enroll>").
#
# Full TIMIT (630 speakers):
#   msr  verification as in the MSR Identity Toolbox TIMIT demo: 100 evaluation speakers (every 6th
#        speaker in sorted id order, then the first 100 of those; the rest, 530, are background),
#        9 enrolment sentences and 1 test sentence each (the last by sorted id), all 100 x 100 pairs.
#   id   closed-set identification over all 630 speakers (Reynolds 1995): 8 training sentences and
#        2 test sentences each (the last two by sorted id); the UBM is trained on the training sentences.
# Any smaller installation (the 16-speaker sample): a scaled-down protocol with the same steps:
#   fold1, fold2  leave-one-speaker-group-out verification: the speakers are split into two groups of
#        alternating speakers per gender; each group is evaluated (8 enrolment + 2 test sentences, all
#        pairs within the group) with a UBM trained on the other group; the two folds' scores are pooled.
#   id   closed-set identification over all speakers, 8 + 2 sentences, as on the full corpus.
set -euo pipefail
all=$1 out=$2
mkdir -p "$out"
num_spk=$(wc -l < "$all/spk2utt")
cut -d' ' -f1 "$all/spk2utt" | sort > "$out/all.spk"
if [ "$num_spk" -ge 630 ]; then
  mkdir -p "$out/msr" "$out/id"
  awk 'NR % 6 == 0' "$out/all.spk" | head -n 100 > "$out/msr/eval.spk"
  comm -23 "$out/all.spk" "$out/msr/eval.spk" > "$out/msr/train.spk"
  cp "$out/all.spk" "$out/id/eval.spk"
  printf 'msr verif 9\nid id 8\n' > "$out/conditions.tmp"
else
  mkdir -p "$out/fold1" "$out/fold2" "$out/id"
  for g in f m; do awk -v g=$g '$2 == g {print $1}' "$all/spk2gender" | sort | awk 'NR % 2 == 1'; done \
    | sort > "$out/fold1/eval.spk"
  comm -23 "$out/all.spk" "$out/fold1/eval.spk" > "$out/fold2/eval.spk"
  cp "$out/fold2/eval.spk" "$out/fold1/train.spk"
  cp "$out/fold1/eval.spk" "$out/fold2/train.spk"
  cp "$out/all.spk" "$out/id/eval.spk"
  printf 'fold1 verif 8\nfold2 verif 8\nid id 8\n' > "$out/conditions.tmp"
fi
mv "$out/conditions.tmp" "$out/conditions"
echo "$0: $num_spk speakers; conditions: $(cut -d' ' -f1 "$out/conditions" | tr '\n' ' ')" >&2
