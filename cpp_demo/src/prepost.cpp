// docs/contract.md steps 2-5 on top of the Pillow-exact resamplers; mirrors lotus_deploy/image/preprocess.py
// and postprocess.py line for line (float32 where Python computes in float32, double where float64).
#include "lotus/prepost.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lotus {
namespace {

std::string hw(int h, int w) { return std::to_string(h) + "x" + std::to_string(w); }
int round_up(int v, int m) { return (v + m - 1) / m * m; }

void check_rgb(const ImageU8& img) {
    if (img.channels != 3 || img.height <= 0 || img.width <= 0 || img.data.size() != size_t(img.height) * img.width * 3)
        throw Error("expected an RGB image, got " + hw(img.height, img.width) + "x" + std::to_string(img.channels), "decode it with load_image first");
}

const uint8_t kSpectral[256][3] = {
#include "spectral_lut.inc"
};

}  // namespace

ImageU8 resize_long_edge(const ImageU8& img, int processing_res) {
    check_rgb(img);
    if (processing_res <= 0) return img;
    const double scale = static_cast<double>(processing_res) / std::max(img.height, img.width);
    // int() truncation as upstream; max(1, ..) only guards degenerate slivers.
    const int w = std::max(1, static_cast<int>(img.width * scale));
    const int h = std::max(1, static_cast<int>(img.height * scale));
    return resize_bilinear(img, w, h);
}

ImageU8 fit_inside(const ImageU8& img, int height, int width) {
    check_rgb(img);
    if (img.height <= height && img.width <= width) return img;
    const double scale = std::min(static_cast<double>(height) / img.height, static_cast<double>(width) / img.width);
    const int w = std::min(width, std::max(1, static_cast<int>(img.width * scale)));
    const int h = std::min(height, std::max(1, static_cast<int>(img.height * scale)));
    return resize_bilinear(img, w, h);
}

ImageU8 pad_to(const ImageU8& img, int height, int width) {
    if (img.height > height || img.width > width)
        throw Error("cannot pad a " + hw(img.height, img.width) + " image to the smaller " + hw(height, width), "resize it first (fit_inside)");
    const int C = img.channels;
    ImageU8 out(height, width, C);
    for (int y = 0; y < height; ++y) {
        const uint8_t* src = img.row(std::min(y, img.height - 1));
        uint8_t* dst = out.row(y);
        std::memcpy(dst, src, size_t(img.width) * C);
        for (int x = img.width; x < width; ++x) std::memcpy(dst + size_t(x) * C, src + size_t(img.width - 1) * C, C);
    }
    return out;
}

TensorF32 normalize(const ImageU8& rgb) {
    check_rgb(rgb);
    TensorF32 t(3, rgb.height, rgb.width);
    const size_t n = size_t(rgb.height) * rgb.width;
    for (int c = 0; c < 3; ++c) {
        float* dst = t.plane(c);
        for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(rgb.data[i * 3 + c]) / 127.5f - 1.0f;
    }
    return t;
}

TensorF32 preprocess(const ImageU8& rgb, int processing_res, int graph_h, int graph_w, int multiple, PreprocessInfo* info) {
    if (multiple <= 0) throw Error("multiple " + std::to_string(multiple) + " is not positive", "use 64 (the graph's spatial multiple)");
    check_rgb(rgb);
    PreprocessInfo local;
    local.original_h = rgb.height;
    local.original_w = rgb.width;
    ImageU8 img = resize_long_edge(rgb, processing_res);
    int th, tw;
    if (graph_h == 0 && graph_w == 0) {
        th = round_up(img.height, multiple);
        tw = round_up(img.width, multiple);
    } else {
        if (graph_h <= 0 || graph_w <= 0 || graph_h % multiple || graph_w % multiple)
            throw Error("graph size " + hw(graph_h, graph_w) + " is not a positive multiple of " + std::to_string(multiple), "pass the static graph's H and W");
        img = fit_inside(img, graph_h, graph_w);
        th = graph_h;
        tw = graph_w;
    }
    local.resized_h = img.height;
    local.resized_w = img.width;
    local.padded_h = th;
    local.padded_w = tw;
    if (info) *info = local;
    return normalize(pad_to(img, th, tw));
}

TensorF32 crop_and_resize(const TensorF32& out, const PreprocessInfo& info, Resample mode) {
    const int rh = info.resized_h, rw = info.resized_w, h0 = info.original_h, w0 = info.original_w;
    if (out.height < rh || out.width < rw || rh <= 0 || rw <= 0)
        throw Error("output " + hw(out.height, out.width) + " is smaller than the resized input " + hw(rh, rw), "pass the PreprocessInfo of this image");
    TensorF32 result(out.channels, h0, w0);
    std::vector<float> crop(size_t(rh) * rw);
    for (int c = 0; c < out.channels; ++c) {
        for (int y = 0; y < rh; ++y) std::memcpy(&crop[size_t(y) * rw], out.plane(c) + size_t(y) * out.width, size_t(rw) * sizeof(float));
        const std::vector<float> plane = resize_plane(crop.data(), rh, rw, h0, w0, mode);
        std::memcpy(result.plane(c), plane.data(), plane.size() * sizeof(float));
    }
    return result;
}

void renormalize_normals(TensorF32& n) {
    if (n.channels != 3) throw Error("normal output has " + std::to_string(n.channels) + " channels", "expected 3");
    const size_t count = size_t(n.height) * n.width;
    float *x = n.plane(0), *y = n.plane(1), *z = n.plane(2);
    for (size_t i = 0; i < count; ++i) {
        const double a = x[i], b = y[i], c = z[i];
        const double norm = std::sqrt(a * a + b * b + c * c);
        if (norm > 1e-12) {
            x[i] = static_cast<float>(a / norm);
            y[i] = static_cast<float>(b / norm);
            z[i] = static_cast<float>(c / norm);
        } else {
            x[i] = y[i] = z[i] = 0.0f;
        }
    }
}

const uint8_t (&spectral_lut())[256][3] { return kSpectral; }

ImageU8 colorize_depth(const float* depth, int height, int width, bool reverse) {
    ImageU8 out(height, width, 3);
    const size_t count = size_t(height) * width;
    for (size_t i = 0; i < count; ++i) {
        float v = depth[i];
        if (std::isnan(v)) v = 0.0f;
        v = std::min(std::max(v, 0.0f), 1.0f);
        int idx = std::min(static_cast<int>(v * 256.0f), 255);  // matplotlib: floor(v * N), 1.0 → N - 1
        if (reverse) idx = 255 - idx;
        std::memcpy(&out.data[i * 3], kSpectral[idx], 3);
    }
    return out;
}

ImageU8 normals_to_rgb(const TensorF32& n) {
    if (n.channels != 3) throw Error("normal output has " + std::to_string(n.channels) + " channels", "expected 3");
    ImageU8 out(n.height, n.width, 3);
    const size_t count = size_t(n.height) * n.width;
    for (int c = 0; c < 3; ++c) {
        const float* src = n.plane(c);
        for (size_t i = 0; i < count; ++i) {
            const float v = std::isnan(src[i]) ? 0.0f : src[i];
            const float t = std::nearbyint((v + 1.0f) * 0.5f * 255.0f);  // float32, half to even like np.rint
            out.data[i * 3 + c] = static_cast<uint8_t>(std::min(std::max(t, 0.0f), 255.0f));
        }
    }
    return out;
}

std::vector<uint16_t> to_uint16(const float* values, size_t count) {
    std::vector<uint16_t> out(count);
    for (size_t i = 0; i < count; ++i) {
        const double v = std::isnan(values[i]) ? 0.0 : static_cast<double>(values[i]);
        const double t = std::nearbyint(v * 65535.0);
        out[i] = static_cast<uint16_t>(std::min(std::max(t, 0.0), 65535.0));
    }
    return out;
}

std::vector<uint16_t> normals_to_uint16(const TensorF32& n) {
    if (n.channels != 3) throw Error("normal output has " + std::to_string(n.channels) + " channels", "expected 3");
    const size_t count = size_t(n.height) * n.width;
    std::vector<uint16_t> out(count * 3);
    for (int c = 0; c < 3; ++c) {
        const float* src = n.plane(c);
        for (size_t i = 0; i < count; ++i) {
            const double v = std::isnan(src[i]) ? 0.0 : (static_cast<double>(src[i]) + 1.0) * 0.5;
            const double t = std::nearbyint(v * 65535.0);
            out[i * 3 + c] = static_cast<uint16_t>(std::min(std::max(t, 0.0), 65535.0));
        }
    }
    return out;
}

}  // namespace lotus
