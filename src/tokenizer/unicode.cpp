// Normalization forms (UAX #15): full decomposition from the generated tables (Hangul
// algorithmic), canonical ordering by combining class, then canonical composition for NFC/NFKC.
// Text is normalized piecewise: characters flagged "safe" in the tables are boundaries, so only
// the runs around unsafe characters go through the full algorithm.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

namespace mindllm::unicode {

namespace t = unicode_tables;

namespace {
constexpr uint32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
constexpr uint32_t LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

const t::DecompEntry* find_decomp(const t::DecompEntry* table, size_t n, uint32_t cp) {
  const t::DecompEntry* e =
      std::lower_bound(table, table + n, cp, [](const t::DecompEntry& a, uint32_t v) { return a.cp < v; });
  return (e != table + n && e->cp == cp) ? e : nullptr;
}

void decompose_char(uint32_t cp, bool compat, std::vector<uint32_t>& out) {
  if (cp >= SBase && cp < SBase + SCount) {
    uint32_t s = cp - SBase;
    out.push_back(LBase + s / NCount);
    out.push_back(VBase + (s % NCount) / TCount);
    if (s % TCount) out.push_back(TBase + s % TCount);
    return;
  }
  const t::DecompEntry* e =
      compat ? find_decomp(t::kCompat, t::kCompatCount, cp) : find_decomp(t::kCanon, t::kCanonCount, cp);
  if (!e) {
    out.push_back(cp);
    return;
  }
  const uint32_t* data = compat ? t::kCompatData : t::kCanonData;
  out.insert(out.end(), data + e->offset, data + e->offset + e->length);
}

bool compose_pair(uint32_t a, uint32_t b, uint32_t* out) {
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount) {
    *out = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
    return true;
  }
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount) {
    *out = a + (b - TBase);
    return true;
  }
  uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const t::CompEntry* e = std::lower_bound(t::kComp, t::kComp + t::kCompCount, key,
                                           [](const t::CompEntry& x, uint64_t v) { return x.key < v; });
  if (e != t::kComp + t::kCompCount && e->key == key) {
    *out = e->composite;
    return true;
  }
  return false;
}

// Full normalization of a run of valid characters.
void normalize_run(std::string_view in, NormForm form, std::string& out) {
  bool compat = form == NormForm::nfkc || form == NormForm::nfkd;
  bool compose = form == NormForm::nfc || form == NormForm::nfkc;
  std::vector<uint32_t> cps;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < in.size();) {
    int len;
    uint32_t cp = decode(s, i, in.size(), &len);
    decompose_char(cp, compat, cps);
    i += len;
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (t::ccc(cps[i]) == 0) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && t::ccc(cps[j]) != 0) j++;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](uint32_t a, uint32_t b) { return t::ccc(a) < t::ccc(b); });
    i = j;
  }
  if (compose && !cps.empty()) {
    size_t starter = SIZE_MAX, w = 0;
    int last_cc = -1;  // combining class of the last character kept after the starter; -1: none
    for (size_t i = 0; i < cps.size(); i++) {
      uint32_t c = cps[i];
      int cc = t::ccc(c);
      uint32_t composite;
      if (starter != SIZE_MAX && (last_cc == -1 || last_cc < cc) && compose_pair(cps[starter], c, &composite)) {
        cps[starter] = composite;
        continue;
      }
      if (cc == 0) {
        starter = w;
        last_cc = -1;
      } else {
        last_cc = cc;
      }
      cps[w++] = c;
    }
    cps.resize(w);
  }
  for (uint32_t cp : cps) utf8::append(out, cp);
}

uint8_t safe_flag(NormForm form) {
  return form == NormForm::nfc ? t::kFlagNfcSafe : form == NormForm::nfkc ? t::kFlagNfkcSafe : 0;
}
}  // namespace

bool is_normalized_quick(std::string_view in, NormForm form) {
  uint8_t safe = safe_flag(form);
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < in.size();) {
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    int len;
    uint32_t cp = decode(s, i, in.size(), &len);
    if (cp != kInvalid && !(safe && (t::flags(cp) & safe))) return false;
    i += len;
  }
  return true;
}

void normalize(std::string_view in, NormForm form, std::string& out) {
  out.clear();
  out.reserve(in.size());
  uint8_t safe = safe_flag(form);
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  size_t copied = 0;    // in[0, copied) is already in out
  size_t boundary = 0;  // start of the last boundary character seen (normalization restarts there)
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      // ASCII is safe in every form except before a combining mark; it is a boundary.
      boundary = i++;
      continue;
    }
    int len;
    uint32_t cp = decode(s, i, n, &len);
    if (cp == kInvalid) {  // blocks everything: normalization can restart right after it
      i += len;
      boundary = i;
      continue;
    }
    if (safe && (t::flags(cp) & safe)) {
      boundary = i;
      i += len;
      continue;
    }
    // An unsafe character: normalize from the last boundary up to the next boundary.
    size_t start = std::max(boundary, copied);
    size_t j = i + len;
    while (j < n) {
      int l2;
      uint32_t c2 = decode(s, j, n, &l2);
      if (c2 == kInvalid || s[j] < 0x80 || (safe && (t::flags(c2) & safe))) {
        // ASCII/safe chars are boundaries unless a combining mark follows them; the next
        // loop iteration handles that by restarting at this boundary.
        break;
      }
      j += l2;
    }
    out.append(in.data() + copied, start - copied);
    normalize_run(in.substr(start, j - start), form, out);
    copied = j;
    boundary = j;
    i = j;
  }
  out.append(in.data() + copied, n - copied);
}

void lowercase(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < in.size();) {
    unsigned c = s[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      i++;
      continue;
    }
    int len;
    uint32_t cp = decode(s, i, in.size(), &len);
    if (cp != kInvalid && (t::flags(cp) & t::kFlagLower)) {
      const t::LowerEntry* e = std::lower_bound(t::kLower, t::kLower + t::kLowerCount, cp,
                                                [](const t::LowerEntry& a, uint32_t v) { return a.cp < v; });
      if (e != t::kLower + t::kLowerCount && e->cp == cp) {
        out.append(reinterpret_cast<const char*>(t::kLowerData) + e->offset, e->length);
        i += len;
        continue;
      }
    }
    out.append(in.data() + i, len);
    i += len;
  }
}

}  // namespace mindllm::unicode
