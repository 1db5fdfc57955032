"""Model backends (hf, openai) behind one interface (base.py), and baselines with no weights."""
