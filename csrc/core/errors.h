// Typed errors of the runtime. Every backend throws these; the bindings turn each into the
// Python exception of the same name (metalrt.CompileError, ...). Messages name the component,
// the thing involved (kernel, parameter) and, where there is one, the fix.
#pragma once
#include <stdexcept>
#include <string>

namespace metalrt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The source did not compile. `log` is the compiler's own output, with line numbers that point
// into the user's source; `what()` is a one-paragraph summary (first error and its line).
class CompileError : public Error {
 public:
  CompileError(std::string message, std::string log = {}, int line = 0)
      : Error(std::move(message)), log_(std::move(log)), line_(line) {}
  const std::string& log() const { return log_; }
  int line() const { return line_; }  // first error line in the user's source, 0 if unknown

 private:
  std::string log_;
  int line_;
};

// A launch argument does not fit the kernel's declared parameter (count, dtype, device,
// contiguity, alignment, scalar range). The message names the kernel and the parameter.
class ArgumentError : public Error {
 public:
  using Error::Error;
};

// The launch could not run or failed while running: limits (threads per group, threadgroup
// memory), and everything the sim detects (divergent barrier, out-of-bounds access, race...).
class LaunchError : public Error {
 public:
  using Error::Error;
};

// The backend cannot be used here (no device, missing driver or library, too old a compiler).
class BackendUnavailable : public Error {
 public:
  using Error::Error;
};

}  // namespace metalrt
