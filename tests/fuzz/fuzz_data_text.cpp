// libFuzzer target: one JSONL line / document through every text-level stage of `data prepare`
// (JSON field extraction, UTF-8 check, cleaning, language id, filters, PII, shingles).
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/clean.h"
#include "data/dedup.h"
#include "data/filters.h"
#include "data/langid.h"
#include "data/pii.h"
#include "data/reader.h"
#include "data/char_class.h"

using namespace mindllm::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string text, why;
  if (parse_jsonl_text(in, "text", &text, &why) != 1) text.assign(in);
  if (!mindllm::utf8::valid(text)) return 0;
  static const CleanConfig cc;
  static const FilterConfig fc = default_filter_config();
  static const DedupConfig dc;
  std::string c = clean_text(text, cc);
  Lang lang = identify_language(c).lang;
  apply_filters(c, lang, fc);
  compute_doc_stats(c, lang);
  PiiCounts pc;
  scrub_pii(c, &pc);
  shingles(c, lang, dc);
  normalize_nfkc_safe(text);
  return 0;
}
