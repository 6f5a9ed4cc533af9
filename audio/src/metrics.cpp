// mAP / AUC / d′ with scikit-learn's semantics (../shared/reference/multimodal_spec.md B.6): scores sorted
// descending, equal scores form one threshold; AP = Σ (R_n − R_{n−1})·P_n; AUC = trapezoid under the ROC points
// of those thresholds (sklearn roc_curve + auc). Classes without positives are skipped for mAP, without positives
// or negatives for AUC.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "aviary/audio/metrics.h"
#include "aviary/core/error.h"

namespace aviary::audio {

namespace {
// Cumulative (tp, fp) at each distinct threshold, highest score first.
void threshold_counts(const std::vector<int>& target, const std::vector<double>& score, std::vector<double>& tps,
                      std::vector<double>& fps) {
    AVIARY_CHECK(target.size() == score.size(), "metrics: ", target.size(), " targets vs ", score.size(), " scores");
    std::vector<size_t> order(score.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
    double tp = 0, fp = 0;
    tps.clear();
    fps.clear();
    for (size_t i = 0; i < order.size(); ++i) {
        AVIARY_CHECK(!std::isnan(score[order[i]]), "metrics: a score is NaN");
        (target[order[i]] ? tp : fp) += 1;
        if (i + 1 == order.size() || score[order[i + 1]] != score[order[i]]) {  // end of a tie group
            tps.push_back(tp);
            fps.push_back(fp);
        }
    }
}
}  // namespace

double average_precision(const std::vector<int>& target, const std::vector<double>& score) {
    std::vector<double> tps, fps;
    threshold_counts(target, score, tps, fps);
    const double pos = tps.empty() ? 0 : tps.back();
    if (pos == 0) return std::numeric_limits<double>::quiet_NaN();
    double ap = 0, prev_recall = 0;
    for (size_t i = 0; i < tps.size(); ++i) {
        const double recall = tps[i] / pos, precision = tps[i] / (tps[i] + fps[i]);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    return ap;
}

double roc_auc(const std::vector<int>& target, const std::vector<double>& score) {
    std::vector<double> tps, fps;
    threshold_counts(target, score, tps, fps);
    const double pos = tps.empty() ? 0 : tps.back(), neg = fps.empty() ? 0 : fps.back();
    if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
    double auc = 0, px = 0, py = 0;  // from (0, 0)
    for (size_t i = 0; i < tps.size(); ++i) {
        const double x = fps[i] / neg, y = tps[i] / pos;
        auc += (x - px) * (y + py) / 2;
        px = x;
        py = y;
    }
    return auc;
}

double d_prime(double auc) {
    if (!(auc > 0 && auc < 1))
        return auc >= 1 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    // Φ⁻¹ by bisection on Φ(z) = erfc(−z/√2)/2 (monotone; 200 halvings reach double precision)
    double lo = -40, hi = 40;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < auc ? lo : hi) = mid;
    }
    return std::sqrt(2.0) * 0.5 * (lo + hi);
}

TaggingMetrics tagging_metrics(const std::vector<int>& target, const std::vector<double>& score, int64_t n_classes) {
    AVIARY_CHECK(n_classes > 0 && target.size() == score.size() && target.size() % size_t(n_classes) == 0,
                 "metrics: ", target.size(), " targets / ", score.size(), " scores do not fill rows of ", n_classes);
    const size_t n = target.size() / size_t(n_classes);
    TaggingMetrics m;
    m.ap.assign(size_t(n_classes), std::numeric_limits<double>::quiet_NaN());
    double sum_ap = 0, sum_auc = 0;
    int64_t n_auc = 0;
    std::vector<int> t(n);
    std::vector<double> s(n);
    for (int64_t c = 0; c < n_classes; ++c) {
        for (size_t i = 0; i < n; ++i) {
            t[i] = target[i * size_t(n_classes) + size_t(c)];
            s[i] = score[i * size_t(n_classes) + size_t(c)];
        }
        const double ap = average_precision(t, s);
        if (std::isnan(ap)) {
            ++m.classes_skipped;
            continue;
        }
        m.ap[size_t(c)] = ap;
        sum_ap += ap;
        ++m.classes_scored;
        const double auc = roc_auc(t, s);
        if (!std::isnan(auc)) {
            sum_auc += auc;
            ++n_auc;
        }
    }
    m.map = m.classes_scored ? sum_ap / double(m.classes_scored) : std::numeric_limits<double>::quiet_NaN();
    m.mauc = n_auc ? sum_auc / double(n_auc) : std::numeric_limits<double>::quiet_NaN();
    m.dprime = d_prime(m.mauc);
    return m;
}

}  // namespace aviary::audio
