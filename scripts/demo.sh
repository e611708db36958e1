#!/usr/bin/env bash
# The demo on the embedded default corpus, end to end on the CPU in a few minutes:
#   raw English (KJV Bible) + Chinese (Tang/Song poems, classical sayings) from Debian packages
#   -> data prepare (clean, filter, dedup) -> tokenizer train (bilingual byte-level BPE)
#   -> data tokenize (shards) -> train (small LLaMA-style model) -> eval (validation loss)
#   -> generate (English and Chinese prompts) -> sft (instruction tuning on a few hundred
#   instructions built from the same corpus) -> chat with the tuned model -> report (an HTML
#   page with the loss curves of both runs, the data funnel and samples).
# Output goes to ${OUT:-demo-out}. DEMO_STEPS / DEMO_SFT_STEPS override the training lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
MINDLLM_SKIP_PIP=1 bash scripts/setup.sh
bash scripts/build.sh >/dev/null
M="$PWD/${BUILD_DIR:-build}/mindllm"
OUT=${OUT:-demo-out}
STEPS=${DEMO_STEPS:-400}
SFT_STEPS=${DEMO_SFT_STEPS:-200}
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
python3 - "$OUT/clean/report.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
by = lambda d: ", ".join(f"{k} {v['docs']}" for k, v in d.items() if k != "total" and v["docs"])
print(f"read {r['languages_read']['total']['docs']} documents ({by(r['languages_read'])}) -> "
      f"kept {r['kept']['total']['docs']} ({by(r['kept'])})")
top = sorted(((v["total"]["docs"], k) for k, v in r["removed"].items() if v["total"]["docs"]), reverse=True)[:5]
print("removed most by: " + ", ".join(f"{k} {n}" for n, k in top) + f" (details: {sys.argv[1]})")
PY

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
echo "== 8. sft: instruction tuning on instructions built from the corpus"
# Chinese: "下一句：" + the first half of a poem line -> its second half; "《title》的作者是谁？" -> the
# poet. English: "Continue the verse: " + the start of a Genesis verse -> the rest.
python3 - "$OUT/sft.jsonl" <<'PY'
import json, re, subprocess, sys
items = []
poems = open("/usr/share/games/fortunes/tang300", encoding="utf-8").read()
poems = re.sub(r"\x1b\[[0-9;]*m", "", poems)
for entry in poems.split("\n%\n"):
    lines = [l.strip() for l in entry.strip().splitlines() if l.strip()]
    if len(lines) >= 3 and lines[0].startswith("《") and lines[1].startswith("作者："):
        if len(items) < 120:
            items.append({"instruction": f"{lines[0]}的作者是谁？", "output": lines[1][3:]})
        for l in lines[2:4]:
            m = re.fullmatch(r"(.+?)，(.+?)[。？！]", l)
            if m:
                items.append({"instruction": f"下一句：{m.group(1)}", "output": m.group(2)})
verses = subprocess.run(["bible", "-f", "Gen1:1-Gen10:32"], capture_output=True, text=True).stdout.splitlines()
for v in verses[:200]:
    text = v.split(" ", 1)[1] if " " in v else v
    head, sep, tail = text.partition(", ")
    if sep and len(head.split()) >= 3 and tail:
        items.append({"instruction": f"Continue the verse: {head},", "output": tail})
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for it in items:
        f.write(json.dumps(it, ensure_ascii=False) + "\n")
print(f"{len(items)} instructions")
PY
"$M" sft --model "$CKPT" --data "$OUT/sft.jsonl" --chat-template mindllm --out "$OUT/sft" --steps "$SFT_STEPS" \
  --batch 8 --seq 128 --lr 1e-3 --warmup 10 --val-fraction 0.05 --eval-every 100 --log-every 50

echo "== 9. chat with the tuned model"
CHAT="$OUT/sft/ckpt/$(cat "$OUT/sft/ckpt/latest")"
for q in "下一句：床前明月光" "《静夜思》的作者是谁？" "Continue the verse: And God said,"; do
  echo "> $q"
  "$M" chat --model "$CHAT" --prompt "$q" --temperature 0 --max-new-tokens 32
done

echo "== 10. report: loss curves of both runs, the data funnel, samples"
"$M" report "$OUT/run" "$OUT/sft" "$OUT/clean/report.json" --samples 2 --sample-tokens 32 \
  --sample-prompt "And God said" --sample-prompt "春眠不觉晓" --out "$OUT/report"
echo "demo: done (base model: $CKPT, chat model: $CHAT, report: $OUT/report/index.html)"
