// A map from key to a built object, safe for many threads: looked up under a shared lock; on a
// miss, the exclusive lock is taken, the key looked up again (someone may have built it
// meanwhile), and only then the builder runs. The builder is a callback so that the expensive
// work (compiling, creating a pipeline) happens only on a true miss.
#pragma once
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace metalrt {

template <class Key, class Value, class Hash = std::hash<Key>>
class KeyedCache {
 public:
  template <class Build>
  std::shared_ptr<Value> get_or_build(const Key& key, Build&& build) {
    {
      std::shared_lock lock(mutex_);
      auto it = map_.find(key);
      if (it != map_.end()) return it->second;
    }
    std::unique_lock lock(mutex_);
    auto it = map_.find(key);
    if (it != map_.end()) return it->second;
    std::shared_ptr<Value> value = build();  // may throw: nothing is cached then
    map_.emplace(key, value);
    return value;
  }

  std::shared_ptr<Value> find(const Key& key) const {
    std::shared_lock lock(mutex_);
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second;
  }

  size_t size() const {
    std::shared_lock lock(mutex_);
    return map_.size();
  }

  void clear() {
    std::unique_lock lock(mutex_);
    map_.clear();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<Key, std::shared_ptr<Value>, Hash> map_;
};

}  // namespace metalrt
