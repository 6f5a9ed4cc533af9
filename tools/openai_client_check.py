#!/usr/bin/env python3
"""Checks `aviary serve` with the official OpenAI Python client (openai package): model list, completions and chat
completions streamed and not (the same seeded text both ways, usage), an image question (VisualRWKV), a named state
(Aviary extension, through extra_body) and the client's exception classes for bad requests. Exits 1 on the first
failed check. Used by tools/test_openai_client.sh (ctest ServerOpenAIClient)."""
import argparse
import base64
import sys

import openai


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--image", required=True)
    a = ap.parse_args()
    client = openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0)

    models = [m.id for m in client.models.list().data]
    check("music-eagle-L6-D256" in models and any(m.startswith("vision-demo") for m in models), f"models {models}")
    text_model = "music-eagle-L6-D256"
    vision_model = next(m for m in models if m.startswith("vision-demo"))

    # Completions.
    kw = dict(model=text_model, prompt="X:1\nT:Client\nK:G\n", max_tokens=32, seed=4, temperature=1.0)
    whole = client.completions.create(**kw)
    check(whole.object == "text_completion" and len(whole.choices) == 1, "completion shape")
    check(whole.usage.prompt_tokens == len(kw["prompt"]) and whole.usage.completion_tokens > 0, "completion usage")
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw) if c.choices)
    check(streamed == whole.choices[0].text, "streamed completion equals the non-streamed one")

    # Chat.
    msgs = [{"role": "system", "content": "You write folk tunes."}, {"role": "user", "content": "X:1\nK:D"}]
    chat = client.chat.completions.create(model=text_model, messages=msgs, max_tokens=24, seed=8)
    check(chat.object == "chat.completion" and chat.choices[0].message.role == "assistant", "chat shape")
    check(chat.choices[0].finish_reason in ("stop", "length"), f"finish_reason {chat.choices[0].finish_reason}")
    parts, usage = [], None
    for c in client.chat.completions.create(model=text_model, messages=msgs, max_tokens=24, seed=8, stream=True,
                                            stream_options={"include_usage": True}):
        if c.choices and c.choices[0].delta.content:
            parts.append(c.choices[0].delta.content)
        if c.usage:
            usage = c.usage
    check("".join(parts) == chat.choices[0].message.content, "streamed chat equals the non-streamed one")
    check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, "usage chunk of the stream")

    # The same chat again: its prompt comes from the state cache.
    again = client.chat.completions.create(model=text_model, messages=msgs, max_tokens=24, seed=8)
    cached = again.usage.prompt_tokens_details.cached_tokens
    check(cached == again.usage.prompt_tokens, f"cached_tokens {cached} of {again.usage.prompt_tokens}")
    check(again.choices[0].message.content == chat.choices[0].message.content, "cached run gives the same reply")

    # Image question.
    url = "data:image/png;base64," + base64.b64encode(open(a.image, "rb").read()).decode()
    img_msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                             {"type": "text", "text": "What colour is the square?"}]}]
    answer = client.chat.completions.create(model=vision_model, messages=img_msgs, max_tokens=16)
    check(answer.model == vision_model and isinstance(answer.choices[0].message.content, str), "image answer")
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=vision_model, messages=img_msgs, max_tokens=16, stream=True) if c.choices)
    check(streamed == answer.choices[0].message.content,
          f"streamed image answer equals the non-streamed one ({answer.choices[0].message.content!r})")

    # Named state (extension fields through extra_body).
    client.chat.completions.create(model=text_model, messages=msgs, max_tokens=8, seed=1,
                                   extra_body={"save_state": "py-conv"})
    cont = client.chat.completions.create(model=text_model, messages=[{"role": "user", "content": "T:Next"}],
                                          max_tokens=8, seed=1, extra_body={"load_state": "py-conv"})
    check(cont.usage.prompt_tokens == len("User: T:Next\n\nAssistant:"), "continued from a named state")

    # Errors arrive as the client's exception classes.
    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
        check(False, "unknown model raises")
    except openai.NotFoundError as e:
        check(e.status_code == 404, "unknown model -> NotFoundError")
    try:
        client.completions.create(model=text_model, prompt="x", max_tokens=2, temperature=-1)
        check(False, "bad temperature raises")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "temperature" in str(e), "bad temperature -> BadRequestError")
    bad = openai.OpenAI(base_url=a.base_url, api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        check(False, "wrong key raises")
    except openai.AuthenticationError:
        check(True, "wrong key -> AuthenticationError")
    print("all checks passed")


if __name__ == "__main__":
    main()
