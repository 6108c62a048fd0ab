// Files: atomic writes (temporary file beside the target, then rename) that never overwrite
// silently, and 8/16-bit PNG writers on libpng.
#include "lotus/prepost.hpp"

#include <png.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

namespace lotus {
namespace {

bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::string temp_beside(const std::string& path) {
    static std::atomic<unsigned> counter{0};
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    return dir + "." + name + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".tmp";
}

void refuse_existing(const std::string& path, bool force) {
    if (!force && exists(path)) throw Error(path + " already exists", "pass --force to overwrite it, or choose another output folder");
}

// Runs write(FILE*) into a temporary file, then renames it over `path`.
template <typename Fn>
void write_atomic(const std::string& path, bool force, Fn&& write) {
    refuse_existing(path, force);
    const std::string tmp = temp_beside(path);
    std::FILE* f = std::fopen(tmp.c_str(), "wbx");
    if (!f) throw Error("cannot create " + tmp + ": " + std::strerror(errno), "check the output folder exists and is writable");
    bool ok = false;
    std::string why;
    try {
        ok = write(f, why);
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string reason = why.empty() ? std::strerror(errno) : why;
        std::remove(tmp.c_str());
        throw Error("cannot write " + path + ": " + reason, "check free space and permissions");
    }
}

struct PngWriteErr {
    char message[256];
};
void png_write_fail(png_structp png, png_const_charp msg) {
    auto* err = static_cast<PngWriteErr*>(png_get_error_ptr(png));
    std::snprintf(err->message, sizeof err->message, "%s", msg);
    png_longjmp(png, 1);
}
void png_write_quiet(png_structp, png_const_charp) {}

// No C++ objects with destructors between setjmp and the libpng calls that may longjmp.
int png_encode(std::FILE* f, const uint8_t* pixels, int height, int width, int channels, int bit_depth, PngWriteErr* err) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err, png_write_fail, png_write_quiet);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        std::snprintf(err->message, sizeof err->message, "out of memory");
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_init_io(png, f);
    const int color = channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
    png_set_IHDR(png, info, width, height, bit_depth, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const uint16_t probe = 1;
    if (bit_depth == 16 && *reinterpret_cast<const uint8_t*>(&probe) == 1) png_set_swap(png);  // PNG is big-endian
    const size_t stride = size_t(width) * channels * (bit_depth / 8);
    for (int y = 0; y < height; ++y) png_write_row(png, const_cast<png_bytep>(pixels + y * stride));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return 0;
}

void write_png(const std::string& path, const uint8_t* pixels, int height, int width, int channels, int bit_depth, bool force) {
    if (height <= 0 || width <= 0 || (channels != 1 && channels != 3))
        throw Error("cannot write a " + std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels) + " PNG", "pass a gray or RGB image");
    write_atomic(path, force, [&](std::FILE* f, std::string& why) {
        PngWriteErr err{};
        if (png_encode(f, pixels, height, width, channels, bit_depth, &err)) {
            why = err.message;
            return false;
        }
        return true;
    });
}

}  // namespace

void write_png8(const std::string& path, const ImageU8& img, bool force) {
    write_png(path, img.data.data(), img.height, img.width, img.channels, 8, force);
}

void write_png16(const std::string& path, const uint16_t* pixels, int height, int width, int channels, bool force) {
    write_png(path, reinterpret_cast<const uint8_t*>(pixels), height, width, channels, 16, force);
}

void write_file(const std::string& path, const void* bytes, size_t size, bool force) {
    write_atomic(path, force, [&](std::FILE* f, std::string&) { return std::fwrite(bytes, 1, size, f) == size; });
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno), "check the path");
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) throw Error("cannot read " + path, "check the file is readable (not a folder)");
    return bytes;
}

}  // namespace lotus
