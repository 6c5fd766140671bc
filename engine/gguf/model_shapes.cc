// Named shapes, their tensor lists, metadata and synthetic tokenizers.
#include "engine/gguf/model_shapes.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rocmforge::gguf {
namespace {

// llama.cpp token types (llama_token_type).
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;

constexpr int kMaxMerges = 400;

ModelShape Shape(std::string name, std::string arch, std::string description, int64_t dim, int64_t layers,
                 int64_t heads, int64_t kv_heads, int64_t ffn, int64_t vocab, int64_t context, float rope_base,
                 float rms_eps, bool qkv_bias, bool tied, VocabKind kind, std::string pre) {
  ModelShape s;
  s.name = std::move(name);
  s.arch = std::move(arch);
  s.description = std::move(description);
  s.dim = dim;
  s.n_layers = layers;
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.ffn = ffn;
  s.vocab = vocab;
  s.context = context;
  s.rope_base = rope_base;
  s.rms_eps = rms_eps;
  s.qkv_bias = qkv_bias;
  s.tied_output = tied;
  s.vocab_kind = kind;
  s.tokenizer_pre = std::move(pre);
  return s;
}

// Training text for the synthetic merges: plain English, so that the learned
// pieces ("Ġthe", "▁in", ...) look like those of real vocabularies.
constexpr const char* kTrainingText =
    "The quick brown fox jumps over the lazy dog. A language model reads a sequence of tokens and "
    "predicts the next one. It does this again and again, one token at a time, until the answer is "
    "complete or the model decides to stop. Each token is a small piece of text: a whole word, a part "
    "of a word, or a single character. The tokenizer turns the input text into these pieces, and the "
    "model turns the pieces back into text when it writes the answer. In the morning the people of "
    "the town went down to the river to see the boats come in with the fish they had caught in the "
    "night. The children ran along the water and called to their fathers, and the women stood on the "
    "bank and talked of the weather and the price of bread. There was a time when the world was young "
    "and the mountains were higher than they are now, and the rivers ran faster to the sea. The old "
    "man told the story of the king who lived in the castle on the hill, and of the queen who loved "
    "the garden more than the gold in the treasury. When the winter came the snow covered the fields "
    "and the roads, and nobody could travel to the city for many weeks. They waited for the spring, "
    "and when it came they were happy again. This is the way of the world: things come and go, and "
    "what is lost in one season is found in another. The engine that runs the model must be fast, and "
    "it must also be correct; a fast answer that is wrong is worth nothing at all. So the engineers "
    "test every part of it, from the reader of the model file to the last step that picks the next "
    "word. They measure the speed of the machine in tokens per second and compare it with other "
    "programs that do the same work. If the numbers are good, they write them down; if they are not, "
    "they look for the reason and try again. Nothing is finished until it has been tested, and "
    "nothing has been tested until someone has tried to break it. For the people who use it, none of "
    "this should matter: they ask a question and they get an answer that makes sense.";

// Splits the training text into words the way both tokenizer kinds see them:
// runs of letters, of digits, or of other non-space characters, each
// remembering whether a space came before it.
std::vector<std::pair<std::string, bool>> SplitWords(const std::string& text) {
  std::vector<std::pair<std::string, bool>> words;
  size_t i = 0;
  bool space = false;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ') {
      space = true;
      ++i;
      continue;
    }
    auto cls = [](unsigned char ch) { return std::isalpha(ch) ? 0 : std::isdigit(ch) ? 1 : 2; };
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && cls(static_cast<unsigned char>(text[j])) == cls(c)) ++j;
    words.emplace_back(text.substr(i, j - i), space);
    space = false;
    i = j;
  }
  return words;
}

// UTF-8 encoding of one code point.
std::string Utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others to
// U+0100 upwards. Returned in GPT-2's vocabulary order (index = token id).
std::vector<std::pair<uint8_t, std::string>> Gpt2ByteTokens() {
  std::vector<std::pair<uint8_t, std::string>> out;
  std::set<int> direct;
  for (int b = '!'; b <= '~'; ++b) direct.insert(b);
  for (int b = 0xA1; b <= 0xAC; ++b) direct.insert(b);
  for (int b = 0xAE; b <= 0xFF; ++b) direct.insert(b);
  for (int b : direct) out.emplace_back(static_cast<uint8_t>(b), Utf8(static_cast<uint32_t>(b)));
  uint32_t n = 0;
  for (int b = 0; b < 256; ++b) {
    if (!direct.count(b)) out.emplace_back(static_cast<uint8_t>(b), Utf8(256 + n++));
  }
  return out;
}

struct Word {
  std::vector<std::string> syms;
  int count = 0;
};

// Byte-pair training: repeatedly merges the most frequent adjacent pair (ties
// broken by the pair's spelling, so the result is deterministic). Once no
// pair occurs twice it goes on with pairs seen once (joining whole words),
// so the short text still yields a few hundred merges. Stops at max_merges or
// when every word is a single symbol.
std::vector<std::pair<std::string, std::string>> TrainMerges(std::vector<Word> words, int max_merges) {
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int>(merges.size()) < max_merges) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.syms.size(); ++i) counts[{w.syms[i], w.syms[i + 1]}] += w.count;
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int best_count = 0;
    for (const auto& [pair, count] : counts) {
      if (count > best_count) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr) break;
    const auto chosen = *best;
    merges.push_back(chosen);
    for (Word& w : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < w.syms.size(); ++i) {
        if (i + 1 < w.syms.size() && w.syms[i] == chosen.first && w.syms[i + 1] == chosen.second) {
          out.push_back(chosen.first + chosen.second);
          ++i;
        } else {
          out.push_back(w.syms[i]);
        }
      }
      w.syms = std::move(out);
    }
  }
  return merges;
}

// Splits a UTF-8 string into its characters.
std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::vector<Word> CountWords(const std::vector<std::string>& spelled) {
  std::map<std::string, int> counts;
  for (const std::string& w : spelled) ++counts[w];
  std::vector<Word> words;
  for (const auto& [w, c] : counts) words.push_back({Chars(w), c});
  return words;
}

// Pads the vocabulary to `vocab` entries with control tokens prefix + N + suffix.
void FillTo(SyntheticVocab* v, int64_t vocab, const char* prefix, const char* suffix, float score) {
  for (int64_t n = 0; static_cast<int64_t>(v->tokens.size()) < vocab; ++n) {
    v->tokens.push_back(absl::StrCat(prefix, n, suffix));
    v->token_types.push_back(kTypeControl);
    if (!v->scores.empty()) v->scores.push_back(score);
  }
}

SyntheticVocab MakeGpt2Vocab(const ModelShape& shape) {
  SyntheticVocab v;
  const auto bytes = Gpt2ByteTokens();
  std::string byte_to_unicode[256];
  for (const auto& [b, s] : bytes) byte_to_unicode[b] = s;
  for (const auto& bt : bytes) {
    v.tokens.push_back(bt.second);
    v.token_types.push_back(kTypeNormal);
  }
  const bool llama3 = shape.tokenizer_pre == "llama-bpe";
  const std::vector<std::string> specials =
      llama3 ? std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>"}
             : std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

  std::vector<std::string> spelled;
  for (const auto& [word, space] : SplitWords(kTrainingText)) {
    std::string s = space ? byte_to_unicode[0x20] : "";
    for (unsigned char c : word) s += byte_to_unicode[c];
    spelled.push_back(s);
  }
  const int64_t room = shape.vocab - static_cast<int64_t>(v.tokens.size() + specials.size());
  const int max_merges = static_cast<int>(std::clamp<int64_t>(room, 0, kMaxMerges));
  // Two merges can spell the same token ("th"+"e", "t"+"he"); it is listed once.
  std::set<std::string> seen;
  for (const auto& [a, b] : TrainMerges(CountWords(spelled), max_merges)) {
    v.merges.push_back(a + " " + b);
    if (!seen.insert(a + b).second) continue;
    v.tokens.push_back(a + b);
    v.token_types.push_back(kTypeNormal);
  }
  for (const std::string& s : specials) {
    v.tokens.push_back(s);
    v.token_types.push_back(kTypeControl);
  }
  const int32_t first_special = static_cast<int32_t>(v.tokens.size() - specials.size());
  v.bos_id = first_special;                  // <|begin_of_text|> or <|endoftext|>
  v.eos_id = llama3 ? first_special + 1 : first_special;
  v.add_bos = llama3;
  FillTo(&v, shape.vocab, "<|reserved_", "|>", 0.0f);
  return v;
}

SyntheticVocab MakeSpmVocab(const ModelShape& shape) {
  SyntheticVocab v;
  const std::string kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space
  auto add = [&](std::string piece, float score, int32_t type) {
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.token_types.push_back(type);
  };
  add("<unk>", 0.0f, kTypeUnknown);
  add("<s>", 0.0f, kTypeControl);
  add("</s>", 0.0f, kTypeControl);
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(absl::StrCat("<0x", std::string(1, kHex[b >> 4]), std::string(1, kHex[b & 15]), ">"), 0.0f, kTypeByte);

  // Single characters: the space marker, letters, digits and the punctuation
  // of the training text. They get the lowest scores, as in real SPM vocabs.
  std::vector<std::string> chars = {kSpace};
  for (char c = 'a'; c <= 'z'; ++c) chars.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) chars.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) chars.emplace_back(1, c);
  for (const char* p = ".,;:!?'\"()-"; *p; ++p) chars.emplace_back(1, *p);

  std::vector<std::string> spelled;
  for (const auto& [word, space] : SplitWords(kTrainingText)) spelled.push_back((space ? kSpace : "") + word);
  const int64_t room = shape.vocab - static_cast<int64_t>(v.tokens.size() + chars.size());
  const int max_merges = static_cast<int>(std::clamp<int64_t>(room, 0, kMaxMerges));
  int rank = 0;
  std::set<std::string> seen;
  for (const auto& [a, b] : TrainMerges(CountWords(spelled), max_merges)) {
    if (seen.insert(a + b).second) add(a + b, -static_cast<float>(rank++), kTypeNormal);
  }
  for (const std::string& c : chars) add(c, -static_cast<float>(rank++), kTypeNormal);
  FillTo(&v, shape.vocab, "<unused_", ">", -1e9f);
  return v;
}

}  // namespace

const std::vector<ModelShape>& NamedShapes() {
  static const std::vector<ModelShape> shapes = {
      Shape("llama3-8b", "llama", "Meta-Llama-3-8B", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f,
            false, false, VocabKind::kGpt2, "llama-bpe"),
      Shape("llama2-7b", "llama", "Llama-2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f, false,
            false, VocabKind::kSpm, ""),
      Shape("mistral-7b", "llama", "Mistral-7B-v0.1", 4096, 32, 32, 8, 14336, 32000, 32768, 1000000.0f, 1e-5f,
            false, false, VocabKind::kSpm, ""),
      Shape("qwen2-7b", "qwen2", "Qwen2-7B", 3584, 28, 28, 4, 18944, 152064, 32768, 1000000.0f, 1e-6f, true,
            false, VocabKind::kGpt2, "qwen2"),
      Shape("tiny-llama", "llama", "tiny-llama", 256, 2, 4, 2, 768, 512, 2048, 10000.0f, 1e-5f, false, false,
            VocabKind::kSpm, ""),
      Shape("tiny-qwen2", "qwen2", "tiny-qwen2", 256, 2, 4, 2, 512, 512, 2048, 1000000.0f, 1e-6f, true, true,
            VocabKind::kGpt2, "qwen2"),
  };
  return shapes;
}

std::string ShapeNames() {
  std::string out;
  for (const ModelShape& s : NamedShapes()) absl::StrAppend(&out, out.empty() ? "" : ", ", s.name);
  return out;
}

absl::StatusOr<ModelShape> FindShape(std::string_view name) {
  for (const ModelShape& s : NamedShapes()) {
    if (s.name == name) return s;
  }
  return absl::NotFoundError(absl::StrCat("unknown model shape '", std::string(name), "' (known: ", ShapeNames(), ")"));
}

std::vector<TensorSpec> TensorsOf(const ModelShape& s) {
  const int64_t q_dim = s.n_heads * s.head_dim();
  const int64_t kv_dim = s.n_kv_heads * s.head_dim();
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", {s.dim, s.vocab}, false});
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    t.push_back({p + "attn_norm.weight", {s.dim}, true});
    t.push_back({p + "attn_q.weight", {s.dim, q_dim}, false});
    t.push_back({p + "attn_k.weight", {s.dim, kv_dim}, false});
    t.push_back({p + "attn_v.weight", {s.dim, kv_dim}, false});
    if (s.qkv_bias) {
      t.push_back({p + "attn_q.bias", {q_dim}, false});
      t.push_back({p + "attn_k.bias", {kv_dim}, false});
      t.push_back({p + "attn_v.bias", {kv_dim}, false});
    }
    t.push_back({p + "attn_output.weight", {q_dim, s.dim}, false});
    t.push_back({p + "ffn_norm.weight", {s.dim}, true});
    t.push_back({p + "ffn_gate.weight", {s.dim, s.ffn}, false});
    t.push_back({p + "ffn_up.weight", {s.dim, s.ffn}, false});
    t.push_back({p + "ffn_down.weight", {s.ffn, s.dim}, false});
  }
  t.push_back({"output_norm.weight", {s.dim}, true});
  if (!s.tied_output) t.push_back({"output.weight", {s.dim, s.vocab}, false});
  return t;
}

SyntheticVocab MakeVocab(const ModelShape& shape) {
  return shape.vocab_kind == VocabKind::kGpt2 ? MakeGpt2Vocab(shape) : MakeSpmVocab(shape);
}

void SetShapeMetadata(const ModelShape& s, FileType ftype, GgufWriter* w) {
  const std::string& a = s.arch;
  w->SetString("general.architecture", a);
  w->SetString("general.name", absl::StrCat(s.description, " (random weights)"));
  w->SetU32("general.file_type", static_cast<uint32_t>(ftype));
  w->SetU32("general.quantization_version", 2);
  w->SetU32(a + ".context_length", static_cast<uint32_t>(s.context));
  w->SetU32(a + ".embedding_length", static_cast<uint32_t>(s.dim));
  w->SetU32(a + ".block_count", static_cast<uint32_t>(s.n_layers));
  w->SetU32(a + ".feed_forward_length", static_cast<uint32_t>(s.ffn));
  w->SetU32(a + ".attention.head_count", static_cast<uint32_t>(s.n_heads));
  w->SetU32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
  w->SetF32(a + ".rope.freq_base", s.rope_base);
  w->SetU32(a + ".rope.dimension_count", static_cast<uint32_t>(s.head_dim()));
  w->SetF32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w->SetU32(a + ".vocab_size", static_cast<uint32_t>(s.vocab));

  const SyntheticVocab v = MakeVocab(s);
  const bool gpt2 = s.vocab_kind == VocabKind::kGpt2;
  w->SetString("tokenizer.ggml.model", gpt2 ? "gpt2" : "llama");
  if (gpt2) w->SetString("tokenizer.ggml.pre", s.tokenizer_pre);
  w->SetStringArray("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w->SetF32Array("tokenizer.ggml.scores", v.scores);
  w->SetI32Array("tokenizer.ggml.token_type", v.token_types);
  if (gpt2) w->SetStringArray("tokenizer.ggml.merges", v.merges);
  w->SetU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  w->SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  if (v.unk_id >= 0) w->SetU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  w->SetBool("tokenizer.ggml.add_bos_token", v.add_bos);
  w->SetBool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace rocmforge::gguf
