#include "core/metal_device.h"

#include <cctype>

#include "core/errors.h"

namespace metalrt::metal {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string listing(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + std::to_string(i) + ": " + names[i];
  return s.empty() ? "none" : s;
}

}  // namespace

int select_device_index(const std::vector<std::string>& names, std::string_view request) {
  if (request.empty()) return -1;
  bool numeric = true;
  for (char c : request) numeric &= std::isdigit(static_cast<unsigned char>(c)) != 0;
  if (numeric && request.size() < 6) {
    size_t i = std::stoul(std::string(request));
    if (i < names.size()) return int(i);
    throw BackendUnavailable("[metalrt.metal] METALRT_METAL_DEVICE=" + std::string(request) +
                             ": there is no device " + std::string(request) + "; devices: " + listing(names));
  }
  std::string want = lower(request);
  int found = -1, count = 0;
  for (size_t i = 0; i < names.size(); ++i)
    if (lower(names[i]).find(want) != std::string::npos) found = int(i), ++count;
  if (count == 1) return found;
  throw BackendUnavailable("[metalrt.metal] METALRT_METAL_DEVICE='" + std::string(request) + "' " +
                           (count == 0 ? "matches no device" : "matches several devices") +
                           "; devices: " + listing(names) + ". Give a longer name or the number");
}

std::string gpu_target(int apple_family, bool mac2) {
  if (apple_family > 0) return "apple" + std::to_string(apple_family);
  return mac2 ? "mac2" : "unknown";
}

double peak_bandwidth_gbs(std::string_view device_name) {
  // Apple's published unified-memory bandwidth per chip.
  struct Chip { const char* name; double gbs; };
  static const Chip chips[] = {
      {"m1 ultra", 800}, {"m1 max", 400}, {"m1 pro", 200}, {"m1", 68.25},
      {"m2 ultra", 800}, {"m2 max", 400}, {"m2 pro", 200}, {"m2", 100},
      {"m3 ultra", 819}, {"m3 max", 400}, {"m3 pro", 150}, {"m3", 100},
      {"m4 max", 546},   {"m4 pro", 273}, {"m4", 120},
  };
  std::string name = lower(device_name);
  for (const Chip& c : chips) {
    std::string key = c.name;
    size_t at = name.find(key);
    // Tiers are listed before the bare chip, so "m1" is reached only when "m1 max" and its
    // kin did not match; the match must end at a word boundary ("m1" is not "m10").
    if (at == std::string::npos) continue;
    size_t end = at + key.size();
    if (end == name.size() || !std::isalnum(static_cast<unsigned char>(name[end]))) return c.gbs;
  }
  return 0;
}

}  // namespace metalrt::metal
