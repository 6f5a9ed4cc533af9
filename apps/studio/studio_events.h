// Events the studio worker sends to the UI thread ("commands in, events out", STYLE.md; Tracy's RunQueue,
// Llama_chat's model-thread struct done with a mutex-guarded queue instead of volatile flags).
// Payloads are immutable shared pointers, so the UI reads them without copying or locking.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "spectrogram.h"

namespace aviary::studio {

enum class Channel { App, Chat, Music, Image, Audio, Training };
const char* channel_name(Channel c);

enum class EventKind {
    Log,             // text: a line for the log panel
    Error,           // text: one line for an error banner (every exception in a job becomes one)
    JobStarted,      // text: the job's name
    JobFinished,     // text: the job's name
    ModelLoaded,     // text: description of the model; a = state size in bytes
    Text,            // text: a streamed piece (chat answer, ABC bytes, VQA answer)
    Stats,           // a = tokens/s, b = state bytes, n = tokens generated so far; Image: text = the answer's
                     // timings (format_vqa_stats), a = time to first token (s), b = peak memory (MiB), n = tokens
    Done,            // text: stop reason ("max_tokens", "end_of_text", "stopped", …); n = tokens
    Regenerate,      // chat: the last answer is dropped (the state was restored from the snapshot)
    Branched,        // chat: n = index of the new branch
    BranchSwitched,  // chat: n = index of the branch now active
    SessionSaved,    // text: path
    SessionLoaded,   // text: the history (JSON) stored in the session file
    ImageReady,      // image: the picture; image2: the preprocessed crop; text: description
    SheetReady,      // image: rendered sheet music; text: PNG path
    AudioReady,      // audio: the clip, waveform and spectrogram; text: description
    Tags,            // tags: (label, score) sorted by score
    Message,         // text: a notice for the panel (e.g. "model not available in this build")
};

struct ImageRGBA {
    int width = 0, height = 0;
    std::vector<uint8_t> rgba;  // (height, width, 4) row-major
};

struct AudioClip {
    int sample_rate = 0;
    std::vector<float> samples;      // mono, [-1, 1]
    Spectrogram spectrogram;         // log-mel in dB
    ImageRGBA spectrogram_rgba;      // colour-mapped, (n_mels rows, top = highest band) x (frames)
    double db_low = 0, db_high = 0;  // range the colour map spans
};

struct Event {
    EventKind kind = EventKind::Log;
    Channel channel = Channel::App;
    std::string text;
    double a = 0, b = 0;
    int64_t n = 0;
    std::shared_ptr<const ImageRGBA> image, image2;
    std::shared_ptr<const AudioClip> audio;
    std::vector<std::pair<std::string, float>> tags;
};

// Many producers, one consumer; wake() (e.g. glfwPostEmptyEvent, thread-safe) runs after each push so an
// idle UI loop wakes up.
class EventQueue {
public:
    void set_wake(std::function<void()> wake);
    void push(Event e);
    std::vector<Event> drain();
    size_t size() const;

private:
    mutable std::mutex mutex_;
    std::deque<Event> events_;
    std::function<void()> wake_;
};

}  // namespace aviary::studio
