"""`rouge_score` scorers shared by the benchmarks, with the Porter stemmer memoised.

rouge_score stems every token of every text anew; for long generations that stemming is most of
the ROUGE time (figures: CHANGELOG.md). Stemming is a pure function of the word, so a
cached stemmer inside rouge_score's own tokenizer gives the same tokens, hence the same scores.
"""
from __future__ import annotations

from functools import lru_cache


class _MemoisedStemmer:
    def __init__(self):
        from nltk.stem import porter  # the stemmer rouge_score's DefaultTokenizer uses

        self.stem = lru_cache(maxsize=1 << 18)(porter.PorterStemmer().stem)


def _stemming_tokenizer():
    from rouge_score import tokenize, tokenizers

    class StemmingTokenizer(tokenizers.Tokenizer):
        def __init__(self):
            self._stemmer = _MemoisedStemmer()

        def tokenize(self, text):
            return tokenize.tokenize(text, self._stemmer)

    return StemmingTokenizer()


@lru_cache(maxsize=None)
def scorer(rouge_types: tuple[str, ...], use_stemmer: bool):
    """rouge_score.RougeScorer(rouge_types, use_stemmer=...), stemming through the memoised stemmer."""
    from rouge_score import rouge_scorer

    if not use_stemmer:
        return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=False)
    return rouge_scorer.RougeScorer(list(rouge_types), tokenizer=_stemming_tokenizer())
