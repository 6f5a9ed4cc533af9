// CSV + PNG of loss-by-position curves (position_loss_output.h); files are written atomically.
#include "position_loss_output.h"

#include <cstdio>
#include <filesystem>

#include "aviary/core/atomic_file.h"
#ifdef AVIARY_HAVE_MUSIC
#include "aviary/music/music.h"  // plot_curves_png (OpenCV)
#endif

namespace aviary::cli {

nlohmann::json write_position_loss_outputs(const std::string& prefix, const std::vector<std::string>& models,
                                           const std::vector<PositionLoss>& raw, double sigma, const std::string& title,
                                           const std::string& x_label) {
    std::vector<std::vector<double>> curves;
    std::vector<std::string> labels;
    nlohmann::json res = nlohmann::json::array();
    for (size_t k = 0; k < raw.size(); ++k) {
        curves.push_back(gaussian_smooth(raw[k].mean, sigma));
        char lab[64];
        std::snprintf(lab, sizeof lab, " (%.3f)", raw[k].mean_loss);
        labels.push_back(std::filesystem::path(models[k]).stem().string() + lab);
        res.push_back({{"model", models[k]}, {"mean_loss", raw[k].mean_loss}, {"sequences", raw[k].tunes}});
    }
    std::string csv = "position";
    for (size_t k = 0; k < curves.size(); ++k) csv += ",loss_" + std::to_string(k) + ",smoothed_" + std::to_string(k);
    csv += ",count\n";
    size_t n = 0;
    for (auto& c : curves) n = std::max(n, c.size());
    for (size_t t = 0; t < n; ++t) {
        csv += std::to_string(t);
        int64_t cnt = 0;
        for (size_t k = 0; k < curves.size(); ++k) {
            char buf[64];
            if (t < curves[k].size()) {
                std::snprintf(buf, sizeof buf, ",%.6f,%.6f", raw[k].mean[t], curves[k][t]);
                cnt = std::max(cnt, raw[k].count[t]);
            } else {
                std::snprintf(buf, sizeof buf, ",,");
            }
            csv += buf;
        }
        csv += "," + std::to_string(cnt) + "\n";
    }
    write_file_atomic(prefix + ".csv", csv);
    nlohmann::json j;
    j["models"] = res;
    j["csv"] = prefix + ".csv";
#ifdef AVIARY_HAVE_MUSIC
    music::plot_curves_png(prefix + ".png", curves, labels, title, x_label, "loss (nats)");
    j["png"] = prefix + ".png";
#endif
    return j;
}

}  // namespace aviary::cli
