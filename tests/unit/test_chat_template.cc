// Chat rendering per template family, against strings written by hand from
// the families' Jinja templates.
#include <algorithm>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace rocmforge {
namespace {

constexpr char kChatMlTemplate[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
    "}}{% endif %}";
constexpr char kQwen2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr char kLlama3Template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ "
    "content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr char kLlama2Template[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 "
    "and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% "
    "endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' "
    "[/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
    "eos_token }}{% endif %}{% endfor %}";
constexpr char kMistralTemplate[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% endif %}{% endfor %}";

Vocab MakeVocab(std::string chat_template, std::vector<std::string> extra_tokens = {}) {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "a"};
  for (auto& t : extra_tokens) v.tokens.push_back(t);
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.chat_template = std::move(chat_template);
  return v;
}

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."},
    {"user", "Hi there "},
    {"assistant", " Hello! "},
    {"user", "Who are you?"},
};

TEST(ChatTemplate, ChatMl) {
  const Vocab v = MakeVocab(kChatMlTemplate);
  auto out = RenderChat(v, kConversation, /*add_generation_prompt=*/true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi there <|im_end|>\n"
            "<|im_start|>assistant\n Hello! <|im_end|>\n"
            "<|im_start|>user\nWho are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  auto no_prompt = RenderChat(v, {{"user", "x"}}, false);
  ASSERT_TRUE(no_prompt.ok());
  EXPECT_EQ(*no_prompt, "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, ChatMlDefaultSystemOfQwen2Template) {
  const Vocab v = MakeVocab(kQwen2Template);
  auto out = RenderChat(v, {{"user", "Hi"}}, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  auto with_system = RenderChat(v, {{"system", "S"}, {"user", "Hi"}}, false);
  ASSERT_TRUE(with_system.ok());
  EXPECT_EQ(*with_system, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3TrimsContentAndLeavesBosToEncode) {
  const Vocab v = MakeVocab(kLlama3Template);
  auto out = RenderChat(v, kConversation, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2PutsSystemIntoFirstUserTurn) {
  const Vocab v = MakeVocab(kLlama2Template);
  auto out = RenderChat(v, kConversation, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
            "<s>[INST] Who are you? [/INST]");
  auto no_system = RenderChat(v, {{"user", " Q "}}, true);
  ASSERT_TRUE(no_system.ok());
  EXPECT_EQ(*no_system, "[INST] Q [/INST]");
}

TEST(ChatTemplate, MistralPrependsSystemToFirstUserTurn) {
  const Vocab v = MakeVocab(kMistralTemplate);
  auto out = RenderChat(v, kConversation, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "[INST] Be brief.\n\nHi there  [/INST] Hello! </s>[INST] Who are you? [/INST]");
  auto plain = RenderChat(v, {{"user", "Q"}, {"assistant", "A"}, {"user", "R"}}, true);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "[INST] Q [/INST]A</s>[INST] R [/INST]");
}

TEST(ChatTemplate, InstFormatsRejectRolesOutOfOrder) {
  for (const char* tmpl : {kLlama2Template, kMistralTemplate}) {
    const Vocab v = MakeVocab(tmpl);
    EXPECT_EQ(RenderChat(v, {{"assistant", "A"}}, true).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(RenderChat(v, {{"user", "A"}, {"user", "B"}}, true).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(RenderChat(v, {{"user", "A"}, {"tool", "B"}}, true).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(ChatTemplate, FallsBackToChatMlTokensElseError) {
  const Vocab with_tokens = MakeVocab("", {"<|im_start|>", "<|im_end|>"});
  auto out = RenderChat(with_tokens, {{"user", "x"}}, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");

  const Vocab bare = MakeVocab("");
  auto err = RenderChat(bare, {{"user", "x"}}, true);
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(err.status().message().find("model has no chat template"), std::string::npos);

  const Vocab unknown = MakeVocab("{{ '<start_of_turn>' }}");
  EXPECT_EQ(RenderChat(unknown, {{"user", "x"}}, true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, DetectsFamilies) {
  EXPECT_EQ(*DetectChatFormat(MakeVocab(kChatMlTemplate)), ChatFormat::kChatML);
  EXPECT_EQ(*DetectChatFormat(MakeVocab(kLlama3Template)), ChatFormat::kLlama3);
  EXPECT_EQ(*DetectChatFormat(MakeVocab(kLlama2Template)), ChatFormat::kLlama2);
  EXPECT_EQ(*DetectChatFormat(MakeVocab(kMistralTemplate)), ChatFormat::kMistral);
}

// The bundled qwen2 model's template is ChatML; rendered text must tokenize
// with the markers as single special tokens.
TEST(ChatTemplate, BundledQwen2ModelRendersAndTokenizes) {
  auto file = gguf::GgufFile::Open(std::string(ROCMFORGE_MODELS_DIR) + "/tiny-qwen2-bpe-f16.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto text = RenderChat((*tok)->vocab(), {{"user", "Hello"}}, true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  const auto ids = (*tok)->Encode(*text, /*add_bos=*/true, /*parse_special=*/true);
  const TokenId start = (*tok)->Find("<|im_start|>"), end = (*tok)->Find("<|im_end|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 1);
  EXPECT_EQ(ids.front(), start);

  // The llama test model has no template and no ChatML tokens.
  auto spm_file = gguf::GgufFile::Open(std::string(ROCMFORGE_MODELS_DIR) + "/tiny-llama-spm-f16.gguf");
  ASSERT_TRUE(spm_file.ok()) << spm_file.status();
  auto spm = Tokenizer::FromGguf(**spm_file);
  ASSERT_TRUE(spm.ok()) << spm.status();
  EXPECT_EQ(RenderChat((*spm)->vocab(), {{"user", "Hello"}}, true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rocmforge
