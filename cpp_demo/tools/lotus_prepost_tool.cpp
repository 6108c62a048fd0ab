// lotus_prepost_tool: runs one pre/post-processing step of the C++ library on raw buffers, so that
// tests/test_cpp_prepost.py can feed both implementations the same decoded pixels and compare.
//
// Raw files: uint8 interleaved (HWC) for images, native float32 planar (CHW) for tensors.
// Sizes and PreprocessInfo are printed as one JSON line on stdout. Errors: one line, exit 1.
#include "lotus/prepost.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace lotus;

namespace {

const char* kUsage =
    "usage: lotus_prepost_tool COMMAND ARGS\n"
    "  decode IMAGE OUT.rgb                       decode + EXIF + RGB; prints {height,width}\n"
    "  resize IN.rgb H W OUT_H OUT_W OUT.rgb      Pillow BILINEAR (reducing_gap=None)\n"
    "  preprocess IN.rgb H W RES GH GW OUT.f32    steps 2-4 (GH=GW=0: dynamic); prints PreprocessInfo\n"
    "  postprocess IN.f32 C H W H0 W0 RH RW MODE OUT.f32   crop + resize back (MODE nearest|bilinear)\n"
    "  renormalize IN.f32 H W OUT.f32             unit-length normals [3,H,W]\n"
    "  colorize IN.f32 H W REVERSE OUT.rgb        Spectral LUT (REVERSE 0|1)\n"
    "  normals IN.f32 H W OUT.rgb OUT.u16         normals [3,H,W] -> RGB8 and interleaved uint16\n"
    "  depth16 IN.f32 H W OUT.png                 [0,1] -> 16-bit gray PNG\n"
    "  normal16 IN.f32 H W OUT.png                normals [3,H,W] -> 16-bit RGB PNG\n"
    "  lut OUT.rgb                                the 256x3 Spectral table\n";

int to_int(const char* s) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (!end || *end || v < -1000000 || v > 1000000) throw Error(std::string("'") + s + "' is not an integer", "check the arguments (see usage)");
    return static_cast<int>(v);
}

ImageU8 read_rgb(const std::string& path, int h, int w) {
    ImageU8 img(h, w, 3);
    const std::vector<uint8_t> bytes = read_file(path);
    if (bytes.size() != img.data.size())
        throw Error(path + " has " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(img.data.size()), "pass H and W of the raw RGB buffer");
    img.data = bytes;
    return img;
}

TensorF32 read_f32(const std::string& path, int c, int h, int w) {
    TensorF32 t(c, h, w);
    const std::vector<uint8_t> bytes = read_file(path);
    if (bytes.size() != t.data.size() * sizeof(float))
        throw Error(path + " has " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(t.data.size() * 4), "pass C, H and W of the float32 buffer");
    std::memcpy(t.data.data(), bytes.data(), bytes.size());
    return t;
}

void save(const std::string& path, const void* data, size_t size) { write_file(path, data, size, true); }

int run(int argc, char** argv) {
    if (argc < 2) throw Error("no command given", "run with a command (see usage above)");
    const std::string cmd = argv[1];
    auto need = [&](int n) {
        if (argc != n + 2) throw Error(cmd + " takes " + std::to_string(n) + " arguments, got " + std::to_string(argc - 2), "see usage");
    };
    if (cmd == "decode") {
        need(2);
        const ImageU8 img = load_image(argv[2]);
        save(argv[3], img.data.data(), img.data.size());
        std::printf("{\"height\": %d, \"width\": %d}\n", img.height, img.width);
    } else if (cmd == "resize") {
        need(6);
        const ImageU8 out = resize_bilinear(read_rgb(argv[2], to_int(argv[3]), to_int(argv[4])), to_int(argv[6]), to_int(argv[5]));
        save(argv[7], out.data.data(), out.data.size());
    } else if (cmd == "preprocess") {
        need(7);
        PreprocessInfo info;
        const TensorF32 t = preprocess(read_rgb(argv[2], to_int(argv[3]), to_int(argv[4])), to_int(argv[5]), to_int(argv[6]), to_int(argv[7]), 64, &info);
        save(argv[8], t.data.data(), t.data.size() * sizeof(float));
        std::printf("{\"original\": [%d, %d], \"resized\": [%d, %d], \"padded\": [%d, %d]}\n", info.original_h, info.original_w, info.resized_h,
                    info.resized_w, info.padded_h, info.padded_w);
    } else if (cmd == "postprocess") {
        need(10);
        const std::string mode = argv[10];
        if (mode != "nearest" && mode != "bilinear") throw Error("resample '" + mode + "' is not nearest or bilinear", "use nearest (upstream) or bilinear");
        PreprocessInfo info;
        info.original_h = to_int(argv[6]);
        info.original_w = to_int(argv[7]);
        info.resized_h = to_int(argv[8]);
        info.resized_w = to_int(argv[9]);
        const TensorF32 in = read_f32(argv[2], to_int(argv[3]), to_int(argv[4]), to_int(argv[5]));
        info.padded_h = in.height;
        info.padded_w = in.width;
        const TensorF32 out = crop_and_resize(in, info, mode == "nearest" ? Resample::Nearest : Resample::Bilinear);
        save(argv[11], out.data.data(), out.data.size() * sizeof(float));
    } else if (cmd == "renormalize") {
        need(4);
        TensorF32 t = read_f32(argv[2], 3, to_int(argv[3]), to_int(argv[4]));
        renormalize_normals(t);
        save(argv[5], t.data.data(), t.data.size() * sizeof(float));
    } else if (cmd == "colorize") {
        need(5);
        const int h = to_int(argv[3]), w = to_int(argv[4]);
        const TensorF32 d = read_f32(argv[2], 1, h, w);
        const ImageU8 rgb = colorize_depth(d.data.data(), h, w, to_int(argv[5]) != 0);
        save(argv[6], rgb.data.data(), rgb.data.size());
    } else if (cmd == "normals") {
        need(5);
        const TensorF32 n = read_f32(argv[2], 3, to_int(argv[3]), to_int(argv[4]));
        const ImageU8 rgb = normals_to_rgb(n);
        const std::vector<uint16_t> u16 = normals_to_uint16(n);
        save(argv[5], rgb.data.data(), rgb.data.size());
        save(argv[6], u16.data(), u16.size() * sizeof(uint16_t));
    } else if (cmd == "depth16") {
        need(4);
        const int h = to_int(argv[3]), w = to_int(argv[4]);
        const TensorF32 d = read_f32(argv[2], 1, h, w);
        const std::vector<uint16_t> u16 = to_uint16(d.data.data(), d.data.size());
        write_png16(argv[5], u16.data(), h, w, 1, true);
    } else if (cmd == "normal16") {
        need(4);
        const int h = to_int(argv[3]), w = to_int(argv[4]);
        const std::vector<uint16_t> u16 = normals_to_uint16(read_f32(argv[2], 3, h, w));
        write_png16(argv[5], u16.data(), h, w, 3, true);
    } else if (cmd == "lut") {
        need(1);
        save(argv[2], spectral_lut(), sizeof(uint8_t) * 256 * 3);
    } else {
        throw Error("unknown command '" + cmd + "'", "see usage");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        if (argc < 2) std::fputs(kUsage, stderr);
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
