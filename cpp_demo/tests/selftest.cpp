// C++-only checks of lotus_prepost and the manifest rule (no Python needed). The comparison with
// the Python implementation on real photos is tests/test_cpp_prepost.py, which CTest also runs.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>  // before jpeglib.h, which needs FILE and size_t
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "lotus/manifest.hpp"
#include "lotus/prepost.hpp"

using namespace lotus;

namespace {

int failures = 0;
int checks = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        ++checks;                                                                     \
        if (!(cond)) {                                                                \
            ++failures;                                                               \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                             \
    } while (0)

bool throws_with(const std::function<void()>& fn, const std::string& needle) {
    try {
        fn();
    } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.find(needle) == std::string::npos) std::fprintf(stderr, "  message was: %s\n", msg.c_str());
        return msg.find(needle) != std::string::npos && msg.find('\n') == std::string::npos;
    }
    return false;
}

// A JPEG (quality 100, 4:4:4) of `img`, with an EXIF APP1 segment carrying `orientation` (0 = none).
std::vector<uint8_t> make_jpeg(const ImageU8& img, int orientation, bool big_endian) {
    jpeg_compress_struct cinfo;
    jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buf, &size);
    cinfo.image_width = img.width;
    cinfo.image_height = img.height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 100, TRUE);
    for (int i = 0; i < cinfo.num_components; ++i) cinfo.comp_info[i].h_samp_factor = cinfo.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(img.row(static_cast<int>(cinfo.next_scanline)));
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    std::vector<uint8_t> out(buf, buf + size);
    jpeg_destroy_compress(&cinfo);
    std::free(buf);
    if (orientation == 0) return out;
    // APP1: "Exif\0\0" + TIFF header + IFD0 with one entry (0x0112 SHORT 1 orientation).
    std::vector<uint8_t> tiff;
    auto put16 = [&](unsigned v) {
        if (big_endian) { tiff.push_back(uint8_t(v >> 8)); tiff.push_back(uint8_t(v)); }
        else { tiff.push_back(uint8_t(v)); tiff.push_back(uint8_t(v >> 8)); }
    };
    auto put32 = [&](unsigned v) {
        if (big_endian) { put16(v >> 16); put16(v & 0xFFFF); }
        else { put16(v & 0xFFFF); put16(v >> 16); }
    };
    tiff.push_back(big_endian ? 'M' : 'I');
    tiff.push_back(big_endian ? 'M' : 'I');
    put16(42);
    put32(8);
    put16(2);  // two entries: an unrelated one first
    put16(0x010F); put16(2); put32(4); put32(0);   // Make (ASCII, 4 bytes inline)
    put16(0x0112); put16(3); put32(1); put16(static_cast<unsigned>(orientation)); put16(0);
    put32(0);  // no next IFD
    std::vector<uint8_t> seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
    seg.insert(seg.end(), tiff.begin(), tiff.end());
    const size_t len = seg.size() - 2;
    seg[2] = uint8_t(len >> 8);
    seg[3] = uint8_t(len);
    out.insert(out.begin() + 2, seg.begin(), seg.end());
    return out;
}

ImageU8 blocks() {
    // 16 high x 32 wide; the top-left 8x8 block red, the rest dark gray (blocks survive JPEG).
    ImageU8 img(16, 32, 3);
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 32; ++x) {
            uint8_t* p = img.row(y) + x * 3;
            const bool red = y < 8 && x < 8;
            p[0] = red ? 255 : 40;
            p[1] = red ? 0 : 40;
            p[2] = red ? 0 : 40;
        }
    return img;
}

bool is_red(const ImageU8& img, int y, int x) {
    const uint8_t* p = img.row(y) + x * 3;
    return p[0] > 200 && p[1] < 60 && p[2] < 60;
}

void test_exif_jpeg(const std::string& dir) {
    const ImageU8 src = blocks();
    // Where the stored top-left block lands after exif_transpose, for orientations 1..8
    // (block centre (4, 4) in a 16x32 stored image); shapes swap for 5..8.
    const int expect_y[9] = {0, 4, 4, 11, 11, 4, 4, 27, 27};
    const int expect_x[9] = {0, 4, 27, 27, 4, 4, 11, 11, 4};
    for (int o = 1; o <= 8; ++o) {
        for (int big = 0; big < 2; ++big) {
            const std::vector<uint8_t> jpeg = make_jpeg(src, o, big != 0);
            CHECK(jpeg_exif_orientation(jpeg.data(), jpeg.size()) == o);
            const std::string path = dir + "/rot" + std::to_string(o) + (big ? "mm" : "ii") + ".jpg";
            write_file(path, jpeg.data(), jpeg.size(), true);
            const ImageU8 img = load_image(path);
            CHECK(img.channels == 3);
            CHECK((o >= 5) ? (img.height == 32 && img.width == 16) : (img.height == 16 && img.width == 32));
            CHECK(is_red(img, expect_y[o], expect_x[o]));
            int red = 0;
            for (int y = 0; y < img.height; ++y)
                for (int x = 0; x < img.width; ++x) red += is_red(img, y, x);
            CHECK(red > 50 && red <= 64);
        }
    }
    const std::vector<uint8_t> plain = make_jpeg(src, 0, false);
    CHECK(jpeg_exif_orientation(plain.data(), plain.size()) == 1);
    // a truncated JPEG is an error, as in Pillow
    const std::string cut = dir + "/cut.jpg";
    write_file(cut, plain.data(), plain.size() - 4, true);  // cut inside the scan data
    CHECK(throws_with([&] { load_image(cut); }, "truncated"));
    const std::string headless = dir + "/headless.jpg";
    write_file(headless, plain.data(), plain.size() / 4, true);  // cut before the scan starts
    CHECK(throws_with([&] { load_image(headless); }, "cannot read image"));
}

void test_orientation_table() {
    ImageU8 img(2, 3, 1);
    for (int i = 0; i < 6; ++i) img.data[i] = uint8_t(i);  // [[0 1 2] [3 4 5]]
    const std::vector<std::vector<uint8_t>> expected = {
        {}, {0, 1, 2, 3, 4, 5}, {2, 1, 0, 5, 4, 3}, {5, 4, 3, 2, 1, 0}, {3, 4, 5, 0, 1, 2},
        {0, 3, 1, 4, 2, 5},  // 5 transpose
        {3, 0, 4, 1, 5, 2},  // 6 rotate 90° clockwise
        {5, 2, 4, 1, 3, 0},  // 7 transverse
        {2, 5, 1, 4, 0, 3},  // 8 rotate 90° counter-clockwise
    };
    for (int o = 1; o <= 8; ++o) CHECK(apply_orientation(img, o).data == expected[o]);
}

void test_resize_and_pad() {
    ImageU8 flat(37, 53, 3);
    std::fill(flat.data.begin(), flat.data.end(), 77);
    for (const auto& size : std::vector<std::pair<int, int>>{{10, 7}, {53, 20}, {100, 90}, {1, 1}}) {
        const ImageU8 r = resize_bilinear(flat, size.first, size.second);
        CHECK(r.width == size.first && r.height == size.second);
        bool all = true;
        for (uint8_t v : r.data) all = all && v == 77;
        CHECK(all);  // normalized weights: a flat image stays flat at every scale
    }
    const ImageU8 big(2040, 3072, 3);
    const ImageU8 r = resize_long_edge(big, 768);
    CHECK(r.height == 510 && r.width == 768);
    const ImageU8 odd(982, 1474, 3);
    const ImageU8 r2 = resize_long_edge(odd, 768);
    CHECK(r2.height == 511 && r2.width == 767);  // upstream's int() truncation of 767.999...
    CHECK(fit_inside(ImageU8(300, 1000, 3), 512, 512).height == 153);

    ImageU8 small(2, 2, 3);
    for (int i = 0; i < 12; ++i) small.data[i] = uint8_t(i * 10);
    const ImageU8 p = pad_to(small, 3, 4);
    CHECK(p.height == 3 && p.width == 4);
    CHECK(std::memcmp(p.row(2), p.row(1), 12) == 0);                 // bottom row replicated
    CHECK(std::memcmp(p.row(0) + 9, p.row(0) + 3, 3) == 0);          // right column replicated
    CHECK(throws_with([&] { pad_to(small, 1, 4); }, "cannot pad"));

    PreprocessInfo info;
    const TensorF32 t = preprocess(small, 0, 0, 0, 64, &info);
    CHECK(t.channels == 3 && t.height == 64 && t.width == 64);
    CHECK(info.resized_h == 2 && info.padded_w == 64);
    CHECK(t.plane(0)[0] == -1.0f);
    CHECK(t.plane(1)[1] == 40.0f / 127.5f - 1.0f);
    CHECK(throws_with([&] { preprocess(small, 0, 500, 512, 64, nullptr); }, "multiple of 64"));
}

void test_post() {
    TensorF32 out(1, 2, 2);
    out.data = {0.0f, 1.0f, 0.0f, 1.0f};
    PreprocessInfo info;
    info.original_h = 4; info.original_w = 4; info.resized_h = 2; info.resized_w = 2; info.padded_h = 2; info.padded_w = 2;
    const TensorF32 near = crop_and_resize(out, info, Resample::Nearest);
    CHECK((std::vector<float>(near.data.begin(), near.data.begin() + 4) == std::vector<float>{0, 0, 1, 1}));
    const TensorF32 bil = crop_and_resize(out, info, Resample::Bilinear);
    CHECK(std::fabs(bil.data[1] - 0.25f) < 1e-6f && std::fabs(bil.data[2] - 0.75f) < 1e-6f);

    TensorF32 n(3, 1, 2);
    n.data = {0.3f, 0.0f, 0.0f, 0.0f, 0.4f, 0.0f};  // (0.3, 0, 0.4) and a zero vector
    renormalize_normals(n);
    CHECK(std::fabs(n.data[0] - 0.6f) < 1e-6f && std::fabs(n.data[4] - 0.8f) < 1e-6f);
    CHECK(n.data[1] == 0.0f && n.data[3] == 0.0f && n.data[5] == 0.0f);

    const float depth[3] = {0.0f, 1.0f, NAN};
    const ImageU8 c = colorize_depth(depth, 1, 3, false);
    CHECK(c.data[0] == 158 && c.data[1] == 1 && c.data[2] == 66);
    CHECK(c.data[3] == 94 && c.data[4] == 79 && c.data[5] == 162);
    CHECK(c.data[6] == 158);
    const ImageU8 cr = colorize_depth(depth, 1, 3, true);
    CHECK(cr.data[0] == 94 && cr.data[3] == 158);
    const float d16[4] = {0.0f, 1.0f, 0.5f, 2.0f};
    CHECK((to_uint16(d16, 4) == std::vector<uint16_t>{0, 65535, 32768, 65535}));
}

void test_files_and_errors(const std::string& dir) {
    const std::string png = dir + "/d16.png";
    std::remove(png.c_str());
    const std::vector<uint16_t> px = {0, 256, 65535, 1000};
    write_png16(png, px.data(), 2, 2, 1, false);
    CHECK(throws_with([&] { write_png16(png, px.data(), 2, 2, 1, false); }, "already exists"));
    const ImageU8 back = load_image(png);  // 16-bit decodes to the high byte
    CHECK(back.height == 2 && back.data[0] == 0 && back.data[3] == 1 && back.data[6] == 255 && back.data[9] == 3);
    const std::string junk = dir + "/x.jpg";
    const char garbage[] = "definitely not an image";
    write_file(junk, garbage, sizeof garbage, true);
    CHECK(throws_with([&] { load_image(junk); }, "cannot read image"));
    const std::string fake_jpeg = dir + "/y.jpg";
    const unsigned char header[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0};
    write_file(fake_jpeg, header, sizeof header, true);
    CHECK(throws_with([&] { load_image(fake_jpeg); }, "cannot read image"));
    CHECK(throws_with([&] { load_image(dir + "/missing.png"); }, "cannot read image"));
}

void test_manifest(const std::string& dir) {
    const Json j = parse_json(R"({"task": "depth", "tensorrt": {"version": "10.3.0.30", "compute_capability": "8.7"},
                                  "list": [1, 2.5e3, true, null, "a\u00e9\n"]})", "t.json");
    CHECK(j.find("tensorrt.version") && j.find("tensorrt.version")->string == "10.3.0.30");
    CHECK(j.find("list")->array.size() == 5 && j.find("list")->array[1].number == 2500.0);
    CHECK(j.find("list")->array[4].string == "a\xC3\xA9\n");
    CHECK(j.find("tensorrt.missing") == nullptr && j.find("task.deeper") == nullptr);
    CHECK(throws_with([] { parse_json("{\"a\": }", "bad.json"); }, "bad.json is not valid JSON"));
    CHECK(throws_with([] { parse_json("{} x", "bad.json"); }, "trailing"));

    const std::string art = dir + "/artifact";
    ::mkdir(art.c_str(), 0755);
    const std::string engine = art + "/model.engine";
    std::remove((art + "/manifest.json").c_str());  // left by an earlier run
    EngineManifest none = read_engine_manifest(engine);
    CHECK(!none.present);
    const std::string text = R"({"schema_version": 1, "kind": "tensorrt", "task": "depth", "output_meaning": "disparity",
        "tensorrt": {"version": "10.3.0.30", "compute_capability": "8.7", "gpu": "Orin"}})";
    write_file(art + "/manifest.json", text.data(), text.size(), true);
    const EngineManifest m = read_engine_manifest(engine);
    CHECK(m.present && m.task == "depth" && m.meaning == "disparity" && m.tensorrt_version == "10.3.0.30" && m.compute_capability == "8.7");
    check_engine_compatible(m, "10.3.0", "8.7");  // must not throw
    CHECK(throws_with([&] { check_engine_compatible(m, "10.13.0", "8.7"); }, "built with TensorRT 10.3.0.30"));
    CHECK(throws_with([&] { check_engine_compatible(m, "10.3.0", "8.9"); }, "compute capability 8.7"));
    CHECK(version_prefix("10.3.0.30", 3) == "10.3.0" && version_prefix("10.3", 3) == "10.3");

    CHECK(m.processing_res == 0 && effective_processing_res(-1, m) == 768 && effective_processing_res(512, m) == 512);
    const std::string declared = R"({"task": "depth", "source": {"model": "builtin:demo", "processing_res": 256}})";
    write_file(art + "/manifest.json", declared.data(), declared.size(), true);
    const EngineManifest d = read_engine_manifest(engine);
    CHECK(d.processing_res == 256 && effective_processing_res(-1, d) == 256 && effective_processing_res(0, d) == 0);
    const std::string bad = R"({"task": "depth", "source": {"processing_res": "256px"}})";
    write_file(art + "/manifest.json", bad.data(), bad.size(), true);
    CHECK(throws_with([&] { read_engine_manifest(engine); }, "source.processing_res is not a positive whole number"));
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    ::mkdir(dir.c_str(), 0755);
    try {
        test_orientation_table();
        test_exif_jpeg(dir);
        test_resize_and_pad();
        test_post();
        test_files_and_errors(dir);
        test_manifest(dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAIL: unexpected exception: %s\n", e.what());
        return 1;
    }
    std::printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
