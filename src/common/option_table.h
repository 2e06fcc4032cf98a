#pragma once
// One table of a struct's options that feeds its JSON form (presets, trainer_state.json, `--options` files),
// its CLI flags and its validation, so an option is spelled once. Each field names: its JSON key, its CLI
// flag, its help text, where it lives in the struct, and the check of its value.
//
// JSON: to_json writes every field marked `in_json`; from_json starts from the struct's defaults, sets each
// key present, and rejects unknown keys and wrong types with the source's name. CLI: bind_cli registers the
// flags on a CLI11 command and returns a function that, after parsing, overrides only the flags the user gave
// (the defaults come from a preset read after parsing). validate runs every field's check.
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace handoff {

template <class T>
class OptionTable {
 public:
  // `what` names the options in errors ("RL option", "SFT option").
  explicit OptionTable(std::string what) : what_(std::move(what)) {}

  struct Field {
    std::string key, flag, help;
    bool in_json = true;     // written by to_json and read by from_json
    bool read_only = false;  // read by from_json but not written (older files carry it)
    std::function<nlohmann::json(const T&)> get;
    std::function<void(T&, const nlohmann::json&)> set;
    std::function<std::function<void(T&)>(CLI::App&)> bind;  // null: no CLI flag
    std::function<void(const T&)> check;                     // throws Error; may be null
  };

  // A field at `ref(o)`; `check(value)` returns "" when valid, else what is wrong (the message names the
  // key). An empty `flag` keeps the field off the CLI; an empty `key` keeps it out of JSON.
  template <class V, class Ref>
  OptionTable& add(std::string key, std::string flag, std::string help, Ref ref,
                   std::function<std::string(const V&)> check = {}) {
    Field f;
    f.key = key;
    f.flag = flag;
    f.help = help;
    f.in_json = !key.empty();
    f.get = [ref](const T& o) { return nlohmann::json(ref(const_cast<T&>(o))); };
    f.set = [ref](T& o, const nlohmann::json& j) { ref(o) = j.get<V>(); };
    if (!flag.empty()) f.bind = make_binder<V>(flag, help, ref);
    if (check) {
      const std::string name = key.empty() ? flag : key;
      f.check = [ref, check, name](const T& o) {
        const std::string why = check(ref(const_cast<T&>(o)));
        if (!why.empty()) throw Error(name + ": " + why);
      };
    }
    fields_.push_back(std::move(f));
    return *this;
  }
  // The field added last is read from JSON but never written (a key that files may carry, e.g. a preset's
  // compute device, which is not part of a run's recorded options).
  OptionTable& not_written() {
    fields_.back().in_json = false;
    fields_.back().read_only = true;
    return *this;
  }

  nlohmann::json to_json(const T& o) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : fields_)
      if (f.in_json) j[f.key] = f.get(o);
    return j;
  }

  T from_json(const nlohmann::json& j, const std::string& source, T o = T{}) const {
    if (!j.is_object()) throw Error(source + ": " + what_ + "s must be a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const Field* f = find_key(it.key());
      if (!f) throw Error(source + ": unknown " + what_ + " '" + it.key() + "'");
      if (!f->set) continue;
      try {
        f->set(o, it.value());
      } catch (const nlohmann::json::exception& e) {
        throw Error(source + ": " + what_ + " '" + it.key() + "' has the wrong type: " + e.what());
      }
    }
    return o;
  }

  void validate(const T& o) const {
    for (const auto& f : fields_)
      if (f.check) f.check(o);
  }

  // Registers every flagged field on `cmd`; the returned function applies the flags that were given.
  std::function<void(T&)> bind_cli(CLI::App& cmd) const {
    std::vector<std::function<void(T&)>> apply;
    for (const auto& f : fields_)
      if (f.bind) apply.push_back(f.bind(cmd));
    return [apply](T& o) {
      for (const auto& a : apply) a(o);
    };
  }

  const std::vector<Field>& fields() const { return fields_; }

 private:
  const Field* find_key(const std::string& key) const {
    for (const auto& f : fields_)
      if ((f.in_json || f.read_only) && f.key == key) return &f;
    return nullptr;
  }

  template <class V, class Ref>
  static std::function<std::function<void(T&)>(CLI::App&)> make_binder(const std::string& flag,
                                                                       const std::string& help, Ref ref) {
    return [flag, help, ref](CLI::App& cmd) -> std::function<void(T&)> {
      auto value = std::make_shared<V>();
      CLI::Option* opt;
      if constexpr (std::is_same_v<V, bool>) {
        opt = cmd.add_flag(flag, *value, help);
      } else {
        opt = cmd.add_option(flag, *value, help);
        if constexpr (!std::is_arithmetic_v<V> && !std::is_same_v<V, std::string>) opt->delimiter(',');
      }
      return [opt, value, ref](T& o) {
        if (opt->count() > 0) ref(o) = *value;
      };
    };
  }

  std::string what_;
  std::vector<Field> fields_;
};

// Checks for OptionTable::add.
namespace option_checks {
template <class V>
std::string to_str(const V& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
template <class V>
std::function<std::string(const V&)> positive() {
  return
      [](const V& v) { return v > 0 && v == v ? std::string() : "must be positive (got " + to_str(v) + ")"; };
}
template <class V>
std::function<std::string(const V&)> at_least(V lo) {
  return [lo](const V& v) {
    return v >= lo ? std::string() : "must be at least " + to_str(lo) + " (got " + to_str(v) + ")";
  };
}
template <class V>
std::function<std::string(const V&)> in_range(V lo, V hi, bool lo_open = false) {
  return [lo, hi, lo_open](const V& v) {
    const bool ok = (lo_open ? v > lo : v >= lo) && v <= hi;
    return ok ? std::string()
              : "must be in " + std::string(lo_open ? "(" : "[") + to_str(lo) + ", " + to_str(hi) +
                    "] (got " + to_str(v) + ")";
  };
}
}  // namespace option_checks

}  // namespace handoff
