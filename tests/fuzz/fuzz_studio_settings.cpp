// Fuzz target: aviary-studio settings JSON and training config files (apps/studio/settings.cpp, GL-free) through
// settings_from_json / train_config_from_json. Property: what loads survives a save/load round trip unchanged.
#include "fuzz_common.h"
#include "settings.h"

AVIARY_FUZZ_TARGET(studio_settings) {
    const std::string text(aviary::fuzz::as_text(data, size));
    aviary::fuzz::expect_clean([&] {
        const aviary::studio::Settings s = aviary::studio::settings_from_json(text, "fuzz");
        const std::string saved = aviary::studio::settings_to_json(s);
        if (aviary::studio::settings_to_json(aviary::studio::settings_from_json(saved, "saved")) != saved)
            aviary::fuzz::property_failed("studio_settings", "settings change in a save/load round trip");
    });
    aviary::fuzz::expect_clean([&] {
        const aviary::studio::TrainSettings t = aviary::studio::train_config_from_json(text, "fuzz");
        const std::string saved = aviary::studio::train_config_to_json(t);
        if (aviary::studio::train_config_to_json(aviary::studio::train_config_from_json(saved, "saved")) != saved)
            aviary::fuzz::property_failed("studio_settings", "train config changes in a save/load round trip");
    });
}
