#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace handoff {

namespace {

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "F32";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    default:
      throw Error(std::string("safetensors: cannot write dtype ") + c10::toString(t));
  }
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot stat " + path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(path + ": truncated safetensors file (" + std::to_string(size_) + " bytes, no header)");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error("cannot memory-map " + path + ": " + std::strerror(errno));
  }
  try {
    const auto* bytes = static_cast<const uint8_t*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
    if (header_len > size_ - 8 || header_len > (100u << 20))
      throw Error(path + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                  std::to_string(size_) + " (truncated or not a safetensors file)");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes + 8), header_len));
    } catch (const std::exception& e) {
      throw Error(path + ": header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw Error(path + ": header is not a JSON object");
    data_ = bytes + 8 + header_len;
    const uint64_t data_size = size_ - 8 - header_len;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it.value().is_object())
          for (auto m = it.value().begin(); m != it.value().end(); ++m)
            if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
        continue;
      }
      const auto& v = it.value();
      const std::string where = path + ": tensor " + it.key();
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw Error(where + ": entry needs dtype, shape and data_offsets");
      TensorEntry e;
      try {
        e.dtype = v["dtype"].get<std::string>();
        e.shape = v["shape"].get<std::vector<int64_t>>();
        auto off = v["data_offsets"].get<std::vector<uint64_t>>();
        if (off.size() != 2) throw Error(where + ": data_offsets must have two entries");
        e.begin = off[0];
        e.end = off[1];
      } catch (const nlohmann::json::exception& ex) {
        throw Error(where + ": malformed entry: " + ex.what());
      }
      const size_t es = dtype_size(e.dtype);
      if (es == 0) throw Error(where + ": unsupported dtype " + e.dtype);
      uint64_t numel = 1;
      for (auto d : e.shape) {
        if (d < 0) throw Error(where + ": negative dimension");
        // A crafted shape must not wrap around to a byte count that happens to match the offsets.
        if (d > 0 && numel > (uint64_t{1} << 62) / static_cast<uint64_t>(d))
          throw Error(where + ": shape has more elements than any file can hold");
        numel *= static_cast<uint64_t>(d);
      }
      if (e.end < e.begin || e.end > data_size)
        throw Error(where + ": data offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    ") lie outside the data section of " + std::to_string(data_size) +
                    " bytes (truncated file?)");
      if (e.end - e.begin != numel * es)
        throw Error(where + ": " + std::to_string(e.end - e.begin) + " bytes do not match shape and dtype " +
                    e.dtype);
      entries_[it.key()] = e;
    }
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(path_ + ": tensor " + name + " missing");
  const auto& e = it->second;
  at::ScalarType st;
  if (e.dtype == "F32") {
    st = at::kFloat;
  } else if (e.dtype == "F16") {
    st = at::kHalf;
  } else if (e.dtype == "BF16") {
    st = at::kBFloat16;
  } else {
    throw Error(path_ + ": tensor " + name + " has dtype " + e.dtype + "; weights must be F32, F16 or BF16");
  }
  // from_blob needs a non-const pointer; the mapping is private and callers only read (then copy).
  void* ptr = const_cast<uint8_t*>(data_ + e.begin);
  return torch::from_blob(ptr, e.shape, at::TensorOptions().dtype(st));
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  return view(name).to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
}

void SafetensorsFile::copy_into(const std::string& name, at::Tensor& dst) const {
  auto src = view(name);
  if (src.sizes() != dst.sizes()) {
    std::ostringstream os;
    os << path_ << ": tensor " << name << " has shape " << src.sizes() << " but the destination has "
       << dst.sizes();
    throw Error(os.str());
  }
  dst.copy_(src);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(at::kCPU).contiguous();
    const uint64_t n = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
    contiguous.push_back(c);
  }
  std::string head = header.dump();
  while ((head.size() + 8) % 8 != 0) head.push_back(' ');  // align the data section to 8 bytes
  std::string out;
  out.reserve(8 + head.size() + offset);
  uint64_t len = head.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += head;
  for (const auto& c : contiguous)
    out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  write_file_atomic(path, out);
}

}  // namespace handoff
