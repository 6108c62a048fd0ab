// Lotus-D pre/post-processing in C++17, step for step as ../shared/docs/contract.md specifies and as
// lotus_deploy/image/preprocess.py + postprocess.py implement it. No TensorRT or CUDA here: this library
// builds and is tested everywhere; the demo program links it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lotus {

// An expected, user-facing failure: what() is one line, "cause — fix".
class Error : public std::runtime_error {
public:
    Error(const std::string& cause, const std::string& fix)
        : std::runtime_error(fix.empty() ? cause : cause + " \xE2\x80\x94 " + fix) {}
};

// 8-bit image, interleaved rows (HWC). channels is 1, 2, 3 or 4 while decoding; 3 after to_rgb().
struct ImageU8 {
    int height = 0;
    int width = 0;
    int channels = 3;
    std::vector<uint8_t> data;

    ImageU8() = default;
    ImageU8(int h, int w, int c) : height(h), width(w), channels(c), data(static_cast<size_t>(h) * w * c) {}
    uint8_t* row(int y) { return data.data() + static_cast<size_t>(y) * width * channels; }
    const uint8_t* row(int y) const { return data.data() + static_cast<size_t>(y) * width * channels; }
};

// float32 tensor, planar (CHW): the graph's input without the batch axis, or one image's output.
struct TensorF32 {
    int channels = 0;
    int height = 0;
    int width = 0;
    std::vector<float> data;

    TensorF32() = default;
    TensorF32(int c, int h, int w) : channels(c), height(h), width(w), data(static_cast<size_t>(c) * h * w) {}
    float* plane(int c) { return data.data() + static_cast<size_t>(c) * height * width; }
    const float* plane(int c) const { return data.data() + static_cast<size_t>(c) * height * width; }
};

// Sizes (h, w) at each step, so postprocessing can undo padding and resizing.
struct PreprocessInfo {
    int original_h = 0, original_w = 0;
    int resized_h = 0, resized_w = 0;
    int padded_h = 0, padded_w = 0;
};

enum class Resample { Nearest, Bilinear };

// ---- step 1: decode ------------------------------------------------------------------------------

// Decode JPEG or PNG (detected by content, not by name), apply the EXIF orientation, and return RGB
// (gray replicated, alpha dropped, 16-bit reduced to the high byte). Throws Error when unreadable.
ImageU8 load_image(const std::string& path);
ImageU8 decode_image(const uint8_t* bytes, size_t size, const std::string& name_for_errors);

// EXIF Orientation (1..8) from a JPEG's APP1 segment; 1 when absent or malformed.
int jpeg_exif_orientation(const uint8_t* bytes, size_t size);
// Orientation from a TIFF-structured EXIF block (starting at "II*\0" / "MM\0*"); 1 when absent.
int tiff_exif_orientation(const uint8_t* tiff, size_t size);
// Transpose/flip so the image displays upright, as PIL.ImageOps.exif_transpose does.
ImageU8 apply_orientation(const ImageU8& img, int orientation);
// Gray → RGB by replication, gray+alpha / RGBA → RGB by dropping alpha.
ImageU8 to_rgb(const ImageU8& img);

// ---- steps 2-4: resize, pad, normalize -----------------------------------------------------------

// Pillow Image.resize(size, BILINEAR, reducing_gap=None) on 8-bit images, bit-exact: separable
// triangle filter whose support grows with the shrink factor, 22-bit fixed-point coefficients,
// horizontal pass (rounded to uint8) then vertical pass.
ImageU8 resize_bilinear(const ImageU8& img, int out_w, int out_h);
// Long edge to processing_res (sizes truncated like upstream); processing_res <= 0 keeps the image.
ImageU8 resize_long_edge(const ImageU8& img, int processing_res);
// Shrink an image larger than height x width (aspect kept) so it fits; smaller ones are unchanged.
ImageU8 fit_inside(const ImageU8& img, int height, int width);
// Pad right and bottom by edge replication to exactly height x width.
ImageU8 pad_to(const ImageU8& img, int height, int width);
// x / 127.5 - 1 in float32, HWC uint8 → CHW float.
TensorF32 normalize(const ImageU8& rgb);
// All of steps 2-4. graph_h = graph_w = 0 means a dynamic graph (pad to the next multiple).
TensorF32 preprocess(const ImageU8& rgb, int processing_res, int graph_h, int graph_w, int multiple, PreprocessInfo* info);

// ---- step 5: after the graph ---------------------------------------------------------------------

// Pillow resize of a mode "F" plane: NEAREST (ImagingScaleAffine) or BILINEAR (32-bit float passes).
std::vector<float> resize_plane(const float* in, int in_h, int in_w, int out_h, int out_w, Resample mode);
// [C,H,W] output → [C,h0,w0]: crop to info.resized, resize to info.original.
TensorF32 crop_and_resize(const TensorF32& out, const PreprocessInfo& info, Resample mode);
// Normals back to unit length (after a bilinear resize); zero vectors stay zero.
void renormalize_normals(TensorF32& normals);

// The 256-entry Spectral table (matplotlib's, bytes=True) and the depth colorizer using it.
const uint8_t (&spectral_lut())[256][3];
ImageU8 colorize_depth(const float* depth, int height, int width, bool reverse);
// Normals [3,H,W] in [-1, 1] → RGB round((n + 1) / 2 * 255).
ImageU8 normals_to_rgb(const TensorF32& normals);
// [0, 1] → round(v * 65535), clipped; NaN → 0.
std::vector<uint16_t> to_uint16(const float* values, size_t count);
// Normals [3,H,W] → interleaved uint16 RGB of (n + 1) / 2.
std::vector<uint16_t> normals_to_uint16(const TensorF32& normals);

// ---- files ---------------------------------------------------------------------------------------

// PNG writers; write a temporary file beside `path` and rename it into place. An existing `path`
// is an Error unless `force`.
void write_png8(const std::string& path, const ImageU8& img, bool force);
void write_png16(const std::string& path, const uint16_t* pixels, int height, int width, int channels, bool force);
// Raw bytes, same atomic rule (used by the comparison tool).
void write_file(const std::string& path, const void* bytes, size_t size, bool force);
std::vector<uint8_t> read_file(const std::string& path);

}  // namespace lotus
