// The race check's bookkeeping. A kernel whose threads communicate through threadgroup memory
// without the barriers that order them computes a result that depends on the order in which
// threads run; so does one that reads threadgroup memory nobody wrote. The sim runs such a
// launch twice, the threads of each group in forward and then in reverse order, with a
// different fill pattern in fresh threadgroup memory each time, from the same inputs, and
// compares what the kernel wrote. This class snapshots the writable buffers before the first
// run, keeps the first run's results while restoring the inputs for the second, and names the
// first difference.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace metalrt::sim {

class OrderCheck {
 public:
  struct Buffer {
    std::string name;       // the parameter's name
    unsigned char* data;
    uint64_t size;          // bytes
    ValueType type;         // the pointee type, to index and print elements
  };

  // Copies the buffers' current contents.
  explicit OrderCheck(std::vector<Buffer> buffers);

  bool empty() const { return buffers_.empty(); }

  // After the first run: keeps its results and puts the original contents back.
  void keep_first_run();

  // After the second run: describes the first buffer that differs from the first run's
  // results (which element, both values, how many differ), or nothing.
  std::optional<std::string> compare() const;

 private:
  std::vector<Buffer> buffers_;
  std::vector<std::vector<unsigned char>> original_;
  std::vector<std::vector<unsigned char>> first_;
};

}  // namespace metalrt::sim
