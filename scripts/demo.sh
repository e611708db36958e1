#!/usr/bin/env bash
# The demo on the embedded default corpus, end to end on the CPU in a few minutes:
#   raw English (KJV Bible) + Chinese (Tang/Song poems, classical sayings) from Debian packages
#   -> data prepare (clean, filter, dedup) -> tokenizer train (bilingual byte-level BPE)
#   -> data tokenize (shards) -> train (small LLaMA-style model) -> eval (validation loss)
#   -> generate (English and Chinese prompts).
# Output goes to ${OUT:-demo-out}. DEMO_STEPS overrides the training length.
set -euo pipefail
cd "$(dirname "$0")/.."
MINDLLM_SKIP_PIP=1 bash scripts/setup.sh
bash scripts/build.sh >/dev/null
M="$PWD/${BUILD_DIR:-build}/mindllm"
OUT=${OUT:-demo-out}
STEPS=${DEMO_STEPS:-400}
rm -rf "$OUT"
mkdir -p "$OUT/raw"

echo "== 1. raw corpus (bible-kjv-text, fortunes-zh)"
# English: the King James Bible, one document per 30 verses (verse references stripped).
bible -f 'Gen1:1-Rev22:21' | sed 's/^[^ ]* //' | awk '{print} NR % 30 == 0 {print ""}' > "$OUT/raw/en-kjv.txt"
# Chinese: Tang poems, Song ci and classical sayings; strip ANSI colours. '%' separates entries;
# eight entries make one document (single short poems would fail the length filter).
for f in tang300 song100 chinese; do
  sed -e 's/\x1b\[[0-9;]*m//g' "/usr/share/games/fortunes/$f" | awk '/^%$/ { if (++n % 8 == 0) print ""; next } { print }'
done > "$OUT/raw/zh-poems.txt"
du -h "$OUT"/raw/*

echo "== 2. data prepare: clean, filter, deduplicate"
"$M" data prepare --input "$OUT/raw/en-kjv.txt" --input "$OUT/raw/zh-poems.txt" --text-unit paragraph \
  --output "$OUT/clean" --no-compress --quiet
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({k: r[k] for k in list(r)[:6]}, ensure_ascii=False)[:600])" \
  "$OUT/clean/report.json" 2>/dev/null || true

echo "== 3. tokenizer train: bilingual byte-level BPE, 4096 tokens"
"$M" tokenizer train --input "$OUT"/clean/*.jsonl --vocab-size 4096 --pattern qwen2 \
  --special '<|endoftext|>' --output "$OUT/tokenizer.json" --quiet

echo "== 4. data tokenize: shards with a validation split"
"$M" data tokenize --tokenizer "$OUT/tokenizer.json" --input "$OUT"/clean/*.jsonl --output "$OUT/shards" \
  --val-fraction 0.02 --quiet
cp "$OUT/tokenizer.json" "$OUT/shards/tokenizer.json"

echo "== 5. train: demo-llama preset, $STEPS steps"
"$M" train --model demo-llama --data "$OUT/shards" --out "$OUT/run" --steps "$STEPS" --batch 8 --seq 128 \
  --lr 2e-3 --min-lr 2e-4 --warmup 20 --eval-every 100 --eval-batches 8 --log-every 50

echo "== 6. eval: validation loss"
CKPT="$OUT/run/ckpt/$(cat "$OUT/run/ckpt/latest")"
tail -n 1 "$OUT/run/metrics.jsonl" | python3 -c "import json,math,sys; m=json.load(sys.stdin); print(f\"step {m['step']}: train loss {m['loss']:.3f}, val loss {m['val_loss']:.3f}, val perplexity {math.exp(m['val_loss']):.1f}\")"

echo "== 7. generate"
"$M" generate --model "$CKPT" --prompt "And God said" --max-new-tokens 40 --temperature 0.8 --top-k 40 --seed 1
"$M" generate --model "$CKPT" --prompt "春眠不觉晓" --max-new-tokens 40 --temperature 0.8 --top-k 40 --seed 1
echo "demo: done (model directory: $CKPT)"
