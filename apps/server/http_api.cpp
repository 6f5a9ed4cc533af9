// Routes of the OpenAI-compatible API (http_api.h). Shapes follow OpenAI's API reference for /v1/models,
// /v1/completions and /v1/chat/completions (objects "text_completion", "chat.completion", "chat.completion.chunk";
// SSE "data: {json}\n\n" chunks ending with "data: [DONE]\n\n"; usage with prompt_tokens_details.cached_tokens).
// Aviary's extensions (top_k, penalty_decay, load_state / save_state, /v1/states, /v1/audio/tags) are in
// docs/SERVER.md.
#include "http_api.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "api_error.h"
#include "aviary/core/error.h"
#include "base64.h"
#include "batch_scheduler.h"
#include "chat_prompt.h"
#include "media_adapter.h"
#include "request_parse.h"

namespace aviary::server {

std::string error_json(int status, const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
    (void)status;
    nlohmann::ordered_json e;
    e["message"] = message;
    e["type"] = type;
    e["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
    e["code"] = code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code);
    return nlohmann::ordered_json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status();
    res.set_content(error_json(e), "application/json");
}

std::string new_id(const char* prefix) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s-%016llx", prefix,
                  static_cast<unsigned long long>(salt * 0x9E3779B97F4A7C15ull + counter.fetch_add(1)));
    return buf;
}

// OpenAI's finish_reason for a generation's stop reason (extensions: "time_limit", "cancelled").
std::string finish_reason(const std::string& stop_reason) {
    if (stop_reason == "stop_sequence" || stop_reason == "end_of_text") return "stop";
    if (stop_reason == "max_tokens") return "length";
    if (stop_reason == "stopped") return "cancelled";
    return stop_reason;
}

Json usage_json(int64_t prompt, int64_t completion, int64_t cached) {
    return Json{{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion},
                {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

// Counts a response as in flight until it has been written (Server::stop waits for these).
struct InFlight {
    std::atomic<int>& n;
    explicit InFlight(std::atomic<int>& c) : n(c) { ++n; }
    ~InFlight() { --n; }
};

// Everything one generation response needs, whichever model answers it.
struct Reply {
    bool chat = false;
    bool stream = false, include_usage = false;
    std::string id, model;
    int64_t created = 0;

    Json chunk(const std::string& text, const Json& finish) const {
        Json choice;
        choice["index"] = 0;
        if (chat) {
            choice["delta"] = text.empty() && !finish.is_null() ? Json::object() : Json{{"content", text}};
        } else {
            choice["text"] = text;
            choice["logprobs"] = nullptr;
        }
        choice["finish_reason"] = finish;
        return Json{{"id", id},
                    {"object", chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", created},
                    {"model", model},
                    {"choices", Json::array({choice})}};
    }
    Json full(const std::string& text, const std::string& finish, const Json& usage) const {
        Json choice;
        choice["index"] = 0;
        if (chat) {
            choice["message"] = {{"role", "assistant"}, {"content", text}};
        } else {
            choice["text"] = text;
        }
        choice["logprobs"] = nullptr;
        choice["finish_reason"] = finish;
        return Json{{"id", id},
                    {"object", chat ? "chat.completion" : "text_completion"},
                    {"created", created},
                    {"model", model},
                    {"choices", Json::array({choice})},
                    {"usage", usage}};
    }
    // The chunks that end a stream: the finish_reason, the usage when asked for, [DONE].
    std::string tail(const std::string& finish, const Json& usage) const {
        std::string out = "data: " + dump(chunk("", finish)) + "\n\n";
        if (include_usage) {
            Json u = chunk("", finish);
            u["choices"] = Json::array();
            u["usage"] = usage;
            out += "data: " + dump(u) + "\n\n";
        }
        return out + "data: [DONE]\n\n";
    }
};

// Chat replies start after "Assistant:"; the model writes the separating space itself. Leading blanks are not part
// of the message content.
struct LeadingBlanks {
    bool seen_text = false;
    std::string operator()(std::string piece) {
        if (!seen_text) {
            piece.erase(0, piece.find_first_not_of(" \t\n"));
            seen_text = !piece.empty();
        }
        return piece;
    }
};

class Handlers {
public:
    explicit Handlers(ApiContext& ctx) : ctx_(ctx) {}

    void models(const httplib::Request&, httplib::Response& res) {
        Json data = Json::array();
        for (const auto& [id, kind] : served())
            data.push_back({{"id", id},
                            {"object", "model"},
                            {"created", ctx_.created},
                            {"owned_by", "aviary"},
                            {"aviary_kind", kind}});
        res.set_content(dump(Json{{"object", "list"}, {"data", data}}), "application/json");
    }

    void model(const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        for (const auto& [m, kind] : served()) {
            if (m != id) continue;
            res.set_content(dump(Json{{"id", m},
                                      {"object", "model"},
                                      {"created", ctx_.created},
                                      {"owned_by", "aviary"},
                                      {"aviary_kind", kind}}),
                            "application/json");
            return;
        }
        throw unknown_model(id);
    }

    void health(const httplib::Request&, httplib::Response& res) {
        const ServerStats s = ctx_.scheduler.stats();
        Json models = Json::array();
        for (const auto& [id, kind] : served()) models.push_back(id);
        res.set_content(dump(Json{{"status", "ok"},
                                  {"models", models},
                                  {"stats",
                                   {{"requests", s.requests},
                                    {"prefill_tokens", s.prefill_tokens},
                                    {"cached_tokens", s.cached_tokens},
                                    {"decode_steps", s.decode_steps},
                                    {"decoded_tokens", s.decoded_tokens},
                                    {"max_batch_seen", s.max_batch_seen},
                                    {"queued", s.queued},
                                    {"cache_entries", s.cache_entries},
                                    {"cache_bytes", s.cache_bytes}}}}),
                        "application/json");
    }

    void list_states(const httplib::Request&, httplib::Response& res) {
        Json data = Json::array();
        for (const auto& [id, tokens] : ctx_.scheduler.named_states().list())
            data.push_back({{"id", id}, {"object", "state"}, {"tokens", tokens}});
        res.set_content(dump(Json{{"object", "list"}, {"data", data}}), "application/json");
    }

    void delete_state(const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        if (!ctx_.scheduler.named_states().erase(id))
            throw ApiError(404, "no state is saved under '" + id + "'", "invalid_request_error", "id",
                           "state_not_found");
        res.set_content(dump(Json{{"id", id}, {"object", "state"}, {"deleted", true}}), "application/json");
    }

    void completions(const httplib::Request& req, httplib::Response& res, bool chat) {
        const auto body = parse_json_body(req.body);
        RequestLimits limits;
        limits.max_tokens = ctx_.options.max_tokens;
        GenerationRequest r = chat ? parse_chat_request(body, limits) : parse_completion_request(body, limits);
        if (!r.model.empty() && r.model != ctx_.text_id && r.model != ctx_.vision_id) {
            if (r.model == ctx_.audio_id)
                throw bad_field("model", "'" + r.model + "' is an audio tagger; use POST /v1/audio/tags");
            throw unknown_model(r.model);
        }
        Reply reply;
        reply.chat = chat;
        reply.stream = r.stream;
        reply.include_usage = r.include_usage;
        reply.id = new_id(chat ? "chatcmpl" : "cmpl");
        reply.created = static_cast<int64_t>(std::time(nullptr));
        if (r.has_images()) return image_reply(r, std::move(reply), res);
        if (!r.model.empty() && r.model == ctx_.vision_id)
            throw bad_field("model", "'" + r.model + "' answers questions about an image; send an image_url part");
        reply.model = ctx_.text_id;
        text_reply(r, std::move(reply), res);
    }

    void audio_tags(const httplib::Request& req, httplib::Response& res) {
        std::string sound, model;
        int64_t top_k = 10;
        if (req.is_multipart_form_data()) {
            if (!req.has_file("file")) throw bad_field("file", "the form needs a 'file' part holding the sound");
            sound = req.get_file_value("file").content;
            if (req.has_file("model")) model = req.get_file_value("model").content;
            if (req.has_file("top_k")) {
                const std::string k = req.get_file_value("top_k").content;
                try {
                    size_t used = 0;
                    top_k = std::stoll(k, &used);
                    if (used != k.size()) throw std::invalid_argument(k);
                } catch (const std::exception&) {
                    throw bad_field("top_k", "'top_k' must be an integer");
                }
            }
        } else {
            const auto body = parse_json_body(req.body);
            auto it = body.find("audio");
            if (it == body.end() || !it->is_string())
                throw bad_field("audio", "'audio' (the sound file, base64) is required");
            auto bytes = base64_decode(it->get<std::string>());
            if (!bytes) throw bad_field("audio", "'audio' is not valid base64");
            sound = std::move(*bytes);
            if (auto m = body.find("model"); m != body.end() && !m->is_null()) {
                if (!m->is_string()) throw bad_field("model", "'model' must be a string");
                model = m->get<std::string>();
            }
            if (auto k = body.find("top_k"); k != body.end() && !k->is_null()) {
                if (!k->is_number_integer()) throw bad_field("top_k", "'top_k' must be an integer");
                top_k = k->get<int64_t>();
            }
        }
        if (!model.empty() && model != ctx_.audio_id) {
            if (model == ctx_.text_id || model == ctx_.vision_id)
                throw bad_field("model", "'" + model + "' does not tag sounds");
            throw unknown_model(model);
        }
        if (!ctx_.audio)
            throw ApiError(400, "this server has no audio model (start it with --audio-model)", "invalid_request_error",
                           "model", "no_audio_model");
        if (top_k < 0 || top_k > 100000) throw bad_field("top_k", "'top_k' must be between 0 and 100000");
        if (sound.empty()) throw bad_field("audio", "the sound is empty");
        const auto result = ctx_.audio->tag(sound, top_k, ctx_.options.max_audio_seconds);
        Json tags = Json::array();
        for (const auto& t : result.tags)
            tags.push_back({{"index", t.index}, {"mid", t.mid}, {"name", t.name}, {"score", t.score}});
        res.set_content(
            dump(Json{
                {"object", "audio.tags"}, {"model", ctx_.audio_id}, {"duration_s", result.seconds}, {"tags", tags}}),
            "application/json");
    }

private:
    std::vector<std::pair<std::string, std::string>> served() const {
        std::vector<std::pair<std::string, std::string>> out{{ctx_.text_id, "text"}};
        if (ctx_.vision) out.emplace_back(ctx_.vision_id, "vision");
        if (ctx_.audio) out.emplace_back(ctx_.audio_id, "audio");
        return out;
    }

    ApiError unknown_model(const std::string& id) const {
        return ApiError(404, "the model '" + id + "' does not exist (GET /v1/models lists the served ones)",
                        "invalid_request_error", "model", "model_not_found");
    }

    // The request's sampling and stopping, with the endpoint's defaults: chat as `aviary chat` (ChatRWKV
    // API_DEMO_CHAT.py: top-p 0.3, penalties 0.5/0.5, token 0 banned, stop at a blank line, every token weighted 1),
    // completions as `aviary generate` (SamplerOptions defaults, official penalty weights, 16 tokens as OpenAI).
    GenerateOptions options_for(const GenerationRequest& r) const {
        GenerateOptions o;
        if (r.chat) {
            o.max_tokens = std::min(500, ctx_.options.max_tokens);
            o.sampler.top_p = 0.3f;
            o.sampler.presence_penalty = 0.5f;
            o.sampler.frequency_penalty = 0.5f;
            o.sampler.banned = {0};
            o.stop = {"\n\n"};
            o.official_penalty_weights = false;
        } else {
            o.max_tokens = std::min(16, ctx_.options.max_tokens);
        }
        if (r.max_tokens) o.max_tokens = *r.max_tokens;
        if (r.temperature) o.sampler.temperature = *r.temperature;
        if (r.top_p) o.sampler.top_p = *r.top_p;
        if (r.top_k) o.sampler.top_k = *r.top_k;
        if (r.presence_penalty) o.sampler.presence_penalty = *r.presence_penalty;
        if (r.frequency_penalty) o.sampler.frequency_penalty = *r.frequency_penalty;
        if (r.penalty_decay) o.sampler.penalty_decay = *r.penalty_decay;
        // No seed: a fresh one (OpenAI's sampling is not repeatable without one either).
        o.sampler.seed = r.seed ? *r.seed : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
        for (const auto& s : r.stop) o.stop.push_back(s);
        if (r.ignore_eos) o.stop_at_end_of_text = false;
        // (ids the model has but the tokenizer lacks, World models' 65530..65535, are never drawn: SequenceGenerator)
        return o;
    }

    void text_reply(const GenerationRequest& r, Reply reply, httplib::Response& res) {
        auto job = std::make_shared<GenerationJob>();
        const char* prompt_param = r.chat ? "messages" : "prompt";
        if (r.prompt_ids) {
            job->prompt = *r.prompt_ids;
        } else {
            job->prompt = ctx_.tokenizer.encode(r.chat ? render_chat_prompt(r.messages) : r.prompt);
        }
        if (job->prompt.empty() && r.load_state.empty())
            throw bad_field(prompt_param, "the prompt is empty (give at least one character)");
        if (static_cast<int64_t>(job->prompt.size()) > ctx_.options.max_prompt_tokens)
            throw ApiError(400,
                           "the prompt has " + std::to_string(job->prompt.size()) + " tokens; the limit is " +
                               std::to_string(ctx_.options.max_prompt_tokens),
                           "invalid_request_error", prompt_param, "context_length_exceeded");
        for (int32_t id : job->prompt)
            if (id < 0 || id >= ctx_.vocab_size)
                throw bad_field(prompt_param, "prompt token " + std::to_string(id) + " is outside the model's " +
                                                  "vocabulary of " + std::to_string(ctx_.vocab_size));
        job->options = options_for(r);
        job->load_state = r.load_state;
        job->save_state = r.save_state;
        job->stream = reply.stream;
        job->deadline = Clock::now() + std::chrono::milliseconds(int64_t(ctx_.options.request_timeout_s * 1000));
        ctx_.scheduler.submit(job);

        if (!reply.stream) {
            InFlight guard(ctx_.in_flight);
            job->wait_done();
            if (job->error) throw *job->error;
            std::string text = job->result.text;
            if (reply.chat) text = LeadingBlanks{}(text);
            const Json usage = usage_json(job->prompt_tokens, int64_t(job->result.tokens.size()), job->cached_tokens);
            res.set_content(dump(reply.full(text, finish_reason(job->result.stop_reason), usage)), "application/json");
            return;
        }
        ++ctx_.in_flight;
        auto strip = std::make_shared<LeadingBlanks>();
        auto started = std::make_shared<bool>(false);
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [job, reply, strip, started](size_t, httplib::DataSink& sink) {
                auto write = [&](const std::string& s) {
                    if (!sink.write(s.data(), s.size())) {
                        job->cancelled = true;  // the client went away: stop generating for it
                        return false;
                    }
                    return true;
                };
                if (!*started) {
                    *started = true;
                    if (reply.chat) {
                        Json first = reply.chunk("", nullptr);
                        first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
                        if (!write("data: " + dump(first) + "\n\n")) return false;
                    }
                }
                bool finished = false;
                std::string text = job->wait_text(std::chrono::milliseconds(100), finished);
                if (reply.chat) text = (*strip)(text);
                if (!text.empty() && !write("data: " + dump(reply.chunk(text, nullptr)) + "\n\n")) return false;
                if (!finished) return true;
                if (job->error) {
                    write("data: " + error_json(*job->error) + "\n\n" + "data: [DONE]\n\n");
                } else {
                    const Json usage =
                        usage_json(job->prompt_tokens, int64_t(job->result.tokens.size()), job->cached_tokens);
                    if (!write(reply.tail(finish_reason(job->result.stop_reason), usage))) return false;
                }
                sink.done();
                return true;
            },
            [job, &n = ctx_.in_flight](bool) {
                job->cancelled = true;  // no effect once it is done; ends it when the stream was cut short
                --n;
            });
    }

    void image_reply(const GenerationRequest& r, Reply reply, httplib::Response& res) {
        if (!r.chat) throw bad_field("prompt", "images go in chat messages");
        if (!ctx_.vision)
            throw ApiError(400, "this server has no vision model (start it with --vision-model)",
                           "invalid_request_error", "messages", "no_vision_model");
        if (!r.load_state.empty() || !r.save_state.empty())
            throw bad_field(r.load_state.empty() ? "save_state" : "load_state",
                            "named states are for text conversations; an image question starts afresh");
        const ImageQuestion q = image_question(r.messages);
        reply.model = ctx_.vision_id;
        const int max_tokens = r.max_tokens ? *r.max_tokens : std::min(128, ctx_.options.max_tokens);
        const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(ctx_.options.request_timeout_s * 1000));
        VisionAdapter& vision = *ctx_.vision;
        const int64_t max_pixels = ctx_.options.max_image_pixels;
        if (!reply.stream) {
            InFlight guard(ctx_.in_flight);
            const auto a =
                vision.answer(q.image, q.question, max_tokens, max_pixels, {}, [&] { return Clock::now() > deadline; });
            res.set_content(dump(reply.full(a.text, finish_reason(a.stop_reason),
                                            usage_json(a.prompt_tokens, a.completion_tokens, 0))),
                            "application/json");
            return;
        }
        ++ctx_.in_flight;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [q, reply, max_tokens, max_pixels, deadline, &vision](size_t, httplib::DataSink& sink) {
                bool broken = false;
                auto write = [&](const std::string& s) {
                    broken = broken || !sink.write(s.data(), s.size());
                    return !broken;
                };
                Json first = reply.chunk("", nullptr);
                first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
                if (!write("data: " + dump(first) + "\n\n")) return false;
                try {
                    const auto a = vision.answer(
                        q.image, q.question, max_tokens, max_pixels,
                        [&](const std::string& piece) { write("data: " + dump(reply.chunk(piece, nullptr)) + "\n\n"); },
                        [&] { return broken || Clock::now() > deadline; });
                    write(
                        reply.tail(finish_reason(a.stop_reason), usage_json(a.prompt_tokens, a.completion_tokens, 0)));
                } catch (const ApiError& e) {
                    write("data: " + error_json(e) + "\n\ndata: [DONE]\n\n");
                } catch (const std::exception& e) {
                    write("data: " + error_json(500, e.what(), "server_error", "", "internal_error") +
                          "\n\ndata: [DONE]\n\n");
                }
                if (broken) return false;
                sink.done();
                return true;
            },
            [&n = ctx_.in_flight](bool) { --n; });
    }

    ApiContext& ctx_;
};

// Runs a handler, turning every exception into an error object: ApiError as it says, aviary::Error (a model or input
// that cannot be used) as 400, anything else as 500.
template <class Fn>
httplib::Server::Handler guarded(Fn fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
        try {
            fn(req, res);
        } catch (const ApiError& e) {
            send_error(res, e);
        } catch (const Error& e) {
            send_error(res, ApiError(400, e.what(), "invalid_request_error", "", "invalid_value"));
        } catch (const std::exception& e) {
            send_error(res,
                       ApiError(500, std::string("internal error: ") + e.what(), "server_error", "", "internal_error"));
        }
    };
}

bool same_secret(const std::string& a, const std::string& b) {
    // Compares every byte whatever the first difference, so the time taken does not tell how much matched.
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ (i < b.size() ? b[i] : 0);
    return diff == 0;
}

}  // namespace

void install_routes(httplib::Server& http, ApiContext& ctx) {
    auto h = std::make_shared<Handlers>(ctx);
    http.set_payload_max_length(ctx.options.max_body_bytes);
    if (!ctx.options.api_key.empty()) {
        const std::string expected = "Bearer " + ctx.options.api_key;
        http.set_pre_routing_handler([expected](const httplib::Request& req, httplib::Response& res) {
            if (same_secret(req.get_header_value("Authorization"), expected))
                return httplib::Server::HandlerResponse::Unhandled;
            send_error(res, ApiError(401, "a valid API key is required (header 'Authorization: Bearer <key>')",
                                     "invalid_request_error", "", "invalid_api_key"));
            res.set_header("Connection", "close");
            return httplib::Server::HandlerResponse::Handled;
        });
    }
    http.Get("/health", guarded([h](const auto& q, auto& s) { h->health(q, s); }));
    http.Get("/v1/models", guarded([h](const auto& q, auto& s) { h->models(q, s); }));
    http.Get(R"(/v1/models/([^/]+))", guarded([h](const auto& q, auto& s) { h->model(q, s); }));
    http.Post("/v1/completions", guarded([h](const auto& q, auto& s) { h->completions(q, s, false); }));
    http.Post("/v1/chat/completions", guarded([h](const auto& q, auto& s) { h->completions(q, s, true); }));
    http.Post("/v1/audio/tags", guarded([h](const auto& q, auto& s) { h->audio_tags(q, s); }));
    http.Get("/v1/states", guarded([h](const auto& q, auto& s) { h->list_states(q, s); }));
    http.Delete(R"(/v1/states/([^/]+))", guarded([h](const auto& q, auto& s) { h->delete_state(q, s); }));
    // Statuses httplib sets itself (no route, body over the limit, bad request line) get an error object too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([&ctx](const httplib::Request& req,
                                                                       httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        switch (res.status) {
            case 404:
                send_error(res, ApiError(404, "no route " + req.method + " " + req.path, "invalid_request_error", "",
                                         "not_found"));
                break;
            case 413:
                send_error(res, ApiError(413,
                                         "the request body is larger than the limit of " +
                                             std::to_string(ctx.options.max_body_bytes) + " bytes",
                                         "invalid_request_error", "", "request_too_large"));
                break;
            default:
                send_error(res, ApiError(res.status,
                                         "the request could not be served (HTTP " + std::to_string(res.status) + ")",
                                         "invalid_request_error"));
        }
        return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, ApiError(500, "internal error", "server_error", "", "internal_error"));
    });
}

}  // namespace aviary::server
