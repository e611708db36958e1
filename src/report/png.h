// PNGs of the report's plots: the plot's SVG rasterized by librsvg onto a cairo surface (Debian's
// librsvg2-dev), written by cairo's PNG writer. Optional at build time (MINDLLM_RSVG): without
// librsvg the report is HTML only and says so.
#pragma once
#include <string>

namespace mindllm::report {

// Whether this build can write PNGs.
bool png_available();

// Rasterizes one <svg> element (`scale` x its size in pixels, on white) and writes the PNG to
// `path` atomically. Throws mindllm::Error (internal) when librsvg or cairo fail, or when
// png_available() is false.
void write_svg_png(const std::string& svg, const std::string& path, double scale = 2.0);

}  // namespace mindllm::report
