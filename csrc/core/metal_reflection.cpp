#include "core/metal_reflection.h"

#include "core/metal_options.h"

namespace metalrt::metal {
namespace {

using Kind = ReflectedBinding::Kind;

const ReflectedBinding* find(const std::vector<ReflectedBinding>& bindings, Kind kind, int index) {
  for (const ReflectedBinding& b : bindings)
    if (b.kind == kind && b.index == index) return &b;
  return nullptr;
}

const ReflectedBinding* find_named(const std::vector<ReflectedBinding>& bindings, Kind kind,
                                   const std::string& name) {
  for (const ReflectedBinding& b : bindings)
    if (b.kind == kind && b.name == name) return &b;
  return nullptr;
}

std::string where(const Param& p) {
  return "'" + p.name + "' (" + p.type_text + ", line " + std::to_string(p.line) + ")";
}

const char* kind_word(Kind k) {
  switch (k) {
    case Kind::Buffer: return "buffer";
    case Kind::Threadgroup: return "threadgroup";
    case Kind::Texture: return "texture";
    case Kind::Sampler: return "sampler";
    case Kind::Other: return "resource";
  }
  return "resource";
}

// The pointee's type as Metal's reflection reports it; checks only what both sides know exactly.
void compare_buffer(const Param& p, const ReflectedBinding& b,
                    const std::map<std::string, StructLayout>& structs,
                    std::vector<std::string>* problems) {
  if (!b.name.empty() && b.name != p.name)
    problems->push_back("buffer(" + std::to_string(p.index) + ") is " + where(p) +
                        " to the parser but '" + b.name + "' to Metal");
  if (p.type.scalar == Scalar::Struct) {
    auto it = structs.find(p.pointee);
    if (b.data_type != uint32_t(DataType::Struct) && b.data_type != 0)
      problems->push_back(where(p) + " points to struct '" + p.pointee + "' for the parser, but "
                          "Metal reflects data type " + std::to_string(b.data_type));
    else if (it != structs.end() && it->second.complete && b.data_size != 0 &&
             it->second.size != b.data_size)
      problems->push_back("struct '" + p.pointee + "' of " + where(p) + " is " +
                          std::to_string(it->second.size) + " bytes to the parser but " +
                          std::to_string(b.data_size) + " bytes to Metal; its layout would be "
                          "packed wrongly");
    return;
  }
  uint32_t expected = data_type_of(p.type);
  if (expected != 0 && b.data_type != 0 && b.data_type != expected)
    problems->push_back(where(p) + " has element type " + p.type.name + " (MTLDataType " +
                        std::to_string(expected) + ") for the parser, but Metal reflects MTLDataType " +
                        std::to_string(b.data_type));
}

}  // namespace

std::string ReflectionCheck::message(const std::string& kernel) const {
  std::string s = "[metalrt.metal] kernel '" + kernel + "': metalrt's signature parser and Metal's "
                  "pipeline reflection disagree, so its arguments cannot be bound safely:";
  for (const std::string& p : problems) s += "\n  - " + p;
  s += "\nThis is a metalrt bug; please report it with the kernel's source.";
  return s;
}

ReflectionCheck cross_check_reflection(const KernelSignature& sig,
                                       const std::map<std::string, StructLayout>& structs,
                                       const std::vector<ReflectedBinding>& bindings) {
  ReflectionCheck check;
  for (const ReflectedBinding& b : bindings)
    if (b.kind == Kind::Buffer) check.buffer_alignment[b.index] = b.alignment;

  for (const Param& p : sig.params) {
    Kind kind;
    if (p.kind == ParamKind::Buffer || p.kind == ParamKind::Reference) kind = Kind::Buffer;
    else if (p.kind == ParamKind::Threadgroup) kind = Kind::Threadgroup;
    else continue;
    const ReflectedBinding* b = find(bindings, kind, p.index);
    if (!b) {
      // Metal may leave out an argument the kernel never touches; a name at another index is not.
      if (const ReflectedBinding* other = find_named(bindings, kind, p.name))
        check.problems.push_back(where(p) + " is " + kind_word(kind) + "(" + std::to_string(p.index) +
                                 ") for the parser but " + kind_word(kind) + "(" +
                                 std::to_string(other->index) + ") for Metal");
      continue;
    }
    if (kind == Kind::Buffer) compare_buffer(p, *b, structs, &check.problems);
    else if (!b->name.empty() && b->name != p.name)
      check.problems.push_back("threadgroup(" + std::to_string(p.index) + ") is " + where(p) +
                               " to the parser but '" + b->name + "' to Metal");
  }

  for (const ReflectedBinding& b : bindings) {
    bool known = false;
    for (const Param& p : sig.params) {
      bool same_kind = b.kind == Kind::Buffer
                           ? (p.kind == ParamKind::Buffer || p.kind == ParamKind::Reference)
                           : b.kind == Kind::Threadgroup && p.kind == ParamKind::Threadgroup;
      known |= same_kind && p.index == b.index;
    }
    if (known) continue;
    if (b.kind == Kind::Texture || b.kind == Kind::Sampler)
      check.problems.push_back("the kernel takes " + std::string(kind_word(b.kind)) + " '" + b.name +
                               "' (" + kind_word(b.kind) + "(" + std::to_string(b.index) +
                               ")); metalrt launches bind buffers, threadgroup memory and values only");
    else if (b.kind == Kind::Buffer || b.kind == Kind::Threadgroup)
      check.problems.push_back("Metal reflects " + std::string(kind_word(b.kind)) + "(" +
                               std::to_string(b.index) + ") '" + b.name +
                               "', which the signature parser did not find");
  }
  return check;
}

}  // namespace metalrt::metal
