#include "io/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <c10/util/Half.h>

#include "common/error.h"

namespace handoff {

namespace {

// gguf_type (ggml/include/gguf.h)
constexpr int32_t kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7, kString = 8, kArray = 9;
constexpr size_t kAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
constexpr size_t kQ8Block = 32;    // QK8_0

template <typename T>
void put(std::string& out, T v) {  // little-endian on every platform libtorch builds for here
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

size_t padded(size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

uint16_t half_bits(float x) {
  return c10::Half(x).x;  // IEEE binary16, round to nearest even (as GGML_FP32_TO_FP16)
}

}  // namespace

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return "f32";
    case GgmlType::kF16:
      return "f16";
    case GgmlType::kQ8_0:
      return "q8_0";
  }
  return "?";
}

std::string encode_f16(const float* x, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) put<uint16_t>(out, half_bits(x[i]));
  return out;
}

// quantize_row_q8_0_ref: d = amax / 127 (stored as half), q = roundf(x * (1 / d)) with the float d.
std::string encode_q8_0(const float* x, size_t n) {
  if (n % kQ8Block != 0)
    throw Error("q8_0: " + std::to_string(n) + " values is not a whole number of blocks");
  std::string out;
  out.reserve(n / kQ8Block * 34);
  for (size_t b = 0; b < n; b += kQ8Block) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQ8Block; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put<uint16_t>(out, half_bits(d));
    for (size_t j = 0; j < kQ8Block; ++j) put<int8_t>(out, static_cast<int8_t>(std::roundf(x[b + j] * id)));
  }
  return out;
}

std::vector<float> decode_q8_0(const std::string& bytes) {
  if (bytes.size() % 34 != 0)
    throw Error("q8_0: " + std::to_string(bytes.size()) + " bytes is not whole blocks");
  std::vector<float> out;
  for (size_t b = 0; b < bytes.size(); b += 34) {
    c10::Half d;
    std::memcpy(&d.x, bytes.data() + b, 2);
    for (size_t j = 0; j < kQ8Block; ++j)
      out.push_back(static_cast<float>(d) * static_cast<float>(static_cast<int8_t>(bytes[b + 2 + j])));
  }
  return out;
}

void GgufWriter::key(const std::string& k, int32_t type) {
  put_string(kv_, k);
  put<int32_t>(kv_, type);
  ++n_kv_;
}

void GgufWriter::add_u32(const std::string& k, uint32_t v) {
  key(k, kUint32);
  put<uint32_t>(kv_, v);
}

void GgufWriter::add_f32(const std::string& k, float v) {
  key(k, kFloat32);
  put<float>(kv_, v);
}

void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, kBool);
  put<uint8_t>(kv_, v ? 1 : 0);
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  key(k, kString);
  put_string(kv_, v);
}

void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, kArray);
  put<int32_t>(kv_, kString);
  put<uint64_t>(kv_, v.size());
  for (const auto& s : v) put_string(kv_, s);
}

void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, kArray);
  put<int32_t>(kv_, kInt32);
  put<uint64_t>(kv_, v.size());
  for (int32_t x : v) put<int32_t>(kv_, x);
}

void GgufWriter::add_tensor(const std::string& name, const at::Tensor& t, GgmlType type) {
  if (name.size() >= 64) throw Error("gguf: tensor name '" + name + "' is 64 characters or longer");
  const at::Tensor x = t.detach().to(at::kCPU, at::kFloat).contiguous();
  if (x.dim() < 1 || x.dim() > 4)
    throw Error("gguf: tensor '" + name + "' has " + std::to_string(x.dim()) + " dims");
  Tensor out{name, {}, type, {}};
  for (int64_t d = x.dim() - 1; d >= 0; --d) out.ne.push_back(x.size(d));
  const float* p = x.data_ptr<float>();
  const size_t n = static_cast<size_t>(x.numel());
  if (type == GgmlType::kF32) {
    out.bytes.assign(reinterpret_cast<const char*>(p), 4 * n);
  } else if (type == GgmlType::kF16) {
    out.bytes = encode_f16(p, n);
  } else {
    if (out.ne[0] % static_cast<int64_t>(kQ8Block) != 0)
      throw Error("gguf: tensor '" + name + "' has rows of " + std::to_string(out.ne[0]) +
                  " values; q8_0 needs a multiple of 32");
    out.bytes = encode_q8_0(p, n);
  }
  tensors_.push_back(std::move(out));
}

void GgufWriter::write(const std::string& path) const {
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<int64_t>(head, static_cast<int64_t>(tensors_.size()));
  put<int64_t>(head, n_kv_);
  head += kv_;
  uint64_t offset = 0;  // each tensor's bytes follow the previous one's, padded (the reader checks this)
  for (const auto& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(head, d);
    put<int32_t>(head, static_cast<int32_t>(t.type));
    put<uint64_t>(head, offset);
    offset += padded(t.bytes.size());
  }
  head.resize(padded(head.size()), '\0');

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write " + path + ": " + std::strerror(errno));
  auto write_all = [&](const char* p, size_t n) {
    while (n > 0) {
      const ssize_t k = ::write(fd, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return false;
      p += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  };
  const std::string zeros(kAlignment, '\0');
  bool ok = write_all(head.data(), head.size());
  for (size_t i = 0; ok && i < tensors_.size(); ++i) {
    const auto& b = tensors_[i].bytes;
    ok = write_all(b.data(), b.size()) && write_all(zeros.data(), padded(b.size()) - b.size());
  }
  const int err = ok ? 0 : errno;
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(err != 0 ? err : errno);
    std::remove(tmp.c_str());
    throw Error("cannot write " + path + ": " + why, "check the free space and the directory's permissions");
  }
}

}  // namespace handoff
