// Sentence splitting for the precise raw text slicer (Training PRO's split_sentences, with
// its rules made to work): text is cut into sections at the hard-cut string, and each section
// into sentences that end after '.', '?' or '!' (so also "...") followed by a space or a
// newline; the delimiter and all whitespace after it stay with the sentence. No split after
// the abbreviations below or after a single-capital initial ("J. Smith", "U.S. law").
// CJK sentence ends (。！？ and halfwidth ｡) end a sentence with no space after them; closing
// quotes/brackets and further end marks right after them ("？！」") stay with the sentence.
// Byte ranges only; token counting is the slicer's job.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace tpro {

struct Span {
  size_t begin = 0, end = 0;  // byte range [begin, end)
  size_t size() const { return end - begin; }
  bool operator==(const Span&) const = default;
};

// Ranges between occurrences of hard_cut (the cut string itself belongs to no section);
// the whole text when hard_cut is empty. Sections may be empty or blank.
std::vector<Span> split_sections(std::string_view text, std::string_view hard_cut);

// Sentences of text[section]: the first starts at the section's first non-space byte, each
// ends after its delimiter and trailing whitespace, the last at the section end. None when
// the section is blank.
std::vector<Span> split_sentences(std::string_view text, Span section);

// The abbreviations that never end a sentence (Training PRO's list).
extern const std::string_view kAbbreviations[21];

}  // namespace tpro
