"""tongcheng_qa: bilingual retrieval-augmented QA over Jinshi park / Chengdu metropolitan news."""

__version__ = "0.1.0"
