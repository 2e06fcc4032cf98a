#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, raw
// bytes. Reading memory-maps the file and validates every entry before any tensor is touched.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

namespace handoff {

struct TensorEntry {
  std::string dtype;  // "F32" | "F16" | "BF16" | "I64" | ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error naming the file on any corruption
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  // Converted to float32 (F32/F16/BF16 accepted) on the CPU; copies out of the mapping.
  at::Tensor tensor(const std::string& name) const;
  // Copies straight from the mapping into `dst` (same shape, any floating dtype), converting on the way: no
  // temporary, which at 0.5B parameters saves a pass over every weight and its fresh pages.
  void copy_into(const std::string& name, at::Tensor& dst) const;
  const std::string& path() const { return path_; }

 private:
  // The mapped bytes as a tensor of the file's dtype (no copy).
  at::Tensor view(const std::string& name) const;

  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes float tensors (kept in their dtype: F32, F16 or BF16) atomically.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace handoff
