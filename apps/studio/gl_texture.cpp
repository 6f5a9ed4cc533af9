// Texture upload and framebuffer read-back (gl_texture.h), with OpenGL 1.1 entry points only (no loader).
#include "gl_texture.h"

#define GL_SILENCE_DEPRECATION
#include <GLFW/glfw3.h>

#include <algorithm>

namespace aviary::studio {

void texture_upload(Texture& tex, const ImageRGBA& image) {
    if (tex.id == 0) {
        GLuint id = 0;
        glGenTextures(1, &id);
        tex.id = id;
    }
    glBindTexture(GL_TEXTURE_2D, tex.id);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);  // pixels stay visible when zoomed in
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, image.width, image.height, 0, GL_RGBA, GL_UNSIGNED_BYTE, image.rgba.data());
    tex.width = image.width, tex.height = image.height;
}

void texture_free(Texture& tex) {
    if (tex.id != 0) {
        GLuint id = tex.id;
        glDeleteTextures(1, &id);
    }
    tex = Texture{};
}

ImageRGBA read_framebuffer(int width, int height) {
    ImageRGBA img;
    img.width = width, img.height = height;
    std::vector<uint8_t> bottom_up(size_t(width) * height * 4);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE, bottom_up.data());
    img.rgba.resize(bottom_up.size());
    const size_t row = size_t(width) * 4;
    for (int y = 0; y < height; ++y)
        std::copy_n(bottom_up.data() + size_t(height - 1 - y) * row, row, img.rgba.data() + size_t(y) * row);
    return img;
}

}  // namespace aviary::studio
