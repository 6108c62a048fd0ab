// Pillow's resampling, replicated so C++ and Python give the same pixels (docs/contract.md steps 2 and 5).
//
// Follows Pillow's src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResample{Horizontal,Vertical}_{8bpc,32bpc}, ImagingResampleInner) and Geometry.c
// (ImagingScaleAffine, used by resize(NEAREST)). Written from the algorithm's description; the
// arithmetic (double coefficients, 22-bit fixed point, rounding, pass order) is kept identical.
#include "lotus/prepost.hpp"

#include <cmath>
#include <cstring>

namespace lotus {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

struct Coeffs {
    int ksize = 0;
    std::vector<int> bounds;   // per output index: first input index, count
    std::vector<double> kk;    // ksize weights per output index
};

// Pillow's precompute_coeffs for the BILINEAR filter (support 1) over the box [0, in_size).
Coeffs precompute(int in_size, int out_size) {
    Coeffs c;
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);
    double filterscale = static_cast<double>(in1 - in0) / out_size;
    const double scale = filterscale;
    if (filterscale < 1.0) filterscale = 1.0;
    const double support = 1.0 * filterscale;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0.0);
    c.bounds.assign(static_cast<size_t>(out_size) * 2, 0);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        const double ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double* k = &c.kk[static_cast<size_t>(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double w = bilinear_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; ++x)
            if (ww != 0.0) k[x] /= ww;
        c.bounds[xx * 2] = xmin;
        c.bounds[xx * 2 + 1] = xmax;
    }
    return c;
}

std::vector<int32_t> fixed_point(const Coeffs& c) {
    std::vector<int32_t> k(c.kk.size());
    for (size_t i = 0; i < k.size(); ++i) {
        const double v = c.kk[i];
        k[i] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits)) : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    return k;
}

inline uint8_t clip8(int32_t v) {
    const int32_t s = v >> kPrecisionBits;  // arithmetic shift, as in Pillow
    return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

}  // namespace

ImageU8 resize_bilinear(const ImageU8& in, int out_w, int out_h) {
    if (out_w <= 0 || out_h <= 0) throw Error("resize to " + std::to_string(out_w) + "x" + std::to_string(out_h), "sizes must be positive");
    if (out_w == in.width && out_h == in.height) return in;
    const int C = in.channels;
    const bool need_h = out_w != in.width;
    const bool need_v = out_h != in.height;

    Coeffs vert = precompute(in.height, out_h);
    const int ybox_first = vert.bounds[0];
    const int ybox_last = vert.bounds[out_h * 2 - 2] + vert.bounds[out_h * 2 - 1];

    ImageU8 tmp;
    const ImageU8* src = &in;
    if (need_h) {
        const Coeffs horiz = precompute(in.width, out_w);
        const std::vector<int32_t> k = fixed_point(horiz);
        for (int i = 0; i < out_h; ++i) vert.bounds[i * 2] -= ybox_first;
        tmp = ImageU8(ybox_last - ybox_first, out_w, C);
        for (int yy = 0; yy < tmp.height; ++yy) {
            const uint8_t* row = in.row(yy + ybox_first);
            uint8_t* dst = tmp.row(yy);
            for (int xx = 0; xx < out_w; ++xx) {
                const int xmin = horiz.bounds[xx * 2], xmax = horiz.bounds[xx * 2 + 1];
                const int32_t* kx = &k[static_cast<size_t>(xx) * horiz.ksize];
                for (int c = 0; c < C; ++c) {
                    int32_t ss = 1 << (kPrecisionBits - 1);
                    for (int x = 0; x < xmax; ++x) ss += row[(x + xmin) * C + c] * kx[x];
                    dst[xx * C + c] = clip8(ss);
                }
            }
        }
        src = &tmp;
    }
    if (!need_v) return need_h ? tmp : in;

    const std::vector<int32_t> k = fixed_point(vert);
    ImageU8 out(out_h, src->width, C);
    const size_t stride = static_cast<size_t>(src->width) * C;
    for (int yy = 0; yy < out_h; ++yy) {
        const int ymin = vert.bounds[yy * 2], ymax = vert.bounds[yy * 2 + 1];
        const int32_t* ky = &k[static_cast<size_t>(yy) * vert.ksize];
        uint8_t* dst = out.row(yy);
        for (size_t i = 0; i < stride; ++i) {
            int32_t ss = 1 << (kPrecisionBits - 1);
            for (int y = 0; y < ymax; ++y) ss += src->data[(y + ymin) * stride + i] * ky[y];
            dst[i] = clip8(ss);
        }
    }
    return out;
}

std::vector<float> resize_plane(const float* in, int in_h, int in_w, int out_h, int out_w, Resample mode) {
    if (out_w <= 0 || out_h <= 0 || in_w <= 0 || in_h <= 0) throw Error("resize of an empty plane", "sizes must be positive");
    std::vector<float> out(static_cast<size_t>(out_h) * out_w);
    if (in_h == out_h && in_w == out_w) {
        std::memcpy(out.data(), in, out.size() * sizeof(float));
        return out;
    }
    if (mode == Resample::Nearest) {
        // ImagingScaleAffine: running double positions starting at half a step, truncated.
        const float box_w = static_cast<float>(in_w), box_h = static_cast<float>(in_h);
        const double a0 = static_cast<double>(box_w) / out_w, a4 = static_cast<double>(box_h) / out_h;
        std::vector<int> xin(out_w, -1);
        double xo = 0.0 + a0 * 0.5;
        for (int x = 0; x < out_w; ++x) {
            const int xi = xo < 0.0 ? -1 : static_cast<int>(xo);
            xin[x] = (xi >= 0 && xi < in_w) ? xi : -1;
            xo += a0;
        }
        double yo = 0.0 + a4 * 0.5;
        for (int y = 0; y < out_h; ++y) {
            const int yi = yo < 0.0 ? -1 : static_cast<int>(yo);
            float* dst = &out[static_cast<size_t>(y) * out_w];
            for (int x = 0; x < out_w; ++x)
                dst[x] = (yi >= 0 && yi < in_h && xin[x] >= 0) ? in[static_cast<size_t>(yi) * in_w + xin[x]] : 0.0f;
            yo += a4;
        }
        return out;
    }
    // BILINEAR on mode "F": same coefficients, double accumulation, float storage between passes.
    const bool need_h = out_w != in_w, need_v = out_h != in_h;
    Coeffs vert = precompute(in_h, out_h);
    const int ybox_first = vert.bounds[0];
    const int ybox_last = vert.bounds[out_h * 2 - 2] + vert.bounds[out_h * 2 - 1];
    std::vector<float> tmp;
    const float* src = in;
    int src_w = in_w;
    if (need_h) {
        const Coeffs horiz = precompute(in_w, out_w);
        for (int i = 0; i < out_h; ++i) vert.bounds[i * 2] -= ybox_first;
        const int rows = ybox_last - ybox_first;
        tmp.resize(static_cast<size_t>(rows) * out_w);
        for (int yy = 0; yy < rows; ++yy) {
            const float* row = in + static_cast<size_t>(yy + ybox_first) * in_w;
            for (int xx = 0; xx < out_w; ++xx) {
                const int xmin = horiz.bounds[xx * 2], xmax = horiz.bounds[xx * 2 + 1];
                const double* k = &horiz.kk[static_cast<size_t>(xx) * horiz.ksize];
                double ss = 0.0;
                for (int x = 0; x < xmax; ++x) ss += row[x + xmin] * k[x];
                tmp[static_cast<size_t>(yy) * out_w + xx] = static_cast<float>(ss);
            }
        }
        src = tmp.data();
        src_w = out_w;
    }
    if (!need_v) {
        std::memcpy(out.data(), src, out.size() * sizeof(float));
        return out;
    }
    for (int yy = 0; yy < out_h; ++yy) {
        const int ymin = vert.bounds[yy * 2], ymax = vert.bounds[yy * 2 + 1];
        const double* k = &vert.kk[static_cast<size_t>(yy) * vert.ksize];
        for (int xx = 0; xx < src_w; ++xx) {
            double ss = 0.0;
            for (int y = 0; y < ymax; ++y) ss += src[static_cast<size_t>(y + ymin) * src_w + xx] * k[y];
            out[static_cast<size_t>(yy) * out_w + xx] = static_cast<float>(ss);
        }
    }
    return out;
}

}  // namespace lotus
