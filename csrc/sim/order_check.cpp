#include "sim/order_check.h"

#include <cstdio>
#include <cstring>

namespace metalrt::sim {

namespace {

uint32_t bytes_of(Scalar s) {
  switch (s) {
    case Scalar::Bool: case Scalar::Char: case Scalar::UChar: return 1;
    case Scalar::Short: case Scalar::UShort: case Scalar::Half: case Scalar::BFloat: return 2;
    case Scalar::Int: case Scalar::UInt: case Scalar::Float: return 4;
    case Scalar::Long: case Scalar::ULong: case Scalar::Double: return 8;
    default: return 0;
  }
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string format_float(double v, int digits) {
  if (v != v) return "nan";  // whatever its sign and payload (the fill patterns are NaNs)
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, v);
  return text;
}

std::string format_scalar(Scalar s, const unsigned char* p) {
  char text[64];
  auto get = [p](auto v) { std::memcpy(&v, p, sizeof v); return v; };
  switch (s) {
    case Scalar::Bool: return *p ? "true" : "false";
    case Scalar::Char: std::snprintf(text, sizeof text, "%d", int(get(int8_t()))); break;
    case Scalar::UChar: std::snprintf(text, sizeof text, "%u", unsigned(get(uint8_t()))); break;
    case Scalar::Short: std::snprintf(text, sizeof text, "%d", int(get(int16_t()))); break;
    case Scalar::UShort: std::snprintf(text, sizeof text, "%u", unsigned(get(uint16_t()))); break;
    case Scalar::Int: std::snprintf(text, sizeof text, "%d", get(int32_t())); break;
    case Scalar::UInt: std::snprintf(text, sizeof text, "%u", get(uint32_t())); break;
    case Scalar::Long: std::snprintf(text, sizeof text, "%lld", (long long)get(int64_t())); break;
    case Scalar::ULong: std::snprintf(text, sizeof text, "%llu", (unsigned long long)get(uint64_t())); break;
    case Scalar::Half: return format_float(double(half_to_float(get(uint16_t()))), 6);
    case Scalar::BFloat: {
      const uint32_t bits = uint32_t(get(uint16_t())) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return format_float(double(f), 4);
    }
    case Scalar::Float: return format_float(double(get(float())), 9);
    case Scalar::Double: return format_float(get(double()), 17);
    default: std::snprintf(text, sizeof text, "0x%02x", unsigned(*p)); break;
  }
  return text;
}

}  // namespace

OrderCheck::OrderCheck(std::vector<Buffer> buffers) : buffers_(std::move(buffers)) {
  original_.reserve(buffers_.size());
  for (const Buffer& b : buffers_) original_.emplace_back(b.data, b.data + b.size);
}

void OrderCheck::keep_first_run() {
  first_.clear();
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const Buffer& b = buffers_[i];
    first_.emplace_back(b.data, b.data + b.size);
  }
  // Buffers may alias (one tensor bound twice): each snapshot holds the same original bytes.
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (buffers_[i].size) std::memcpy(buffers_[i].data, original_[i].data(), buffers_[i].size);
}

std::optional<std::string> OrderCheck::compare() const {
  for (size_t b = 0; b < buffers_.size(); ++b) {
    const Buffer& buf = buffers_[b];
    const unsigned char* first = first_[b].data();
    const unsigned char* second = buf.data;
    if (buf.size == 0 || std::memcmp(first, second, buf.size) == 0) continue;

    // Index in elements of the pointee type where it is a known scalar or vector; else bytes.
    const uint32_t scalar_bytes = buf.type.known() ? bytes_of(buf.type.scalar) : 0;
    const bool typed = scalar_bytes && buf.type.size;
    const uint64_t stride = typed ? buf.type.size : 1;
    const uint64_t count = buf.size / stride;
    uint64_t first_index = count, differing = 0;
    for (uint64_t i = 0; i < count; ++i)
      if (std::memcmp(first + i * stride, second + i * stride, stride) != 0) {
        if (first_index == count) first_index = i;
        ++differing;
      }
    if (first_index == count) {  // only the tail beyond the last whole element differs
      first_index = count;
      differing = 1;
    }

    std::string where = buf.name + "[" + std::to_string(first_index) + "]";
    std::string values;
    if (typed && first_index < count) {
      const unsigned width = buf.type.width ? buf.type.width : 1;
      const unsigned char* a = first + first_index * stride;
      const unsigned char* c = second + first_index * stride;
      unsigned comp = 0;
      while (comp + 1 < width && std::memcmp(a + comp * scalar_bytes, c + comp * scalar_bytes, scalar_bytes) == 0) ++comp;
      if (width > 1) where += std::string(".") + "xyzw"[comp];
      values = format_scalar(buf.type.scalar, a + comp * scalar_bytes) + " in the first run, " +
               format_scalar(buf.type.scalar, c + comp * scalar_bytes) + " in the second";
    } else {
      const uint64_t at = first_index * stride;
      values = format_scalar(Scalar::Opaque, first + at) + " in the first run, " +
               format_scalar(Scalar::Opaque, second + at) + " in the second (byte " + std::to_string(at) + ")";
    }
    return "the result depends on the order in which the threads of a threadgroup run: the sim ran "
           "the launch twice from the same inputs, each threadgroup's threads in forward and then "
           "in reverse order (with different fill patterns in fresh threadgroup memory), and "
           "buffer '" + buf.name + "' differs at " + where + " (" + values + "; " +
           std::to_string(differing) + " of " + std::to_string(count) +
           (typed ? " elements" : " bytes") +
           " differ). This is a race on threadgroup memory (a thread reads what another writes "
           "with no threadgroup_barrier between them) or a read of threadgroup memory that no "
           "thread wrote. METALRT_SIM_RACECHECK=0 turns this check off.";
  }
  return std::nullopt;
}

}  // namespace metalrt::sim
