#ifndef RONDO_CZLIB_SHIM_H
#define RONDO_CZLIB_SHIM_H
#include <zlib.h>

/// inflateInit2 is a macro in zlib.h; Swift cannot call macros, so wrap it.
/// windowBits 15 + 32 accepts both gzip and zlib framing.
static inline int czlib_inflate_init_auto(z_streamp stream) {
    return inflateInit2(stream, 15 + 32);
}
#endif
