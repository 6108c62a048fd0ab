// One TensorRT engine with the Lotus-D contract (docs/contract.md): one float32 input [N,3,H,W], one
// float32 output [N,1|3,H,W]. Names and shapes are read from the engine, never assumed.
#pragma once

#include <cuda_runtime_api.h>
#include <NvInfer.h>

#include <memory>
#include <string>

#include "lotus/manifest.hpp"
#include "lotus/prepost.hpp"

namespace lotus {

struct EngineIO {
    std::string input_name, output_name;
    nvinfer1::Dims input_shape{}, output_shape{};      // as built: -1 marks a dynamic axis
    nvinfer1::Dims profile_min{}, profile_max{};       // profile 0 of the input (dynamic engines)
    int output_channels = 0;                           // 1 depth, 3 normal
    bool dynamic_hw = false;
    int static_h = 0, static_w = 0;                    // when !dynamic_hw
};

class TrtRunner {
public:
    // Loads `engine_path`, checks it against manifest.json beside it (when present) and against the
    // running TensorRT and GPU. Throws lotus::Error with a one-line cause and fix.
    explicit TrtRunner(const std::string& engine_path);
    ~TrtRunner();
    TrtRunner(const TrtRunner&) = delete;
    TrtRunner& operator=(const TrtRunner&) = delete;

    const EngineIO& io() const { return io_; }
    const EngineManifest& manifest() const { return manifest_; }
    // "depth", "disparity" or "normal": the manifest's output meaning, else from the output.
    std::string meaning() const;
    std::string describe() const;

    // Copy one preprocessed image [3,H,W] in, run enqueueV3 on the stream, copy [C,H,W] out.
    TensorF32 infer(const TensorF32& input);
    // The device part alone (copies + enqueueV3 + synchronize) on the last input, for --bench.
    void infer_again();

private:
    void ensure_buffers(size_t in_bytes, size_t out_bytes);

    EngineManifest manifest_;
    EngineIO io_;
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
    cudaStream_t stream_ = nullptr;
    void* d_in_ = nullptr;
    void* d_out_ = nullptr;
    size_t in_capacity_ = 0, out_capacity_ = 0;
    TensorF32 last_in_, last_out_;
};

// "10.3.0" from getInferLibVersion(); "8.7" for the current CUDA device.
std::string running_tensorrt_version();
std::string running_compute_capability();

}  // namespace lotus
