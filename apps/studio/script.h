// Scripted mode (`aviary-studio --script FILE --screenshot-dir DIR`): one command per line, '#' comments.
//   panel NAME            chat | image | audio | music | training | log | settings
//   type FIELD TEXT…      sets a text field (the rest of the line; "\n" becomes a newline)
//   set FIELD VALUE       sets a numeric or boolean field
//   click LABEL…          presses the button with that label on the current panel
//   open PATH             opens a file in the current panel (as a drop would)
//   wait-idle SECONDS     waits until the worker and the panel's jobs are idle (an error after SECONDS)
//   wait-frames N         renders N frames
//   screenshot FILE       writes the framebuffer as PNG into the screenshot directory
//   expect-no-error       fails when an error banner is showing
//   expect-error TEXT…    fails unless an error banner containing TEXT is showing; then closes every banner (as
//                         the user's "x"), so a later expect-no-error checks what comes after
//   expect-output NAME [TEXT…]  fails when the panel output NAME (chat.model, chat.answer, music.abc,
//                         image.description, image.answer, audio.description, audio.tags) is empty or lacks TEXT
//   quit                  ends the script (exit 0)
// Parsing is separate from running so that tests check it without GL.
#pragma once
#include <string>
#include <vector>

namespace aviary::studio {

struct ScriptCommand {
    int line = 0;
    std::string verb;
    std::vector<std::string> args;  // split at spaces
    std::string rest;               // everything after the verb (for type/click/open)
};

// Throws aviary::Error "script line N: …" for unknown verbs, missing or malformed arguments.
std::vector<ScriptCommand> parse_script(const std::string& text);
std::vector<ScriptCommand> load_script(const std::string& path);

}  // namespace aviary::studio
