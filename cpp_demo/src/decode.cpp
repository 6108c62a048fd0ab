// Step 1 of docs/contract.md: decode (libjpeg / libpng), EXIF orientation, gray/alpha → RGB.
// Mirrors lotus_deploy.image.preprocess.load_image (Pillow + ImageOps.exif_transpose).
#include "lotus/prepost.hpp"

#include <csetjmp>
#include <cstdio>  // before jpeglib.h, which needs FILE and size_t
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

namespace lotus {
namespace {

[[noreturn]] void unreadable(const std::string& name, const std::string& why) {
    throw Error("cannot read image " + name + ": " + why, "check the file is a complete JPEG or PNG image");
}

uint16_t get16(const uint8_t* p, bool big) { return big ? uint16_t(p[0] << 8 | p[1]) : uint16_t(p[1] << 8 | p[0]); }
uint32_t get32(const uint8_t* p, bool big) {
    return big ? (uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3])
               : (uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]);
}

// ---- JPEG (libjpeg): errors leave through longjmp; no C++ object with a destructor lives in the
// frames between setjmp and longjmp (the pixel buffer is owned by the caller).
struct JpegErr {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool truncated;
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

void jpeg_note(j_common_ptr cinfo, int level) {
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    // Pillow reports a premature end of data as "image file is truncated"; so do we. Other
    // warnings (corrupt-but-decodable data) are tolerated, as Pillow tolerates them.
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = true;
}

// Returns 0 on success, or 1 with err->message set. Phase 1 (pixels == nullptr) reads the header.
int jpeg_run(jpeg_decompress_struct* cinfo, JpegErr* err, const uint8_t* bytes, size_t size, uint8_t* pixels, int* hwc) {
    if (setjmp(err->jump)) {
        jpeg_destroy_decompress(cinfo);
        return 1;
    }
    if (pixels == nullptr) {
        jpeg_create_decompress(cinfo);
        jpeg_mem_src(cinfo, const_cast<unsigned char*>(bytes), static_cast<unsigned long>(size));
        jpeg_read_header(cinfo, TRUE);
        if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
            std::snprintf(err->message, sizeof err->message, "CMYK JPEG is not supported by the C++ reader");
            jpeg_destroy_decompress(cinfo);
            return 1;
        }
        cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_start_decompress(cinfo);
        hwc[0] = static_cast<int>(cinfo->output_height);
        hwc[1] = static_cast<int>(cinfo->output_width);
        hwc[2] = cinfo->output_components;
        return 0;
    }
    const size_t stride = static_cast<size_t>(hwc[1]) * hwc[2];
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = pixels + cinfo->output_scanline * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
        if (err->truncated) {
            std::snprintf(err->message, sizeof err->message, "image file is truncated");
            jpeg_destroy_decompress(cinfo);
            return 1;
        }
    }
    jpeg_finish_decompress(cinfo);
    jpeg_destroy_decompress(cinfo);
    return 0;
}

ImageU8 decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name) {
    jpeg_decompress_struct cinfo;
    JpegErr err{};
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_note;
    int hwc[3] = {0, 0, 0};
    if (jpeg_run(&cinfo, &err, bytes, size, nullptr, hwc)) unreadable(name, err.message);
    ImageU8 img;
    try {
        img = ImageU8(hwc[0], hwc[1], hwc[2]);
    } catch (...) {
        jpeg_destroy_decompress(&cinfo);
        throw;
    }
    if (jpeg_run(&cinfo, &err, bytes, size, img.data.data(), hwc)) unreadable(name, err.message);
    return apply_orientation(img, jpeg_exif_orientation(bytes, size));
}

// ---- PNG (libpng, classic API: the simplified API would composite alpha and touch gamma) --------
struct PngSource {
    const uint8_t* bytes;
    size_t size;
    size_t pos;
};

void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
    if (src->size - src->pos < n) png_error(png, "image file is truncated");
    std::memcpy(out, src->bytes + src->pos, n);
    src->pos += n;
}

struct PngOut {
    int h, w, c, orientation;
    char message[256];
};

void png_fail(png_structp png, png_const_charp msg) {
    auto* out = static_cast<PngOut*>(png_get_error_ptr(png));
    std::snprintf(out->message, sizeof out->message, "%s", msg);
    png_longjmp(png, 1);
}
void png_quiet(png_structp, png_const_charp) {}

int png_run(png_structp png, png_infop info, PngOut* out, uint8_t* pixels) {
    if (setjmp(png_jmpbuf(png))) return 1;
    if (pixels == nullptr) {
        png_read_info(png, info);
        const int bit_depth = png_get_bit_depth(png, info);
        const int color = png_get_color_type(png, info);
        if (bit_depth == 16) png_set_strip_16(png);  // high byte, as Pillow's 16→8-bit unpackers
        if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);  // drop, never composite
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        out->h = static_cast<int>(png_get_image_height(png, info));
        out->w = static_cast<int>(png_get_image_width(png, info));
        out->c = png_get_channels(png, info);
        out->orientation = 1;
#ifdef PNG_eXIf_SUPPORTED
        png_bytep exif = nullptr;
        png_uint_32 exif_size = 0;
        if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif != nullptr)
            out->orientation = tiff_exif_orientation(exif, exif_size);
#endif
        return 0;
    }
    std::vector<png_bytep> rows_unused;  // (not used: rows are set below without allocation)
    const size_t stride = static_cast<size_t>(out->w) * out->c;
    const int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; ++pass)
        for (int y = 0; y < out->h; ++y) png_read_row(png, pixels + y * stride, nullptr);
    png_read_end(png, nullptr);
    return 0;
}

ImageU8 decode_png(const uint8_t* bytes, size_t size, const std::string& name) {
    PngOut out{};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &out, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw std::bad_alloc();
    }
    PngSource src{bytes, size, 0};
    png_set_read_fn(png, &src, png_read_mem);
    if (png_run(png, info, &out, nullptr)) {
        png_destroy_read_struct(&png, &info, nullptr);
        unreadable(name, out.message);
    }
    ImageU8 img;
    try {
        img = ImageU8(out.h, out.w, out.c);
    } catch (...) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw;
    }
    const int failed = png_run(png, info, &out, img.data.data());
    png_destroy_read_struct(&png, &info, nullptr);
    if (failed) unreadable(name, out.message);
    return apply_orientation(img, out.orientation);
}

}  // namespace

int tiff_exif_orientation(const uint8_t* t, size_t n) {
    if (n < 8) return 1;
    bool big;
    if (t[0] == 'I' && t[1] == 'I' && get16(t + 2, false) == 42) big = false;
    else if (t[0] == 'M' && t[1] == 'M' && get16(t + 2, true) == 42) big = true;
    else return 1;
    const uint32_t ifd = get32(t + 4, big);
    if (ifd > n - 2 || ifd < 8) return 1;
    const uint16_t entries = get16(t + ifd, big);
    for (uint32_t i = 0; i < entries; ++i) {
        const size_t at = ifd + 2 + size_t(i) * 12;
        if (at + 12 > n) return 1;
        if (get16(t + at, big) != 0x0112) continue;
        const uint16_t type = get16(t + at + 2, big);
        const uint16_t value = type == 3 ? get16(t + at + 8, big) : type == 4 ? uint16_t(get32(t + at + 8, big)) : 0;
        return value >= 1 && value <= 8 ? value : 1;
    }
    return 1;
}

int jpeg_exif_orientation(const uint8_t* b, size_t n) {
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return 1;
    size_t pos = 2;
    while (pos + 4 <= n) {
        if (b[pos] != 0xFF) return 1;
        const uint8_t marker = b[pos + 1];
        if (marker == 0xFF) { ++pos; continue; }  // fill byte
        if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) { pos += 2; continue; }
        if (marker == 0xDA || marker == 0xD9) return 1;  // image data starts: no EXIF before it
        const size_t len = size_t(b[pos + 2]) << 8 | b[pos + 3];
        if (len < 2 || pos + 2 + len > n) return 1;
        const uint8_t* seg = b + pos + 4;
        if (marker == 0xE1 && len >= 8 && std::memcmp(seg, "Exif\0\0", 6) == 0) return tiff_exif_orientation(seg + 6, len - 8);
        pos += 2 + len;
    }
    return 1;
}

ImageU8 apply_orientation(const ImageU8& in, int orientation) {
    if (orientation <= 1 || orientation > 8) return in;
    const int H = in.height, W = in.width, C = in.channels;
    const bool swap = orientation >= 5;  // 5..8 transpose the axes
    ImageU8 out(swap ? W : H, swap ? H : W, C);
    for (int y = 0; y < out.height; ++y) {
        uint8_t* dst = out.row(y);
        for (int x = 0; x < out.width; ++x) {
            int sy = y, sx = x;
            switch (orientation) {
                case 2: sx = W - 1 - x; break;                      // FLIP_LEFT_RIGHT
                case 3: sy = H - 1 - y; sx = W - 1 - x; break;      // ROTATE_180
                case 4: sy = H - 1 - y; break;                      // FLIP_TOP_BOTTOM
                case 5: sy = x; sx = y; break;                      // TRANSPOSE
                case 6: sy = H - 1 - x; sx = y; break;              // ROTATE_270 (90° clockwise)
                case 7: sy = H - 1 - x; sx = W - 1 - y; break;      // TRANSVERSE
                case 8: sy = x; sx = W - 1 - y; break;              // ROTATE_90 (90° counter-clockwise)
            }
            std::memcpy(dst + size_t(x) * C, in.row(sy) + size_t(sx) * C, C);
        }
    }
    return out;
}

ImageU8 to_rgb(const ImageU8& in) {
    if (in.channels == 3) return in;
    if (in.channels < 1 || in.channels > 4) throw Error("image has " + std::to_string(in.channels) + " channels", "pass a gray, RGB or RGBA image");
    ImageU8 out(in.height, in.width, 3);
    const size_t n = size_t(in.height) * in.width;
    for (size_t i = 0; i < n; ++i) {
        const uint8_t* s = in.data.data() + i * in.channels;
        uint8_t* d = out.data.data() + i * 3;
        if (in.channels <= 2) d[0] = d[1] = d[2] = s[0];  // gray (+ alpha dropped)
        else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }   // RGBA: alpha dropped
    }
    return out;
}

ImageU8 decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return to_rgb(decode_jpeg(bytes, size, name));
    if (size >= 8 && std::memcmp(bytes, png_sig, 8) == 0) return to_rgb(decode_png(bytes, size, name));
    unreadable(name, size == 0 ? "the file is empty" : "not a JPEG or PNG file (the C++ reader supports those two)");
}

ImageU8 load_image(const std::string& path) {
    std::vector<uint8_t> bytes;
    try {
        bytes = read_file(path);
    } catch (const Error&) {
        unreadable(path, "no such file or not readable");
    }
    return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace lotus
