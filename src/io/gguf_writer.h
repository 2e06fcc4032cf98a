#pragma once
// GGUF v3, the file format llama.cpp (and everything built on ggml) loads: a header, typed key/value
// metadata, tensor descriptions, then the tensors' bytes, each aligned. Only what export needs is written:
// scalar and array values, and F32 / F16 / Q8_0 tensors. Layout and type codes follow llama.cpp's
// ggml/include/gguf.h and ggml.h; Q8_0 is ggml's reference quantizer (quantize_row_q8_0_ref), so llama.cpp
// reads back exactly the values written here.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

namespace handoff {

enum class GgmlType : int32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8 };
const char* ggml_type_name(GgmlType t);

class GgufWriter {
 public:
  void add_u32(const std::string& key, uint32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);

  // `t` is a float tensor in PyTorch's row-major shape ([out, in] for a linear weight); GGUF stores the
  // dimensions reversed (ne[0] innermost), the bytes unchanged. Q8_0 needs the last dimension to be a
  // multiple of 32 (Error otherwise). The tensor is encoded now, so the caller's tensor may go.
  void add_tensor(const std::string& name, const at::Tensor& t, GgmlType type);

  // Writes everything to `path` through `path.tmp`, fsync and rename: the file is complete or absent.
  // Throws Error naming the path on any I/O failure (the temporary is removed).
  void write(const std::string& path) const;

  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;  // ggml order
    GgmlType type;
    std::string bytes;
  };
  void key(const std::string& k, int32_t type);
  std::string kv_;  // the encoded key/value section
  int64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

// ggml's encodings, exposed for tests: IEEE half (round to nearest even) and Q8_0 blocks of 32 values
// (a half scale d = max|x| / 127, then round(x / d) as int8; 34 bytes per block).
std::string encode_f16(const float* x, size_t n);
std::string encode_q8_0(const float* x, size_t n);
std::vector<float> decode_q8_0(const std::string& bytes);

}  // namespace handoff
