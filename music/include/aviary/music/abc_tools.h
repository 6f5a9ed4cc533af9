// The external ABC tools (Debian packages, all optional at run time): abc2midi (abcmidi) for validity and
// MIDI, fluidsynth + fluid-soundfont-gm for WAV, abcm2ps for SVG. abc2midi exits 0 even on errors
// (multimodal_spec.md C.5), so validity is read from its messages. A missing tool is an aviary::Error
// that names the Debian package to install.
#pragma once
#include <string>
#include <vector>

namespace aviary::music {

// Full path of an executable found on $PATH, or "" (no shell involved).
std::string find_tool(const std::string& name);

struct Abc2MidiResult {
    bool valid = false;                 // no "Error" message and a tune was processed
    std::vector<std::string> errors;    // lines with "Error"
    std::vector<std::string> warnings;  // lines with "Warning"
    std::string output;                 // everything abc2midi printed
};
// Runs `abc2midi FILE -o MIDI` (midi_out empty: a temporary file, removed) and parses its messages.
// Throws aviary::Error when abc2midi is not installed.
Abc2MidiResult abc2midi_check(const std::string& abc_file, const std::string& midi_out = "");

// Exports (each throws aviary::Error naming the missing tool/package, or the tool's failure).
void export_midi(const std::string& abc_file, const std::string& midi_out);
void export_wav(const std::string& midi_file, const std::string& wav_out,
                const std::string& soundfont = "");  // "": the fluid-soundfont-gm default path
void export_svg(const std::string& abc_file, const std::string& svg_out);
// The General MIDI soundfont installed by fluid-soundfont-gm, or "" when absent.
std::string default_soundfont();

}  // namespace aviary::music
