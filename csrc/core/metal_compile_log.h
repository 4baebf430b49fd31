// Metal's compiler reports errors against a buffer it calls "program_source"
// ("program_source:12:5: error: use of undeclared identifier 'x'"), behind an NSError preamble
// ("Compilation failed: "). metalrt hands Metal the user's own text (defines go in as
// preprocessorMacros, nothing is prepended), so the line numbers are already the user's; this
// rewrites the rest into the CompileError a user reads: their file name, the first error with
// its source line, and the whole log kept for whoever wants every diagnostic.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace metalrt::metal {

struct Diagnostic {
  int line = 0, column = 0;   // 0 when the message carries no location
  std::string severity;       // "error", "warning", "note", "fatal error"
  std::string message;
};

struct CompileLog {
  std::string text;                    // the log with the user's file name, preamble removed
  std::vector<Diagnostic> diagnostics; // in the order Metal printed them
  int first_error_line = 0;            // 0 when no error carries a line
  std::string summary;                 // one paragraph: first error, its source line, counts
  int error_count() const;
  int warning_count() const;
};

// `raw`: NSError.localizedDescription from newLibraryWithSource. `source`: what was compiled
// (quoted in the summary). `filename`: what the user calls it ("kernel.metal").
CompileLog rewrite_compile_log(std::string_view raw, std::string_view source,
                               std::string_view filename = "kernel.metal");

}  // namespace metalrt::metal
