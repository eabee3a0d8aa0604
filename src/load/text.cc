#include "load/text.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "sim/rng.h"

namespace tokenpool::load {
namespace {

// 256 KiB per kind: larger than most prompts (64K tokens of prose is ~290 KB and wraps once),
// small enough to build in a few milliseconds.
constexpr size_t kCorpusBytes = 256 * 1024;

// Chat template framing the mock and vLLM count for one user message (Llama 3): 5 + 5.
constexpr int64_t kFramingTokens = 10;

constexpr std::array<const char*, 96> kWords = {
    "the",         "of",          "and",          "to",          "in",          "is",
    "that",        "for",         "it",           "as",          "was",         "with",
    "be",          "by",          "on",           "not",         "this",        "are",
    "from",        "at",          "which",        "have",        "an",          "their",
    "system",      "request",     "model",        "language",    "between",     "because",
    "information", "development", "important",    "government",  "understand",  "particular",
    "experience",  "performance", "relationship", "community",   "environment", "available",
    "significant", "management",  "increase",     "following",   "different",   "especially",
    "research",    "economic",    "process",      "question",    "knowledge",   "approximately",
    "customer",    "analysis",    "results",      "however",     "therefore",   "structure",
    "individual",  "production",  "committee",    "described",   "throughout",  "response",
    "evidence",    "historical",  "national",     "education",   "technology",  "financial",
    "position",    "including",   "several",      "measurement", "laboratory",  "consider",
    "building",    "morning",     "water",        "simple",      "people",      "small",
    "river",       "mountain",    "journey",      "summer",      "village",     "library",
    "window",      "garden",      "children",     "quickly",     "although",    "everything"};

constexpr std::array<const char*, 40> kIdentifiers = {
    "value",  "result",  "index",    "buffer",   "count",   "total",   "request",  "response",
    "config", "handler", "items",    "offset",   "length",  "parser",  "token",    "cache",
    "node",   "queue",   "user_id",  "payload",  "timeout", "retries", "session",  "header",
    "entry",  "stream",  "limit",    "matrix",   "weights", "score",   "batch",    "context",
    "logger", "metrics", "deadline", "capacity", "tenant",  "pool",    "estimate", "budget"};

constexpr std::array<const char*, 24> kFunctions = {
    "parse_request", "compute_total", "load_config",  "update_cache",  "handle_error",
    "read_batch",    "merge_results", "validate",     "normalize",     "find_index",
    "encode",        "decode",        "apply_limits", "schedule_next", "flush_buffer",
    "record_metric", "build_index",   "split_tokens", "retry_request", "open_session",
    "close_stream",  "estimate_cost", "rebalance",    "drain_queue"};

constexpr std::array<const char*, 28> kPhrases = {
    // Spanish, French, German, Italian, Portuguese (accented Latin)
    "El sistema procesa las solicitudes según la prioridad de cada cliente. ",
    "La información está disponible en la biblioteca municipal desde el miércoles. ",
    "Le modèle répond aux requêtes en fonction de la capacité disponible. ",
    "Nous avons étudié les résultats de l'expérience pendant toute l'année. ",
    "Die Anfrage wird über die Warteschlange an den nächsten freien Server geleitet. ",
    "Überprüfen Sie die Größe des Speichers, bevor Sie die Berechnung starten. ",
    "Il modello elabora le richieste in ordine di arrivo e di priorità. ",
    "A comunicação entre os serviços é feita através de mensagens assíncronas. ",
    // Russian, Ukrainian (Cyrillic)
    "Система обрабатывает запросы в порядке их поступления и приоритета. ",
    "Мы измерили задержку первого токена при разной нагрузке на сервер. ",
    "Результаты эксперимента показывают устойчивую работу под нагрузкой. ",
    "Ця модель відповідає на запитання користувачів українською мовою. ",
    // Greek
    "Το σύστημα επεξεργάζεται τα αιτήματα με βάση την προτεραιότητα. ",
    // Chinese
    "系统根据每个租户的配额处理请求，并在高峰期间保持稳定的延迟。",
    "我们测量了不同负载下首个令牌的延迟和每个输出令牌的时间。",
    "这个模型可以回答关于历史、科学和技术的问题。",
    // Japanese
    "このシステムは各テナントの割り当てに従ってリクエストを処理します。",
    "サーバーの負荷が高いときでも、応答時間は安定しています。",
    "東京の天気は明日から晴れる予報です。",
    // Korean
    "이 시스템은 각 사용자의 요청을 우선순위에 따라 처리합니다. ",
    "서버의 부하가 높을 때에도 응답 시간이 안정적으로 유지됩니다. ",
    // Arabic, Hebrew
    "يقوم النظام بمعالجة الطلبات وفقا لأولوية كل مستخدم. ",
    "המערכת מעבדת את הבקשות לפי סדר ההגעה והעדיפות. ",
    // Hindi, Thai, Vietnamese, Turkish, Polish
    "यह प्रणाली प्रत्येक उपयोगकर्ता के अनुरोधों को प्राथमिकता के अनुसार संसाधित करती है। ",
    "ระบบจะประมวลผลคำขอตามลำดับความสำคัญของผู้ใช้แต่ละราย ",
    "Hệ thống xử lý các yêu cầu theo thứ tự ưu tiên của từng người dùng. ",
    "Sistem, her kullanıcının isteklerini öncelik sırasına göre işler. ",
    "System przetwarza żądania według priorytetu każdego użytkownika. "};

template <size_t N>
const char* Pick(const std::array<const char*, N>& a, sim::Rng& rng) {
  return a[rng.Below(N)];
}

void Prose(sim::Rng& rng, std::string* s) {
  while (s->size() < kCorpusBytes) {
    const int sentences = 3 + static_cast<int>(rng.Below(5));
    for (int i = 0; i < sentences; ++i) {
      const int words = 8 + static_cast<int>(rng.Below(14));
      for (int w = 0; w < words; ++w) {
        std::string word = Pick(kWords, rng);
        if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
        if (w > 0) s->push_back(' ');
        s->append(word);
        if (w > 2 && w + 2 < words && rng.Below(9) == 0) s->push_back(',');
        if (w + 1 < words && rng.Below(40) == 0) {
          s->append(" ");
          s->append(std::to_string(rng.Below(2000)));
        }
      }
      s->append(rng.Below(12) == 0 ? "? " : ". ");
    }
    s->append("\n\n");
  }
}

void Code(sim::Rng& rng, std::string* s) {
  while (s->size() < kCorpusBytes) {
    const char* fn = Pick(kFunctions, rng);
    const char* a = Pick(kIdentifiers, rng);
    const char* b = Pick(kIdentifiers, rng);
    const char* c = Pick(kIdentifiers, rng);
    if (rng.Below(2) == 0) {
      *s += "def " + std::string(fn) + "(" + a + ", " + b + "=None):\n";
      *s += "    \"\"\"Return the " + std::string(c) + " for each " + a + ".\"\"\"\n";
      *s += "    " + std::string(c) + " = []\n";
      *s += "    for i, item in enumerate(" + std::string(a) + "):\n";
      *s += "        if item is None or i >= len(" + std::string(b) + "):\n";
      *s += "            continue\n";
      *s +=
          "        " + std::string(c) + ".append(item * " + std::to_string(rng.Below(100)) + ")\n";
      *s += "    return " + std::string(c) + "\n\n";
    } else {
      *s += "int " + std::string(fn) + "(const std::vector<int>& " + a + ", int " + b + ") {\n";
      *s += "  int " + std::string(c) + " = " + std::to_string(rng.Below(64)) + ";\n";
      *s += "  for (size_t i = 0; i < " + std::string(a) + ".size(); ++i) {\n";
      *s += "    if (" + std::string(a) + "[i] > " + b + ") " + c + " += " + a + "[i];\n";
      *s += "  }\n  return " + std::string(c) + ";\n}\n\n";
    }
  }
}

void Json(sim::Rng& rng, std::string* s) {
  int64_t id = 1000;
  while (s->size() < kCorpusBytes) {
    *s += "{\"id\": " + std::to_string(id++) + ", \"name\": \"" + Pick(kWords, rng) + " " +
          Pick(kWords, rng) + "\", \"price\": " + std::to_string(rng.Below(10000)) + "." +
          std::to_string(rng.Below(100)) +
          ", \"active\": " + (rng.Below(2) == 0 ? "true" : "false") + ", \"tags\": [\"" +
          Pick(kIdentifiers, rng) + "\", \"" + Pick(kIdentifiers, rng) +
          "\"], \"owner\": {\"user_id\": " + std::to_string(rng.Below(100000)) +
          ", \"region\": \"" + (rng.Below(2) == 0 ? "eu-west-1" : "us-east-2") + "\"}}\n";
  }
}

void Multilingual(sim::Rng& rng, std::string* s) {
  while (s->size() < kCorpusBytes) {
    const int n = 2 + static_cast<int>(rng.Below(4));
    for (int i = 0; i < n; ++i) s->append(Pick(kPhrases, rng));
    s->append("\n");
  }
}

void EscapeJson(std::string_view in, std::string* out) {
  out->reserve(out->size() + in.size() + in.size() / 8);
  for (char ch : in) {
    switch (ch) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->push_back(ch);
    }
  }
}

// True when an escaped text may be cut before byte `p`: not inside a UTF-8 sequence and not
// right after an escaping backslash.
bool SafeCut(const std::string& s, size_t p) {
  if (p == 0 || p >= s.size()) return true;
  if ((static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) return false;
  size_t backslashes = 0;
  while (backslashes < p && s[p - 1 - backslashes] == '\\') ++backslashes;
  return backslashes % 2 == 0;
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

PromptText::PromptText(uint64_t seed) {
  for (int t = 0; t < kNumContentTypes; ++t) {
    sim::Rng rng(Mix(seed + static_cast<uint64_t>(t)));
    std::string raw;
    switch (static_cast<ContentType>(t)) {
      case ContentType::kProse:
        Prose(rng, &raw);
        break;
      case ContentType::kCode:
        Code(rng, &raw);
        break;
      case ContentType::kJson:
        Json(rng, &raw);
        break;
      case ContentType::kMultilingual:
        Multilingual(rng, &raw);
        break;
    }
    EscapeJson(raw, &corpus_[t]);
  }
}

double PromptText::BytesPerToken(ContentType t) {
  // Escaped bytes per token of each corpus, by the mock's stand-in tokenizer
  // (tests/load/text_test.cc measures them again and fails if they drift by more than 10%).
  switch (t) {
    case ContentType::kProse:
      return 5.31;
    case ContentType::kCode:
      return 3.98;
    case ContentType::kJson:
      return 3.14;
    case ContentType::kMultilingual:
      return 4.02;
  }
  return 4;
}

void PromptText::AppendEscaped(ContentType t, int64_t tokens, uint64_t index,
                               std::string* out) const {
  const std::string& c = corpus_[static_cast<int>(t)];
  size_t want = static_cast<size_t>(
      std::llround(static_cast<double>(std::max<int64_t>(tokens, 1)) * BytesPerToken(t)));
  size_t pos = Mix(index) % c.size();
  while (!SafeCut(c, pos)) ++pos;
  if (pos >= c.size()) pos = 0;
  while (want > 0) {
    size_t end = std::min(c.size(), pos + want);
    if (end < c.size()) {
      const size_t min_end = pos + 1;
      while (end > min_end && !SafeCut(c, end)) --end;
      while (!SafeCut(c, end)) ++end;  // a slice of one escape or one UTF-8 sequence
    }
    out->append(c, pos, end - pos);
    want -= std::min(want, end - pos);
    pos = end >= c.size() ? 0 : end;
  }
}

void PromptText::AppendChatBody(std::string_view model, ContentType t, int64_t prompt_tokens,
                                int64_t max_tokens, uint64_t index, std::string* out) const {
  out->append("{\"model\":\"");
  EscapeJson(model, out);
  out->append("\",\"messages\":[{\"role\":\"user\",\"content\":\"");
  AppendEscaped(t, std::max<int64_t>(1, prompt_tokens - kFramingTokens), index, out);
  out->append("\"}],\"max_tokens\":");
  out->append(std::to_string(std::max<int64_t>(1, max_tokens)));
  out->append(",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
}

}  // namespace tokenpool::load
