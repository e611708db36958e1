#include "report/png.h"

#include "core/error.h"
#include "core/file_io.h"

#ifdef MINDLLM_RSVG
#include <cairo.h>
#include <librsvg/rsvg.h>

#include <cmath>
#include <memory>
#endif

namespace mindllm::report {

#ifdef MINDLLM_RSVG

bool png_available() { return true; }

void write_svg_png(const std::string& svg, const std::string& path, double scale) {
  GError* err = nullptr;
  std::unique_ptr<RsvgHandle, void (*)(void*)> handle(
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err), g_object_unref);
  auto fail = [&](const std::string& what) {
    std::string msg = path + ": " + what + (err ? std::string(": ") + err->message : "");
    if (err) g_error_free(err);
    internal_error(msg);
  };
  if (!handle) fail("librsvg cannot read the plot's SVG");
  double w = 0, h = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle.get(), &w, &h) || !(w > 0 && h > 0))
    fail("the plot's SVG has no size in pixels");
  const int pw = static_cast<int>(std::ceil(w * scale)), ph = static_cast<int>(std::ceil(h * scale));
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph), cairo_surface_destroy);
  std::unique_ptr<cairo_t, void (*)(cairo_t*)> cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  cairo_scale(cr.get(), scale, scale);
  RsvgRectangle viewport{0, 0, w, h};
  if (!rsvg_handle_render_document(handle.get(), cr.get(), &viewport, &err)) fail("librsvg cannot render the plot");
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS)
    fail(std::string("cairo: ") + cairo_status_to_string(cairo_status(cr.get())));
  std::string png;
  auto append = [](void* out, const unsigned char* data, unsigned int n) -> cairo_status_t {
    static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(data), n);
    return CAIRO_STATUS_SUCCESS;
  };
  cairo_surface_flush(surface.get());
  if (cairo_surface_write_to_png_stream(surface.get(), append, &png) != CAIRO_STATUS_SUCCESS)
    fail("cairo cannot encode the PNG");
  write_file_atomic(path, png);
}

#else

bool png_available() { return false; }

void write_svg_png(const std::string&, const std::string& path, double) {
  internal_error(path + ": this build has no PNG writer (librsvg was not found when it was built)");
}

#endif

}  // namespace mindllm::report
