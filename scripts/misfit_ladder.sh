#!/usr/bin/env bash
# Misfit vs realised gain over the zoo ladder (probe mode): each smaller causal LM as the
# weak model for each larger one, on several BIG-bench tasks; then `w2s analyze misfit`.
# Usage: scripts/misfit_ladder.sh [out_dir]    (about 20 minutes on 2 cores, features cached)
set -euo pipefail
W2S=${W2S:-.venv/bin/w2s}
OUT=${1:-runs/ladder}
MODELS=(smollm2-135m gemma3-270m qwen2.5-1.5b)
for task in sentiment fever epistemic; do
  sizes=(500 500 200 800)
  [ "$task" = epistemic ] && sizes=(400 400 150 500)  # 1,482 examples after balancing
  for i in 0 1; do
    for j in $(seq $((i + 1)) 2); do
      weak=${MODELS[$i]} strong=${MODELS[$j]}
      "$W2S" run --task "$task" --weak "$weak" --strong "$strong" --methods naive,logconf \
        --set data.n_weak_train=${sizes[0]} --set data.n_strong_train=${sizes[1]} \
        --set data.n_val=${sizes[2]} --set data.n_test=${sizes[3]} \
        --out "$OUT/${task}__${weak}__${strong}"
    done
  done
done
"$W2S" analyze misfit "$OUT"/*__* --method naive --out "$OUT/misfit_naive"
"$W2S" analyze misfit "$OUT"/*__* --method logconf --out "$OUT/misfit_logconf"
