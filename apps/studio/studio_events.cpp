// Event queue (studio_events.h).
#include "studio_events.h"

namespace aviary::studio {

const char* channel_name(Channel c) {
    switch (c) {
        case Channel::App:
            return "app";
        case Channel::Chat:
            return "chat";
        case Channel::Music:
            return "music";
        case Channel::Image:
            return "image";
        case Channel::Audio:
            return "audio";
        case Channel::Training:
            return "training";
    }
    return "?";
}

void EventQueue::set_wake(std::function<void()> wake) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_ = std::move(wake);
}

void EventQueue::push(Event e) {
    std::function<void()> wake;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        events_.push_back(std::move(e));
        wake = wake_;
    }
    if (wake) wake();
}

std::vector<Event> EventQueue::drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Event> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
}

size_t EventQueue::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_.size();
}

}  // namespace aviary::studio
