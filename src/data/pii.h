// PII scrubbing (optional): e-mail addresses, phone numbers (Chinese mobiles and landlines,
// North American and +CC international formats), Chinese resident ID numbers (18 characters,
// checksum and birth date verified) and IPv4 addresses are replaced by <EMAIL>, <PHONE>,
// <ID_NUMBER> and <IP_ADDRESS>. Hand-written scanners: one pass, no regex engine.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mindllm::data {

struct PiiCounts {
  uint64_t email = 0, phone = 0, id_number = 0, ip = 0;
  uint64_t total() const { return email + phone + id_number + ip; }
  void add(const PiiCounts& o) { email += o.email, phone += o.phone, id_number += o.id_number, ip += o.ip; }
};

std::string scrub_pii(std::string_view text, PiiCounts* counts);

// ISO 7064 MOD 11-2 check of an 18-character Chinese ID number (digits, last may be X).
bool valid_chinese_id(std::string_view id);

}  // namespace mindllm::data
