#pragma once
// The chat page served at GET / (issue 20): src/cloud/web/chat.html, compiled into the binary by CMake so
// `handoff serve` needs no files beside it.
#include <string>

namespace handoff {

const std::string& chat_page_html();

}  // namespace handoff
