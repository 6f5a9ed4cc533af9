// RGBA8 textures for ImGui::Image (ImGui 1.86: ImTextureID is a void*). Call only on the UI thread, which owns
// the GL context (mrpt's rule; style_anchors §4.3); other threads go through AppState::main_queue.
#pragma once
#include "app_state.h"

namespace aviary::studio {

void texture_upload(Texture& tex, const ImageRGBA& image);  // (re)creates the texture
void texture_free(Texture& tex);
// Reads the current framebuffer (x, y, w, h from the bottom-left) into top-down RGBA rows.
ImageRGBA read_framebuffer(int width, int height);

}  // namespace aviary::studio
