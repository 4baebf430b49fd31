// SHA-256, for the Metal backend's cache keys and for checking that a binary archive on disk is
// the one we wrote (a truncated or foreign file is rebuilt, never handed to Metal unchecked).
// A small self-contained implementation (FIPS 180-4), so the core needs no crypto library.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace metalrt::metal {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, size_t size);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Appends a length-prefixed field, so that ("ab", "c") and ("a", "bc") hash differently.
  Sha256& field(std::string_view s);
  std::array<uint8_t, 32> digest();  // finishes; the object is spent afterwards
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace metalrt::metal
