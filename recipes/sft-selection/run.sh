#!/usr/bin/env bash
# The instruction-data selection experiment of issue 19 (docs/sft-selection.md, "The experiment"),
# scaled to a CPU: a few-million-parameter base model pre-trained here on the shared corpora, a
# bilingual instruction pool from ../shared/data/sft scored with `mindllm select score`, equal-size
# subsets (middle band, low, high, random) and the full pool fine-tuned with the same steps and
# seeds, each evaluated by its response loss on held-out instructions.
#
#   bash recipes/sft-selection/run.sh            # defaults below; OUT=... STEPS=... to change
# Not run in CI. Results: $OUT/results.json and $OUT/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
M="$PWD/${BUILD_DIR:-build}/mindllm"
SHARED=${SHARED:-$PWD/../shared/data}
OUT=${OUT:-sft-selection-out}
PRE_STEPS=${PRE_STEPS:-300}      # pre-training steps (batch 8 x $SEQ tokens)
SFT_STEPS=${SFT_STEPS:-40}       # fine-tuning steps of every run (batch 8 x $SEQ tokens)
SEQ=${SEQ:-192}
POOL_PER_LANG=${POOL_PER_LANG:-500}  # pool: this many English and this many Chinese samples
SUBSET=${SUBSET:-200}            # samples in each selected subset
HELDOUT_PER_LANG=${HELDOUT_PER_LANG:-100}
SEEDS=${SEEDS:-"1 2 3"}
THREADS=${THREADS:-2}
MODEL=${MODEL:-recipes/sft-selection/base-model.json}  # llama, 1.3M parameters; a larger preset on a GPU
[ -x "$M" ] || { echo "build mindllm first (scripts/build.sh)"; exit 2; }
[ -d "$SHARED/sft" ] || { echo "no $SHARED/sft (the shared data)"; exit 2; }
mkdir -p "$OUT"

echo "== 1. tokenizer and base model: $MODEL, $PRE_STEPS steps on English + Chinese text"
CORPUS=("$SHARED/corpus/en/wiki_demo.txt" "$SHARED/corpus/en/tinyshakespeare.txt" "$SHARED/corpus/zh/西游记.txt"
        "$SHARED/corpus/zh/红楼梦.txt")
if [ ! -f "$OUT/base.done" ]; then
  "$M" tokenizer train --input "${CORPUS[@]}" --vocab-size 4096 --pattern qwen2 \
    --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' --output "$OUT/tokenizer.json" --quiet
  "$M" data tokenize --tokenizer "$OUT/tokenizer.json" --input "${CORPUS[@]}" --text-unit paragraph \
    --output "$OUT/shards" --val-fraction 0.01 --quiet
  cp "$OUT/tokenizer.json" "$OUT/shards/tokenizer.json"
  "$M" train --model "$MODEL" --data "$OUT/shards" --out "$OUT/base" --steps "$PRE_STEPS" --batch 8 --seq "$SEQ" \
    --lr 2e-3 --min-lr 2e-4 --warmup 20 --eval-every "$PRE_STEPS" --eval-batches 8 --log-every 100 --threads "$THREADS"
  touch "$OUT/base.done"
fi
BASE="$OUT/base/ckpt/$(cat "$OUT/base/ckpt/latest")"

echo "== 2. instruction pool and held-out set (English Alpaca, Chinese Alpaca translation)"
python3 - "$SHARED/sft" "$OUT" "$POOL_PER_LANG" "$HELDOUT_PER_LANG" <<'PY'
import json, random, sys
sft, out, n_pool, n_held = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
en = json.load(open(f"{sft}/alpaca_en_5k.json", encoding="utf-8"))
zh = json.load(open(f"{sft}/alpaca_zh_carbonz0/zh-data-part-00.json", encoding="utf-8"))
rng = random.Random(0)
short = lambda s: len(s["instruction"]) + len(s.get("input", "")) + len(s["output"]) < 400 and s["output"].strip()
pool, held = [], []
for lang, items in (("en", en), ("zh", zh)):
    items = [s for s in items if short(s)]
    rng.shuffle(items)
    for k, s in enumerate(items[:n_pool + n_held]):
        rec = {"id": f"{lang}{k}", "lang": lang, "instruction": s["instruction"], "input": s.get("input", ""),
               "output": s["output"]}
        (pool if k < n_pool else held).append(rec)
for name, recs in (("pool.jsonl", pool), ("heldout.jsonl", held)):
    with open(f"{out}/{name}", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
print(f"pool {len(pool)}, held out {len(held)}")
PY

echo "== 3. score the pool with the base model"
"$M" select score --model "$BASE" --data "$OUT/pool.jsonl" --out "$OUT/scores.jsonl" --chat-template chatml \
  --max-length "$SEQ" --batch 16 --threads "$THREADS" --quiet --resume

echo "== 4. subsets of $SUBSET samples, stratified by language"
pick() {  # name, strategy flags...
  local name=$1; shift
  "$M" select pick --scores "$OUT/scores.jsonl" --data "$OUT/pool.jsonl" --stratify lang "$@" \
    --out "$OUT/subsets/$name.jsonl" --report-dir "$OUT/subsets/$name"
}
mkdir -p "$OUT/subsets"
pick middle --band 25:75 --size "$SUBSET"
pick low --bottom "$SUBSET"
pick high --top "$SUBSET"
pick random --random --size "$SUBSET" --seed 1
cp "$OUT/pool.jsonl" "$OUT/subsets/full.jsonl"

echo "== 5. fine-tune every subset, $SFT_STEPS steps, seeds: $SEEDS; held-out response loss"
mkdir -p "$OUT/runs"
[ -f "$OUT/runs/base.eval.jsonl" ] || "$M" select score --model "$BASE" --data "$OUT/heldout.jsonl" \
  --out "$OUT/runs/base.eval.jsonl" --chat-template chatml --max-length "$SEQ" --no-ifd --batch 16 --threads "$THREADS" --quiet
for subset in middle low high random full; do
  for seed in $SEEDS; do
    run="$OUT/runs/$subset-s$seed"
    if [ ! -f "$run.eval.jsonl" ]; then
      rm -rf "$run"
      "$M" sft --model "$BASE" --data "$OUT/subsets/$subset.jsonl" --out "$run" --chat-template chatml \
        --steps "$SFT_STEPS" --batch 8 --seq "$SEQ" --lr 1e-3 --warmup 5 --schedule cosine --min-lr 1e-4 \
        --seed "$seed" --log-every "$SFT_STEPS" --threads "$THREADS" > "$run.log" 2>&1
      "$M" select score --model "$run/ckpt/$(cat "$run/ckpt/latest")" --data "$OUT/heldout.jsonl" \
        --out "$run.eval.jsonl" --chat-template chatml --max-length "$SEQ" --no-ifd --batch 16 --threads "$THREADS" --quiet
    fi
    echo "$subset seed $seed: done"
  done
done

echo "== 6. results"
python3 - "$OUT" "$SEEDS" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2].split()
def heldout(path):
    """Token-weighted mean response cross-entropy over the held-out samples, overall and per language."""
    tot = {}
    for l in open(path, encoding="utf-8"):
        r = json.loads(l)
        for k in ("all", r["lang"]):
            c, n = tot.get(k, (0.0, 0))
            tot[k] = (c + r["ce_sum"], n + r["n_tokens"])
    return {k: c / n for k, (c, n) in tot.items()}
base_scores = [json.loads(l) for l in open(f"{out}/scores.jsonl", encoding="utf-8")]
res = {"subsets": {}}
for subset in ("middle", "low", "high", "random", "full"):
    runs = [heldout(f"{out}/runs/{subset}-s{s}.eval.jsonl") for s in seeds]
    n = sum(1 for _ in open(f"{out}/subsets/{subset}.jsonl", encoding="utf-8"))
    res["subsets"][subset] = {"samples": n, "runs": runs,
                              **{f"{k}_mean": statistics.mean(r[k] for r in runs) for k in runs[0]},
                              **{f"{k}_sd": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0 for k in runs[0]}}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
b = heldout(f"{out}/runs/base.eval.jsonl")
res["base"] = b
lines = ["| subset | samples | held-out response CE (all) | en | zh |", "|---|---|---|---|---|",
         f"| (base, no sft) | 0 | {b['all']:.4f} | {b['en']:.4f} | {b['zh']:.4f} |"]
for s, r in res["subsets"].items():
    lines.append(f"| {s} | {r['samples']} | {r['all_mean']:.4f} ± {r['all_sd']:.4f} | {r['en_mean']:.4f} ± {r['en_sd']:.4f} "
                 f"| {r['zh_mean']:.4f} ± {r['zh_sd']:.4f} |")
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"(mean ± sd over seeds {' '.join(seeds)}; lower is better)")
PY
