#!/usr/bin/env bash
# The instruction-data selection experiment of issue 19 (docs/sft-selection.md, "The experiment"):
# a small llama base model pre-trained here on the shared corpora; a bilingual instruction pool from
# ../shared/data/sft scored with `mindllm select score`; equal-size subsets (middle band, low, high,
# random) and the full pool fine-tuned with the same steps and seeds; two ability-tailored subsets
# (the middle band with a GSM8K-solutions share, and with a Chinese exam-style share); every run
# evaluated on held-out instructions (response loss), GSM8K test solutions (response loss), MMLU and
# CMMLU 5-shot on a fixed subset of subjects, and GSM8K exact match on the first test items.
#
#   bash recipes/sft-selection/run.sh                 # SCALE=smoke: minutes, says little
#   SCALE=cpu OUT=/work/runs/sel bash recipes/sft-selection/run.sh   # the 2-core CPU run of the docs
# Every size below is an environment variable (a set one overrides the scale's). Each stage skips
# what an earlier, interrupted run of the same OUT finished. Not run in CI.
# Results: $OUT/results.json and $OUT/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
M=${MINDLLM:-$PWD/${BUILD_DIR:-build}/mindllm}
HERE=$PWD/recipes/sft-selection
SHARED=${SHARED:-$PWD/../shared/data}
OUT=${OUT:-sft-selection-out}
SCALE=${SCALE:-smoke}
case "$SCALE" in
  smoke)  # 1.3M parameters, 300 steps of 8 x 192 tokens: checks the pipeline end to end
    : "${MODEL:=$HERE/base-model.json}" "${VOCAB:=4096}" "${PRE_STEPS:=300}" "${PRE_BATCH:=8}" "${SEQ:=192}"
    : "${SFT_STEPS:=40}" "${POOL_PER_LANG:=500}" "${SUBSET:=200}" "${HELDOUT_PER_LANG:=100}" "${N_MATH:=100}"
    : "${N_EXAM:=100}" "${GSM_TEST:=50}" "${MC_LIMIT:=10}" "${GSM_EM:=10}" "${IFD:=1}" "${SFT_BATCH:=8}" ;;
  cpu)  # the docs' run on the 2-core machine: 13.8M parameters, 1100 steps of 8 x 256 (2.25M tokens, ~1 epoch)
    : "${MODEL:=$HERE/base-model-14m.json}" "${VOCAB:=8192}" "${PRE_STEPS:=1100}" "${PRE_BATCH:=8}" "${SEQ:=256}"
    : "${SFT_STEPS:=40}" "${SFT_BATCH:=8}" "${POOL_PER_LANG:=500}" "${SUBSET:=200}" "${HELDOUT_PER_LANG:=100}"
    : "${N_MATH:=200}" "${N_EXAM:=200}" "${GSM_TEST:=50}" "${MC_LIMIT:=25}" "${GSM_EM:=20}" "${IFD:=0}" ;;
  *) echo "SCALE must be smoke or cpu"; exit 2 ;;
esac
SEEDS=${SEEDS:-"1 2 3"}
SFT_ACCUM=${SFT_ACCUM:-1}  # micro-batches per sft step (SFT_BATCH / SFT_ACCUM sequences each)
THREADS=${THREADS:-2}
PRE_THREADS=${PRE_THREADS:-$THREADS}  # the pre-training's threads (e.g. all cores, then arms side by side with fewer)
SHARE=${SHARE:-0.3}  # the ability share of the tailored subsets
MMLU_SUBJECTS=${MMLU_SUBJECTS:-elementary_mathematics,high_school_mathematics,high_school_geography,marketing}
CMMLU_SUBJECTS=${CMMLU_SUBJECTS:-ancient_chinese,chinese_literature,chinese_history,elementary_mathematics}
ARMS=${ARMS:-"middle low high random full middle+math middle+exam"}
[ -x "$M" ] || { echo "build mindllm first (scripts/build.sh)"; exit 2; }
[ -d "$SHARED/sft" ] || { echo "no $SHARED/sft (the shared data)"; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
N=(nice -n 19 "$M")  # everything at the lowest priority: the machine is shared
T=(--threads "$THREADS")

echo "== 1. tokenizer and base model: $MODEL, $PRE_STEPS steps of $PRE_BATCH x $SEQ tokens"
CORPUS=("$SHARED/corpus/en/wiki_demo.txt" "$SHARED/corpus/en/tinyshakespeare.txt" "$SHARED/corpus/zh/西游记.txt"
        "$SHARED/corpus/zh/红楼梦.txt")
[ "$SCALE" = cpu ] && CORPUS+=("$SHARED/corpus/en/c4_demo.jsonl" "$SHARED/corpus/law-zh/民法典"
                               "$SHARED/corpus/law-zh/刑法" "$SHARED/corpus/law-zh/宪法")
if [ ! -f "$OUT/base.done" ]; then
  [ -f "$OUT/tokenizer.json" ] || "${N[@]}" tokenizer train --input "${CORPUS[@]}" --vocab-size "$VOCAB" \
    --pattern qwen2 --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' \
    --output "$OUT/tokenizer.json" --quiet
  [ -d "$OUT/shards" ] || { "${N[@]}" data tokenize --tokenizer "$OUT/tokenizer.json" --input "${CORPUS[@]}" \
    --text-unit paragraph --output "$OUT/shards" --val-fraction 0.01 --quiet && cp "$OUT/tokenizer.json" "$OUT/shards/"; }
  resume=(); [ -f "$OUT/base/ckpt/latest" ] && resume=(--resume)
  "${N[@]}" train --model "$MODEL" --data "$OUT/shards" --out "$OUT/base" --steps "$PRE_STEPS" --batch "$PRE_BATCH" \
    --seq "$SEQ" --lr 2e-3 --min-lr 2e-4 --warmup 50 --eval-every "$PRE_STEPS" --eval-batches 16 \
    --ckpt-every 100 --keep 1 --log-every 50 --threads "$PRE_THREADS" "${resume[@]}"
  touch "$OUT/base.done"
fi
BASE="$OUT/base/ckpt/$(cat "$OUT/base/ckpt/latest")"

echo "== 2. instruction pool, held-out set, math and exam shares, eval subsets"
[ -f "$OUT/data.done" ] || { python3 "$HERE/make_data.py" "$SHARED" "$OUT" "$POOL_PER_LANG" "$HELDOUT_PER_LANG" \
  "$N_MATH" "$N_EXAM" "$GSM_TEST" "$MMLU_SUBJECTS" "$CMMLU_SUBJECTS" && touch "$OUT/data.done"; }

echo "== 3. score the pool and the ability shares with the base model"
ifd=(); [ "$IFD" = 1 ] || ifd=(--no-ifd)
SC=(--chat-template chatml --max-length "$SEQ" --batch 16 "${T[@]}" --quiet)
[ -f "$OUT/scores-all.jsonl" ] || "${N[@]}" select score --model "$BASE" --data "$OUT/pool.jsonl" "$OUT/math.jsonl" \
  "$OUT/exam.jsonl" --out "$OUT/scores-all.jsonl" "${SC[@]}" "${ifd[@]}" --resume
# The scores of the pool alone, and of the pool with each share (a band is ranked within its file).
[ -f "$OUT/scores+exam.jsonl" ] || python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
lines = [l for l in open(f"{out}/scores-all.jsonl", encoding="utf-8")]
src = lambda l: json.loads(l)["source"].rsplit("/", 1)[-1]
for name, files in (("scores", {"pool.jsonl"}), ("scores+math", {"pool.jsonl", "math.jsonl"}),
                    ("scores+exam", {"pool.jsonl", "exam.jsonl"})):
    open(f"{out}/{name}.jsonl", "w", encoding="utf-8").writelines(l for l in lines if src(l) in files)
PY

echo "== 4. subsets of $SUBSET samples, stratified by language"
pick() {  # name, scores, data files (comma-separated), strategy flags...
  local name=$1 scores=$2 data=$3; shift 3
  [ -f "$OUT/subsets/$name.jsonl" ] && return
  IFS=, read -ra files <<<"$data"
  "${N[@]}" select pick --scores "$OUT/$scores.jsonl" --data "${files[@]/#/$OUT/}" --stratify lang "$@" \
    --out "$OUT/subsets/$name.jsonl" --report-dir "$OUT/subsets/$name" >"$OUT/subsets/$name.log" 2>&1 ||
    { cat "$OUT/subsets/$name.log"; exit 1; }
}
mkdir -p "$OUT/subsets"
pick middle scores pool.jsonl --band 25:75 --size "$SUBSET"
pick low scores pool.jsonl --bottom "$SUBSET"
pick high scores pool.jsonl --top "$SUBSET"
for seed in $SEEDS; do pick "random-s$seed" scores pool.jsonl --random --size "$SUBSET" --seed "$seed"; done
cp "$OUT/pool.jsonl" "$OUT/subsets/full.jsonl"
for ab in math exam; do
  pick "middle+$ab" "scores+$ab" "pool.jsonl,$ab.jsonl" --band 25:75 --size "$SUBSET" --tag-field ability \
    --tag-share "$ab=$SHARE"
done

echo "== 5. fine-tune every subset, $SFT_STEPS steps of $SFT_BATCH packed x $SEQ tokens, seeds: $SEEDS; evaluate"
mkdir -p "$OUT/runs"
evaluate() {  # model dir, run name: held-out and GSM8K-test response losses, MMLU/CMMLU 5-shot, GSM8K
  local model=$1 run=$2
  [ -f "$OUT/runs/$run.heldout.jsonl" ] || "${N[@]}" select score --model "$model" --data "$OUT/heldout.jsonl" \
    --out "$OUT/runs/$run.heldout.jsonl" "${SC[@]}" --no-ifd
  [ -f "$OUT/runs/$run.gsm8k-test.jsonl" ] || "${N[@]}" select score --model "$model" \
    --data "$OUT/gsm8k_test.jsonl" --out "$OUT/runs/$run.gsm8k-test.jsonl" "${SC[@]}" --no-ifd
  [ -f "$OUT/runs/$run.mc.jsonl" ] || "${N[@]}" eval --model "$model" --tasks mmlu,cmmlu --data-dir "$OUT/evaldata" \
    --limit "$MC_LIMIT" --batch 16 "${T[@]}" --quiet --out "$OUT/runs/$run.mc.json" --log-samples "$OUT/runs/$run.mc.jsonl"
  [ "$GSM_EM" = 0 ] || [ -f "$OUT/runs/$run.gsm8k.json" ] || "${N[@]}" eval --model "$model" --tasks gsm8k --data-dir "$OUT/evaldata" \
    --limit "$GSM_EM" --batch 16 "${T[@]}" --quiet --out "$OUT/runs/$run.gsm8k.json"
}
evaluate "$BASE" base >"$OUT/runs/base.log" 2>&1
for seed in $SEEDS; do  # seeds outside: a run cut short still has every arm for its first seeds
  for arm in $ARMS; do
    run="$arm-s$seed"
    data="$OUT/subsets/$arm.jsonl"; [ "$arm" = random ] && data="$OUT/subsets/random-s$seed.jsonl"
    if [ ! -f "$OUT/runs/$run.done" ]; then
      rm -rf "$OUT/runs/$run"
      start=$(date +%s)
      "${N[@]}" sft --model "$BASE" --data "$data" --out "$OUT/runs/$run" --chat-template chatml --packing \
        --steps "$SFT_STEPS" --batch $((SFT_BATCH / SFT_ACCUM)) --grad-accum "$SFT_ACCUM" --seq "$SEQ" --lr 1e-3 --warmup 2 --schedule cosine --min-lr 1e-4 \
        --seed "$seed" --log-every "$SFT_STEPS" "${T[@]}" >"$OUT/runs/$run.log" 2>&1
      evaluate "$OUT/runs/$run/ckpt/$(cat "$OUT/runs/$run/ckpt/latest")" "$run" >>"$OUT/runs/$run.log" 2>&1
      echo "$(($(date +%s) - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/runs/$run.done"
    fi
    echo "$run: done ($(cat "$OUT/runs/$run.done"))"
  done
done

echo "== 6. results"
python3 "$HERE/results.py" "$OUT" "$SEEDS" "$ARMS"
