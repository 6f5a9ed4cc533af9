// Tagging metrics with scikit-learn semantics (../shared/reference/multimodal_spec.md B.6):
// AP = sklearn.metrics.average_precision_score (Σ (R_n − R_{n−1})·P_n over distinct thresholds, ties grouped);
// AUC = roc_auc_score (trapezoid over the ROC with ties grouped); d′ = √2·Φ⁻¹(AUC).
// Policy: classes without a positive (or, for AUC, without a negative) in the set are skipped and counted.
#pragma once
#include <cstdint>
#include <vector>

namespace aviary::audio {

double average_precision(const std::vector<int>& target, const std::vector<double>& score);
double roc_auc(const std::vector<int>& target, const std::vector<double>& score);
double d_prime(double auc);  // √2 · Φ⁻¹(auc)

struct TaggingMetrics {
    double map = 0, mauc = 0, dprime = 0;
    int64_t classes_scored = 0;   // classes with at least one positive (used for mAP)
    int64_t classes_skipped = 0;  // classes without a positive
    std::vector<double> ap;       // per class; NaN where skipped
};
// target / score: row-major (n_clips × n_classes).
TaggingMetrics tagging_metrics(const std::vector<int>& target, const std::vector<double>& score, int64_t n_classes);

}  // namespace aviary::audio
