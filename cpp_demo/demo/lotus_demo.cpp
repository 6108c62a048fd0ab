// lotus_demo: run a Lotus-D TensorRT engine on images (and, with OpenCV, on a video or a camera).
//
//   lotus_demo --engine engines/x/model.engine --input photo.jpg|folder [--output out] [--force]
//              [--processing-res N] [--resample nearest|bilinear] [--bench N]
//   lotus_demo --engine ... --video clip.mp4|--camera 0 [--video-out depth.mp4] [--show]
//
// Pre/post-processing is lotus_prepost (docs/contract.md, the same steps as the Python package).
// Expected failures print one line "error: cause — fix" and exit 1; bad usage exits 2.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lotus/prepost.hpp"
#include "trt_runner.hpp"

#ifdef LOTUS_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

using namespace lotus;
using Clock = std::chrono::steady_clock;

namespace {

const char* kUsage =
    "usage: lotus_demo --engine MODEL.engine (--input IMAGE|FOLDER | --video FILE | --camera INDEX) [options]\n"
    "  --output DIR           where images' results go (default: outputs)\n"
    "  --force                overwrite existing result files\n"
    "  --processing-res N     long edge before padding (default: the resolution the engine's manifest\n"
    "                         declares, else 768; 0 keeps the size)\n"
    "  --resample MODE        nearest (default, as upstream) or bilinear, for resizing back\n"
    "  --bench N              time N runs on the first image and print latency percentiles\n"
    "  --warmup N             untimed runs before --bench (default 5)\n"
    "  --video-out FILE       write the colorized stream (OpenCV builds)\n"
    "  --show                 show the stream in a window (OpenCV builds)\n";

struct Options {
    std::string engine, input, output = "outputs", video, video_out, resample = "nearest";
    int camera = -1, processing_res = -1, bench = 0, warmup = 5;  // processing_res -1: not given
    bool force = false, show = false;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int parse_int(const std::string& flag, const char* text) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!end || *end || v < 0 || v > 1000000) throw UsageError(flag + " needs a non-negative integer, got '" + text + "'");
    return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) throw UsageError(a + " needs a value");
            return argv[++i];
        };
        if (a == "--engine") o.engine = value();
        else if (a == "--input") o.input = value();
        else if (a == "--output") o.output = value();
        else if (a == "--video") o.video = value();
        else if (a == "--camera") o.camera = parse_int(a, value());
        else if (a == "--video-out") o.video_out = value();
        else if (a == "--processing-res") o.processing_res = parse_int(a, value());
        else if (a == "--resample") o.resample = value();
        else if (a == "--bench") o.bench = parse_int(a, value());
        else if (a == "--warmup") o.warmup = parse_int(a, value());
        else if (a == "--force") o.force = true;
        else if (a == "--show") o.show = true;
        else if (a == "-h" || a == "--help") throw UsageError("");
        else throw UsageError("unknown option " + a);
    }
    if (o.engine.empty()) throw UsageError("--engine is required");
    const int sources = !o.input.empty() + !o.video.empty() + (o.camera >= 0);
    if (sources != 1) throw UsageError("give exactly one of --input, --video, --camera");
    if (o.resample != "nearest" && o.resample != "bilinear") throw UsageError("--resample is nearest or bilinear");
    return o;
}

bool file_exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

bool is_dir(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// The images this demo decodes (JPEG, PNG), sorted, like lotus_deploy.image.preprocess.list_images.
std::vector<std::string> list_inputs(const std::string& input) {
    if (!is_dir(input)) return {input};
    std::vector<std::string> files;
    if (DIR* dir = ::opendir(input.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            const std::string name = e->d_name;
            const size_t dot = name.find_last_of('.');
            const std::string ext = dot == std::string::npos ? "" : lower(name.substr(dot));
            if ((ext == ".jpg" || ext == ".jpeg" || ext == ".png") && !is_dir(input + "/" + name)) files.push_back(input + "/" + name);
        }
        ::closedir(dir);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error(input + " holds no JPEG or PNG images", "put .jpg/.jpeg/.png files in it");
    return files;
}

std::string stem_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = name.find_last_of('.');
    return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

void make_dirs(const std::string& path) {
    std::string partial;
    for (size_t i = 0; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/') {
            if (!partial.empty() && !is_dir(partial) && ::mkdir(partial.c_str(), 0755) != 0 && !is_dir(partial))
                throw Error("cannot create folder " + partial, "check the --output path and permissions");
        }
        if (i < path.size()) partial += path[i];
    }
}

struct Prediction {
    TensorF32 values;  // [1,h0,w0] depth/disparity or [3,h0,w0] unit normals
    double pre_ms = 0, infer_ms = 0, post_ms = 0;
};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

Prediction predict(TrtRunner& runner, const ImageU8& rgb, const Options& o) {
    Prediction p;
    auto t = Clock::now();
    PreprocessInfo info;
    const EngineIO& io = runner.io();
    const TensorF32 x = preprocess(rgb, o.processing_res, io.dynamic_hw ? 0 : io.static_h, io.dynamic_hw ? 0 : io.static_w, 64, &info);
    p.pre_ms = ms_since(t);
    t = Clock::now();
    const TensorF32 y = runner.infer(x);
    p.infer_ms = ms_since(t);
    t = Clock::now();
    const Resample mode = o.resample == "bilinear" ? Resample::Bilinear : Resample::Nearest;
    p.values = crop_and_resize(y, info, mode);
    if (p.values.channels == 3 && mode == Resample::Bilinear) renormalize_normals(p.values);
    p.post_ms = ms_since(t);
    return p;
}

ImageU8 visualize(const TensorF32& values, const std::string& meaning) {
    if (values.channels == 3) return normals_to_rgb(values);
    return colorize_depth(values.plane(0), values.height, values.width, meaning == "disparity");
}

void save(const Prediction& p, const std::string& meaning, const std::string& dir, const std::string& stem, bool force) {
    const std::string base = dir + "/" + stem;
    const std::string color = base + "_color.png", png16 = base + "_16bit.png";
    if (!force)  // check both before writing either
        for (const std::string& f : {color, png16})
            if (file_exists(f)) throw Error(f + " already exists", "pass --force to overwrite it, or choose another --output");
    const TensorF32& v = p.values;
    if (v.channels == 3) write_png16(png16, normals_to_uint16(v).data(), v.height, v.width, 3, force);
    else write_png16(png16, to_uint16(v.plane(0), size_t(v.height) * v.width).data(), v.height, v.width, 1, force);
    write_png8(color, visualize(v, meaning), force);
}

double percentile(std::vector<double> v, double q) {  // nearest rank
    std::sort(v.begin(), v.end());
    const size_t rank = static_cast<size_t>(std::max(1.0, std::ceil(q / 100.0 * v.size())));
    return v[std::min(rank, v.size()) - 1];
}

void bench(TrtRunner& runner, const ImageU8& rgb, const Options& o) {
    predict(runner, rgb, o);  // sets shapes and buffers
    for (int i = 0; i < o.warmup; ++i) runner.infer_again();
    std::vector<double> device, total;
    for (int i = 0; i < o.bench; ++i) {
        auto t = Clock::now();
        runner.infer_again();
        device.push_back(ms_since(t));
    }
    for (int i = 0; i < std::min(o.bench, 20); ++i) {
        auto t = Clock::now();
        predict(runner, rgb, o);
        total.push_back(ms_since(t));
    }
    double mean = 0;
    for (double d : device) mean += d / device.size();
    std::printf("bench: %d runs (+%d warm-up), image %dx%d\n", o.bench, o.warmup, rgb.width, rgb.height);
    std::printf("  engine (H2D + enqueueV3 + D2H): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  mean %.2f ms\n", percentile(device, 50),
                percentile(device, 90), percentile(device, 99), mean);
    std::printf("  end to end incl. pre/post (%zu runs): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n", total.size(), percentile(total, 50),
                percentile(total, 90), percentile(total, 99));
}

int run_images(TrtRunner& runner, const Options& o) {
    const std::vector<std::string> files = list_inputs(o.input);
    if (o.bench > 0) {
        bench(runner, load_image(files.front()), o);
        return 0;
    }
    make_dirs(o.output);
    for (const std::string& f : files) {
        const ImageU8 rgb = load_image(f);
        const Prediction p = predict(runner, rgb, o);
        save(p, runner.meaning(), o.output, stem_of(f), o.force);
        std::printf("%s: %dx%d  pre %.1f ms  engine %.1f ms  post %.1f ms -> %s/%s_{16bit,color}.png\n", f.c_str(), rgb.width, rgb.height, p.pre_ms,
                    p.infer_ms, p.post_ms, o.output.c_str(), stem_of(f).c_str());
    }
    return 0;
}

#ifdef LOTUS_WITH_OPENCV
int run_video(TrtRunner& runner, const Options& o) {
    cv::VideoCapture cap;
    const bool opened = o.camera >= 0 ? cap.open(o.camera) : cap.open(o.video);
    if (!opened) throw Error("cannot open " + (o.camera >= 0 ? "camera " + std::to_string(o.camera) : o.video), "check the path or camera index");
    cv::VideoWriter writer;
    if (!o.video_out.empty() && !o.force && file_exists(o.video_out)) throw Error(o.video_out + " already exists", "pass --force to overwrite it");
    const std::string meaning = runner.meaning();
    int frames = 0;
    double engine_ms = 0;
    const auto start = Clock::now();
    cv::Mat bgr, rgb_mat;
    while (cap.read(bgr) && !bgr.empty()) {
        cv::cvtColor(bgr, rgb_mat, cv::COLOR_BGR2RGB);
        ImageU8 rgb(rgb_mat.rows, rgb_mat.cols, 3);
        for (int y = 0; y < rgb_mat.rows; ++y) std::memcpy(rgb.row(y), rgb_mat.ptr(y), size_t(rgb_mat.cols) * 3);
        const Prediction p = predict(runner, rgb, o);
        engine_ms += p.infer_ms;
        const ImageU8 vis = visualize(p.values, meaning);
        cv::Mat vis_bgr;
        cv::cvtColor(cv::Mat(vis.height, vis.width, CV_8UC3, const_cast<uint8_t*>(vis.data.data())), vis_bgr, cv::COLOR_RGB2BGR);
        if (!o.video_out.empty()) {
            if (!writer.isOpened()) {
                const double fps = cap.get(cv::CAP_PROP_FPS) > 0 ? cap.get(cv::CAP_PROP_FPS) : 30.0;
                if (!writer.open(o.video_out, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps, vis_bgr.size()))
                    throw Error("cannot write " + o.video_out, "check the folder exists and the name ends in .mp4 or .avi");
            }
            writer.write(vis_bgr);
        }
        ++frames;
        if (o.show) {
            cv::imshow("lotus depth", vis_bgr);
            const int key = cv::waitKey(1);
            if (key == 'q' || key == 27) break;
        }
    }
    if (frames == 0) throw Error("no frames could be read", "check the video file or camera");
    const double seconds = ms_since(start) / 1000.0;
    std::printf("%d frames in %.1f s: %.1f fps end to end, engine %.1f ms per frame\n", frames, seconds, frames / seconds, engine_ms / frames);
    return 0;
}
#else
int run_video(TrtRunner&, const Options&) {
    throw Error("this lotus_demo was built without OpenCV", "install OpenCV (JetPack ships it; Debian/Ubuntu: libopencv-dev) and rebuild");
}
#endif

}  // namespace

int main(int argc, char** argv) {
    Options o;
    try {
        o = parse(argc, argv);
    } catch (const UsageError& e) {
        if (*e.what()) std::fprintf(stderr, "error: %s\n", e.what());
        std::fputs(kUsage, stderr);
        return *e.what() ? 2 : 0;
    }
    try {
        TrtRunner runner(o.engine);
        std::fprintf(stderr, "%s\n", runner.describe().c_str());
        if (o.processing_res < 0 && runner.manifest().processing_res > 0)
            std::fprintf(stderr, "processing at %d px, the working resolution this model declares (pass --processing-res to override)\n",
                         runner.manifest().processing_res);
        o.processing_res = effective_processing_res(o.processing_res, runner.manifest());
        return o.input.empty() ? run_video(runner, o) : run_images(runner, o);
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: unexpected: %s\n", e.what());
        return 3;
    }
}
