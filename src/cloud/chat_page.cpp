#include "cloud/chat_page.h"

namespace handoff {

const std::string& chat_page_html() {
  // chat_page.inc is the page as one raw string literal, written by CMakeLists.txt at configure time.
  static const std::string page =
#include "chat_page.inc"
      ;
  return page;
}

}  // namespace handoff
