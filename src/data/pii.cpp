#include "data/pii.h"

#include <cctype>
#include <cstring>

namespace mindllm::data {

static bool dig(char c) { return c >= '0' && c <= '9'; }
static bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool valid_chinese_id(std::string_view id) {
  if (id.size() != 18) return false;
  static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static const char check[] = "10X98765432";
  int sum = 0;
  for (int i = 0; i < 17; i++) {
    if (!dig(id[i])) return false;
    sum += (id[i] - '0') * w[i];
  }
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(id[17])));
  if (last != check[sum % 11]) return false;
  int year = std::stoi(std::string(id.substr(6, 4))), month = std::stoi(std::string(id.substr(10, 2))),
      day = std::stoi(std::string(id.substr(12, 2)));
  return year >= 1900 && year <= 2100 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// Matches a phone pattern at s[i]: 'd' digit, 's' one of " -.", '?' makes the next char optional,
// other chars literal. Returns the match length or 0.
static size_t match_pattern(std::string_view s, size_t i, const char* pat) {
  size_t j = i;
  for (const char* p = pat; *p; p++) {
    bool opt = false;
    if (*p == '?') opt = true, p++;
    char c = j < s.size() ? s[j] : '\0';
    bool ok = *p == 'd' ? dig(c) : *p == 's' ? (c == ' ' || c == '-' || c == '.') : c == *p;
    if (ok) j++;
    else if (!opt) return 0;
  }
  return j - i;
}

static size_t match_phone(std::string_view s, size_t i) {
  static const char* pats[] = {"+86?s1dd?sdddd?sdddd", "1ddsddddsdddd",   "1dddddddddd",  // Chinese mobiles
                               "0ddsdddddddd",         "0dddsddddddd",    "(0dd)?sdddddddd",
                               "(0ddd)?sddddddd",                                          // Chinese landlines
                               "+1?sddd?sddd?sdddd",   "(ddd)?sdddsdddd", "dddsdddsdddd",  // North America
                               "+ddsdddsdddsdddd",     "+dddsdddsdddsddd"};
  for (const char* p : pats) {
    size_t n = match_pattern(s, i, p);
    if (n == 0) continue;
    // Mobiles: second digit 3-9.
    if (std::strncmp(p, "1dd", 3) == 0 && !(s[i + 1] >= '3' && s[i + 1] <= '9')) continue;
    if (i + n < s.size() && (dig(s[i + n]) || (s[i + n] == '-' && i + n + 1 < s.size() && dig(s[i + n + 1])))) continue;
    return n;
  }
  return 0;
}

static size_t match_ipv4(std::string_view s, size_t i) {
  size_t j = i;
  for (int part = 0; part < 4; part++) {
    size_t k = j;
    int v = 0;
    while (k < s.size() && dig(s[k]) && k - j < 3) v = v * 10 + (s[k++] - '0');
    if (k == j || v > 255 || (k < s.size() && dig(s[k]))) return 0;
    j = k;
    if (part < 3) {
      if (j >= s.size() || s[j] != '.') return 0;
      j++;
    }
  }
  if (j < s.size() && s[j] == '.' && j + 1 < s.size() && dig(s[j + 1])) return 0;
  return j - i;
}

static size_t match_email(std::string_view s, size_t at, size_t* start) {
  auto local = [](char c) { return alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; };
  size_t b = at;
  while (b > 0 && local(s[b - 1])) b--;
  if (b == at) return 0;
  size_t e = at + 1, last_dot = 0;
  while (e < s.size() && (alnum(s[e]) || s[e] == '-' || s[e] == '.')) {
    if (s[e] == '.') last_dot = e;
    e++;
  }
  while (e > at + 1 && s[e - 1] == '.') e--;
  if (last_dot == 0 || last_dot >= e) {
    last_dot = 0;
    for (size_t k = at + 1; k < e; k++)
      if (s[k] == '.') last_dot = k;
  }
  if (last_dot == 0 || e - last_dot - 1 < 2) return 0;
  for (size_t k = last_dot + 1; k < e; k++)
    if (!std::isalpha(static_cast<unsigned char>(s[k]))) return 0;
  *start = b;
  return e - b;
}

std::string scrub_pii(std::string_view s, PiiCounts* counts) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '@') {
      size_t start;
      size_t n = match_email(s, i, &start);
      if (n) {
        // The local part was already copied: take it back.
        out.resize(out.size() - (i - start));
        out += "<EMAIL>";
        counts->email++;
        i = start + n;
        continue;
      }
    }
    bool boundary = i == 0 || !(alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '+' || s[i - 1] == '-');
    if (boundary && (dig(c) || c == '+' || c == '(')) {
      if (dig(c) && i + 18 <= s.size() && valid_chinese_id(s.substr(i, 18)) &&
          (i + 18 == s.size() || !alnum(s[i + 18]))) {
        out += "<ID_NUMBER>";
        counts->id_number++;
        i += 18;
        continue;
      }
      size_t n = dig(c) ? match_ipv4(s, i) : 0;
      if (n) {
        out += "<IP_ADDRESS>";
        counts->ip++;
        i += n;
        continue;
      }
      n = match_phone(s, i);
      if (n) {
        out += "<PHONE>";
        counts->phone++;
        i += n;
        continue;
      }
    }
    out.push_back(c);
    i++;
  }
  return out;
}

}  // namespace mindllm::data
