// libpng, the reference PNG codec, seen from Swift through this system-library target.
#include <png.h>
