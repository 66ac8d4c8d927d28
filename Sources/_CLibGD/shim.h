// libgd: JPEG decoding, drawing, its built-in bitmap fonts and the animated GIF encoder.
#include <gd.h>
#include <gdfonts.h>
#include <gdfontmb.h>
#include <gdfontl.h>
#include <gdfontg.h>
#include <gdfontt.h>
