#include "core/metal_compile_log.h"

#include <cctype>

namespace metalrt::metal {
namespace {

constexpr std::string_view kMetalBufferName = "program_source";
constexpr std::string_view kSeverities[] = {"fatal error", "error", "warning", "note"};

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

bool read_int(std::string_view s, size_t* pos, int* out) {
  size_t p = *pos;
  int v = 0;
  while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p])) && v < 100000000)
    v = v * 10 + (s[p++] - '0');
  if (p == *pos) return false;
  *pos = p, *out = v;
  return true;
}

// Parses "<file>:<line>:<col>: <severity>: <message>" (location optional: "error: ...").
// On success, `file_len` is the length of the file part (0 without a location).
bool parse_diagnostic(std::string_view line, Diagnostic* d, size_t* file_len) {
  size_t pos = 0;
  *file_len = 0;
  size_t colon = line.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    size_t p = colon + 1;
    int l = 0, c = 0;
    if (read_int(line, &p, &l) && p < line.size() && line[p] == ':') {
      ++p;
      if (read_int(line, &p, &c) && p < line.size() && line[p] == ':') ++p;
      if (p < line.size() && line[p] == ' ') {
        d->line = l, d->column = c, *file_len = colon, pos = p + 1;
      }
    }
  }
  for (std::string_view sev : kSeverities) {
    if (line.substr(pos, sev.size()) == sev && line.substr(pos + sev.size(), 2) == ": ") {
      d->severity = std::string(sev);
      d->message = std::string(line.substr(pos + sev.size() + 2));
      return true;
    }
  }
  *d = Diagnostic{};
  return false;
}

std::string_view source_line(std::string_view source, int line) {
  std::vector<std::string_view> lines = split_lines(source);
  return line >= 1 && size_t(line) <= lines.size() ? lines[line - 1] : std::string_view{};
}

}  // namespace

int CompileLog::error_count() const {
  int n = 0;
  for (const Diagnostic& d : diagnostics) n += d.severity == "error" || d.severity == "fatal error";
  return n;
}

int CompileLog::warning_count() const {
  int n = 0;
  for (const Diagnostic& d : diagnostics) n += d.severity == "warning";
  return n;
}

CompileLog rewrite_compile_log(std::string_view raw, std::string_view source,
                               std::string_view filename) {
  CompileLog out;
  std::vector<std::string_view> lines = split_lines(raw);
  size_t first = 0;
  // NSError's preamble, "Compilation failed: " and blank lines, says nothing the log does not.
  if (!lines.empty()) {
    std::string_view head = lines[0];
    for (std::string_view p : {std::string_view("Compilation failed:"), std::string_view("Compilation failed")})
      if (head.substr(0, p.size()) == p) {
        head.remove_prefix(p.size());
        while (!head.empty() && head.front() == ' ') head.remove_prefix(1);
        if (head.empty()) first = 1; else lines[0] = head;
        break;
      }
  }
  while (first < lines.size() && lines[first].empty()) ++first;

  const Diagnostic* first_error = nullptr;
  for (size_t i = first; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    Diagnostic d;
    size_t file_len = 0;
    std::string rewritten(line);
    if (parse_diagnostic(line, &d, &file_len)) {
      if (file_len > 0 && line.substr(0, file_len) == kMetalBufferName)
        rewritten = std::string(filename) + std::string(line.substr(file_len));
      out.diagnostics.push_back(d);
    }
    out.text += rewritten + "\n";
  }
  for (const Diagnostic& d : out.diagnostics)
    if (d.severity == "error" || d.severity == "fatal error") { first_error = &d; break; }

  if (first_error) {
    out.first_error_line = first_error->line;
    std::string where = std::string(filename);
    if (first_error->line > 0)
      where += ":" + std::to_string(first_error->line) + ":" + std::to_string(first_error->column);
    out.summary = where + ": " + first_error->severity + ": " + first_error->message;
    std::string_view code = source_line(source, first_error->line);
    if (!code.empty()) out.summary += "\n  " + std::to_string(first_error->line) + " | " + std::string(code);
    int errors = out.error_count();
    if (errors > 1) out.summary += "\n(" + std::to_string(errors) + " errors; the full log is in CompileError.log)";
  } else {
    // No diagnostic we recognise: Metal's text is still the best explanation there is.
    std::string text = out.text;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    out.summary = text.empty() ? std::string("Metal's compiler failed without a message") : text;
  }
  return out;
}

}  // namespace metalrt::metal
