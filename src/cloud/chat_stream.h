#pragma once
// A streamed chat completion (`"stream": true`) read as its server-sent events arrive, in OpenAI's chunk
// format: choices[0].delta.content per chunk, finish_reason on the last one, usage on a final chunk when
// stream_options.include_usage is asked for, then `data: [DONE]`. It can end a reply early: a marker that is
// not a stop token on the server (the device's <handoff> on llama-server) does not stop its generation, so
// once the text holds one and the server goes on generating, feed() returns false and the caller closes the
// connection — llama-server and vLLM stop a request whose client has gone.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cloud/openai_types.h"

namespace handoff {

// Reads a reply's body as it arrives (CloudClient::chat_streamed): reset() before each attempt; feed()
// returns false to end the reply there (the connection is closed).
struct BodySink {
  virtual ~BodySink() = default;
  virtual void reset() = 0;
  virtual bool feed(const char* data, size_t n) = 0;
};

class ChatStreamReader : public BodySink {
 public:
  // `stop_at`: strings that end the reply once the server goes on past them (they stay in the text).
  // A line longer than `max_line_bytes` is garbage (an error, not an allocation).
  explicit ChatStreamReader(std::vector<std::string> stop_at, size_t max_line_bytes = 1 << 20);
  void reset() override;
  bool feed(const char* data, size_t n) override;

  // The reply so far: content, finish_reason ("stop" when it ended at a marker), model and the server's
  // usage when it was sent (all zero otherwise).
  const ChatResponse& response() const { return r_; }
  int64_t content_chunks() const { return chunks_; }   // chunks that carried text, up to a marker
  bool events() const { return events_ > 0; }          // any `data:` event was read
  bool holds_marker() const { return marker_; }        // the text holds one of stop_at
  bool cut_after_marker() const { return stopped_; }   // and the server went on past it
  bool done() const { return done_; }                  // `data: [DONE]` was read
  const std::string& error() const { return error_; }  // garbage or an error event; "" when none
  bool server_error() const { return server_error_; }  // the error is one the server sent

 private:
  bool line(const std::string& l);  // one line of the stream; false ends it
  bool event(const std::string& data);
  std::vector<std::string> stop_at_;
  size_t max_line_;
  std::string pending_;  // an incomplete line
  ChatResponse r_;
  int64_t chunks_ = 0, events_ = 0;
  bool marker_ = false, stopped_ = false, done_ = false, server_error_ = false;
  std::string error_, event_name_;  // event_name_: the current event's `event:` field
};

}  // namespace handoff
