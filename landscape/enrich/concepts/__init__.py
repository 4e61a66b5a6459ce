"""Concepts: the field's vocabulary as entities, and which records carry which concept.

    normalise   the one phrase-key rule (spelling, plurals, hyphens) for the whole package
    acronyms    acronyms mined from the corpus ('long name (ACR)', initials of keyphrases)
    vocabulary  concepts with their variants merged, and the matcher that finds them in text
    ranker      the keyphrase ranker for records without a keyphrase line
    model       the fitted model stored as arrays and JSON
    build       the build step (`step(config)`, as `landscape.enrich.pipeline` expects)
"""

from .acronyms import mine_acronyms
from .build import ConceptsStep, step, stored_embeddings
from .model import ConceptModel
from .normalise import clean_text, lowered_clean_text, phrase_key, singular, text_keys
from .ranker import KeyphrasePredictor
from .vocabulary import Concept, Vocabulary, refine_given

__all__ = [
    "Concept", "ConceptModel", "ConceptsStep", "KeyphrasePredictor", "Vocabulary", "clean_text",
    "lowered_clean_text", "mine_acronyms", "phrase_key", "refine_given", "singular", "step",
    "stored_embeddings", "text_keys",
]
