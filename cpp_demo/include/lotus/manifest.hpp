// manifest.json beside an engine (docs/contract.md): what the demo needs from it, and the
// compatibility rule (same TensorRT version, same GPU compute capability). No TensorRT here, so
// CI tests it without a GPU.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lotus {

// A parsed JSON value (only what manifests use: objects, arrays, strings, numbers, bools, null).
struct Json {
    enum class Type { Null, Bool, Number, String, Array, Object } type = Type::Null;
    bool boolean = false;
    double number = 0.0;
    std::string string;
    std::vector<Json> array;
    std::map<std::string, Json> object;

    // Member lookup through dotted keys ("tensorrt.version"); nullptr when absent.
    const Json* find(const std::string& dotted) const;
};

// Parse JSON text; throws lotus::Error naming `source` and the offset on malformed input.
Json parse_json(const std::string& text, const std::string& source);

struct EngineManifest {
    bool present = false;               // false: no manifest.json (e.g. a trtexec engine) — warn, run
    std::string path;
    std::string task;                   // "depth" | "normal" (empty when not recorded)
    std::string meaning;                // "depth" | "disparity" | "normal"
    std::string tensorrt_version;       // e.g. "10.3.0.30"
    std::string compute_capability;     // e.g. "8.7"
    int processing_res = 0;             // source.processing_res: the working resolution the model declares (0: none)
};

// Reads manifest.json in the engine's folder. Missing file → present = false; unreadable or
// malformed → lotus::Error.
EngineManifest read_engine_manifest(const std::string& engine_path);

// The long edge to process at: the --processing-res given (>= 0), else the resolution the manifest
// declares, else 768 (the Python package's rule, docs/inference.md).
int effective_processing_res(int requested, const EngineManifest& manifest);

// Throws lotus::Error ("built for TensorRT X, this is Y — rebuild the engine here") unless the
// manifest's TensorRT major.minor.patch and compute capability equal the running ones. Fields the
// manifest does not record are not checked.
void check_engine_compatible(const EngineManifest& manifest, const std::string& running_tensorrt, const std::string& running_cc);

// "10.3.0.30" → "10.3.0"; "8.7" stays. Used for the comparison above.
std::string version_prefix(const std::string& version, int parts);

}  // namespace lotus
