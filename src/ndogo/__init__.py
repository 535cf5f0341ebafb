"""ndogo: make small-data African language models smaller and faster for NER.

A compression is a function from a model to a model, and every result is a row:
stages (finetune, prune, distill, quantize, trim) take a saved model and return
a saved model; `ndogo evaluate` turns any saved model into one row of metrics.
"""

__version__ = "0.1.0"
