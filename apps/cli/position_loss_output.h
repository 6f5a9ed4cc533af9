// Writes loss-by-position results of several models (`eval music-loss`, `eval loss-by-position`): PREFIX.csv
// (position, raw and smoothed loss per model, count) and, when the build has the music module's OpenCV plotter,
// PREFIX.png with the smoothed curves overlaid. Returns the JSON summary printed by the command.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aviary/core/loss_by_position.h"

namespace aviary::cli {

nlohmann::json write_position_loss_outputs(const std::string& prefix, const std::vector<std::string>& models,
                                           const std::vector<PositionLoss>& raw, double sigma, const std::string& title,
                                           const std::string& x_label);

}  // namespace aviary::cli
