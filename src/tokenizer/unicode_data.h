// Generated Unicode tables (unicode_data.cpp, made by gen_unicode_data.py) used by unicode.cpp
// for NFC/NFD. Internal to the tokenizer module; see the generator for the packing.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tpro::tok {

extern const uint64_t kCccRanges[];
extern const size_t kCccRangeCount;
extern const uint64_t kDecompositions[];
extern const size_t kDecompositionCount;
extern const char kUnicodeVersion[];

}  // namespace tpro::tok
