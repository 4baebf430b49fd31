// Python objects -> ArgValue, without linking libtorch: torch tensors are read through torch's
// DLPack C exchange API where this torch offers it (one C call per tensor), else through their
// Python attributes; everything else through the buffer protocol or as numbers. This is on the
// launch hot path: attribute names are interned once and nothing is allocated per call beyond
// the ArgValue vector.
#pragma once
#include <Python.h>

#include <string>
#include <vector>

#include "core/binding.h"
#include "core/launch.h"

namespace metalrt::bindings {

// The converted arguments of one call, plus the buffer views they point into: the views are
// held (and the exporting objects kept from resizing) until the launch is over.
class ConvertedArgs {
 public:
  ConvertedArgs() = default;
  ConvertedArgs(const ConvertedArgs&) = delete;
  ConvertedArgs& operator=(const ConvertedArgs&) = delete;
  ~ConvertedArgs();

  std::vector<ArgValue> values;

 private:
  friend class ArgConverter;
  std::vector<Py_buffer> views_;
};

// Converts positional call arguments. `sig` only names arguments in messages; `expected` (the
// backend's memory) decides which device test a tensor gets first.
// Throws ArgumentError for an object that cannot be a kernel argument.
void convert_args(PyObject* const* items, size_t count, const KernelSignature& sig, MemoryKind expected,
                  ConvertedArgs* out);

// threads=/groups=/group_size=: an int or a sequence of 1 to 3 ints. Returns the number of
// dimensions given. Throws LaunchError naming `what` otherwise.
int to_dim3(PyObject* obj, const char* what, const std::string& kernel, Dim3* out);

// threadgroup_memory={index: bytes}.
void to_threadgroup_memory(PyObject* obj, const std::string& kernel, std::map<int, uint64_t>* out);

// PyTorch's current stream on CUDA device `ordinal`, through torch's DLPack C exchange API (a C
// call, where torch._C._cuda_getCurrentRawStream is a Python call). Returns false, setting
// nothing, when torch is not imported or predates the API (torch < 2.10); throws the Python
// error torch raised otherwise. Like that function, it initialises torch's CUDA state if needed.
bool torch_dlpack_stream(int ordinal, void** stream);

}  // namespace metalrt::bindings
