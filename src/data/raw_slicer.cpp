// Precise raw text slicer, overlapping blocks and DEMENTOR windows; see raw_slicer.h.
// Sentence token counts decide the packing; each finished block is then encoded as a whole
// (the canonical tokens) and, should that come out longer than the cutoff, shortened by one
// sentence, so a block never exceeds cutoff_len whatever the tokenizer merges across sentences.
#include "data/raw_slicer.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

#include "core/error.h"
#include "data/sentences.h"

namespace tpro {

namespace {

struct Sentence {
  size_t begin, end;  // byte range in the document
  int64_t n;          // tokens without special tokens
};

struct TokensHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : v) h = (h ^ uint32_t(t)) * 1099511628211ull;
    return size_t(h);
  }
};

// The hard cut must match text whose CRLF/CR were turned into LF.
std::string normalise_newlines(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\r') out.push_back(s[i]);
    else if (i + 1 >= s.size() || s[i + 1] != '\n') out.push_back('\n');
  }
  return out;
}

class Slicer {
 public:
  Slicer(const TokenCodec& codec, const DataOptions& opt, DataStats& stats)
      : hard_cut_(normalise_newlines(decode_escapes(opt.hard_cut_string))),
        codec_(codec), opt_(opt), stats_(stats) {
    bool eos = opt.add_eos_token && codec.eos >= 0;
    every_ = SpecialTokens{opt.add_bos_token, eos && opt.add_eos_token_type == EosPlacement::kEveryBlock};
    at_cut_ = SpecialTokens{opt.add_bos_token, eos};
    split_limit_ = opt.cutoff_len - special_token_count(codec, at_cut_);
    if (split_limit_ < 1)
      fail("cutoff_len ", opt.cutoff_len, " leaves no room for text after BOS/EOS (hint: raise cutoff_len)");
  }

  void slice_doc(const TextDoc& doc, int32_t doc_index, std::vector<Block>& out) {
    doc_ = &doc, doc_index_ = doc_index;
    for (const Span& sec : split_sections(doc.text, hard_cut_)) {
      sents_.clear();
      for (const Span& s : split_sentences(doc.text, sec)) add_sentence(s);
      stats_.sentences += int64_t(sents_.size());
      if (opt_.sliding_window) windows(out);
      else precise(out);
    }
  }


 private:
  // Budget for text tokens of a block; blocks ending at the section end may carry an EOS.
  int64_t budget(bool at_section_end) const {
    return opt_.cutoff_len - special_token_count(codec_, at_section_end ? at_cut_ : every_);
  }

  int64_t count(size_t b, size_t e) const {
    return int64_t(codec_.encode(std::string_view(doc_->text).substr(b, e - b)).size());
  }

  // A sentence longer than a block is cut into pieces of at most split_limit_ tokens, each
  // ending between two tokens of the sentence's own encoding. Every step works on a window
  // of about twice the piece, never on the rest of the sentence, so a sentence of n bytes
  // costs O(n log(piece)) encoding, not O(n^2 / piece) (a 5 MB line without a sentence end
  // used to take most of an hour).
  void add_sentence(const Span& s) {
    int64_t n = count(s.begin, s.end);
    if (n <= split_limit_) {
      sents_.push_back({s.begin, s.end, n});
      return;
    }
    ++stats_.sentences_split;
    for (size_t b = s.begin; b < s.end;) {
      size_t cut = longest_fitting_prefix(b, s.end);
      if (cut == s.end) {
        sents_.push_back({b, s.end, count(b, s.end)});
        break;
      }
      const std::vector<int32_t> ahead = codec_.encode(std::string_view(doc_->text).substr(b, window_end(b, cut, s.end) - b));
      int64_t piece_tokens = 0;
      size_t e = on_token_boundary(b, cut, ahead, piece_tokens);
      sents_.push_back({b, e, piece_tokens});
      b = e;
    }
  }

  // End of the text encoded to find a piece's token boundaries: the piece [b, cut) and as
  // much again after it (at least kSlack bytes), on a UTF-8 boundary. Tokens merge only
  // within a pre-token (a word, a number), so those of [b, cut) come out as in the encoding
  // of the whole rest unless one word runs on past the window.
  size_t window_end(size_t b, size_t cut, size_t e) const {
    constexpr size_t kSlack = 1024;
    size_t w = std::min(e, cut + std::max(cut - b, kSlack));
    while (w < e && !utf8_boundary(doc_->text, w)) ++w;
    return w;
  }

  // The cut at or before `cut` (> b) where [b, cut) encodes exactly as the leading tokens of
  // `ahead` (the encoding of the text from b on) do: the piece then holds whole tokens of
  // the sentence's own encoding, no token is cut in two. Looks back a few characters (a
  // token is rarely longer); keeps `cut` if none is. n_tokens gets the piece's token count.
  size_t on_token_boundary(size_t b, size_t cut, const std::vector<int32_t>& ahead, int64_t& n_tokens) const {
    constexpr int kLookBack = 48;
    const std::string_view t = std::string_view(doc_->text).substr(b, cut - b);
    size_t c = cut - b;
    for (int tries = 0; c > 0 && tries < kLookBack; ++tries) {
      if (utf8_boundary(doc_->text, b + c)) {
        const auto prefix = codec_.encode(t.substr(0, c));
        if (prefix.size() <= ahead.size() && std::equal(prefix.begin(), prefix.end(), ahead.begin())) {
          n_tokens = int64_t(prefix.size());
          return b + c;
        }
      }
      --c;
    }
    n_tokens = count(b, cut);
    return cut;
  }

  // Largest end in (b, e] on a UTF-8 boundary whose text [b, end) encodes to <= split_limit_
  // tokens (e itself when the whole rest fits). Gallops from split_limit_ bytes (a token is
  // at least a byte in practice) doubling up to the first end that does not fit, then
  // bisects: the encoded lengths sum to a few times the piece, whatever the rest's length.
  size_t longest_fitting_prefix(size_t b, size_t e) const {
    const std::string& t = doc_->text;
    auto boundary_up = [&](size_t i) {
      while (i < e && !utf8_boundary(t, i)) ++i;
      return i;
    };
    size_t lo = b, hi = e;  // invariant: [b, lo) fits (lo == b: nothing yet), [b, hi) does not
    for (size_t step = size_t(std::max<int64_t>(split_limit_, 1));; step *= 2) {
      size_t probe = boundary_up(b + std::min(step, e - b));
      if (count(b, probe) > split_limit_) {
        hi = probe;
        break;
      }
      lo = probe;
      if (probe == e) return e;
    }
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      while (mid > lo && !utf8_boundary(t, mid)) --mid;
      if (mid == lo) {  // no boundary in (lo, mid]: probe the next one up
        mid = lo + 1;
        while (mid < hi && !utf8_boundary(t, mid)) ++mid;
        if (mid == hi) break;
      }
      if (count(b, mid) <= split_limit_) lo = mid;
      else hi = mid;
    }
    if (lo == b)
      fail(doc_->path, ": cutoff_len ", opt_.cutoff_len, " cannot hold a single character at ",
           line_col(t, b), " (hint: raise cutoff_len)");
    return lo;
  }

  // Sentences [i, j) greedily packed within the budget.
  size_t greedy_end(size_t i) const {
    size_t m = sents_.size(), j = i;
    int64_t sum = 0;
    while (j < m && sum + sents_[j].n <= budget(j + 1 == m)) sum += sents_[j++].n;
    return std::max(j, i + 1);
  }

  // The finished block for sentences [i, j); stats-free. Shrinks j while over the cutoff.
  Block build(size_t i, size_t& j) {
    for (;;) {
      const std::string& t = doc_->text;
      size_t b = sents_[i].begin, e = sents_[j - 1].end;
      while (b < e && is_space(t[b])) ++b;
      while (e > b && is_space(t[e - 1])) --e;
      bool at_end = j == sents_.size();
      Block blk = text_block(std::string_view(t).substr(b, e - b), opt_.train_only_after, codec_,
                             at_end ? at_cut_ : every_);
      if (blk.size() > opt_.cutoff_len && j - i > 1) {
        --j;
        continue;
      }
      if (blk.size() > opt_.cutoff_len) {  // one sentence that fit alone but not stripped
        blk.tokens.resize(size_t(opt_.cutoff_len));
        blk.mask.resize(size_t(opt_.cutoff_len));
        ++stats_.trimmed;
      }
      blk.source = BlockSource::kRawText;
      blk.doc = doc_index_;
      blk.begin = int64_t(b), blk.end = int64_t(e);
      blk.ends_at_hard_cut = at_end;
      return blk;
    }
  }

  bool keep(const Block& b) {
    std::string_view text = std::string_view(doc_->text).substr(size_t(b.begin), size_t(b.end - b.begin));
    if (utf8_length(text) > opt_.min_chars) return true;
    ++stats_.small_blocks_dropped;
    return false;
  }

  // Sentence in (s, e) whose start is nearest cutoff_len/2 tokens into block [s, e).
  size_t overlap_start(size_t s, size_t e) const {
    size_t best = e;
    int64_t off = 0, best_dist = 0, half = opt_.cutoff_len / 2;
    for (size_t k = s + 1; k < e; ++k) {
      off += sents_[k - 1].n;
      int64_t d = std::llabs(off - half);
      if (best == e || d < best_dist) best = k, best_dist = d;
    }
    return best;
  }

  void precise(std::vector<Block>& out) {
    std::vector<std::pair<size_t, size_t>> regular;
    std::vector<Block> blocks;
    for (size_t i = 0; i < sents_.size();) {
      size_t j = greedy_end(i);
      blocks.push_back(build(i, j));
      regular.push_back({i, j});
      i = j;
    }
    std::unordered_set<std::vector<int32_t>, TokensHash> seen;
    for (const Block& b : blocks) seen.insert(b.tokens);
    for (size_t r = 0; r < blocks.size(); ++r) {
      if (keep(blocks[r])) out.push_back(std::move(blocks[r])), ++stats_.text_blocks;
      if (!opt_.precize_slicing_overlap) continue;
      auto [s, e] = regular[r];
      size_t o = overlap_start(s, e);
      if (o == e) continue;  // a one-sentence block has no inner sentence to start from
      size_t oe = greedy_end(o);
      Block ob = build(o, oe);
      ob.kind = BlockKind::kOverlap;
      if (!seen.insert(ob.tokens).second) {
        ++stats_.overlap_duplicates;
        continue;
      }
      if (keep(ob)) out.push_back(std::move(ob)), ++stats_.overlap_blocks;
    }
  }

  void windows(std::vector<Block>& out) {
    size_t prev_end = 0, m = sents_.size();
    for (size_t i = 0; i < m && prev_end < m; ++i) {
      size_t j = greedy_end(i);
      if (j <= prev_end) continue;
      Block b = build(i, j);
      if (j <= prev_end) continue;
      prev_end = j;
      b.kind = BlockKind::kWindow;
      if (keep(b)) out.push_back(std::move(b)), ++stats_.window_blocks;
    }
  }

  std::string hard_cut_;
  const TokenCodec& codec_;
  const DataOptions& opt_;
  DataStats& stats_;
  SpecialTokens every_, at_cut_;
  int64_t split_limit_ = 0;
  const TextDoc* doc_ = nullptr;
  int32_t doc_index_ = 0;
  std::vector<Sentence> sents_;
};

}  // namespace

std::vector<Block> slice_raw_text(const std::vector<TextDoc>& docs, const TokenCodec& codec,
                                  const DataOptions& opt, DataStats& stats) {
  Slicer slicer(codec, opt, stats);
  std::vector<Block> out;
  for (size_t d = 0; d < docs.size(); ++d) {
    check_cancel(opt.cancel, "slicing ", docs[d].path);
    ++stats.files;
    bool blank = std::all_of(docs[d].text.begin(), docs[d].text.end(), is_space);
    if (blank) ++stats.empty_files;
    slicer.slice_doc(docs[d], int32_t(d), out);
  }
  return out;
}

}  // namespace tpro
