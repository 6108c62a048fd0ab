// TensorRT 10 runtime for one Lotus-D engine: deserialize, read I/O from the engine, set shapes,
// bind addresses, enqueueV3 on a CUDA stream.
#include "trt_runner.hpp"

#include <cstdio>
#include <cstring>
#include <vector>

namespace lotus {
namespace {

class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
        if (severity <= Severity::kWARNING) std::fprintf(stderr, "[TensorRT] %s\n", msg);
    }
};

Logger& logger() {
    static Logger instance;
    return instance;
}

void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw Error(std::string(what) + " failed: " + cudaGetErrorString(status), "check the GPU is visible (nvidia-smi / tegrastats) and has free memory");
}

nvinfer1::Dims nchw(int h, int w) {
    nvinfer1::Dims d{};
    d.nbDims = 4;
    d.d[0] = 1;
    d.d[1] = 3;
    d.d[2] = h;
    d.d[3] = w;
    return d;
}

std::string dims_text(const nvinfer1::Dims& d) {
    std::string s = "[";
    for (int i = 0; i < d.nbDims; ++i) s += (i ? ", " : "") + std::to_string(d.d[i]);
    return s + "]";
}

}  // namespace

std::string running_tensorrt_version() {
    const int v = getInferLibVersion();  // 10.x: major * 10000 + minor * 100 + patch
    const int major = v >= 100000 ? v / 10000 : v / 1000;
    const int minor = v >= 100000 ? (v / 100) % 100 : (v / 100) % 10;
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(v % 100);
}

std::string running_compute_capability() {
    int device = 0, major = 0, minor = 0;
    cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    cuda_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
    cuda_check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
    return std::to_string(major) + "." + std::to_string(minor);
}

TrtRunner::TrtRunner(const std::string& engine_path) {
    std::vector<uint8_t> blob;
    try {
        blob = read_file(engine_path);
    } catch (const Error&) {
        throw Error("engine " + engine_path + " not found or unreadable", "pass the model.engine written by lotus-export (--engine trt-fp16 ...)");
    }
    if (blob.empty()) throw Error("engine " + engine_path + " is empty", "rebuild it");

    manifest_ = read_engine_manifest(engine_path);
    const std::string trt_version = running_tensorrt_version();
    const std::string cc = running_compute_capability();
    if (!manifest_.present)
        std::fprintf(stderr, "warning: no manifest.json beside %s (a trtexec engine?): TensorRT version and GPU cannot be checked\n", engine_path.c_str());
    check_engine_compatible(manifest_, trt_version, cc);

    runtime_.reset(nvinfer1::createInferRuntime(logger()));
    if (!runtime_) throw Error("cannot create the TensorRT runtime", "check the TensorRT installation (libnvinfer)");
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_)
        throw Error("cannot deserialize " + engine_path + " with TensorRT " + trt_version + " on compute capability " + cc,
                    "the engine was built for another TensorRT version or GPU, or is not an engine: rebuild it here");

    const int n = engine_->getNbIOTensors();
    for (int i = 0; i < n; ++i) {
        const char* name = engine_->getIOTensorName(i);
        const bool is_input = engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
        if (engine_->getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
            throw Error(std::string("engine tensor '") + name + "' is not float32", "export with lotus-export: fp16/int8 graphs keep float32 I/O");
        std::string& slot = is_input ? io_.input_name : io_.output_name;
        if (!slot.empty()) throw Error("engine has more than one " + std::string(is_input ? "input" : "output"), "this demo runs Lotus-D engines (one input, one output)");
        slot = name;
    }
    if (io_.input_name.empty() || io_.output_name.empty()) throw Error("engine lacks an input or an output", "this demo runs Lotus-D engines");
    const char* in = io_.input_name.c_str();
    io_.input_shape = engine_->getTensorShape(in);
    io_.output_shape = engine_->getTensorShape(io_.output_name.c_str());
    if (io_.input_shape.nbDims != 4 || io_.input_shape.d[1] != 3 || io_.output_shape.nbDims != 4)
        throw Error("engine input " + dims_text(io_.input_shape) + " / output " + dims_text(io_.output_shape) + " is not [N,3,H,W] / [N,C,H,W]",
                    "this demo runs Lotus-D engines");
    io_.output_channels = static_cast<int>(io_.output_shape.d[1]);
    if (io_.output_channels != 1 && io_.output_channels != 3)
        throw Error("engine output has " + std::to_string(io_.output_channels) + " channels", "expected 1 (depth) or 3 (normal)");
    io_.dynamic_hw = io_.input_shape.d[2] < 0 || io_.input_shape.d[3] < 0;
    if (io_.dynamic_hw || io_.input_shape.d[0] < 0) {
        io_.profile_min = engine_->getProfileShape(in, 0, nvinfer1::OptProfileSelector::kMIN);
        io_.profile_max = engine_->getProfileShape(in, 0, nvinfer1::OptProfileSelector::kMAX);
    } else {
        io_.profile_min = io_.profile_max = io_.input_shape;
    }
    if (io_.input_shape.d[0] > 1 || io_.profile_min.d[0] > 1)
        throw Error("engine needs batches of " + std::to_string(io_.profile_min.d[0]) + " or more", "build it with batch 1 (or a dynamic batch from 1)");
    if (!io_.dynamic_hw) {
        io_.static_h = static_cast<int>(io_.input_shape.d[2]);
        io_.static_w = static_cast<int>(io_.input_shape.d[3]);
    }

    context_.reset(engine_->createExecutionContext());
    if (!context_) throw Error("cannot create an execution context", "check free GPU memory");
    cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
}

TrtRunner::~TrtRunner() {
    if (d_in_) cudaFree(d_in_);
    if (d_out_) cudaFree(d_out_);
    if (stream_) cudaStreamDestroy(stream_);
}

std::string TrtRunner::meaning() const {
    if (manifest_.present && !manifest_.meaning.empty()) return manifest_.meaning;
    return io_.output_channels == 3 ? "normal" : "depth";
}

std::string TrtRunner::describe() const {
    std::string s = "engine input '" + io_.input_name + "' " + dims_text(io_.input_shape) + ", output '" + io_.output_name + "' " +
                    dims_text(io_.output_shape) + ", meaning " + meaning() + ", TensorRT " + running_tensorrt_version() + ", sm " +
                    running_compute_capability();
    if (io_.dynamic_hw) s += ", profile " + dims_text(io_.profile_min) + ".." + dims_text(io_.profile_max);
    return s;
}

void TrtRunner::ensure_buffers(size_t in_bytes, size_t out_bytes) {
    if (in_bytes > in_capacity_) {
        if (d_in_) cudaFree(d_in_);
        d_in_ = nullptr;
        cuda_check(cudaMalloc(&d_in_, in_bytes), "cudaMalloc (input)");
        in_capacity_ = in_bytes;
    }
    if (out_bytes > out_capacity_) {
        if (d_out_) cudaFree(d_out_);
        d_out_ = nullptr;
        cuda_check(cudaMalloc(&d_out_, out_bytes), "cudaMalloc (output)");
        out_capacity_ = out_bytes;
    }
}

TensorF32 TrtRunner::infer(const TensorF32& input) {
    const int h = input.height, w = input.width;
    if (input.channels != 3) throw Error("input has " + std::to_string(input.channels) + " channels", "pass a preprocessed RGB tensor");
    if (io_.dynamic_hw) {
        if (h < io_.profile_min.d[2] || h > io_.profile_max.d[2] || w < io_.profile_min.d[3] || w > io_.profile_max.d[3])
            throw Error("input " + std::to_string(h) + "x" + std::to_string(w) + " is outside the engine's profile " + dims_text(io_.profile_min) + ".." +
                            dims_text(io_.profile_max),
                        "use --processing-res so the padded size fits, or rebuild the engine with a wider profile");
        const nvinfer1::Dims shape = nchw(h, w);
        if (!context_->setInputShape(io_.input_name.c_str(), shape)) throw Error("setInputShape rejected " + dims_text(shape), "check the engine's profile");
    } else if (h != io_.static_h || w != io_.static_w) {
        throw Error("input " + std::to_string(h) + "x" + std::to_string(w) + " given to a static " + std::to_string(io_.static_h) + "x" +
                        std::to_string(io_.static_w) + " engine",
                    "preprocess with the engine's size");
    } else if (io_.input_shape.d[0] < 0) {
        const nvinfer1::Dims shape = nchw(h, w);
        if (!context_->setInputShape(io_.input_name.c_str(), shape)) throw Error("setInputShape rejected " + dims_text(shape), "check the engine's profile");
    }
    const nvinfer1::Dims out_shape = context_->getTensorShape(io_.output_name.c_str());
    if (out_shape.nbDims != 4 || out_shape.d[2] != h || out_shape.d[3] != w)
        throw Error("engine reports output shape " + dims_text(out_shape) + " for input " + std::to_string(h) + "x" + std::to_string(w),
                    "this is not a Lotus-D engine (output must match the input size)");
    last_in_ = input;
    last_out_ = TensorF32(io_.output_channels, h, w);
    ensure_buffers(last_in_.data.size() * sizeof(float), last_out_.data.size() * sizeof(float));
    if (!context_->setTensorAddress(io_.input_name.c_str(), d_in_) || !context_->setTensorAddress(io_.output_name.c_str(), d_out_))
        throw Error("setTensorAddress failed", "check the engine's I/O names");
    infer_again();
    return last_out_;
}

void TrtRunner::infer_again() {
    const size_t in_bytes = last_in_.data.size() * sizeof(float), out_bytes = last_out_.data.size() * sizeof(float);
    cuda_check(cudaMemcpyAsync(d_in_, last_in_.data.data(), in_bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (input)");
    if (!context_->enqueueV3(stream_)) throw Error("enqueueV3 failed", "see the TensorRT messages above");
    cuda_check(cudaMemcpyAsync(last_out_.data.data(), d_out_, out_bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync (output)");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

}  // namespace lotus
