#include "core/metal_archive.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>

#include "core/metal_digest.h"
#include "core/metal_options.h"

namespace metalrt::metal {
namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else out += c;
  }
  return out + "\"";
}

// A reader for the flat objects manifest_json writes: {"k": "v" | 123, ...}.
class FlatJson {
 public:
  explicit FlatJson(std::string_view s) : s_(s) {}

  template <class OnField>
  bool parse(OnField&& on_field) {
    skip();
    if (!eat('{')) return false;
    skip();
    if (eat('}')) return at_end();
    while (true) {
      std::string key, str;
      if (!string(&key)) return false;
      skip();
      if (!eat(':')) return false;
      skip();
      if (peek() == '"') {
        if (!string(&str) || !on_field(key, &str, 0)) return false;
      } else {
        uint64_t v = 0;
        size_t start = pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])))
          v = v * 10 + uint64_t(s_[pos_++] - '0');
        if (pos_ == start || !on_field(key, nullptr, v)) return false;
      }
      skip();
      if (eat('}')) return at_end();
      if (!eat(',')) return false;
      skip();
    }
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) { return peek() == c ? (++pos_, true) : false; }
  void skip() { while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_; }
  bool at_end() { skip(); return pos_ == s_.size(); }
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        char e = s_[pos_++];
        if (e == 'u') {
          if (pos_ + 4 > s_.size()) return false;
          int v = 0;
          for (int i = 0; i < 4; ++i) {
            char h = s_[pos_++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
            v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          c = char(v);
        } else {
          c = e;
        }
      }
      *out += c;
    }
    return eat('"');
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

// No iostreams anywhere in _C. On the H100 machine, with torch.cuda initialised first, writing an
// integer into an ostringstream here segfaulted (gdb: inside basic_ostream::_M_insert<long>),
// most likely because the CUDA libraries PyTorch loads RTLD_GLOBAL bring their own copy of
// libstdc++'s locale machinery. Plain strings also keep the manifest free of the C++ locale.
std::string manifest_json(const ArchiveManifest& m) {
  return "{\n  \"format\": " + std::to_string(m.format) + ",\n  \"key\": " + json_string(m.key) +
         ",\n  \"device\": " + json_string(m.device) + ",\n  \"payload_sha256\": " + json_string(m.payload_sha256) +
         ",\n  \"payload_size\": " + std::to_string(m.payload_size) + ",\n  \"pipelines\": " +
         std::to_string(m.pipelines) + "\n}\n";
}

bool parse_manifest_json(std::string_view text, ArchiveManifest* out) {
  ArchiveManifest m;
  int seen = 0;
  bool ok = FlatJson(text).parse([&](const std::string& key, std::string* str, uint64_t num) {
    if (key == "format" && !str) m.format = int(num), seen |= 1;
    else if (key == "key" && str) m.key = *str, seen |= 2;
    else if (key == "device" && str) m.device = *str, seen |= 4;
    else if (key == "payload_sha256" && str) m.payload_sha256 = *str, seen |= 8;
    else if (key == "payload_size" && !str) m.payload_size = num, seen |= 16;
    else if (key == "pipelines" && !str) m.pipelines = int(num);
    else return false;
    return true;
  });
  if (!ok || seen != 31) return false;
  *out = std::move(m);
  return true;
}

std::string_view archive_action_name(ArchiveAction a) {
  switch (a) {
    case ArchiveAction::Create: return "create";
    case ArchiveAction::Load: return "load";
    case ArchiveAction::Rebuild: return "rebuild";
  }
  return "?";
}

ArchiveDecision decide_archive(const ArchiveOnDisk& disk, const ArchiveManifest& expected) {
  using A = ArchiveAction;
  if (!disk.payload_exists && !disk.manifest_exists) return {A::Create, "no archive yet"};
  if (!disk.manifest_exists) return {A::Rebuild, "the archive has no manifest (an interrupted write)"};
  if (!disk.payload_exists) return {A::Rebuild, "the manifest's archive file is missing"};
  ArchiveManifest m;
  if (!parse_manifest_json(disk.manifest_text, &m)) return {A::Rebuild, "the manifest is unreadable"};
  if (m.format != expected.format)
    return {A::Rebuild, "cache format " + std::to_string(m.format) + ", this metalrt writes " +
                            std::to_string(expected.format)};
  if (m.key != expected.key) return {A::Rebuild, "the manifest belongs to another library"};
  if (m.device != expected.device)
    return {A::Rebuild, "built for '" + m.device + "', this is '" + expected.device + "'"};
  if (m.payload_size != disk.payload_size || m.payload_sha256 != disk.payload_sha256)
    return {A::Rebuild, "the archive's bytes do not match its manifest (truncated or corrupt)"};
  return {A::Load, "manifest matches"};
}

ArchiveFiles::ArchiveFiles(const std::string& cache_dir, const std::string& key)
    : dir_(cache_dir + "/metal"), payload_(dir_ + "/" + key + ".binarchive"),
      manifest_(dir_ + "/" + key + ".json") {}

ArchiveOnDisk ArchiveFiles::inspect() const {
  ArchiveOnDisk disk;
  std::string payload;
  disk.payload_exists = read_whole_file(payload_, &payload);
  if (disk.payload_exists) {
    disk.payload_sha256 = sha256_hex(payload);
    disk.payload_size = payload.size();
  }
  disk.manifest_exists = read_whole_file(manifest_, &disk.manifest_text);
  return disk;
}

void ArchiveFiles::remove() const {
  ::unlink(manifest_.c_str());
  ::unlink(payload_.c_str());
}

std::string ArchiveFiles::temporary_payload() const {
  make_directories(dir_);
  return payload_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++g_tmp_counter);
}

bool ArchiveFiles::publish(const std::string& tmp_payload, ArchiveManifest manifest) const {
  std::string bytes;
  if (!read_whole_file(tmp_payload, &bytes)) return false;
  manifest.payload_sha256 = sha256_hex(bytes);
  manifest.payload_size = bytes.size();
  // Payload first: a reader that sees the new payload with the old manifest finds a hash
  // mismatch and rebuilds, which costs a compile and nothing else.
  if (::rename(tmp_payload.c_str(), payload_.c_str()) != 0) {
    ::unlink(tmp_payload.c_str());
    return false;
  }
  return write_file_atomically(manifest_, manifest_json(manifest));
}

bool read_whole_file(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  bool ok = !std::ferror(f);
  std::fclose(f);
  if (ok) *out = std::move(data);
  return ok;
}

bool write_file_atomically(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++g_tmp_counter);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool make_directories(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace metalrt::metal
