// The on-disk half of the Metal pipeline cache. Each compiled library gets one MTLBinaryArchive
// under <cache_dir>/metal/, named by its library key, with a JSON manifest beside it that
// records what it was built for and the SHA-256 of its bytes. A new process loads the archive,
// and pipeline creation then skips the backend compile. What the manifest cannot vouch for
// (missing half, other format, other device or OS build, wrong hash: truncated, corrupt, foreign)
// is deleted and rebuilt, never handed to Metal, and never an error the user sees.
//
// The archive's bytes come from Metal (serializeToURL); everything else (paths, manifest, the
// decision, the atomic publish) is plain file work, kept here so Linux tests it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace metalrt::metal {

struct ArchiveManifest {
  int format = 0;              // kCacheFormatVersion when written
  std::string key;             // library_key()
  std::string device;          // DeviceIdentity::str(): GPU, architecture, OS build
  std::string payload_sha256;
  uint64_t payload_size = 0;
  int pipelines = 0;           // pipelines added so far (for people reading the cache)
};

std::string manifest_json(const ArchiveManifest& m);
// Accepts exactly what manifest_json writes (flat object, string and integer values).
bool parse_manifest_json(std::string_view text, ArchiveManifest* out);

enum class ArchiveAction : uint8_t { Create, Load, Rebuild };
std::string_view archive_action_name(ArchiveAction a);  // "create", "load", "rebuild"

struct ArchiveDecision {
  ArchiveAction action = ArchiveAction::Create;
  std::string reason;  // why (for Rebuild: what was wrong)
};

// What exists on disk for one key.
struct ArchiveOnDisk {
  bool payload_exists = false;
  bool manifest_exists = false;
  std::string manifest_text;
  std::string payload_sha256;  // of the payload's bytes, when it exists
  uint64_t payload_size = 0;
};

ArchiveDecision decide_archive(const ArchiveOnDisk& disk, const ArchiveManifest& expected);

// Files of one archive: <dir>/<key>.binarchive and <dir>/<key>.json.
class ArchiveFiles {
 public:
  ArchiveFiles(const std::string& cache_dir, const std::string& key);
  const std::string& dir() const { return dir_; }
  const std::string& payload() const { return payload_; }
  const std::string& manifest() const { return manifest_; }

  ArchiveOnDisk inspect() const;
  // Removes both files (a missing file is not an error).
  void remove() const;
  // A fresh temporary path in the same directory, for Metal to serialize into.
  std::string temporary_payload() const;
  // Publishes a serialized archive: hashes `tmp_payload`, then renames it over the payload and
  // writes the manifest (each via rename, so readers never see half a file). Returns false, and
  // removes the temporary, when the directory cannot be written: the cache is an optimisation.
  bool publish(const std::string& tmp_payload, ArchiveManifest manifest) const;

 private:
  std::string dir_, payload_, manifest_;
};

// Helpers shared by the archive code and its tests.
bool read_whole_file(const std::string& path, std::string* out);
bool write_file_atomically(const std::string& path, std::string_view data);
bool make_directories(const std::string& path);

}  // namespace metalrt::metal
