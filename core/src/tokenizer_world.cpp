// RWKV World tokenizer (rwkv_vocab_v20230424): vocabulary parsing (spec §5.1), greedy longest-match encoding
// (spec §5.2) and byte-concatenating decoding (spec §5.3). Follows the official TRIE_TOKENIZER
// (ChatRWKV rwkv_pip_package rwkv_tokenizer.py); the trie is stored as a double array (base/check) so that
// one transition is two loads from one cache line. Also utf8_valid_prefix for streaming output.
#include <algorithm>
#include <cstdlib>
#include <sys/stat.h>

#include "aviary/core/error.h"
#include "aviary/core/file_read.h"
#include "aviary/core/tokenizer.h"

namespace aviary {
namespace {

constexpr int32_t kNoToken = -1;
constexpr int32_t kFreeSlot = -1;  // check_ value of an unused double-array slot

bool file_exists(const std::string& path) {
    struct stat st {};
    return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes one Python str or bytes literal ('…', "…", b'…', b"…") into token bytes. Str literals are
// UTF-8 encoded (escapes \xNN and \uNNNN name code points); in bytes literals \xNN is a raw byte.
std::string parse_python_literal(std::string_view lit, const std::string& where) {
    bool is_bytes = false;
    if (!lit.empty() && (lit[0] == 'b' || lit[0] == 'B')) {
        is_bytes = true;
        lit.remove_prefix(1);
    }
    AVIARY_CHECK(lit.size() >= 2 && (lit[0] == '\'' || lit[0] == '"') && lit.back() == lit[0], where,
                 ": expected a quoted Python literal ('…', \"…\" or b'…'), got <", lit, ">");
    const char quote = lit[0];
    std::string_view body = lit.substr(1, lit.size() - 2);
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == quote) AVIARY_FAIL(where, ": unescaped quote inside the literal");
        if (c != '\\') {
            AVIARY_CHECK(!is_bytes || static_cast<unsigned char>(c) < 0x80, where,
                         ": non-ASCII character inside a bytes literal");
            out += c;
            continue;
        }
        AVIARY_CHECK(i + 1 < body.size(), where, ": literal ends with a lone backslash");
        const char e = body[++i];
        auto read_hex = [&](int digits) -> uint32_t {
            uint32_t v = 0;
            for (int k = 0; k < digits; ++k) {
                AVIARY_CHECK(i + 1 < body.size(), where, ": truncated \\", e, " escape");
                const int h = hex_value(body[++i]);
                AVIARY_CHECK(h >= 0, where, ": bad hex digit in \\", e, " escape");
                v = v * 16 + static_cast<uint32_t>(h);
            }
            return v;
        };
        switch (e) {
            case 'x': {
                const uint32_t v = read_hex(2);
                if (is_bytes) {
                    out += static_cast<char>(v);
                } else {
                    append_utf8(out, v);
                }
                break;
            }
            case 'u':
            case 'U': {
                AVIARY_CHECK(!is_bytes, where, ": \\", e, " escape inside a bytes literal");
                const uint32_t v = read_hex(e == 'u' ? 4 : 8);
                AVIARY_CHECK(v <= 0x10FFFF && (v < 0xD800 || v > 0xDFFF), where, ": \\", e,
                             " escape names an invalid code point");
                append_utf8(out, v);
                break;
            }
            case 't':
                out += '\t';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case '0':
                out += '\0';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'v':
                out += '\v';
                break;
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            default:
                AVIARY_FAIL(where, ": unsupported escape \\", e);
        }
    }
    return out;
}

// Expected length of a UTF-8 sequence led by c and the allowed range of its second byte (which excludes
// overlong forms, surrogates and code points above U+10FFFF); len 1 for ASCII, 0 when c cannot lead one.
struct Utf8Lead {
    size_t len;
    unsigned char lo, hi;
};

Utf8Lead utf8_lead(unsigned char c) {
    if (c < 0x80) return {1, 0, 0};
    if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
    if (c >= 0xE0 && c <= 0xEF)
        return {3, static_cast<unsigned char>(c == 0xE0 ? 0xA0 : 0x80),
                static_cast<unsigned char>(c == 0xED ? 0x9F : 0xBF)};
    if (c >= 0xF0 && c <= 0xF4)
        return {4, static_cast<unsigned char>(c == 0xF0 ? 0x90 : 0x80),
                static_cast<unsigned char>(c == 0xF4 ? 0x8F : 0xBF)};
    return {0, 0, 0};
}

// True when the continuation bytes s[1..n) of a sequence led by `lead` are valid so far.
bool utf8_continuation_ok(const unsigned char* s, size_t n, const Utf8Lead& lead) {
    for (size_t k = 1; k < n; ++k)
        if (k == 1 ? (s[1] < lead.lo || s[1] > lead.hi) : ((s[k] & 0xC0) != 0x80)) return false;
    return true;
}

// Length of the complete, valid UTF-8 sequence at s[0..n), or 0 if it is invalid or truncated.
inline size_t utf8_sequence_length(const unsigned char* s, size_t n) {
    const Utf8Lead lead = utf8_lead(s[0]);
    if (lead.len <= 1) return lead.len;
    if (n < lead.len || !utf8_continuation_ok(s, lead.len, lead)) return 0;
    return lead.len;
}

}  // namespace

struct WorldTokenizer::Impl {
    // The tokens in file order (entries[0] is id 0, ""), their ids, and id -> entry (-1: not in the vocabulary). Only
    // entry_of grows with the largest id, by 4 bytes per id: a file naming one huge id (a 16-byte line "16000000 'zz'
    // 2") made a dense vector of 16 M strings and two passes over every id, 56 s per load in the fuzz build.
    std::vector<std::string> entries;
    std::vector<int32_t> entry_ids;
    std::vector<int32_t> entry_of;
    // Double-array trie over token bytes: child of slot s by byte c is t = base[s] + c when check[t] == s.
    // value[t] is the id of the token that ends at t, or kNoToken. Slot 0 is the root.
    struct Slot {
        int32_t base;
        int32_t check;
        int32_t value;
    };
    std::vector<Slot> slots;

    void build_trie();
};

// Builds the double array from a temporary pointer trie, breadth first, placing each node's children
// at the first base where all their slots are free.
void WorldTokenizer::Impl::build_trie() {
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node), sorted by byte
        int32_t value = kNoToken;
    };
    std::vector<Node> nodes(1);
    std::vector<int32_t> order(entries.size() - 1);  // entries by id (entry 0, id 0, is no token)
    for (size_t k = 1; k < entries.size(); ++k) order[k - 1] = static_cast<int32_t>(k);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return entry_ids[a] < entry_ids[b]; });
    for (const int32_t k : order) {
        const int32_t id = entry_ids[k];
        int32_t n = 0;
        for (unsigned char c : entries[k]) {
            auto& ch = nodes[n].children;
            auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(c, int32_t{0}),
                                       [](const auto& a, const auto& b) { return a.first < b.first; });
            if (it != ch.end() && it->first == c) {
                n = it->second;
            } else {
                const int32_t fresh = static_cast<int32_t>(nodes.size());
                ch.insert(it, {c, fresh});
                nodes.emplace_back();
                n = fresh;
            }
        }
        nodes[n].value = id;
    }

    slots.assign(nodes.size() + 512, Slot{0, kFreeSlot, kNoToken});
    slots[0].check = 0;  // root occupies slot 0
    std::vector<int32_t> slot_of(nodes.size(), 0);
    std::vector<int32_t> queue{0};
    int32_t search_from = 1;  // every slot below this is used
    for (size_t qi = 0; qi < queue.size(); ++qi) {
        const int32_t n = queue[qi];
        const int32_t s = slot_of[n];
        slots[s].value = nodes[n].value;
        const auto& ch = nodes[n].children;
        if (ch.empty()) continue;
        while (slots[search_from].check != kFreeSlot) ++search_from;
        // Try bases that put the first child on a free slot at or after search_from.
        int32_t base = std::max<int32_t>(1, search_from - ch.front().first);
        for (;; ++base) {
            const size_t need = static_cast<size_t>(base) + 256;
            if (need >= slots.size()) slots.resize(need * 2, Slot{0, kFreeSlot, kNoToken});
            bool ok = true;
            for (const auto& [c, child] : ch) {
                if (slots[base + c].check != kFreeSlot) {
                    ok = false;
                    break;
                }
            }
            if (ok) break;
        }
        slots[s].base = base;
        for (const auto& [c, child] : ch) {
            slots[base + c].check = s;
            slot_of[child] = base + c;
            queue.push_back(child);
        }
    }
    // Trim, keeping 256 slots of padding past the largest base so that base + c never leaves the array.
    int32_t last = 0;
    for (int32_t s = 0; s < static_cast<int32_t>(slots.size()); ++s) {
        if (slots[s].check != kFreeSlot) last = std::max(last, std::max(s, slots[s].base));
    }
    slots.resize(static_cast<size_t>(last) + 257, Slot{0, kFreeSlot, kNoToken});
    slots.shrink_to_fit();
}

WorldTokenizer::WorldTokenizer() : impl_(std::make_unique<Impl>()) {}
WorldTokenizer::~WorldTokenizer() = default;
WorldTokenizer::WorldTokenizer(WorldTokenizer&&) noexcept = default;
WorldTokenizer& WorldTokenizer::operator=(WorldTokenizer&&) noexcept = default;

WorldTokenizer WorldTokenizer::load(const std::string& vocab_path) {
    std::string text;
    AVIARY_CHECK(read_whole_file(vocab_path, text), "cannot open the vocabulary file ", vocab_path,
                 " (run tools/install-deps.sh or pass --vocab)");
    return parse(text, vocab_path);
}

WorldTokenizer WorldTokenizer::parse(std::string_view text, const std::string& vocab_path) {
    WorldTokenizer tok;
    Impl& impl = *tok.impl_;
    impl.entries.assign(1, std::string());
    impl.entry_ids.assign(1, 0);
    impl.entry_of.assign(1, 0);
    std::string line;
    size_t line_no = 0;
    std::vector<std::pair<std::string_view, int32_t>> seen;  // filled after parsing, to find duplicates
    for (size_t pos = 0; pos < text.size();) {               // lines as std::getline splits them
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        line.assign(text.substr(pos, eol - pos));
        pos = eol + 1;
        ++line_no;
        line.erase(std::remove(line.begin(), line.end(), '\r'), line.end());
        if (line.empty()) continue;
        const std::string where = vocab_path + ":" + std::to_string(line_no);
        const size_t first = line.find(' ');
        const size_t last = line.rfind(' ');
        AVIARY_CHECK(first != std::string::npos && last > first, where,
                     ": expected '<id> <python literal> <byte length>'");
        char* end = nullptr;
        const std::string id_text = line.substr(0, first);
        const long id = std::strtol(id_text.c_str(), &end, 10);
        AVIARY_CHECK(!id_text.empty() && *end == '\0' && id >= 1 && id < (1L << 24), where, ": bad token id '", id_text,
                     "' (expected an integer ≥ 1)");
        const std::string len_text = line.substr(last + 1);
        const long length = std::strtol(len_text.c_str(), &end, 10);
        AVIARY_CHECK(!len_text.empty() && *end == '\0' && length >= 1, where, ": bad byte length '", len_text, "'");
        std::string bytes = parse_python_literal(std::string_view(line).substr(first + 1, last - first - 1), where);
        AVIARY_CHECK(static_cast<long>(bytes.size()) == length, where, ": the literal has ", bytes.size(),
                     " bytes but the line says ", length);
        if (static_cast<size_t>(id) >= impl.entry_of.size()) impl.entry_of.resize(id + 1, -1);
        AVIARY_CHECK(impl.entry_of[id] < 0, where, ": token id ", id, " appears twice");
        impl.entry_of[id] = static_cast<int32_t>(impl.entries.size());
        impl.entries.push_back(std::move(bytes));
        impl.entry_ids.push_back(static_cast<int32_t>(id));
    }
    AVIARY_CHECK(impl.entries.size() > 1, "the vocabulary file ", vocab_path, " has no tokens");
    for (size_t k = 1; k < impl.entries.size(); ++k) seen.emplace_back(impl.entries[k], impl.entry_ids[k]);
    std::sort(seen.begin(), seen.end());
    for (size_t i = 1; i < seen.size(); ++i) {
        AVIARY_CHECK(seen[i].first != seen[i - 1].first, vocab_path, ": ids ", seen[i - 1].second, " and ",
                     seen[i].second, " have the same bytes");
    }
    impl.build_trie();
    // Greedy matching needs every single byte as a token (ids 1..256 in the World vocabulary).
    for (int c = 0; c < 256; ++c) {
        const int32_t t = impl.slots[0].base + c;
        AVIARY_CHECK(impl.slots[t].check == 0 && impl.slots[t].value != kNoToken, vocab_path,
                     ": the vocabulary lacks the single byte 0x", std::hex, c, " (every byte must be a token)");
    }
    return tok;
}

std::string WorldTokenizer::default_vocab_path() {
    static const char* kName = "rwkv_vocab_v20230424.txt";
    std::vector<std::string> tried;
    if (const char* env = std::getenv("AVIARY_VOCAB"); env && *env) {
        AVIARY_CHECK(file_exists(env), "AVIARY_VOCAB names ", env, ", which is not a file");
        return env;
    }
    const std::string candidates[] = {
        std::string(AVIARY_INSTALL_DATADIR) + "/" + kName,
        std::string(AVIARY_SOURCE_DIR) + "/assets/vocab/" + kName,
        std::string(AVIARY_SOURCE_DIR) + "/../shared/data/" + kName,
    };
    std::string looked;
    for (const auto& c : candidates) {
        if (file_exists(c)) return c;
        looked += (looked.empty() ? "" : ", ") + c;
    }
    AVIARY_FAIL("cannot find the World vocabulary ", kName, " (looked in $AVIARY_VOCAB, ", looked,
                "); run tools/install-deps.sh or pass --vocab");
}

std::vector<int32_t> WorldTokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 16);
    const Impl::Slot* slots = impl_->slots.data();
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        // Walk the trie from the root as far as the input matches, remembering the last token end
        // (spec §5.2: the longest vocabulary token that is a prefix of the remaining bytes).
        int32_t s = slots[0].base + p[i];  // every byte is a token (checked at load)
        int32_t best_id = slots[s].value;
        size_t best_end = i + 1;
        for (size_t j = i + 1; j < n; ++j) {
            const int32_t t = slots[s].base + p[j];
            if (slots[t].check != s) break;
            s = t;
            if (slots[s].value != kNoToken) {
                best_id = slots[s].value;
                best_end = j + 1;
            }
        }
        out.push_back(best_id);
        i = best_end;
    }
    return out;
}

std::string WorldTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    size_t total = 0;
    for (int32_t id : ids) total += token_bytes(id).size();  // also validates every id
    out.reserve(total);
    for (int32_t id : ids) out += impl_->entries[impl_->entry_of[id]];
    return out;
}

const std::string& WorldTokenizer::token_bytes(int32_t id) const {
    AVIARY_CHECK(id >= 0 && id < static_cast<int32_t>(impl_->entry_of.size()) && impl_->entry_of[id] >= 0, "token id ",
                 id, " is not in the World vocabulary (valid ids: 0..", impl_->entry_of.size() - 1, ")");
    return impl_->entries[impl_->entry_of[id]];
}

int32_t WorldTokenizer::vocab_size() const {
    return static_cast<int32_t>(impl_->entry_of.size());
}

bool utf8_can_complete(std::string_view s) {
    if (s.empty()) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const Utf8Lead lead = utf8_lead(p[0]);
    return lead.len > 1 && s.size() < lead.len && utf8_continuation_ok(p, s.size(), lead);
}

size_t utf8_valid_prefix(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const size_t len = utf8_sequence_length(p + i, n - i);
        if (len == 0) break;
        i += len;
    }
    return i;
}

}  // namespace aviary
