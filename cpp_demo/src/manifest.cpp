// A small JSON reader (manifests only; no dependency) and the engine compatibility rule.
#include "lotus/manifest.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lotus/prepost.hpp"

namespace lotus {
namespace {

class Parser {
public:
    Parser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

    Json document() {
        Json v = value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    const std::string& s_;
    const std::string& source_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(source_ + " is not valid JSON (" + what + " at offset " + std::to_string(pos_) + ")", "re-export the artifact or fix the file");
    }
    void skip_ws() {
        while (pos_ < s_.size() && std::strchr(" \t\r\n", s_[pos_]) && s_[pos_] != '\0') ++pos_;
    }
    bool consume(char c) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!consume(c)) fail(std::string("expected '") + c + "'");
    }
    void literal(const char* word) {
        const size_t n = std::strlen(word);
        if (s_.compare(pos_, n, word) != 0) fail("unknown literal");
        pos_ += n;
    }

    Json value(int depth) {
        if (depth > 64) fail("nesting too deep");
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end");
        Json v;
        const char c = s_[pos_];
        if (c == '{') {
            ++pos_;
            v.type = Json::Type::Object;
            if (consume('}')) return v;
            do {
                skip_ws();
                if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a key");
                std::string key = string();
                expect(':');
                v.object[key] = value(depth + 1);
            } while (consume(','));
            expect('}');
        } else if (c == '[') {
            ++pos_;
            v.type = Json::Type::Array;
            if (consume(']')) return v;
            do v.array.push_back(value(depth + 1));
            while (consume(','));
            expect(']');
        } else if (c == '"') {
            v.type = Json::Type::String;
            v.string = string();
        } else if (c == 't') {
            literal("true");
            v.type = Json::Type::Bool;
            v.boolean = true;
        } else if (c == 'f') {
            literal("false");
            v.type = Json::Type::Bool;
        } else if (c == 'n') {
            literal("null");
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const char* start = s_.c_str() + pos_;
            char* end = nullptr;
            v.number = std::strtod(start, &end);
            if (end == start) fail("bad number");
            v.type = Json::Type::Number;
            pos_ += static_cast<size_t>(end - start);
        } else {
            fail("unexpected character");
        }
        return v;
    }

    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) {
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

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= unsigned(h - '0');
            else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string out;
        while (true) {
            if (pos_ >= s_.size()) fail("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) fail("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
                        pos_ += 2;
                        const unsigned low = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
};

std::string as_text(const Json* v) {
    if (!v) return "";
    if (v->type == Json::Type::String) return v->string;
    if (v->type == Json::Type::Number) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", v->number);
        return buf;
    }
    return "";
}

}  // namespace

const Json* Json::find(const std::string& dotted) const {
    const Json* cur = this;
    size_t start = 0;
    while (cur) {
        const size_t dot = dotted.find('.', start);
        const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (cur->type != Type::Object) return nullptr;
        const auto it = cur->object.find(key);
        cur = it == cur->object.end() ? nullptr : &it->second;
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
    return nullptr;
}

Json parse_json(const std::string& text, const std::string& source) { return Parser(text, source).document(); }

EngineManifest read_engine_manifest(const std::string& engine_path) {
    EngineManifest m;
    const size_t slash = engine_path.find_last_of('/');
    m.path = (slash == std::string::npos ? std::string() : engine_path.substr(0, slash + 1)) + "manifest.json";
    std::FILE* probe = std::fopen(m.path.c_str(), "rb");
    if (!probe) return m;  // no manifest: the caller warns and runs
    std::fclose(probe);
    const std::vector<uint8_t> bytes = read_file(m.path);
    const Json doc = parse_json(std::string(bytes.begin(), bytes.end()), m.path);
    if (doc.type != Json::Type::Object) throw Error(m.path + " is not a JSON object", "re-export the artifact");
    m.present = true;
    m.task = as_text(doc.find("task"));
    m.meaning = as_text(doc.find("output_meaning"));
    if (m.meaning.empty()) m.meaning = m.task;
    m.tensorrt_version = as_text(doc.find("tensorrt.version"));
    m.compute_capability = as_text(doc.find("tensorrt.compute_capability"));
    if (const Json* res = doc.find("source.processing_res"); res && res->type != Json::Type::Null) {
        if (res->type != Json::Type::Number || res->number < 1 || res->number > 100000 || res->number != static_cast<int>(res->number))
            throw Error(m.path + ": source.processing_res is not a positive whole number", "re-export the artifact");
        m.processing_res = static_cast<int>(res->number);
    }
    return m;
}

int effective_processing_res(int requested, const EngineManifest& manifest) {
    if (requested >= 0) return requested;
    return manifest.processing_res > 0 ? manifest.processing_res : 768;
}

std::string version_prefix(const std::string& version, int parts) {
    size_t pos = 0;
    for (int i = 0; i < parts; ++i) {
        pos = version.find('.', pos);
        if (pos == std::string::npos) return version;
        if (i + 1 < parts) ++pos;
    }
    return version.substr(0, pos);
}

void check_engine_compatible(const EngineManifest& m, const std::string& running_tensorrt, const std::string& running_cc) {
    if (!m.present) return;
    if (!m.tensorrt_version.empty() && version_prefix(m.tensorrt_version, 3) != version_prefix(running_tensorrt, 3))
        throw Error("engine was built with TensorRT " + m.tensorrt_version + ", this is TensorRT " + running_tensorrt + " (" + m.path + ")",
                    "rebuild the engine on this machine from the ONNX artifact");
    if (!m.compute_capability.empty() && m.compute_capability != running_cc)
        throw Error("engine was built for compute capability " + m.compute_capability + ", this GPU is " + running_cc + " (" + m.path + ")",
                    "rebuild the engine on this GPU from the ONNX artifact");
}

}  // namespace lotus
