#pragma once
// Presets are JSON files under configs/ (quick, full, …): model shapes and training options per role.
#include <string>

#include <nlohmann/json.hpp>

namespace handoff::cli {

// NAME is a preset name (looked up in the source tree's configs/, then ./configs/) or a path to a JSON file.
nlohmann::json load_preset(const std::string& name);

}  // namespace handoff::cli
