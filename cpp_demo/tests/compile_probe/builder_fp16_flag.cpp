// A deliberate API misuse for the compile check (cpp_demo/compile_check.sh): BuilderFlag::kFP16 exists in
// TensorRT 10.3 and left the builder in TensorRT 11 (strongly typed networks only). This file must compile
// against the 10.3.0 headers and fail against 11.1 — proof that the check compiles against the headers it names.
#include <NvInfer.h>

void probe(nvinfer1::IBuilderConfig& config) { config.setFlag(nvinfer1::BuilderFlag::kFP16); }
